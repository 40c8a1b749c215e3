"""Dockerfile text into instructions, read as BuildKit's dockerfile frontend (1.x) reads it.

Two stages, as in BuildKit. The parse tree (BuildKit's ``parser.Parse``): parser
directives, comments, continuations, heredoc bodies, leading ``--flags`` and the
argument shape of each instruction (JSON or shell form, ENV/LABEL pairs). Then the
instruction checks (BuildKit's ``instructions.Parse``): argument counts, flag names,
ONBUILD triggers, FROM first. ``parse(strict=False)`` stops after the first stage, which
is what BuildKit's own parser tests compare (they hold files without a FROM).

Nothing is expanded here: quotes, escapes and ``$VARS`` stay as written for
``forklift.build.words``.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from forklift.errors import InvalidArgument

# BuildKit reads any size; forklift refuses a Dockerfile over 4 MiB before parsing it.
# Honest Dockerfiles stay under a few hundred KiB even with heredoc-embedded files, while
# the parse tree of a hostile one costs about 70 bytes of memory per byte of text
# ("RUN x" 700,000 times over): 4 MiB bounds that to about 250 MB and 2-4 seconds on
# this project's 2-core machine; 16 MiB would be 1 GB and a quarter of a minute.
MAX_SIZE = 4 << 20
# BuildKit's own limit: its line scanner holds at most bufio.MaxScanTokenSize bytes.
MAX_LINE = 65535

# Go's unicode.IsSpace, which BuildKit uses to trim and split.
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
         "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_WHITESPACE_SPLIT = re.compile(r"[\t\v\f\r ]+")     # BuildKit's reWhitespace
_NOT_SPACE = re.compile(f"[^{_SPACE}]")
_SPACE_RE = re.compile(f"[{_SPACE}]")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)([^<]*)")
_RAW_WORD = re.compile(r"""(?:[^\s'"\\]+|\\.?|'[^']*'?|"(?:[^"\\]|\\.?)*"?)+""", re.S)
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")
_DIRECTIVE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9]*")
_LEADING_TABS = re.compile(r"^\t+", re.M)
_LONG_LINE = re.compile(rb"^[^\n]{%d}" % (MAX_LINE + 1), re.M)  # ^ tries line starts only
_SPACE_NO_NL = _SPACE.replace("\n", "")
_BLANK_START = frozenset(_SPACE + "#")
# The start of the next line that is neither blank nor a comment (searched, not a
# repeated group: sre keeps state for each repetition, a GB for 4 million blank lines).
_CONTENT_LINE = re.compile(f"^[{_SPACE_NO_NL}]*[^{_SPACE}#]", re.M)
_EMPTY_LINE = re.compile(f"(?:^|\n)[{_SPACE_NO_NL}]*\n")
_DIRECTIVES = ("syntax", "escape", "check")
_STOCK_SYNTAX = re.compile(r"(docker\.io/)?docker/dockerfile(:[0-9][\w.-]*)?(@sha256:[0-9a-f]+)?")

KEYWORDS = frozenset((
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"))
_HEREDOC_KEYWORDS = frozenset({"ADD", "COPY", "RUN"})

# Flag name -> kind, per instruction (BuildKit's BFlags): "bool", "string" or "strings"
# (repeatable). Any other instruction takes no flag.
FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "string"},
    "RUN": {"mount": "strings", "network": "string", "security": "string"},
    "COPY": {"from": "string", "chown": "string", "chmod": "string", "link": "bool",
             "parents": "bool", "exclude": "strings"},
    "ADD": {"chown": "string", "chmod": "string", "link": "bool", "checksum": "string",
            "keep-git-dir": "bool", "exclude": "strings", "unpack": "bool"},
    "HEALTHCHECK": {"interval": "string", "timeout": "string", "start-period": "string",
                    "start-interval": "string", "retries": "string"},
}


class DockerfileSyntaxError(InvalidArgument):
    """A Dockerfile that does not parse; the message is one line, ``NAME:LINE: what``."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Heredoc:
    name: str        # the delimiter word, quotes removed ("EOF")
    content: str     # the body as written, ending in "\n"; <<- already stripped leading tabs
    expand: bool     # False when the delimiter was quoted (<<'EOF' / <<"EOF")


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str               # upper case: "FROM", "RUN", "COPY", ... "ONBUILD"
    args: tuple[str, ...]      # BuildKit's node values: shell form -> one string; JSON form ->
                               # the list; ENV/LABEL -> key, value, key, value ...; ARG -> each
                               # "name[=value]" word; ONBUILD -> the trigger as written
    flags: tuple[str, ...]     # leading "--x=y" flags, quotes and escapes removed as BuildKit
    json_form: bool            # exec/JSON form
    heredocs: tuple[Heredoc, ...]
    line: int                  # 1-based first line of the instruction
    original: str              # the instruction as written (continuations joined to one line)
    trigger: Instruction | None = None   # ONBUILD's parsed instruction
    legacy_form: bool = False  # ENV/LABEL written "KEY name value" (no "="): one pair

    def flag_values(self, name: str) -> list[str]:
        """The values given to ``--name`` (``"true"`` for a bare boolean flag), in order."""
        out = []
        for flag in self.flags:
            key, eq, value = flag[2:].partition("=")
            if key == name:
                out.append(value if eq else "true")
        return out


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]  # in order, FROM included
    directives: dict[str, str]             # parser directives ("syntax", "escape", ...)
    escape: str                            # "\\" or "`"
    warnings: tuple[str, ...] = field(default=())   # one line each, "NAME:LINE: ..."


class _Fail(Exception):
    """A parse error before its location is known; ``parse`` adds the name and line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def parse(text: str | bytes, name: str = "Dockerfile", *, strict: bool = True) -> Dockerfile:
    """Parse a Dockerfile. ``strict=False`` gives BuildKit's bare parse tree (no argument,
    flag or stage checks, unknown instructions kept)."""
    # The parse makes only acyclic objects, up to a million of them for a hostile file;
    # the cyclic collector would rescan them all again and again (half the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        result = _Parser(_decode(text, name), name).run()
        if strict:
            _check(result.instructions)
        return result
    except _Fail as e:
        where = name if e.line is None else f"{name}:{e.line}"
        raise DockerfileSyntaxError(f"{where}: {_clip(e.message)}", e.line) from None
    finally:
        if collecting:
            gc.enable()


def _clip(message: str) -> str:
    """One line of sane length: a message may quote a word of a 64 KiB line."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return message if len(message) <= 400 else message[:400] + "..."


# ---------------------------------------------------------------------------- reading


def _decode(text: str | bytes, name: str) -> str:
    if isinstance(text, str):
        if len(text) > MAX_SIZE:
            raise _too_large(len(text))
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _Fail("not valid UTF-8 text", text.count("\n", 0, e.start) + 1) from None
    else:
        data = bytes(text)
    if len(data) > MAX_SIZE:
        raise _too_large(len(data))
    nul = data.find(b"\0")
    if nul >= 0:
        hint = " (is it UTF-16?)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise _Fail(f"NUL byte in the Dockerfile{hint}", data.count(b"\n", 0, nul) + 1)
    long = _LONG_LINE.search(data)
    if long is not None:
        raise _Fail(f"dockerfile line greater than max allowed size of {MAX_LINE}",
                    data.count(b"\n", 0, long.start()) + 1)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Fail("not valid UTF-8 text", data.count(b"\n", 0, e.start) + 1) from None
    decoded = decoded.removeprefix("\ufeff")
    if not decoded.strip(_SPACE):
        raise _Fail(f"the Dockerfile ({name}) cannot be empty")
    return decoded


def _too_large(size: int) -> _Fail:
    return _Fail(f"Dockerfile too large ({size} bytes, at most {MAX_SIZE} are read)")


class _Source:
    """The text's lines one at a time, as BuildKit's scanner gives them (the "\n" removed),
    with runs of blank and comment lines skipped in one regular-expression search: a
    hostile file of millions of lines costs no Python work per line there."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.number = 0          # lines taken so far: the current line's 1-based number

    def more(self) -> bool:
        return self.offset < len(self.text)

    def take(self) -> str:
        end = self.text.find("\n", self.offset)
        if end < 0:
            end = len(self.text)
        line = self.text[self.offset:end]
        self.offset = end + 1
        self.number += 1
        return line

    def skip_blank(self) -> bool:
        """Skip whole blank and comment lines; whether a blank (not comment) one was seen."""
        if self.offset < len(self.text) and self.text[self.offset] not in _BLANK_START:
            return False   # the common case, without a search
        m = _CONTENT_LINE.search(self.text, self.offset)
        end = len(self.text) if m is None else m.start()
        if end == self.offset:
            return False
        skipped = self.text[self.offset:end]
        self.number += skipped.count("\n")
        self.offset = end
        return _EMPTY_LINE.search(skipped) is not None

    def heredoc_body(self, name: str, chomp: bool) -> str | None:
        """The lines up to the terminator line (raw, each with its "\n"), the terminator
        consumed; None when no line ends the heredoc."""
        tabs = "\t*" if chomp else ""
        m = re.compile(f"^{tabs}{re.escape(name)}\r*$", re.M).search(self.text, self.offset)
        if m is None:
            return None
        body = self.text[self.offset:m.start()]
        self.number += body.count("\n") + 1
        self.offset = m.end() + 1
        return body


class _Joined:
    """A logical line's pieces, joined in blocks so that 100,000 continuation lines
    cost neither quadratic copying nor one small object per line."""

    def __init__(self, first: str) -> None:
        self.blocks: list[str] = []
        self.parts = [first]

    def add(self, part: str) -> None:
        self.parts.append(part)
        if len(self.parts) >= 1024:
            self.blocks.append("".join(self.parts))
            self.parts = []

    def text(self) -> str:
        return "".join(self.blocks) + "".join(self.parts)


# ----------------------------------------------------------------------- the parse tree


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.src = _Source(text)
        self.name = name
        self.escape = "\\"
        self.directives: dict[str, str] = {}
        self.directives_done = False
        self.warnings: list[str] = []

    def run(self) -> Dockerfile:
        out = []
        while self.src.more():
            if self.directives_done:
                self.src.skip_blank()
                if not self.src.more():
                    break
            item = self._logical_line()
            if item is not None:
                out.append(self._instruction(*item))
        if not out:
            raise _Fail("file with no instructions", self.src.number)
        return Dockerfile(tuple(out), self.directives, self.escape, tuple(self.warnings))

    def _next(self) -> str:
        """The next line, CR and leading whitespace trimmed, fed to the directive reader."""
        token = self.src.take().rstrip("\r").lstrip(_SPACE)
        if not self.directives_done:
            self._directive(token)
        return token

    def _logical_line(self) -> tuple[str, int] | None:
        token = self._next()
        start = self.src.number
        if token.startswith("#"):
            token = ""
        line, done = self._trim_continuation(token)
        if done:
            return (line, start) if line else None
        joined = _Joined(line)
        empty_seen = False
        src = self.src
        while not done and src.more():
            # Comment lines inside a continuation are dropped, blank ones too (with a
            # warning); whatever skip_blank leaves is a line with content. The directives
            # ended with this instruction's first line.
            if src.skip_blank():
                empty_seen = True
            if not src.more():
                break
            token, done = self._trim_continuation(src.take().rstrip("\r"))
            joined.add(token)
        if empty_seen:
            self.warnings.append(f"{self.name}:{start}: NoEmptyContinuation: empty "
                                 "continuation lines will become errors in a future release")
        line = joined.text()
        # BuildKit makes a nameless node of a line that only held continuations and
        # then fails on it as "unknown instruction: "; nothing is there to report.
        return (line, start) if line.strip(_SPACE) else None

    def _trim_continuation(self, line: str) -> tuple[str, bool]:
        """BuildKit's rule: the escape token, last before trailing blanks and tabs, not
        itself preceded by the escape token, continues the line."""
        if not line.endswith((self.escape, " ", "\t")):
            return line, True
        body = line.rstrip(" \t")
        if not body.endswith(self.escape):
            return line, True
        if len(body) >= 2 and body[-2] == self.escape:
            return line, True
        return body[:-1], False

    def _directive(self, token: str) -> None:
        found = _match_directive(token)
        if found is None or found[0] not in _DIRECTIVES:
            self.directives_done = True
            return
        key, value = found
        line = self.src.number
        if key in self.directives:
            raise _Fail(f"only one {key} parser directive can be used", line)
        if key == "escape" and value not in ("\\", "`"):
            raise _Fail(f"invalid escape token '{value}' does not match ` or \\", line)
        if key == "escape":
            self.escape = value
        if key == "syntax" and not _STOCK_SYNTAX.fullmatch(value):
            self.warnings.append(f"{self.name}:{line}: syntax directive ignored: forklift "
                                 f"parses Dockerfiles itself, not with {value}")
        self.directives[key] = value

    def _instruction(self, line: str, start: int) -> Instruction:
        try:
            node = _node(line, self.escape, start)
        except _Fail as e:
            e.line = start if e.line is None else e.line
            raise
        target = node.trigger if node.trigger is not None else node
        if target.legacy_form:
            self.warnings.append(
                f'{self.name}:{start}: LegacyKeyValueFormat: "{target.keyword} key=value" '
                f'should be used instead of legacy "{target.keyword} key value" format')
        if target.keyword == "MAINTAINER":
            self.warnings.append(f"{self.name}:{start}: MaintainerDeprecated: Maintainer "
                                 "instruction is deprecated in favor of using label")
        if target.keyword in _HEREDOC_KEYWORDS and not target.json_form and "<<" in line:
            docs = tuple(self._heredoc(doc, start) for doc in _heredocs(line))
            if docs:
                node = _with_heredocs(node, docs)
        return node

    def _heredoc(self, doc: tuple[str, bool, bool], start: int) -> Heredoc:
        name, expand, chomp = doc
        body = self.src.heredoc_body(name, chomp)
        if body is None:
            raise _Fail(f"unterminated heredoc {name}", start)
        if chomp:
            body = _LEADING_TABS.sub("", body)
        return Heredoc(name, body, expand)


def _with_heredocs(node: Instruction, docs: tuple[Heredoc, ...]) -> Instruction:
    if node.trigger is None:
        return replace(node, heredocs=docs)
    # The image keeps an ONBUILD trigger as text (Docker's OnBuild list): BuildKit writes
    # each heredoc's body and terminator after the trigger line.
    expression = node.args[0] + "".join(f"\n{d.content}{d.name}" for d in docs)
    return replace(node, args=(expression,), heredocs=docs,
                   trigger=replace(node.trigger, heredocs=docs))


def _match_directive(token: str) -> tuple[str, str] | None:
    """``# key = value`` (BuildKit's directive regexp, without its backtracking; Go's
    ``\\s`` is these three once CR and LF are gone)."""
    if not token.startswith("#"):
        return None
    rest = token[1:].lstrip(_SPACE)
    m = _DIRECTIVE_NAME.match(rest)
    if m is None:
        return None
    after = rest[m.end():].lstrip(" \t\f")
    if not after.startswith("="):
        return None
    value = after[1:].strip(" \t\f")
    if not value:
        return None
    return m.group().lower(), value


# --------------------------------------------------------------- one instruction's node


def _node(line: str, escape: str, number: int, nested: bool = False) -> Instruction:
    stripped = line.strip(_SPACE)
    parts = _WHITESPACE_SPLIT.split(stripped, maxsplit=1)
    word = parts[0]
    rest = parts[1] if len(parts) == 2 else ""
    flags: list[str] = []
    if rest.startswith("--"):
        rest, flags = _split_flags(rest)
    rest = rest.strip(_SPACE)
    keyword = word.upper()
    if keyword == "ONBUILD":
        return _onbuild(line, rest, flags, escape, number, nested)
    shape = _SHAPES.get(keyword, _ignore)
    args, json_form, legacy = shape(rest, escape, keyword)
    return Instruction(keyword=keyword, args=tuple(args), flags=tuple(flags),
                       json_form=json_form, heredocs=(), line=number, original=line,
                       legacy_form=legacy)


def _onbuild(line: str, rest: str, flags: list[str], escape: str, number: int,
             nested: bool) -> Instruction:
    trigger = None
    if rest:
        if nested:
            # BuildKit recurses here; one level is all a valid file has, and refusing the
            # second keeps "ONBUILD ONBUILD ..." x 100000 from exhausting the stack.
            raise _Fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        trigger = _node(rest, escape, number, nested=True)
    return Instruction(keyword="ONBUILD", args=(rest,) if rest else (), flags=tuple(flags),
                       json_form=False, heredocs=(), line=number, original=line,
                       trigger=trigger)


_Shape = Callable[[str, str, str], tuple[list[str], bool, bool]]


def _ignore(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    return [], False, False


def _string(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    return ([rest] if rest else []), False, False


def _whitespace_list(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    return (_WHITESPACE_SPLIT.split(rest) if rest else []), False, False


def _maybe_json(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    if not rest:
        return [], False, False
    parsed = _json_array(rest)
    if parsed is not None:
        return parsed, True, False
    return [rest], False, False


def _maybe_json_list(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    parsed = _json_array(rest)
    if parsed is not None:
        return parsed, True, False
    return _whitespace_list(rest, escape, keyword)


def _healthcheck(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    """``TYPE rest``: the type word, then the command in JSON or shell form."""
    if not rest:
        return [], False, False
    split = _SPACE_RE.search(rest)
    end = len(rest) if split is None else split.start()
    cmd, json_form, _ = _maybe_json(rest[end:].lstrip(_SPACE), escape, keyword)
    return [rest[:end], *cmd], json_form, False


def _name_or_name_value(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    return _words(rest, escape), False, False


def _name_value(rest: str, escape: str, keyword: str) -> tuple[list[str], bool, bool]:
    """ENV and LABEL: ``KEY name value`` (one pair) or ``KEY a=b c=d`` (quotes kept)."""
    words = _words(rest, escape)
    if not words:
        return [], False, False
    if "=" not in words[0]:
        parts = _WHITESPACE_SPLIT.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _Fail(f"{keyword} must have two arguments")
        return [parts[0], parts[1]], False, True
    out = []
    for word in words:
        if "=" not in word:
            raise _Fail(f"Syntax error - can't find = in {_go_quote(word)}. "
                        "Must be of the form: name=value")
        key, _, value = word.partition("=")
        out += [key, value]
    return out, False, False


_SHAPES: dict[str, _Shape] = {
    "ADD": _maybe_json_list, "ARG": _name_or_name_value, "CMD": _maybe_json,
    "COPY": _maybe_json_list, "ENTRYPOINT": _maybe_json, "ENV": _name_value,
    "EXPOSE": _whitespace_list, "FROM": _whitespace_list, "HEALTHCHECK": _healthcheck,
    "LABEL": _name_value, "MAINTAINER": _string, "RUN": _maybe_json, "SHELL": _maybe_json,
    "STOPSIGNAL": _string, "USER": _string, "VOLUME": _maybe_json_list, "WORKDIR": _string,
}


def _reject_constant(name: str) -> object:
    raise ValueError(name)   # Go's JSON has no NaN/Infinity: the text is not JSON


def _json_array(rest: str) -> list[str] | None:
    """The JSON array of strings, or None when ``rest`` is not JSON (shell form then).
    JSON that holds anything but strings is an error, as in BuildKit."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if value is None:
        return []   # Go decodes "null" into an empty list
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _Fail("when using JSON array syntax, arrays must be comprised of strings only")
    # Go replaces a lone surrogate escape (\\ud800) with U+FFFD; Python would keep it.
    return [re.sub("[\ud800-\udfff]", "\ufffd", v) for v in value]


def _split_flags(line: str) -> tuple[str, list[str]]:
    """Leading ``--name[=value]`` words off the arguments (BuildKit's extractBuilderFlags:
    quotes and backslashes inside a flag are removed; ``--`` ends the flags)."""
    flags: list[str] = []
    pos, n = 0, len(line)
    while True:
        m = _NOT_SPACE.search(line, pos)
        if m is None:
            return "", flags
        pos = m.start()
        if not line.startswith("--", pos):
            return line[pos:], flags
        word, pos, quoted = _flag_word(line, pos)
        if pos >= n:
            if word != "--" and (word or quoted):
                flags.append(word)
            return "", flags
        if word == "--":
            return line[pos:], flags
        if word or quoted:
            flags.append(word)


_FLAG_SPECIAL = re.compile(f"[{_SPACE}'\"\\\\]")


def _flag_word(line: str, pos: int) -> tuple[str, int, bool]:
    """One flag word from ``pos``: (word, position after it, whether it held a quote)."""
    out: list[str] = []
    n = len(line)
    quoted = False
    while pos < n:
        m = _FLAG_SPECIAL.search(line, pos)
        if m is None:
            out.append(line[pos:])
            pos = n
            break
        out.append(line[pos:m.start()])
        pos = m.start()
        ch = line[pos]
        if ch in _SPACE:
            break
        if ch == "\\":
            out.append(line[pos + 1:pos + 2])   # a backslash at the very end is dropped
            pos += 2
            continue
        quoted = True
        pos = _flag_quote(line, pos + 1, ch, out)
    return "".join(out), min(pos, n), quoted


def _flag_quote(line: str, pos: int, quote: str, out: list[str]) -> int:
    n = len(line)
    while pos < n:
        ch = line[pos]
        if ch == quote:
            return pos + 1
        if ch == "\\":
            if pos + 1 == n:
                return n
            pos += 1
            ch = line[pos]
        out.append(ch)
        pos += 1
    return n


def _words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: split on unquoted whitespace, quotes and escapes kept."""
    words: list[str] = []
    special = re.compile(f"[{_SPACE}'\"{re.escape(escape)}]")
    pos, n = 0, len(rest)
    while pos < n:
        m = _NOT_SPACE.search(rest, pos)
        if m is None:
            break
        word, pos, keep = _word(rest, m.start(), escape, special)
        if word or keep:
            words.append(word)
    return words


def _word(rest: str, pos: int, escape: str, special: re.Pattern[str]) -> tuple[str, int, bool]:
    out: list[str] = []
    n = len(rest)
    quoted = False
    while pos < n:
        m = special.search(rest, pos)
        if m is None:
            out.append(rest[pos:])
            pos = n
            break
        out.append(rest[pos:m.start()])
        pos = m.start()
        ch = rest[pos]
        if ch in _SPACE:
            pos += 1
            break
        if ch == escape:
            if pos + 1 == n:   # an escape at the very end is dropped
                pos = n
                break
            out.append(rest[pos:pos + 2])
            pos += 2
            continue
        quoted = True
        out.append(ch)
        pos = _word_quote(rest, pos + 1, ch, escape, out)
    return "".join(out), pos, quoted


def _word_quote(rest: str, pos: int, quote: str, escape: str, out: list[str]) -> int:
    n = len(rest)
    stops = re.compile(re.escape(quote) if quote == "'" else f"[{re.escape(quote + escape)}]")
    while pos < n:
        m = stops.search(rest, pos)
        if m is None:
            out.append(rest[pos:])
            return n
        out.append(rest[pos:m.start()])
        pos = m.start()
        if rest[pos] == quote:
            out.append(quote)
            return pos + 1
        if pos + 1 == n:
            return n
        out.append(rest[pos:pos + 2])
        pos += 2
    return n


# ----------------------------------------------------------------------------- heredocs


def _heredocs(line: str) -> list[tuple[str, bool, bool]]:
    """(name, expand, chomp) of each ``<<WORD`` in the line (BuildKit lexes the line with
    quotes and escapes kept, then takes each word that is a whole heredoc marker)."""
    out = []
    for m in _RAW_WORD.finditer(line):
        word = m.group()
        if "<<" not in word:
            continue
        marker = _HEREDOC.fullmatch(word)
        if marker is None or not marker.group(3):
            continue
        raw = marker.group(3)
        name = _unquote(raw)
        if not name:
            continue
        quotes = raw.count("'") + raw.count('"')
        expand = quotes == name.count("'") + name.count('"')
        out.append((name, expand, marker.group(2) == "-"))
    return out


def _unquote(word: str) -> str:
    """Quotes removed and backslash escapes applied, as a shell would read the word."""
    out: list[str] = []
    pos, n = 0, len(word)
    while pos < n:
        ch = word[pos]
        if ch == "\\":
            out.append(word[pos + 1:pos + 2])
            pos += 2
        elif ch == "'":
            end = word.find("'", pos + 1)
            end = n if end < 0 else end
            out.append(word[pos + 1:end])
            pos = end + 1
        elif ch == '"':
            pos = _unquote_double(word, pos + 1, out)
        else:
            out.append(ch)
            pos += 1
    return "".join(out)


def _unquote_double(word: str, pos: int, out: list[str]) -> int:
    n = len(word)
    while pos < n:
        ch = word[pos]
        if ch == '"':
            return pos + 1
        if ch == "\\" and pos + 1 < n and word[pos + 1] in '"$\\`':
            ch = word[pos + 1]
            pos += 1
        out.append(ch)
        pos += 1
    return n


# ------------------------------------------------------------------ instruction checks


def parse_trigger(text: str, name: str = "Dockerfile") -> Instruction:
    """One ONBUILD trigger as a base image records it (``RUN make``, heredoc bodies
    included), checked as the same instruction in a Dockerfile."""
    found = parse(text, name, strict=False).instructions
    try:
        if len(found) != 1:
            raise _Fail(f"ONBUILD trigger is not one instruction: {_clip(text)!r}")
        if found[0].keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise _Fail(f"{found[0].keyword} isn't allowed as an ONBUILD trigger")
        _check_one(found[0])
    except _Fail as e:
        raise DockerfileSyntaxError(f"{name}: {_clip(e.message)}", None) from None
    return found[0]


def _check(instructions: tuple[Instruction, ...]) -> None:
    seen_from = False
    for ins in instructions:
        try:
            _check_one(ins)
            if ins.keyword == "FROM":
                seen_from = True
            elif not seen_from and ins.keyword != "ARG":
                raise _Fail("no build stage in current context")
        except _Fail as e:
            e.line = ins.line
            raise
    if not seen_from:
        raise _Fail("dockerfile contains no stages to build")


def _check_one(ins: Instruction) -> None:
    if ins.keyword not in KEYWORDS:
        word = ins.original.strip(_SPACE).split(None, 1)[0] if ins.original.strip() else ""
        raise _Fail(f"unknown instruction: {word}{_suggest(word)}")
    _check_flags(ins)
    _CHECKS.get(ins.keyword, _no_check)(ins)


def _suggest(word: str) -> str:
    best, distance = "", 3
    for keyword in sorted(KEYWORDS):
        d = _distance(word.upper(), keyword)
        if d < distance:
            best, distance = keyword, d
    return f" (did you mean {best.lower()}?)" if best else ""


def _distance(a: str, b: str) -> int:
    if abs(len(a) - len(b)) > 2:
        return 3
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _check_flags(ins: Instruction) -> None:
    allowed = FLAGS.get(ins.keyword, {})
    used: set[str] = set()
    for flag in ins.flags:
        if not flag.startswith("--"):
            raise _Fail(f"arg should start with -- : {flag}")
        name, eq, value = flag[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise _Fail(f"unknown flag: {name}")
        if name in used and kind != "strings":
            raise _Fail(f"duplicate flag specified: {name}")
        used.add(name)
        if kind == "bool":
            if eq and value == "":
                raise _Fail(f"missing a value on flag: {name}")
            if value.lower() not in ("", "true", "false"):
                raise _Fail(f"expecting boolean value for flag {name}, not: {value}")
        elif not eq:
            raise _Fail(f"missing a value on flag: {name}")


def _no_check(ins: Instruction) -> None:
    return None


def _at_least_one(ins: Instruction) -> None:
    if not ins.args:
        raise _Fail(f"{ins.keyword} requires at least one argument")


def _exactly_one(ins: Instruction) -> None:
    if len(ins.args) != 1:
        raise _Fail(f"{ins.keyword} requires exactly one argument")


def _check_from(ins: Instruction) -> None:
    args = ins.args
    if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
        raise _Fail("FROM requires either one or three arguments")
    if len(args) == 3 and not _STAGE_NAME.fullmatch(args[2].lower()):
        raise _Fail(f"invalid name for build stage: {_go_quote(args[2])}, name can't start "
                    "with a number or contain symbols")


def _check_pairs(ins: Instruction) -> None:
    _at_least_one(ins)
    if any(key == "" for key in ins.args[::2]):
        raise _Fail(f"{ins.keyword} names can not be blank")


def _check_arg(ins: Instruction) -> None:
    _at_least_one(ins)
    if any(arg.startswith("=") for arg in ins.args):
        raise _Fail("ARG names can not be blank")


def _check_copy(ins: Instruction) -> None:
    if len(ins.args) < 2:
        raise _Fail(f"{ins.keyword} requires at least two arguments, but only one was "
                    "provided. Destination could not be determined.")


def _check_volume(ins: Instruction) -> None:
    _at_least_one(ins)
    if any(v.strip(_SPACE) == "" for v in ins.args):
        raise _Fail("VOLUME specified can not be an empty string")


def _check_shell(ins: Instruction) -> None:
    _at_least_one(ins)
    if not ins.json_form:
        raise _Fail("SHELL requires the arguments to be in JSON form")


def _check_healthcheck(ins: Instruction) -> None:
    _at_least_one(ins)
    kind = ins.args[0].upper()
    if kind == "NONE":
        if len(ins.args) > 1:
            raise _Fail("HEALTHCHECK NONE takes no arguments")
    elif kind == "CMD":
        if len(ins.args) < 2:
            raise _Fail("Missing command after HEALTHCHECK CMD")
    else:
        raise _Fail(f"Unknown type {_go_quote(kind)} in HEALTHCHECK (try CMD)")


def _check_onbuild(ins: Instruction) -> None:
    if ins.trigger is None:
        raise _Fail("ONBUILD requires at least one argument")
    kind = ins.trigger.keyword
    if kind == "ONBUILD":
        raise _Fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if kind in ("MAINTAINER", "FROM"):
        raise _Fail(f"{kind} isn't allowed as an ONBUILD trigger")
    _check_one(ins.trigger)


_CHECKS: dict[str, Callable[[Instruction], None]] = {
    "FROM": _check_from, "ENV": _check_pairs, "LABEL": _check_pairs, "ARG": _check_arg,
    "ADD": _check_copy, "COPY": _check_copy, "VOLUME": _check_volume, "SHELL": _check_shell,
    "HEALTHCHECK": _check_healthcheck, "ONBUILD": _check_onbuild, "EXPOSE": _at_least_one,
    "MAINTAINER": _exactly_one, "USER": _exactly_one, "WORKDIR": _exactly_one,
    "STOPSIGNAL": _exactly_one,
}


# --------------------------------------------------------------------------------- dump


def dump(instruction: Instruction) -> str:
    """BuildKit's ``Node.Dump`` notation of one instruction, in its parentheses:
    ``(copy ["--from=build"] "a" "/b")``."""
    return f"({_dump_body(instruction)})"


def _dump_body(ins: Instruction) -> str:
    out = ins.keyword.lower()
    if ins.flags:
        out += " [" + " ".join(_go_quote(f) for f in ins.flags) + "]"
    if ins.keyword == "ONBUILD":
        if ins.trigger is not None:
            out += f" ({_dump_body(ins.trigger)})"
        return out.strip()
    values: list[str] = list(ins.args)
    if ins.keyword in ("ENV", "LABEL"):
        sep = "" if ins.legacy_form else "="
        values = [v for i in range(0, len(ins.args), 2) for v in (*ins.args[i:i + 2], sep)]
    for value in values:
        out += " " + _go_quote(value)
    return out.strip()


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(s: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
