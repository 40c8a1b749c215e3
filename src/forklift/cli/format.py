"""Presentation helpers: Docker's sizes, durations, tables and --format templates."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forklift.errors import InvalidArgument

if TYPE_CHECKING:
    from forklift.engine.containers import Status


def human_size(size: float, precision: int = 3) -> str:
    """Docker's units.HumanSizeWithPrecision: decimal units (``1.24MB``); listings use 3
    significant digits, ``system df`` and prune 4."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    size = float(size)
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{_go_g(size, precision)}{units[i]}"


def _go_g(value: float, precision: int) -> str:
    text = f"{value:.{precision}g}"
    if "e" in text:
        text = f"{value:.0f}"
    return text


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(timestamp: float) -> str:
    if not timestamp:
        return "N/A"
    return human_duration(max(0.0, time.time() - timestamp)) + " ago"


def stamp(timestamp: float) -> str:
    """A point in time as Docker's ``CreatedAt`` prints it (Go's time.String, in UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(timestamp)) if timestamp else ""


def rfc3339(timestamp: float) -> str:
    """A point in time as ``history``'s ``CreatedAt`` prints it (RFC 3339, in UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)) if timestamp else ""


def status_text(status: Status) -> str:
    """``ps``'s STATUS: "Up 5 minutes", "Up (Paused)", "Created", "Exited (0) 2 hours ago"."""
    if status.state == "running":
        return "Up " + human_duration(max(0.0, time.time() - status.started))
    if status.state == "paused":
        return "Up (Paused)"
    if status.state == "created":
        return "Created"
    when = ago(status.finished) if status.finished else ""
    return f"Exited ({status.exit_code}) {when}".rstrip()


def short_id(ident: str, no_trunc: bool = False) -> str:
    """An ID as listings show it: 12 hex digits without the ``sha256:`` prefix, unless
    ``--no-trunc``; placeholders such as ``<missing>`` as they are."""
    if no_trunc or ident.startswith("<"):
        return ident
    return ident.split(":", 1)[-1][:12]


def ellipsis(text: str, width: int) -> str:
    """Docker's stringutils.Ellipsis: cut to ``width`` runes, ending with ``…``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], padding: int = 3) -> str:
    """Columns as Docker's tabwriter aligns them (min 3 spaces between)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        cells = [cell.ljust(widths[i] + padding) if i < len(row) - 1 else cell
                 for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- templates
#
# A subset of Go's text/template, as Docker's --format uses it: text, ``{{.Path}}``,
# ``{{func .Path}}``, ``{{.Path | func}}``, comments and trim markers. A later engine
# replaces this; until then malformed templates are refused as Go refuses them
# (``TemplateError``) and anything valid but beyond the subset is refused as unsupported.

class _NoValue:
    """Go's invalid reflect.Value: a missing map key or a field of a nil map."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_FUNCS: dict[str, Callable[[Any], str]] = {
    "json": lambda v: "null" if v is NO_VALUE else json.dumps(v, separators=(",", ":")),
    "upper": lambda v: go_value(v).upper(),
    "lower": lambda v: go_value(v).lower(),
    "title": lambda v: go_value(v).title(),
    "println": lambda v: go_value(v) + "\n",
}
# Defined in Go templates or by Docker, but beyond this subset.
_KNOWN = {"and", "or", "not", "len", "index", "print", "printf", "slice", "eq", "ne", "lt",
          "le", "gt", "ge", "html", "js", "urlquery", "call", "split", "join", "pad",
          "truncate", "if", "else", "end", "range", "with", "define", "template", "block",
          "break", "continue", "nil", "true", "false"}
# Fields Docker's types declare as maps: a missing key is "<no value>", not an error.
_MAP_FIELDS = {"Labels", "Options", "DriverOpts", "ExposedPorts", "Volumes", "Ports",
               "Networks", "Data", "PortBindings", "Tmpfs", "Sysctls", "StorageOpt"}


_BLANKS = " \t\r\n"


class TemplateError(InvalidArgument):
    """A template Go's parser would refuse (Docker: exit 64 from inspect, 1 elsewhere)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"template parsing error: {detail}")
        self.detail = detail




def go_value(value: Any) -> str:
    """Print a value the way Go's text/template does by default."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _lookup(data: Any, path: str) -> Any:
    if path in (".", ""):
        return data
    value, parent = data, ""
    for part in path.lstrip(".").split("."):
        if value is NO_VALUE or (value is None and parent in _MAP_FIELDS):
            value = NO_VALUE  # Go: a field of an invalid value is invalid, a nil map has no keys
        elif isinstance(value, Mapping):
            if part in value:
                value = value[part]
            elif parent in _MAP_FIELDS:
                value = NO_VALUE
            else:
                raise InvalidArgument(
                    f'template: executing "" at <{path}>: map has no entry for key "{part}"')
        elif value is None:
            raise InvalidArgument(
                f'template: executing "" at <{path}>: nil pointer evaluating interface {{}}.{part}')
        else:
            raise InvalidArgument(f'template: executing "" at <{path}>: can\'t evaluate field'
                                  f" {part} in type {type(value).__name__}")
        parent = part
    return value


class _Lexer:
    """Splits a template into text and actions the way Go's lexer does, refusing what it refuses."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces: list[tuple[str, str, int]] = []  # ("text"|"action", content, offset)

    def line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def fail(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"template: :{self.line(pos)}: {message}")

    def run(self) -> list[tuple[str, str, int]]:
        text, pos, trim_next = self.text, 0, False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if start >= 0 and text[start + 2: start + 3] == "-" and \
                    text[start + 3: start + 4] in _BLANKS:
                chunk = chunk.rstrip(_BLANKS)
            if trim_next:
                chunk = chunk.lstrip(_BLANKS)
            if chunk:
                self.pieces.append(("text", chunk, pos))
            if start < 0:
                return self.pieces
            pos, trim_next = self._action(start)

    def _action(self, start: int) -> tuple[int, bool]:
        """Scan the action opened at ``start``; return where the text resumes and whether
        its leading blanks are trimmed."""
        text, i = self.text, start + 2
        if text[i: i + 1] == "-" and text[i + 1: i + 2] in _BLANKS:
            i += 2
        if text.startswith("/*", i):
            return self._comment(start, i)
        body_start = i
        while i < len(text):
            c = text[i]
            if text.startswith("}}", i):
                self.pieces.append(("action", text[body_start:i].strip(), start))
                return i + 2, False
            if c in _BLANKS and self._trim_close(i):
                self.pieces.append(("action", text[body_start:i].strip(), start))
                return text.index("-}}", i) + 3, True
            if c in "\"`'":
                i = self._quoted(i, c)
                continue
            if c == "}":
                raise self.fail(i, "bad character U+007D '}'")
            i += 1
        started, where = self.line(start), self.line(len(text))
        extra = f" started at :{started}" if started != where else ""
        raise TemplateError(f"template: :{where}: unclosed action{extra}")

    def _trim_close(self, i: int) -> bool:
        """`` -}}`` at ``i`` (a space, a dash, the closing delimiter)."""
        j = i
        while j < len(self.text) and self.text[j] in _BLANKS:
            j += 1
        return j > i and self.text.startswith("-}}", j)

    def _quoted(self, i: int, quote: str) -> int:
        text, j = self.text, i + 1
        while j < len(text):
            c = text[j]
            if c == "\\" and quote != "`":
                j += 2
                continue
            if c == "\n" and quote != "`":
                break
            if c == quote:
                return j + 1
            j += 1
        kind = {"`": "unterminated raw quoted string", "'": "unterminated character constant"}
        raise self.fail(i, kind.get(quote, "unterminated quoted string"))

    def _comment(self, start: int, i: int) -> tuple[int, bool]:
        text = self.text
        end = text.find("*/", i + 2)
        if end < 0:
            raise self.fail(start, "unclosed comment")
        j = end + 2
        if text.startswith("}}", j):
            return j + 2, False
        if text.startswith(" -}}", j):
            return j + 4, True
        raise self.fail(start, "comment ends before closing delimiter")


class Template:
    """A parsed template: ``execute(data)`` renders it."""

    def __init__(self, text: str) -> None:
        self.steps: list[tuple[str, Any]] = []
        for kind, content, offset in _Lexer(text).run():
            if kind == "text":
                self.steps.append(("text", content))
            else:
                self.steps.append(("action", self._compile(content, text, offset)))

    @staticmethod
    def _compile(body: str, text: str, offset: int) -> tuple[str, list[str]]:
        line = text.count("\n", 0, offset) + 1
        commands = [c.split() for c in body.split("|")]
        if not all(commands):
            raise TemplateError(f"template: :{line}: missing value for command")
        for words in commands:
            name = words[0]
            if name[0].isalpha() and name not in _FUNCS:
                if name in _KNOWN:
                    raise InvalidArgument(f"template: unsupported action {{{{{body}}}}}")
                raise TemplateError(f'template: :{line}: function "{name}" not defined')
        first, funcs = commands[0], [words[0] for words in commands[1:]]
        if len(first) == 1 and first[0].startswith("."):
            path = first[0]
        elif len(first) == 2 and first[0] in _FUNCS and first[1].startswith("."):
            path, funcs = first[1], [first[0], *funcs]
        else:
            raise InvalidArgument(f"template: unsupported action {{{{{body}}}}}")
        if any(len(words) != 1 for words in commands[1:]):
            raise InvalidArgument(f"template: unsupported action {{{{{body}}}}}")
        return path, funcs

    def execute(self, data: Any) -> str:
        out = []
        for kind, step in self.steps:
            if kind == "text":
                out.append(step)
                continue
            path, funcs = step
            value = _lookup(data, path)
            if not funcs:
                last = path.rsplit(".", 1)[-1]
                out.append("map[]" if value is None and last in _MAP_FIELDS else go_value(value))
                continue
            for name in funcs:
                value = _FUNCS[name](value)
            out.append(value)
        return "".join(out)


def parse(template: str) -> Template:
    """Parse ``template`` (``\\t`` and ``\\n`` are tab and newline, as in Docker's tables)."""
    return Template(template.replace("\\t", "\t").replace("\\n", "\n"))


def render(template: str, data: Any) -> str:
    return parse(template).execute(data)


def render_rows(template: str, rows: Sequence[Mapping[str, Any]],
                headers: Mapping[str, str], parse_error: str = "template parsing error") -> str:
    """``--format``: ``table ...`` gets a header line and aligned columns.

    The template is parsed before any row is rendered; ``parse_error`` is how the
    command words a parse failure (``ps`` says "failed to parse template")."""
    if template == "json":
        return "\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    body = template
    if template.startswith("table"):
        body = template[len("table"):].strip()
        if not body:
            raise InvalidArgument("template: 'table' needs a format, e.g. 'table {{.ID}}'")
    try:
        parsed = parse(body)
    except TemplateError as exc:
        exc.message = f"{parse_error}: {exc.detail}"
        raise
    if body is template:
        return "\n".join(parsed.execute(r) for r in rows)
    header = _ACTION.sub(lambda m: headers.get(m.group(1).lstrip("."), m.group(1).lstrip(".").upper()), body)
    header = header.replace("\\t", "\t")
    lines = [parsed.execute(r) for r in rows]
    split = [line.split("\t") for line in [header, *lines]]
    if all(len(s) == len(split[0]) for s in split) and len(split[0]) > 1:
        return table(split[0], split[1:])
    return "\n".join([header, *lines])
