"""The functions Docker's CLI adds to every --format template (its ``templates`` package)."""

from __future__ import annotations

import json
from typing import Any

from forklift.gotemplate.builtins import Func
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


def title(text: str) -> str:
    out, prev = [], " "
    for ch in text:
        out.append(ch.title() if _separator(prev) else ch)
        prev = ch
    return "".join(out)


def _split(text: str, sep: str) -> list[str]:
    if sep == "":
        return list(text)
    return text.split(sep)


def _pad(text: str, prefix: int, suffix: int) -> str:
    if text == "":
        return text
    return " " * max(prefix, 0) + text + " " * max(suffix, 0)


def _truncate(text: str, length: int) -> str:
    data = text.encode()
    if len(data) < length:
        return text
    return data[:length].decode(errors="replace")


DOCKER_FUNCS: dict[str, Func] = {
    "json": Func(to_json, ("any",)),
    "split": Func(_split, ("string", "string")),
    "join": Func(lambda items, sep: sep.join(items or []), ("strings", "string")),
    "title": Func(title, ("string",)),
    "lower": Func(str.lower, ("string",)),
    "upper": Func(str.upper, ("string",)),
    "pad": Func(_pad, ("string", "int", "int")),
    "truncate": Func(_truncate, ("string", "int")),
}
