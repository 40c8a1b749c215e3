"""Variable substitution in Dockerfile words, by the rules of BuildKit's shell lexer.

A word is read left to right once. Outside quotes the escape character (``\\``, or a
backtick after the ``escape`` parser directive) takes the next character literally and
vanishes at the end of the word; ``'...'`` is literal; inside ``"..."`` the escape only
escapes ``"``, ``$`` and itself, and ``$`` still expands. ``$NAME``/``${NAME}`` expand
to the variable's value, "" when unset; a ``$`` not followed by a name stays a ``$``.
Positional (``$1``, ``$001``) and special parameters (``$@ $* $# $? $- $$ $! $0``) are
names of their own that are never set. ``${V-w}``/``${V:-w}`` (default), ``${V+w}``/
``${V:+w}`` (alternative) and ``${V?m}``/``${V:?m}`` (required) take a word that may hold
quotes and expansions of its own; the colon forms treat an empty value as unset.
BuildKit's newer ``${V#pat}``/``${V##pat}`` (strip the shortest/longest matching prefix),
``${V%pat}``/``${V%%pat}`` (suffix) and ``${V/pat/repl}``/``${V//pat/repl}`` (replace the
first/every match) take a pattern where ``*`` and ``?`` match within a line and ``\\``
makes ``*``, ``?`` or ``\\`` literal; their words keep their escape characters. Words
split on unquoted, unescaped whitespace, including whitespace that an unquoted expansion
brings (``expand_words``).

The lexer keeps its own stack instead of recursing, and hands nested results up as nested
lists, so ``${a:-${a:-...}}`` 100,000 deep or a 1 MB word cost time in proportion to their
length. Patterns are matched segment by segment with ``str.find`` (never a backtracking
regular expression, which a pattern of many ``*`` would make exponential).
"""

from __future__ import annotations

import functools
import itertools
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


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


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
    """One construct being read: the whole word, a ``"..."``, or the word of ``${V<op>word}``
    (for ``${V/pat/repl}`` first the pattern, ended by ``/``, then the replacement)."""

    __slots__ = ("kind", "stop", "raw", "out", "size", "words", "name", "op", "colon",
                 "pattern")

    def __init__(self, kind: str, *, stop: str = "", raw: bool = False,
                 words: _Words | None = None, name: str = "", op: str = "",
                 colon: bool = False, pattern: str | None = None) -> None:
        self.kind, self.stop, self.raw = kind, stop, raw   # raw: escapes stay in the text
        self.out: list[_Piece] = []
        self.size = 0
        self.words = words
        self.name, self.op, self.colon, self.pattern = name, op, colon, pattern

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
        quoted = '"' + _shorten(self.s).replace("\\", "\\\\").replace('"', '\\"') + '"'
        return SubstitutionError(_one_line(f"failed to process {quoted}: {_shorten(reason)}"))

    def run(self, words: _Words | None = None) -> _Frame:
        top = _Frame(_TOP, words=words)
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
            raise self.fail("syntax error: missing '/' in ${}" if f.stop == "/"
                            else _MISSING_BRACE)
        ch = s[self.pos]
        if ch == f.stop:
            self.pos += 1
            stack.pop()
            self.close(f, stack)
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
            stack.append(_Frame(_DQUOTE, raw=f.raw))
        elif ch == "$":
            self.dollar(stack)
        elif ch == self.esc:
            self.pos += 1
            if f.raw:
                f.add(ch, 1, split=False)
            if self.pos < len(s):       # an escape ending the word is dropped
                f.add(s[self.pos], 1, split=False)
                self.pos += 1
        else:
            self.take_plain(f, "'\"$" + self.esc + f.stop, split=True)
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
            if f.raw:
                f.add(ch, 1, split=False)
            if self.pos == len(s):
                return                  # the next step reports the missing quote
            # only these are escaped in double quotes; before anything else the escape stays
            # (so in a raw frame "\a" keeps the backslash twice, as BuildKit does)
            if s[self.pos] in ('"', "$", self.esc):
                ch = s[self.pos]
                self.pos += 1
            f.add(ch, 1, split=False)
        else:
            self.take_plain(f, '"$' + self.esc, split=False)

    def take_plain(self, f: _Frame, specials: str, *, split: bool) -> None:
        """Text up to the next of ``specials`` (at least one character): taken as it is."""
        run = _plain_run(specials).match(self.s, self.pos)
        assert run is not None
        self.pos = run.end()
        f.add(run.group(), len(run.group()), split=split)

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
        if op in "-+?#%":
            # BuildKit reads ${V:#p} and ${V:%p} as ${V#p} and ${V%p}
            stack.append(_Frame(_BRACE, stop="}", raw=op in "#%", name=name, op=op,
                                colon=colon))
        elif op == "/" and not colon:
            if s.startswith("/", self.pos):
                op = "//"
                self.pos += 1
            stack.append(_Frame(_BRACE, stop="/", raw=True, name=name, op=op))
        else:
            raise self.fail(f"unsupported modifier ({':' if colon else ''}{op}) in substitution")

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
        else:
            name = _name_run(s, pos)
        self.pos += len(name)
        return name

    def lookup(self, name: str) -> tuple[str, bool]:
        if self.names is not None:
            self.names.add(name)
        value = self.env.get(name)
        return ("", False) if value is None else (value, True)

    def close(self, f: _Frame, stack: list[_Frame]) -> None:
        """``f``'s stop character was read: its ``${...}`` expands into the frame around it."""
        if f.op in ("/", "//") and f.pattern is None:     # now the replacement, to "}"
            stack.append(_Frame(_BRACE, stop="}", raw=True, name=f.name, op=f.op,
                                pattern=_flatten(f.out)))
            return
        value, is_set = self.lookup(f.name)
        missing = not is_set or (f.colon and value == "")
        if f.op == "?" and missing and self.strict:
            why = "is not allowed to be " + ("unset" if not is_set else "empty")
            raise self.fail(f"{f.name}: {_flatten(f.out) or why}")
        if f.op == "-" and missing or f.op == "+" and not missing:
            self.deliver(stack[-1], f.out, f.size)      # the word, unflattened
            return
        if f.op == "+":
            value = ""
        elif f.op not in "-?":
            value = self.apply_pattern(f, value)
        self.deliver(stack[-1], value, len(value))

    def apply_pattern(self, f: _Frame, value: str) -> str:
        word = _flatten(f.out)
        if f.pattern is not None:
            glob = _Glob(self.pattern_tokens(f.pattern))
            if f.op == "//":
                return _replace_all(value, glob, word)
            found = glob.search(value, 0)
            return value if found is None else value[:found[0]] + word + value[found[1]:]
        greedy = word.startswith(f.op)      # "##" and "%%" take the longest match
        tokens = self.pattern_tokens(word[1:] if greedy else word)
        if f.op == "#":
            end = _Glob(tokens).prefix_end(value, greedy)
            return value if end is None else value[end:]
        # the shortest/longest suffix is the prefix of the reversed value, reversed
        end = _Glob(tokens[::-1]).prefix_end(value[::-1], greedy)
        return value if end is None else value[:len(value) - end]

    def pattern_tokens(self, pattern: str) -> list[_Token]:
        try:
            return _glob_tokens(pattern)
        except ValueError as e:
            raise self.fail(f"invalid pattern ({pattern}) in substitution: {e}") from None


def _name_run(s: str, pos: int) -> str:
    """The longest run of letters, digits and "_" at ``pos`` (Go's unicode classes)."""
    word = _WORDISH.match(s, pos)
    if word is None:
        return ""
    name = word.group()
    if not name.isascii():
        # \w also takes numerals such as "²" that Go's IsLetter/IsDigit refuse
        for i, c in enumerate(name):
            if not (c.isalpha() or c.isdecimal() or c == "_"):
                return name[:i]
    return name


# A pattern is a list of tokens: a character, or one of these two.
_Token: TypeAlias = "str | int"
_STAR, _ANY = 0, 1


def _glob_tokens(pattern: str) -> list[_Token]:
    """BuildKit's pattern syntax: ``*``, ``?``, a backslash before ``*``, ``?`` or ``\\``
    for the character itself, before ``}`` or ``/`` dropped; any other escape is refused."""
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            tokens.append(_STAR)
        elif c == "?":
            tokens.append(_ANY)
        elif c != "\\":
            tokens.append(c)
        elif not pattern.startswith(("}", "/"), i):
            if i == len(pattern) or pattern[i] not in "*?\\":
                raise ValueError(f"invalid escape '\\{pattern[i:i + 1]}'")
            tokens.append(pattern[i])
            i += 1
    return tokens


class _Segment:
    """What lies between two ``*``: characters and ``?``, of a fixed length, found by
    ``str.find`` of its first run of characters and a check of the others."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.length = len(tokens)
        self.runs: list[tuple[int, str]] = []       # (offset, characters)
        offset = 0
        for is_char, group in itertools.groupby(tokens, key=lambda t: isinstance(t, str)):
            part = list(group)
            if is_char:
                self.runs.append((offset, "".join(map(str, part))))
            offset += len(part)

    def at(self, v: str, q: int) -> bool:
        return all(v.startswith(run, q + off) for off, run in self.runs)

    def find(self, v: str, lo: int, hi: int) -> int:
        """The first q >= lo where the segment matches and ends by ``hi``, or -1."""
        if lo + self.length > hi:
            return -1           # (a negative end would count from the end of ``v``)
        if not self.runs:
            return lo
        off, run = self.runs[0]
        start, end = lo + off, hi - self.length + off + len(run)
        while (p := v.find(run, start, end)) >= 0:
            if self.at(v, p - off):
                return p - off
            start = p + 1
        return -1

    def rfind(self, v: str, lo: int, hi: int) -> int:
        """The last such q, or -1."""
        if lo + self.length > hi:
            return -1
        if not self.runs:
            return hi - self.length
        off, run = self.runs[0]
        start, end = lo + off, hi - self.length + off + len(run)
        while (p := v.rfind(run, start, end)) >= 0:
            if self.at(v, p - off):
                return p - off
            end = p + len(run) - 1
        return -1


class _Glob:
    """A pattern matched as Go's regexp matches BuildKit's translation of it (``*`` is
    ``.*?``, or ``.*`` for the longest match, ``?`` is ``.``; neither crosses a newline).

    Without a newline in the pattern a match lies within one line, and placing each
    segment at its first fit decides whether one exists (a later fit only leaves less
    room); the longest match then ends at the last fit of the last segment. Each step is
    a ``str.find``. A pattern holding a newline (only a variable's value can bring one)
    goes to ``re``, whose choice of match is the same."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.multiline = "\n" in tokens
        # (value, start, end of start's line), so that the many searches of a replace-all
        # on one long line do not each look for its end again
        self.known_line: tuple[str, int, int] = ("", -1, -1)
        split: list[list[_Token]] = [[]]
        for t in tokens:
            if t == _STAR:
                split.append([])
            else:
                split[-1].append(t)
        # "**" is one "*": an empty segment between two would cost a step per line
        kept = split[:1] + [part for part in split[1:-1] if part] + split[1:][-1:]
        self.segments = [_Segment(part) for part in kept]

    def regex(self, greedy: bool) -> re.Pattern[str]:
        star = ".*" if greedy else ".*?"
        return re.compile("".join(
            star if t == _STAR else "." if t == _ANY else re.escape(str(t))
            for t in self.tokens))

    def prefix_end(self, v: str, greedy: bool) -> int | None:
        """Where the shortest (longest) match at the start of ``v`` ends, None if none."""
        if self.multiline:
            m = self.regex(greedy).match(v)
            return None if m is None else m.end()
        line_end = _line_end(v, 0)
        first = self.segments[0]
        if first.length > line_end or not first.at(v, 0):
            return None
        return self.end_after(v, 0, line_end, greedy)

    def search(self, v: str, start: int) -> tuple[int, int] | None:
        """The leftmost longest match at or after ``start``, as (start, end)."""
        if self.multiline:
            m = self.regex(True).search(v, start)
            return None if m is None else m.span()
        first = self.segments[0]
        while start <= len(v):
            known, lo, line_end = self.known_line
            if known is not v or not lo <= start <= line_end:
                line_end = _line_end(v, start)
                self.known_line = (v, start, line_end)
            # if the rest fails after the first fit of the first segment, it fails after
            # any later fit on the line too
            q = first.find(v, start, line_end)
            if q >= 0 and (end := self.end_after(v, q, line_end, True)) is not None:
                return q, end
            start = line_end + 1
        return None

    def end_after(self, v: str, q: int, line_end: int, greedy: bool) -> int | None:
        """The first segment matches at ``q``: where the whole match ends, None if none."""
        last_start, at = q, q + self.segments[0].length
        for seg in itertools.islice(self.segments, 1, None):
            last_start = seg.find(v, at, line_end)
            if last_start < 0:
                return None
            at = last_start + seg.length
        if greedy and len(self.segments) > 1:
            last = self.segments[-1]
            return last.rfind(v, last_start, line_end) + last.length
        return at


def _line_end(v: str, start: int) -> int:
    end = v.find("\n", start)
    return len(v) if end < 0 else end


def _replace_all(value: str, glob: _Glob, template: str) -> str:
    """Go's Regexp.ReplaceAllString: an empty match right after a match is no match, and
    ``$0``/``${0}`` in the replacement is the match, other ``$name`` nothing, ``$$`` a $."""
    if glob.tokens and all(isinstance(t, str) for t in glob.tokens):
        # a literal never matches empty: every match is str.replace's (a million
        # matches on one line would otherwise take seconds, one search each)
        literal = "".join(str(t) for t in glob.tokens)
        return value.replace(literal, _go_template(template, literal))
    out: list[str] = []
    last = pos = 0
    while pos <= len(value) and (found := glob.search(value, pos)) is not None:
        start, end = found
        out.append(value[last:start])
        if end > last or start == 0:
            out.append(_go_template(template, value[start:end]))
        last = end
        pos = pos + 1 if pos + 1 > end else end
    out.append(value[last:])
    return "".join(out)


def _go_template(template: str, match: str) -> str:
    out: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        out.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            out.append("$")
            i += 1
            continue
        brace = int(template.startswith("{", i))
        name = _name_run(template, i + brace)
        close = i + brace + len(name)
        if not name or (brace and not template.startswith("}", close)):
            out.append("$")         # not a reference: the $ stays
            continue
        if name == "0":
            out.append(match)
        i = close + brace
    out.append(template[i:])
    return "".join(out)


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
