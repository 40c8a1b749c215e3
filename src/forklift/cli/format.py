"""Presentation helpers: Docker's sizes, durations, tables and --format templates."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from forklift.errors import InvalidArgument


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

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def go_value(value: Any) -> str:
    """Print a value the way Go's text/template does by default."""
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
    value = data
    for part in path.lstrip(".").split("."):
        if isinstance(value, Mapping):
            if part not in value:
                raise InvalidArgument(f"template: can't evaluate field {part}")
            value = value[part]
        else:
            raise InvalidArgument(f"template: can't evaluate field {part} in type {type(value).__name__}")
    return value


_FUNCS: dict[str, Callable[[Any], str]] = {
    "json": lambda v: json.dumps(v, separators=(",", ":")),
    "upper": lambda v: go_value(v).upper(),
    "lower": lambda v: go_value(v).lower(),
    "title": lambda v: go_value(v).title(),
    "println": lambda v: go_value(v) + "\n",
}


def _evaluate(expr: str, data: Any) -> str:
    words = expr.split()
    if not words:
        return ""
    if len(words) == 1 and words[0].startswith("."):
        return go_value(_lookup(data, words[0]))
    if len(words) == 2 and words[0] in _FUNCS and words[1].startswith("."):
        return _FUNCS[words[0]](_lookup(data, words[1]))
    raise InvalidArgument(f"template: unsupported action {{{{{expr}}}}}")


def render(template: str, data: Any) -> str:
    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return _ACTION.sub(lambda m: _evaluate(m.group(1), data), text)


def render_rows(template: str, rows: Sequence[Mapping[str, Any]],
                headers: Mapping[str, str]) -> str:
    """``--format``: ``table ...`` gets a header line and aligned columns."""
    if template == "json":
        return "\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    if template.startswith("table"):
        body = template[len("table"):].strip() or None
        if body is None:
            raise InvalidArgument("template: 'table' needs a format, e.g. 'table {{.ID}}'")
        header = _ACTION.sub(lambda m: headers.get(m.group(1).lstrip("."), m.group(1).lstrip(".").upper()), body)
        header = header.replace("\\t", "\t")
        lines = [render(body, r) for r in rows]
        split = [line.split("\t") for line in [header, *lines]]
        if all(len(s) == len(split[0]) for s in split) and len(split[0]) > 1:
            return table(split[0], split[1:])
        return "\n".join([header, *lines])
    return "\n".join(render(template, r) for r in rows)
