"""Variable substitution in Dockerfile words, by the rules of BuildKit's shell lexer.

A word is read left to right once. Outside quotes the escape character (``\\`` or, with
``# escape=`````, a backtick) takes the next character literally and vanishes at the end
of the word; ``'...'`` is literal; inside ``"..."`` the escape only escapes ``"``, ``$``
and itself, and ``$`` still expands. ``$NAME``/``${NAME}`` expand to the variable's value,
"" when unset; a ``$`` not followed by a name stays a ``$``. Positional (``$1``, ``$001``)
and special parameters (``$@ $* $# $? $- $$ $! $0``) are names of their own that are never
set. ``${V-w}``/``${V:-w}`` (default), ``${V+w}``/``${V:+w}`` (alternative) and
``${V?m}``/``${V:?m}`` (required) take a word that may hold quotes and expansions of its own;
the colon forms treat an empty value as unset. Words split only on whitespace that is
neither quoted, escaped nor inside braces; whitespace in an unquoted variable's value splits
too (``expand_words``).

The lexer keeps its own stack instead of recursing, and hands nested results up as nested
lists, so ``${a:-${a:-...}}`` 100,000 deep or a 1 MB word cost time in proportion to their
length.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TypeAlias

from forklift.errors import InvalidArgument

__all__ = ["SubstitutionError", "expand", "expand_words", "referenced"]


class SubstitutionError(InvalidArgument):
    """A word that cannot be expanded (unterminated quote or brace, a malformed ``${...}``,
    ``${V?msg}`` with V unset); one line: ``failed to process "<word>": <why>``."""


# A result handed from an inner construct to the one around it, flattened once at the end.
_Piece: TypeAlias = "str | list[_Piece]"

# Go's unicode.IsSpace, which is what splits words (str.isspace also takes \x1c-\x1f).
_SPACE_CHARS = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACES = re.compile(f"[{_SPACE_CHARS}]+")
_DIGITS = re.compile(r"\d+")      # \d is category Nd, as Go's unicode.IsDigit
_WORDISH = re.compile(r"\w+")     # letters, digits, "_" and a few numerals beyond them
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_MISSING_BRACE = "syntax error: missing '}'"
_TOP, _BRACE, _DQUOTE = "top", "brace", "dquote"
_SHOWN = 100                      # characters of a long word quoted in an error


@functools.lru_cache(maxsize=16)
def _plain_run(specials: str) -> re.Pattern[str]:
    """The longest stretch holding none of ``specials``: taken in one step, not per char."""
    return re.compile(f"[^{re.escape(specials)}]+")


def _flatten(piece: _Piece) -> str:
    out: list[str] = []
    todo: list[_Piece] = [piece]
    while todo:
        p = todo.pop()
        if isinstance(p, str):
            out.append(p)
        else:
            todo.extend(reversed(p))
    return "".join(out)


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)


class _Words:
    """BuildKit's word splitter: unquoted whitespace ends a non-empty word."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.cur: list[_Piece] = []
        self.cur_size = 0

    def add_raw(self, piece: _Piece, size: int) -> None:
        self.cur.append(piece)
        self.cur_size += size

    def add_split(self, text: str) -> None:
        for i, part in enumerate(_SPACES.split(text)):
            if i:
                self.end_word()
            if part:
                self.add_raw(part, len(part))

    def end_word(self) -> None:
        if self.cur_size:
            self.done.append(_flatten(self.cur))
            self.cur, self.cur_size = [], 0


class _Frame:
    """One construct being read: the whole word, a ``"..."``, or the word of ``${V<op>word}``."""

    __slots__ = ("kind", "out", "size", "words", "name", "op", "colon")

    def __init__(self, kind: str, words: _Words | None = None, name: str = "", op: str = "",
                 colon: bool = False) -> None:
        self.kind = kind
        self.out: list[_Piece] = []
        self.size = 0
        self.words = words
        self.name, self.op, self.colon = name, op, colon

    def add(self, piece: _Piece, size: int, *, split: bool) -> None:
        """Appends a result; ``split``: unquoted text, whose whitespace separates words."""
        self.out.append(piece)
        self.size += size
        if self.words is not None:
            if split:
                self.words.add_split(piece if isinstance(piece, str) else _flatten(piece))
            else:
                self.words.add_raw(piece, size)


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], escape: str, *,
                 names: set[str] | None = None, strict: bool = True) -> None:
        if len(escape) != 1 or escape in "'\"$":
            raise ValueError(f"bad escape character {escape!r}")
        self.s, self.pos, self.env, self.esc = word, 0, env, escape
        self.names = names      # collects every name looked up
        self.strict = strict    # False: ${V?msg} never fails (only names are wanted)

    def fail(self, reason: str) -> SubstitutionError:
        shown = self.s if len(self.s) <= _SHOWN else self.s[:_SHOWN] + "..."
        quoted = '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return SubstitutionError(_one_line(f"failed to process {quoted}: {reason}"))

    def run(self, words: _Words | None = None) -> _Frame:
        top = _Frame(_TOP, words)
        stack = [top]
        while True:
            if stack[-1].kind == _DQUOTE:
                self.dquote_step(stack)
            elif not self.word_step(stack):
                return top

    def word_step(self, stack: list[_Frame]) -> bool:
        """Reads one thing of an unquoted word; False at the end of the whole word."""
        f, s = stack[-1], self.s
        if self.pos == len(s):
            if f.kind == _TOP:
                return False
            raise self.fail(_MISSING_BRACE)
        ch = s[self.pos]
        if ch == "}" and f.kind == _BRACE:
            self.pos += 1
            stack.pop()
            value, size = self.substitute(f)
            self.deliver(stack[-1], value, size)
        elif ch == "'":
            end = s.find("'", self.pos + 1)
            if end < 0:
                raise self.fail(
                    "unexpected end of statement while looking for matching single-quote")
            text = s[self.pos + 1:end]
            self.pos = end + 1
            f.add(text, len(text), split=False)
        elif ch == '"':
            self.pos += 1
            stack.append(_Frame(_DQUOTE))
        elif ch == "$":
            self.dollar(stack)
        elif ch == self.esc:
            self.pos += 1
            if self.pos < len(s):       # an escape ending the word is dropped
                f.add(s[self.pos], 1, split=False)
                self.pos += 1
        else:
            specials = "'\"$" + self.esc + ("}" if f.kind == _BRACE else "")
            run = _plain_run(specials).match(s, self.pos)
            assert run is not None
            self.pos = run.end()
            f.add(run.group(), len(run.group()), split=True)
        return True

    def dquote_step(self, stack: list[_Frame]) -> None:
        f, s = stack[-1], self.s
        if self.pos == len(s):
            raise self.fail(
                "unexpected end of statement while looking for matching double-quote")
        ch = s[self.pos]
        if ch == '"':
            self.pos += 1
            stack.pop()
            stack[-1].add(f.out, f.size, split=False)
        elif ch == "$":
            self.dollar(stack)
        elif ch == self.esc:
            self.pos += 1
            if self.pos == len(s):
                return                  # the next step reports the missing quote
            # only these are escaped in double quotes; before anything else the escape stays
            if s[self.pos] in ('"', "$", self.esc):
                ch = s[self.pos]
                self.pos += 1
            f.add(ch, 1, split=False)
        else:
            run = _plain_run('"$' + self.esc).match(s, self.pos)
            assert run is not None
            self.pos = run.end()
            f.add(run.group(), len(run.group()), split=False)

    @staticmethod
    def deliver(f: _Frame, value: _Piece, size: int) -> None:
        """A variable's expansion joins the construct around it; unquoted, it splits."""
        f.add(value, size, split=f.kind != _DQUOTE)

    def dollar(self, stack: list[_Frame]) -> None:
        s = self.s
        self.pos += 1
        if self.pos == len(s) or s[self.pos] != "{":
            name = self.read_name()
            value = self.lookup(name)[0] if name else "$"
            self.deliver(stack[-1], value, len(value))
            return
        self.pos += 1
        if self.pos == len(s):
            raise self.fail(_MISSING_BRACE)
        if s[self.pos] in "{}:":
            raise self.fail("syntax error: bad substitution")
        name = self.read_name()
        op = self.next_char()
        if op == "}":
            value = self.lookup(name)[0]
            self.deliver(stack[-1], value, len(value))
            return
        colon = op == ":"
        if colon:
            op = self.next_char()
        if op not in ("-", "+", "?"):
            raise self.fail(f"unsupported modifier ({':' if colon else ''}{op}) in substitution")
        stack.append(_Frame(_BRACE, name=name, op=op, colon=colon))

    def next_char(self) -> str:
        if self.pos == len(self.s):
            raise self.fail(_MISSING_BRACE)
        self.pos += 1
        return self.s[self.pos - 1]

    def read_name(self) -> str:
        """A name after ``$``: digits (positional), one special character, or letters,
        digits and "_"; "" when none of these follows."""
        s, pos = self.s, self.pos
        if pos == len(s):
            return ""
        if digits := _DIGITS.match(s, pos):
            name = digits.group()
        elif s[pos] in _SPECIAL_PARAMS:
            name = s[pos]
        elif word := _WORDISH.match(s, pos):
            name = word.group()
            if not name.isascii():
                # \w also takes numerals such as "²" that Go's IsLetter/IsDigit refuse
                for i, c in enumerate(name):
                    if not (c.isalpha() or c.isdecimal() or c == "_"):
                        name = name[:i]
                        break
        else:
            name = ""
        self.pos += len(name)
        return name

    def lookup(self, name: str) -> tuple[str, bool]:
        if self.names is not None:
            self.names.add(name)
        value = self.env.get(name)
        return ("", False) if value is None else (value, True)

    def substitute(self, f: _Frame) -> tuple[_Piece, int]:
        """The value of a finished ``${name<op>word}``."""
        value, is_set = self.lookup(f.name)
        missing = not is_set or (f.colon and value == "")
        if f.op == "-":
            return (f.out, f.size) if missing else (value, len(value))
        if f.op == "+":
            return ("", 0) if missing else (f.out, f.size)
        if missing and self.strict:
            why = "is not allowed to be " + ("unset" if not is_set else "empty")
            raise self.fail(f"{f.name}: {_flatten(f.out) or why}")
        return value, len(value)


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word: quotes removed, escapes applied, $V ${V} ${V:-x} ${V:+x} ${V-x} ${V+x}
    ${V:?msg} ... as BuildKit's ProcessWordWithMatches (unset names expand to "")."""
    return _flatten(_Lexer(word, env, escape).run().out)


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """The same, split into words as BuildKit's ProcessWords (unquoted whitespace splits)."""
    words = _Words()
    _Lexer(word, env, escape).run(words)
    words.end_word()
    return words.done


def referenced(word: str, escape: str = "\\") -> set[str]:
    """Names the word refers to (for the cache key: which build args a step uses).

    Every name the expansion would look up, whatever the values: both sides of
    ``${A:-$B}``, and positional or special names such as "1" or "@" as written.
    A malformed word raises SubstitutionError as ``expand`` does; ``${V?msg}`` never does."""
    names: set[str] = set()
    _Lexer(word, {}, escape, names=names, strict=False).run()
    return names
