"""The parse tree of a template; ``str(node)`` is how Go names a node in an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Node:
    pos: int


@dataclass(eq=False)
class Text(Node):
    text: str


@dataclass(eq=False)
class Field(Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass(eq=False)
class Variable(Node):
    idents: list[str]   # ["$x", "Field", ...]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(eq=False)
class Chain(Node):
    node: Node
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass(eq=False)
class Identifier(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(eq=False)
class Dot(Node):
    def __str__(self) -> str:
        return "."


@dataclass(eq=False)
class Nil(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(eq=False)
class Bool(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(eq=False)
class String(Node):
    quoted: str
    value: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(eq=False)
class Number(Node):
    text: str
    value: Any          # int or float as Go's idealConstant makes it
    is_int: bool        # usable where Go wants an integer

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class Command(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass(eq=False)
class Pipe(Node):
    decl: list[Variable] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(str(c) for c in self.cmds)


@dataclass(eq=False)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(eq=False)
class Action(Node):
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(eq=False)
class Branch(Node):
    """if, with and range: a pipeline, its body and an optional else."""

    keyword: str
    pipe: Pipe
    body: ListNode
    orelse: ListNode | None

    def __str__(self) -> str:
        text = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.body)
        if self.orelse is not None:
            text += "{{else}}" + str(self.orelse)
        return text + "{{end}}"


@dataclass(eq=False)
class TemplateCall(Node):
    name: str
    pipe: Pipe | None

    def __str__(self) -> str:
        quoted = '"' + self.name + '"'
        return "{{template " + quoted + (" " + str(self.pipe) if self.pipe else "") + "}}"


@dataclass(eq=False)
class Loop(Node):
    """``{{break}}`` or ``{{continue}}``."""

    keyword: str

    def __str__(self) -> str:
        return "{{" + self.keyword + "}}"


@dataclass(eq=False)
class Marker(Node):
    """``{{end}}`` or ``{{else}}`` while parsing; never in a finished tree."""

    keyword: str

    def __str__(self) -> str:
        return "{{else}}" if self.keyword.startswith("else") else "{{" + self.keyword + "}}"
