"""Go's text/template language (as Go 1.24 has it) with Docker's --format functions.

``parse(text)`` gives a ``Template`` or raises ``ParseError``; ``Template.execute(data)``
renders JSON-like data or raises ``ExecError``. Both messages are Go's, one line.
Imports only the standard library and ``forklift.errors``; the CLI imports this package
only when a template is rendered."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from forklift.gotemplate.builtins import BUILTINS, Func
from forklift.gotemplate.dockerfuncs import DOCKER_FUNCS, HEADER_FUNCS
from forklift.gotemplate.errors import ExecError, ParseError
from forklift.gotemplate.execute import Executor
from forklift.gotemplate.parser import Parser
from forklift.gotemplate.values import NO_VALUE, GoMap, NilMap, Struct

FUNCS: dict[str, Func] = {**BUILTINS, **DOCKER_FUNCS}
HEADERS: dict[str, Func] = {**FUNCS, **HEADER_FUNCS}

__all__ = ["ExecError", "FUNCS", "Func", "HEADERS", "GoMap", "NO_VALUE", "NilMap", "ParseError",
           "Struct", "Template", "parse"]


class Template:
    def __init__(self, text: str, funcs: dict[str, Func] | None = None, name: str = "") -> None:
        self.text, self.name = text, name
        self.funcs = FUNCS if funcs is None else funcs
        try:
            self.trees = Parser(text, self.funcs, name).parse()
        except RecursionError:   # Go's goroutine stack grows; Python's does not
            raise ParseError(f"template: {name}: nested more deeply than forklift supports"
                             " (Python's stack: about 150 levels)") from None

    def execute(self, data: Any, map_fields: Collection[str] | None = None,
                slice_fields: Collection[str] = (),
                omitted: Mapping[str, Any] | None = None) -> str:
        """Render ``data``. With ``map_fields``, dicts are Go structs (a missing field is an
        error, as in Docker's inspect) except the values of fields named in it, which are
        maps (a missing key is ``<no value>``, a None one a nil map, an empty dict in one
        ``struct{}{}``); without it every dict is a Go map. A None in a field named in
        ``slice_fields`` is a nil slice (prints ``[]``). ``omitted``: struct fields the data
        leave out when empty (Go's omitempty) and their zero values, which a field at the
        end of a chain gives instead of an error; inside a chain (``.State.Health.Status``)
        one is still an error, as Docker's fallback to the JSON gives."""
        try:
            executor = Executor(self.text, self.trees, self.funcs, map_fields, slice_fields,
                                self.name)
            executor.omitted = omitted or {}
            return executor.run(data)
        except RecursionError:
            raise ExecError(f"template: {self.name}: nested more deeply than forklift supports"
                            " (Python's stack: about 150 levels)") from None


def parse(text: str, funcs: dict[str, Func] | None = None) -> Template:
    return Template(text, funcs)
