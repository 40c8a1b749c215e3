"""The functions Docker's CLI adds to every --format template (its ``templates`` package)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from forklift.gotemplate.builtins import CallError, Func
from forklift.gotemplate.gofmt import json_float
from forklift.gotemplate.values import NO_VALUE, GoMap, NilMap, NilSlice


def to_json(value: Any, maps: bool = False) -> str:
    """Go's json.Encoder without HTML escaping: struct dicts keep their order, maps (every
    dict when ``maps``) sort their keys."""
    if value is None or value is NO_VALUE or isinstance(value, (NilMap, NilSlice)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028") \
            .replace("\u2029", "\\u2029")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v, maps) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value) if maps or isinstance(value, GoMap) else list(value)
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(value[k], maps)}" for k in keys) + "}"
    return json.dumps(str(value))


def _separator(ch: str) -> bool:
    """strings.Title's word boundary."""
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _rune(mapped: str, ch: str) -> str:
    """Go maps case rune by rune: where Unicode's mapping is longer, a letter followed by
    combining marks gives the letter (İ → i), anything else leaves the rune (ß stays)."""
    if len(mapped) == 1:
        return mapped
    return mapped[0] if all(unicodedata.combining(c) for c in mapped[1:]) else ch


def title(text: str) -> str:
    out, prev = [], " "
    for ch in text:
        out.append(_rune(ch.title(), ch) if _separator(prev) else ch)
        prev = ch
    return "".join(out)


def upper(text: str) -> str:
    return "".join(_rune(ch.upper(), ch) for ch in text)


def lower(text: str) -> str:
    return "".join(_rune(ch.lower(), ch) for ch in text)


def _split(text: str, sep: str) -> list[str]:
    if sep == "":
        return list(text)
    return text.split(sep)


def _pad(text: str, prefix: int, suffix: int) -> str:
    if text == "":
        return text
    if prefix < 0 or suffix < 0:
        raise CallError("strings: negative Repeat count")
    return " " * prefix + text + " " * suffix


def _truncate(text: str, length: int) -> str:
    data = text.encode()
    if len(data) < length:
        return text
    if length < 0:
        raise CallError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode(errors="replace")


DOCKER_FUNCS: dict[str, Func] = {
    "json": Func(to_json, ("any",)),
    "split": Func(_split, ("string", "string")),
    "join": Func(lambda items, sep: sep.join(items or []), ("strings", "string")),
    "title": Func(title, ("string",)),
    "lower": Func(lower, ("string",)),
    "upper": Func(upper, ("string",)),
    "pad": Func(_pad, ("string", "int", "int")),
    "truncate": Func(_truncate, ("string", "int")),
}


def _same(value: Any, *_: Any) -> Any:
    return value


# Docker prints a table's header by running the row template over the column names with
# these in place of its functions: each gives its first argument back (``pad`` is kept,
# so that a padded column's header lines up).
HEADER_FUNCS: dict[str, Func] = {
    "json": Func(_same, ("any",)),
    "split": Func(_same, ("string", "string")),
    "join": Func(_same, ("string", "string")),
    "title": Func(_same, ("string",)),
    "lower": Func(_same, ("string",)),
    "upper": Func(_same, ("string",)),
    "truncate": Func(_same, ("string", "int")),
}
