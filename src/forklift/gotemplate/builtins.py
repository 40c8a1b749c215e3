"""Go's predefined template functions, with Go's argument kinds and error texts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import forklift.gotemplate.gofmt as gofmt
from forklift.gotemplate.values import NO_VALUE, is_int, truth, type_name


class CallError(Exception):
    """A function's error: execution stops with ``error calling NAME: <this>``."""


@dataclass(frozen=True)
class Func:
    """A template function. Argument kinds: ``value`` (Go's reflect.Value: anything, no
    value included), ``any`` (interface{}: no value becomes nil), ``string``, ``int``,
    ``strings`` ([]string). ``variadic`` is the kind of the ``...`` tail, if any."""

    impl: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


def _nil(value: Any) -> bool:
    return value is None or value is NO_VALUE


def _length(item: Any) -> int:
    if item is None:
        raise CallError("len of nil pointer")
    if item is NO_VALUE:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise CallError(f"len of type {type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if _nil(index):
        raise CallError("cannot index slice/array with nil")
    if not is_int(index):
        raise CallError(f"cannot index slice/array with type {type_name(index)}")
    if index < 0 or index > cap:
        raise CallError(f"index out of range: {index}")
    return int(index)


def _index(item: Any, *indexes: Any) -> Any:
    if _nil(item):
        raise CallError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise CallError("index of nil pointer")
        if isinstance(item, (str, list, tuple)):
            data = item.encode() if isinstance(item, str) else item
            x = _index_arg(index, len(data))
            if x == len(data):
                kind = "string" if isinstance(item, str) else "slice"
                raise CallError(f"reflect: {kind} index out of range")
            item = data[x]
        elif isinstance(item, dict):
            if _nil(index):
                raise CallError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise CallError(f"value has type {type_name(index)}; should be string")
            item = item.get(index, NO_VALUE)
        else:
            raise CallError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if _nil(item):
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        data: Any = item.encode()
    elif isinstance(item, (list, tuple)):
        data = list(item)
    else:
        raise CallError(f"can't slice item of type {type_name(item)}")
    idx = [0, len(data), len(data)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(data))
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = data[idx[0]: idx[1]]
    return part.decode(errors="replace") if isinstance(item, str) else part


_KINDS = {bool: "bool", int: "int", float: "float", str: "string"}


def _kind(value: Any) -> str | None:
    return None if _nil(value) else _KINDS.get(type(value), "other")


def _eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise CallError("missing argument for comparison")
    k1 = _kind(arg1)
    for arg in args:
        k2 = _kind(arg)
        if k1 != k2:
            if k1 is not None and k2 is not None:
                raise CallError("incompatible types for comparison")
            continue
        if k1 is None:
            return True
        if k1 == "other":
            raise CallError(f"non-comparable type {gofmt.value(arg)}: {type_name(arg)}")
        if arg1 == arg:
            return True
    return False


def _lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _kind(arg1), _kind(arg2)
    if k1 in (None, "other") or k2 in (None, "other"):
        raise CallError("invalid type for comparison")
    if k1 != k2:
        raise CallError("incompatible types for comparison")
    if k1 == "bool":
        raise CallError("invalid type for comparison")
    return bool(arg1 < arg2)


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(list(args))


_HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}
_URL_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")


def _html(*args: Any) -> str:
    return "".join(_HTML.get(c, c) for c in _eval_args(args))


def _js_char(ch: str) -> str:
    if ch in _JS:
        return _JS[ch]
    if ch < " ":
        return f"\\u00{ord(ch):02X}"
    if not ch.isascii() and not ch.isprintable():
        return f"\\u{ord(ch):04X}"
    return ch


def _js(*args: Any) -> str:
    return "".join(_js_char(c) for c in _eval_args(args))


def _urlquery(*args: Any) -> str:
    out = []
    for byte in _eval_args(args).encode():
        ch = chr(byte)
        out.append("+" if ch == " " else ch if ch in _URL_SAFE else f"%{byte:02X}")
    return "".join(out)


def _printf(template: str, *args: Any) -> str:
    return gofmt.sprintf(template, list(args))


def _call(name: str, fn: Any, *args: Any) -> Any:
    if _nil(fn):
        raise CallError("call of nil")
    raise CallError(f"non-function {name} of type {type_name(fn)}")


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: a[-1], ("value",), "value"),      # evaluated by the executor
    "or": Func(lambda *a: a[-1], ("value",), "value"),
    "not": Func(lambda v: not truth(v), ("value",)),
    "len": Func(_length, ("value",)),
    "index": Func(_index, ("value",), "value"),
    "slice": Func(_slice, ("value",), "value"),
    "print": Func(lambda *a: gofmt.sprint(list(a)), (), "any"),
    "printf": Func(_printf, ("string",), "any"),
    "println": Func(lambda *a: gofmt.sprintln(list(a)), (), "any"),
    "eq": Func(_eq, ("value",), "value"),
    "ne": Func(lambda a, b: not _eq(a, b), ("value", "value")),
    "lt": Func(_lt, ("value", "value")),
    "le": Func(_le, ("value", "value")),
    "gt": Func(lambda a, b: not _le(a, b), ("value", "value")),
    "ge": Func(lambda a, b: not _lt(a, b), ("value", "value")),
    "call": Func(_call, ("value",), "value"),
    "html": Func(_html, (), "any"),
    "js": Func(_js, (), "any"),
    "urlquery": Func(_urlquery, (), "any"),
}
