"""Go's text/template parser: items to a tree per template name, with Go's messages."""

from __future__ import annotations

import re
from collections.abc import Collection

import forklift.gotemplate.nodes as n
from forklift.gotemplate.errors import ParseError
from forklift.gotemplate.lexer import Item, Lexer, go_quote

_OPERAND_START = {"bool", "char", "dot", "field", "ident", "number", "nil", "raw", "string",
                  "variable", "lparen"}
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\\": "\\"}
_OCTAL_INT = re.compile(r"[+-]?0[0-7_]+")


class Parser:
    def __init__(self, text: str, funcs: Collection[str], name: str = "") -> None:
        self.text, self.funcs, self.name = text, funcs, name
        self.items = Lexer(text).run()
        self.i = 0
        self.seen = 0                  # the furthest item read: Go's token[0], for the line
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.trees: dict[str, n.ListNode] = {}

    # --------------------------------------------------------------- items
    def next(self) -> Item:
        item = self.items[self.i]
        self.seen = max(self.seen, self.i)
        self.i += 1
        return item

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Item:
        self.seen = max(self.seen, self.i)
        return self.items[self.i]

    def next_non_space(self) -> Item:
        item = self.next()
        while item.kind == "space":
            item = self.next()
        return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.backup()
        return item

    def fail(self, message: str) -> ParseError:
        line = self.items[self.seen].line
        return ParseError(f"template: {self.name}:{line}: {message}")

    def unexpected(self, item: Item, context: str) -> ParseError:
        if item.kind == "error":
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            return self.fail(f"{item}{extra}")
        return self.fail(f"unexpected {item} in {context}")

    def expect(self, kind: str, context: str) -> Item:
        item = self.next_non_space()
        if item.kind != kind:
            raise self.unexpected(item, context)
        return item

    # --------------------------------------------------------------- top level
    def parse(self) -> dict[str, n.ListNode]:
        root = n.ListNode(self.peek().pos)
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                self.next()
                if self._is_keyword(self.next_non_space(), "define"):
                    self._definition()
                    continue
                self.i = self._left_index()
            node = self.text_or_action()
            if isinstance(node, n.Marker):
                raise self.fail(f"unexpected {node}")
            root.nodes.append(node)
        self._add(self.name, root)
        return self.trees

    def _left_index(self) -> int:
        j = self.i - 1
        while self.items[j].kind != "left":
            j -= 1
        return j

    @staticmethod
    def _is_keyword(item: Item, word: str) -> bool:
        return item.kind == "keyword" and item.val == word

    def _add(self, name: str, tree: n.ListNode) -> None:
        old = self.trees.get(name)
        if old is not None and _non_empty(old) and _non_empty(tree):
            raise self.fail(f"template: multiple definition of template {_q(name)}")
        if old is None or not _non_empty(old):
            self.trees[name] = tree

    def _definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.kind not in ("string", "raw"):
            raise self.unexpected(token, context)
        name = self.unquote(token)
        self.expect("right", context)
        self._named_body(name, context)

    def _named_body(self, name: str, context: str) -> None:
        """The body of a ``define`` or ``block`` up to its ``end``, added as template
        ``name``; only ``$`` is in scope inside it, as in Go."""
        saved, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved
        if end.keyword != "end":
            raise self.fail(f"unexpected {end} in {context}")
        self._add(name, body)

    def item_list(self) -> tuple[n.ListNode, n.Marker]:
        body = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, n.Marker):
                return body, node
            body.nodes.append(node)
        raise self.fail("unexpected EOF")

    def text_or_action(self) -> n.Node:
        token = self.next_non_space()
        if token.kind == "text":
            return n.Text(token.pos, token.val)
        if token.kind == "left":
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    # --------------------------------------------------------------- actions
    def action(self) -> n.Node:
        token = self.next_non_space()
        if token.kind == "keyword":
            handler = {"block": self._block, "break": self._loop, "continue": self._loop,
                       "else": self._else, "end": self._end, "if": self._if,
                       "range": self._range, "template": self._template,
                       "with": self._with}.get(token.val)
            if handler is not None:
                return handler(token)
        self.backup()
        token = self.peek()
        return n.Action(token.pos, self.pipeline("command", "right"))

    def _loop(self, token: Item) -> n.Node:
        nxt = self.next_non_space()
        if nxt.kind != "right":
            raise self.unexpected(nxt, "{{" + token.val + "}}")
        if not self.range_depth:
            raise self.fail("{{" + token.val + "}} outside {{range}}")
        return n.Loop(token.pos, token.val)

    def _end(self, token: Item) -> n.Node:
        return n.Marker(self.expect("right", "end").pos, "end")

    def _else(self, token: Item) -> n.Node:
        peek = self.peek_non_space()
        if peek.kind == "keyword" and peek.val in ("if", "with"):
            return n.Marker(peek.pos, "else " + peek.val)   # "else if": the if follows
        return n.Marker(self.expect("right", "else").pos, "else")

    def _if(self, token: Item) -> n.Node:
        return self._control(token, "if", True)

    def _with(self, token: Item) -> n.Node:
        return self._control(token, "with", True)

    def _range(self, token: Item) -> n.Node:
        return self._control(token, "range", False)

    def _control(self, token: Item, keyword: str, chained: bool) -> n.Node:
        depth = len(self.vars)
        try:
            pipe = self.pipeline(keyword, "right")
            if keyword == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if keyword == "range":
                self.range_depth -= 1
            orelse = None
            if nxt.keyword == f"else {keyword}" and chained:
                self.next_non_space()   # "else if" is sugar for else, if ... end, end
                orelse = n.ListNode(nxt.pos, [self._control(token, keyword, chained)])
            elif nxt.keyword.startswith("else"):
                # a mismatched "else with" leaves its keyword to be refused as input
                orelse, nxt = self.item_list()
                if nxt.keyword != "end":
                    raise self.fail(f"expected end; found {nxt}")
            return n.Branch(pipe.pos, keyword, pipe, body, orelse)
        finally:
            del self.vars[depth:]

    def _template_name(self, token: Item, context: str) -> str:
        if token.kind not in ("string", "raw"):
            raise self.unexpected(token, context)
        return self.unquote(token)

    def _template(self, token: Item) -> n.Node:
        context = "template clause"
        token = self.next_non_space()
        name = self._template_name(token, context)
        pipe = None
        if self.next_non_space().kind != "right":
            self.backup()
            pipe = self.pipeline(context, "right")
        return n.TemplateCall(token.pos, name, pipe)

    def _block(self, token: Item) -> n.Node:
        context = "block clause"
        token = self.next_non_space()
        name = self._template_name(token, context)
        pipe = self.pipeline(context, "right")
        self._named_body(name, context)
        return n.TemplateCall(token.pos, name, pipe)

    # --------------------------------------------------------------- pipelines
    def pipeline(self, context: str, end: str) -> n.Pipe:
        token = self.peek_non_space()
        pipe = n.Pipe(token.pos)
        self._declarations(pipe, context)
        while True:
            token = self.next_non_space()
            if token.kind == end:
                self._check(pipe, context)
                return pipe
            if token.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def _declarations(self, pipe: n.Pipe, context: str) -> None:
        while True:
            var = self.peek_non_space()
            if var.kind != "variable":
                return
            start = self.i
            self.next_non_space()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.kind in ("assign", "declare"):
                pipe.is_assign = nxt.kind == "assign"
                self.next_non_space()
                pipe.decl.append(n.Variable(var.pos, [var.val]))
                self.vars.append(var.val)
                return
            if nxt.kind == "charitem" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(n.Variable(var.pos, [var.val]))
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("variable", "right", "rparen"):
                        continue
                    raise self.fail("range can only initialize variables")
                raise self.fail(f"too many declarations in {context}")
            del after
            self.i = start
            return

    def _check(self, pipe: n.Pipe, context: str) -> None:
        if not pipe.cmds:
            raise self.fail(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (n.Bool, n.Dot, n.Nil, n.Number, n.String)):
                raise self.fail(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> n.Command:
        cmd = n.Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == "space":
                continue
            if token.kind in ("right", "rparen"):
                self.backup()
            elif token.kind != "pipe":
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.fail("empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        chain = n.Chain(self.peek().pos, node)
        while self.peek().kind == "field":
            chain.fields.append(self.next().val[1:])
        if isinstance(node, n.Field):
            return n.Field(chain.pos, node.idents + chain.fields)
        if isinstance(node, n.Variable):
            return n.Variable(chain.pos, node.idents + chain.fields)
        if isinstance(node, (n.Bool, n.String, n.Number, n.Nil, n.Dot)):
            raise self.fail(f"unexpected . after term {_q(str(node))}")
        return chain

    def term(self) -> n.Node | None:  # noqa: C901 - one branch per kind of term
        token = self.next_non_space()
        kind = token.kind
        if kind == "ident":
            if token.val not in self.funcs:
                raise self.fail(f"function {_q(token.val)} not defined")
            return n.Identifier(token.pos, token.val)
        if kind == "dot":
            return n.Dot(token.pos)
        if kind == "nil":
            return n.Nil(token.pos)
        if kind == "variable":
            return self.use_var(token)
        if kind == "field":
            return n.Field(token.pos, [token.val[1:]])
        if kind == "bool":
            return n.Bool(token.pos, token.val == "true")
        if kind in ("char", "number"):
            return self.number(token)
        if kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        if kind in ("string", "raw"):
            return n.String(token.pos, token.val, self.unquote(token))
        self.backup()
        return None

    def use_var(self, token: Item) -> n.Variable:
        name = token.val
        if name not in self.vars:
            raise self.fail(f"undefined variable {_q(name)}")
        return n.Variable(token.pos, [name])

    # --------------------------------------------------------------- literals
    def unquote(self, token: Item) -> str:
        text = token.val
        if text.startswith("`"):
            return text[1:-1].replace("\r", "")
        value = _unquote_body(text[1:-1], text[0])
        if value is None or (text[0] == "'" and len(value) != 1):
            raise self.fail("invalid syntax")
        return value

    def number(self, token: Item) -> n.Number:
        text = token.val
        if token.kind == "char":
            char = _unquote_body(text[1:-1], "'")
            if char is None or char == "" or len(char) != 1:
                raise self.fail("invalid syntax" if not char
                                else f"malformed character constant: {text}")
            return n.Number(token.pos, text, ord(char), True)
        as_int = _go_int(text)
        if as_int is not None:
            return n.Number(token.pos, text, as_int, True)
        as_float = _go_float(text)
        if as_float is None:
            raise self.fail(f"illegal number syntax: {_q(text)}")
        if not any(c in text for c in ".eEpP"):
            raise self.fail(f"integer overflow: {_q(text)}")
        is_int = as_float.is_integer() and abs(as_float) < 2 ** 63
        return n.Number(token.pos, text, as_float, is_int)


def _non_empty(tree: n.ListNode) -> bool:
    return any(not isinstance(x, n.Text) or x.text.strip() for x in tree.nodes)


def _q(text: str) -> str:
    return go_quote(text)


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), also accepting what ParseUint does."""
    body = text.lstrip("+-")
    if "__" in body or body.endswith("_") or len(text) - len(body) > 1:
        return None
    try:
        if _OCTAL_INT.fullmatch(text) and not body.startswith("0_") or body.startswith("0_"):
            value = int(text.replace("_", ""), 8)
        else:
            value = int(text, 0)
    except ValueError:
        return None
    return value if -(2 ** 63) <= value < 2 ** 64 else None


def _go_float(text: str) -> float | None:
    body = text.lstrip("+-")
    try:
        if body[:2] in ("0x", "0X"):
            value = float.fromhex(text.replace("_", ""))
        elif "_" in body or body.endswith("i"):
            return None
        else:
            value = float(text)
    except ValueError:
        return None
    return value


def _unquote_body(body: str, quote: str) -> str | None:  # noqa: C901 - Go's escape table
    """The value of a Go string or rune literal's body; None when Go says invalid syntax."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == quote or ch == "\n":
            return None
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1: i + 2]
        i += 2
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == quote:
            out.append(esc)
        elif esc in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i: i + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                return None
            code = int(digits, 16)
            if code > 0x10FFFF or (esc != "x" and 0xD800 <= code < 0xE000):
                return None
            out.append(chr(code))
            i += size
        elif esc and esc in "01234567":
            digits = body[i - 1: i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                return None
            out.append(chr(int(digits, 8)))
            i += 2
        else:
            return None
    return "".join(out)
