"""How JSON-like Python data stands for Go values.

A ``dict`` is a Go struct (a missing field is an error) unless it is a ``GoMap``: a
map, where a missing key is ``NO_VALUE``. ``NilMap`` is a nil map (prints ``map[]``,
``json`` gives ``null``), ``NilSlice`` a nil slice (``[]``, ``null``). ``None`` is a nil
interface, ``NO_VALUE`` Go's invalid
reflect.Value (a missing key), ints are Go ``int``, floats ``float64``, lists
``[]interface {}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


class GoMap(dict):  # type: ignore[type-arg]
    """A dict with Go map semantics: a missing key is no value, not an error."""


class NilMap(GoMap):
    """A nil map."""


class NilSlice(list):  # type: ignore[type-arg]
    """A nil slice: prints ``[]``, ``json`` gives ``null``."""


class Struct(dict):  # type: ignore[type-arg]
    """A struct with methods, as Docker's list rows are (``{{.Label "x"}}``): ``methods``
    maps a name to a ``Func`` (see ``builtins``); ``json`` prints the fields only; a
    missing field is Go's "can't evaluate field" error naming ``go_type``. (The executor
    calls the ``methods`` of any dict that has them.)"""

    methods: Mapping[str, Any] = {}
    go_type = ""    # the Go type a missing field's error names (``*formatter.imageContext``)

    def __init__(self, fields: Mapping[str, Any], methods: Mapping[str, Any] | None = None,
                 go_type: str = "") -> None:
        super().__init__(fields)
        if methods is not None:
            self.methods = methods
        self.go_type = go_type


class EmptyStruct(dict):  # type: ignore[type-arg]
    """Go's ``struct{}{}`` (the values of ExposedPorts and Volumes): prints ``{}``."""


def type_name(value: Any, iface: bool = False) -> str:
    """The Go type a value stands for, as Go's messages print it."""
    if iface or value is None:
        return "interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]string" if value and all(isinstance(v, str) for v in value) \
            else "[]interface {}"
    if isinstance(value, GoMap):
        return "map[string]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go's template truth: non-zero, non-empty, non-nil."""
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
