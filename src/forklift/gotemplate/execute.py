"""Executing a parsed template over JSON-like data, with Go's semantics and messages."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import forklift.gotemplate.gofmt as gofmt
import forklift.gotemplate.nodes as n
from forklift.gotemplate.builtins import CallError, Func
from forklift.gotemplate.dockerfuncs import to_json
from forklift.gotemplate.errors import ExecError
from forklift.gotemplate.lexer import go_quote
from forklift.gotemplate.values import (
    NO_VALUE,
    EmptyStruct,
    GoMap,
    NilMap,
    NilSlice,
    is_int,
    truth,
    type_name,
)

MAX_DEPTH = 100        # Go allows 100000 nested {{template}} calls; Python's stack does not
_MISSING: Any = object()
_GO_KIND = {"value": "reflect.Value", "string": "string", "int": "int", "strings": "[]string"}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    omitted: Mapping[str, Any] = {}   # see Template.execute

    def __init__(self, text: str, trees: dict[str, n.ListNode], funcs: dict[str, Func],
                 map_fields: Collection[str] | None, slice_fields: Collection[str] = (),
                 name: str = "", depth: int = 0) -> None:
        self.text, self.trees, self.funcs = text, trees, funcs
        self.map_fields, self.slice_fields = map_fields, slice_fields
        self.name, self.depth = name, depth
        self.vars: list[list[Any]] = []
        self.out: list[str] = []
        self.node: n.Node | None = None

    def run(self, data: Any) -> str:
        self.vars = [["$", data]]
        self.walk(data, self.trees[self.name])
        return "".join(self.out)

    # --------------------------------------------------------------- errors
    def fail(self, message: str) -> ExecError:
        if self.node is None:
            return ExecError(f"template: {self.name}: {message}")
        before = self.text[: self.node.pos]
        line = before.count("\n") + 1
        col = len(before[before.rfind("\n") + 1:].encode())
        return ExecError(f"template: :{line}:{col}: executing {go_quote(self.name)}"
                         f" at <{self.node}>: {message}")

    # --------------------------------------------------------------- statements
    def walk(self, dot: Any, node: n.Node) -> None:
        self.node = node
        if isinstance(node, n.Text):
            self.out.append(node.text)
        elif isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.Action):
            value = self.pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.node = node
                self.out.append(gofmt.value(value))
        elif isinstance(node, n.Branch):
            if node.keyword == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if(dot, node)
        elif isinstance(node, n.TemplateCall):
            self.walk_template(dot, node)
        elif isinstance(node, n.Loop):
            raise _Break() if node.keyword == "break" else _Continue()

    def walk_if(self, dot: Any, node: n.Branch) -> None:
        mark = len(self.vars)
        try:
            value = self.pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.keyword == "with" else dot, node.body)
            elif node.orelse is not None:
                self.walk(dot, node.orelse)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: n.Branch) -> None:
        self.node = node
        mark = len(self.vars)
        try:
            value = self.pipeline(dot, node.pipe)
            if not self._iterate(value, node):
                if node.orelse is not None:
                    self.walk(dot, node.orelse)
        except _Break:
            pass
        finally:
            del self.vars[mark:]

    def _iterate(self, value: Any, node: n.Branch) -> bool:
        """Run the body once per element; False when there was none."""
        decl = len(node.pipe.decl)
        if isinstance(value, dict):
            pairs: list[tuple[Any, Any]] = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif is_int(value):
            if decl > 1:
                raise self.fail(f"can't use {gofmt.value(value)} to iterate over more than"
                                " one variable")
            pairs = [(NO_VALUE, i) for i in range(value)]
        elif value is None or value is NO_VALUE:
            return False
        else:
            raise self.fail(f"range can't iterate over {gofmt.value(value)}")
        inner = len(self.vars)
        for index, elem in pairs:
            if decl:
                self.vars[inner - 1][1] = elem
            if decl > 1:
                self.vars[inner - 2][1] = index
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            finally:
                del self.vars[inner:]
        return bool(pairs)

    def walk_template(self, dot: Any, node: n.TemplateCall) -> None:
        self.node = node
        if node.name not in self.trees:
            raise self.fail(f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"exceeded maximum template depth ({MAX_DEPTH})")
        value = self.pipeline(dot, node.pipe) if node.pipe is not None else NO_VALUE
        inner = Executor(self.text, self.trees, self.funcs, self.map_fields,
                         self.slice_fields, node.name, self.depth + 1)
        inner.omitted = self.omitted
        inner.vars = [["$", value]]
        inner.out = self.out
        inner.walk(value, self.trees[node.name])

    # --------------------------------------------------------------- pipelines
    def pipeline(self, dot: Any, pipe: n.Pipe) -> Any:
        self.node = pipe
        value = _MISSING
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.vars.append([var.idents[0], value])
        return value

    def set_var(self, name: str, value: Any) -> None:
        for slot in reversed(self.vars):
            if slot[0] == name:
                slot[1] = value
                return
        raise self.fail(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for slot in reversed(self.vars):
            if slot[0] == name:
                return slot[1]
        raise self.fail(f"undefined variable: {name}")

    def command(self, dot: Any, cmd: n.Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.Field):
            return self.field_node(dot, first, cmd.args, final)
        if isinstance(first, n.Chain):
            return self.chain_node(dot, first, cmd.args, final)
        if isinstance(first, n.Identifier):
            return self.function(dot, first, cmd, cmd.args[1:], final)
        if isinstance(first, n.Pipe):
            self.not_a_function(cmd.args, final)
            return self.pipeline(dot, first)
        if isinstance(first, n.Variable):
            return self.variable_node(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, n.Nil):
            raise self.fail("nil is not a command")
        return self.literal(dot, first)

    def literal(self, dot: Any, node: n.Node) -> Any:
        if isinstance(node, n.Bool):
            return node.value
        if isinstance(node, n.Dot):
            return dot
        if isinstance(node, n.Number):
            return self.constant(node)
        if isinstance(node, n.String):
            return node.value
        raise self.fail(f"can't evaluate command {go_quote(str(node))}")

    def constant(self, node: n.Number) -> Any:
        self.node = node
        if isinstance(node.value, int) and not -(2 ** 63) <= node.value < 2 ** 63:
            raise self.fail(f"{node.text} overflows int")
        return node.value

    def not_a_function(self, args: list[n.Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.fail(f"can't give argument to non-function {args[0]}")

    # --------------------------------------------------------------- fields
    def field_node(self, dot: Any, node: n.Field, args: list[n.Node], final: Any) -> Any:
        self.node = node
        return self.field_chain(dot, node, node.idents, args, final, dot)

    def chain_node(self, dot: Any, node: n.Chain, args: list[n.Node] | None,
                   final: Any) -> Any:
        self.node = node
        if isinstance(node.node, n.Nil):
            raise self.fail(f"indirection through explicit nil in {node}")
        receiver = self.arg(dot, "any", node.node)
        return self.field_chain(receiver, node, node.fields, args, final, dot)

    def variable_node(self, dot: Any, node: n.Variable, args: list[n.Node] | None,
                      final: Any) -> Any:
        self.node = node
        value = self.var_value(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args or [node], final)
            return value
        return self.field_chain(value, node, node.idents[1:], args, final, dot)

    def field_chain(self, receiver: Any, node: n.Node, idents: list[str],
                    args: list[n.Node] | None, final: Any, dot: Any = None) -> Any:
        iface = False
        for ident in idents[:-1]:
            receiver = self.field(receiver, ident, False, iface, last=False)
            iface = True
        methods = getattr(receiver, "methods", None) if isinstance(receiver, dict) else None
        if methods and idents[-1] in methods:
            return self.method(dot, node, idents[-1], methods[idents[-1]],
                               (args or [node])[1:], final)
        has_args = bool(args and len(args) > 1) or final is not _MISSING
        return self.field(receiver, idents[-1], has_args, iface)

    def method(self, dot: Any, node: n.Node, name: str, func: Func, args: list[n.Node],
               final: Any) -> Any:
        """A method of a Struct with its arguments (fixed ones only, as Docker's are)."""
        count = len(args) + (final is not _MISSING)
        if count != len(func.params):
            self.node = node
            raise self.fail(f"wrong number of args for {name}: want {len(func.params)}"
                            f" got {count}")
        argv = [self.arg(dot, kind, a) for kind, a in zip(func.params[:len(args)], args, strict=True)]
        if final is not _MISSING:
            argv.append(self.validate(final, func.params[-1]))
        return func.impl(*argv)

    def field(self, receiver: Any, name: str, has_args: bool, iface: bool,
              last: bool = True) -> Any:
        if receiver is NO_VALUE:
            return NO_VALUE
        if receiver is None or isinstance(receiver, NilSlice):   # Docker's JSON fallback
            raise self.fail(f"nil pointer evaluating interface {{}}.{name}")
        if not isinstance(receiver, dict):
            raise self.fail(f"can't evaluate field {name} in type {type_name(receiver, iface)}")
        go_type = getattr(receiver, "go_type", "")
        if go_type and name not in receiver:
            raise self.fail(f"can't evaluate field {name} in type {go_type}")
        if has_args:
            raise self.fail(f"{name} is not a method but has arguments")
        if name in receiver:
            return self._typed(name, receiver[name])
        if self.map_fields is None or isinstance(receiver, GoMap):
            return NO_VALUE
        if last and name in self.omitted:
            return self._typed(name, self.omitted[name])
        raise self.fail(f"map has no entry for key {go_quote(name)}")

    def _typed(self, name: str, value: Any) -> Any:
        """A struct field Docker declares as a map becomes one (a nil one for None), one
        it declares as a slice a nil slice for None."""
        if value is None and name in self.slice_fields:
            return NilSlice()
        if self.map_fields is None or name not in self.map_fields:
            return value
        if value is None:
            return NilMap()
        if not isinstance(value, dict):
            return value
        return GoMap({k: EmptyStruct() if v == {} else v for k, v in value.items()})

    # --------------------------------------------------------------- calls
    def function(self, dot: Any, node: n.Identifier, cmd: n.Node, args: list[n.Node],
                 final: Any) -> Any:
        self.node = node
        func = self.funcs.get(node.name)
        if func is None:
            raise self.fail(f"{go_quote(node.name)} is not a defined function")
        name = node.name
        count = len(args) + (final is not _MISSING)
        fixed = len(func.params)
        if func.variadic is not None and count < fixed:
            raise self.fail(f"wrong number of args for {name}: want at least {fixed}"
                            f" got {len(args)}")
        if func.variadic is None and count != fixed:
            raise self.fail(f"wrong number of args for {name}: want {fixed} got {count}")
        if name in ("and", "or"):
            return self.and_or(dot, name == "or", args, final)
        argv = [self.arg(dot, func.params[i] if i < fixed else str(func.variadic), a)
                for i, a in enumerate(args)]
        if final is not _MISSING:
            last = func.variadic if func.variadic is not None else func.params[-1]
            argv.append(self.validate(final, last))
        if name == "call":
            argv.insert(0, str(args[0]) if args else gofmt.value(final))
        if func.impl is to_json and self.map_fields is None:
            argv.append(True)   # without struct fields every dict is a map: sorted keys
        try:
            return func.impl(*argv)
        except CallError as exc:
            self.node = cmd
            raise self.fail(f"error calling {name}: {exc}") from None

    def and_or(self, dot: Any, is_or: bool, args: list[n.Node], final: Any) -> Any:
        value: Any = NO_VALUE
        for arg in args:
            value = self.arg(dot, "value", arg)
            if truth(value) == is_or:
                return value
        if final is not _MISSING:
            value = final
        return value

    def arg(self, dot: Any, kind: str, node: n.Node) -> Any:
        self.node = node
        if isinstance(node, n.Dot):
            return self.validate(dot, kind)
        if isinstance(node, n.Nil):
            if kind in ("any", "strings"):
                return None
            if kind == "value":
                return NO_VALUE
            raise self.fail(f"cannot assign nil to {_GO_KIND[kind]}")
        if isinstance(node, n.Field):
            return self.validate(self.field_node(dot, node, [node], _MISSING), kind)
        if isinstance(node, n.Variable):
            return self.validate(self.variable_node(dot, node, None, _MISSING), kind)
        if isinstance(node, n.Pipe):
            return self.validate(self.pipeline(dot, node), kind)
        if isinstance(node, n.Identifier):
            return self.validate(self.function(dot, node, node, [], _MISSING), kind)
        if isinstance(node, n.Chain):
            return self.validate(self.chain_node(dot, node, None, _MISSING), kind)
        if kind == "string":
            if isinstance(node, n.String):
                return node.value
            raise self.fail(f"expected string; found {node}")
        if kind == "int":
            if isinstance(node, n.Number) and node.is_int:
                return int(self.constant(node))
            raise self.fail(f"expected integer; found {node}")
        if kind == "strings":
            raise self.fail(f"can't handle {node} for arg of type []string")
        return self.literal(dot, node)

    def validate(self, value: Any, kind: str) -> Any:
        if value is NO_VALUE:
            if kind == "value":
                return value
            if kind in ("any", "strings"):
                return None
            raise self.fail(f"invalid value; expected {_GO_KIND[kind]}")
        ok = {"string": lambda v: isinstance(v, str), "int": is_int,
              "strings": lambda v: v is None or isinstance(v, list) and
              all(isinstance(x, str) for x in v)}.get(kind)
        if ok is not None and not ok(value):
            raise self.fail(f"wrong type for value; expected {_GO_KIND[kind]};"
                            f" got {type_name(value)}")
        return value
