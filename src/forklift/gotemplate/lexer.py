"""Go's text/template lexer: the text split into items, ending in EOF or one error item.

Go lexes lazily; the parser stops at the first error item, so lexing the whole text up
front (stopping at an error) gives the same items and the same messages."""

from __future__ import annotations

from dataclasses import dataclass

SPACES = " \t\r\n"
KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
            "template", "with"}
# Printable ASCII that Go emits as a one-character item (the parser refuses it later).
_TERMINATORS = SPACES + ".,|:)("


@dataclass
class Item:
    kind: str   # text, left, right, comment, space, field, variable, dot, string, raw,
    #             char, number, bool, ident, pipe, lparen, rparen, assign, declare,
    #             charitem, keyword, eof, error
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        if self.kind == "eof":
            return "EOF"
        if self.kind == "error":
            return self.val
        if self.kind in ("keyword", "dot"):
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        out.append(_quote_char(ch, '"'))
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\"}


def _quote_char(ch: str, quote: str) -> str:
    if ch == quote:
        return "\\" + ch
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if ch.isprintable() or ch == " ":
        return ch
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote_rune(ch: str) -> str:
    """strconv.QuoteRune."""
    return "'" + _quote_char(ch, "'") + "'"


class Lexer:
    def __init__(self, text: str, left: str = "{{", right: str = "}}") -> None:
        self.text, self.left, self.right = text, left, right
        self.items: list[Item] = []
        self.start = self.pos = 0
        self.line = self.start_line = 1
        self.paren = 0

    # --------------------------------------------------------------- emitting
    def emit(self, kind: str) -> None:
        self.items.append(Item(kind, self.text[self.start:self.pos], self.start, self.start_line))
        self.ignore()

    def ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start, self.start_line = self.pos, self.line

    def error(self, message: str) -> None:
        self.items.append(Item("error", message, self.start, self.start_line))

    def peek(self) -> str:
        return self.text[self.pos: self.pos + 1]

    # --------------------------------------------------------------- outside actions
    def run(self) -> list[Item]:
        while True:
            at = self.text.find(self.left, self.pos)
            if at < 0:
                self.pos = len(self.text)
                if self.pos > self.start:
                    self.emit("text")
                self.emit("eof")
                return self.items
            self.pos = at
            trim = _left_trim(self.text, at + len(self.left))
            if at > self.start:
                end = len(self.text[self.start:at].rstrip(SPACES)) + self.start if trim else at
                self.pos = end
                if end > self.start:
                    self.emit("text")
                self.pos = at
                self.ignore()
            if not self._action():
                return self.items

    def _action(self) -> bool:
        """Lex from a left delimiter to its right one; False after an error item."""
        self.pos += len(self.left)
        marker = 2 if _left_trim(self.text, self.pos) else 0
        if self.text.startswith("/*", self.pos + marker):
            self.pos += marker
            self.ignore()
            return self._comment()
        self.emit("left")
        self.pos += marker
        self.ignore()
        self.paren = 0
        return self._inside()

    def _at_right(self) -> tuple[bool, bool]:
        if _right_trim(self.text, self.pos) and self.text.startswith(self.right, self.pos + 2):
            return True, True
        return self.text.startswith(self.right, self.pos), False

    def _comment(self) -> bool:
        self.pos += 2
        end = self.text.find("*/", self.pos)
        if end < 0:
            self.error("unclosed comment")
            return False
        self.pos = end + 2
        delim, trim = self._at_right()
        if not delim:
            self.error("comment ends before closing delimiter")
            return False
        self.pos += (2 if trim else 0) + len(self.right)
        if trim:
            self.pos += _lead_spaces(self.text, self.pos)
        self.ignore()
        return True

    def _right(self, trim: bool) -> None:
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(self.right)
        self.emit("right")
        if trim:
            self.pos += _lead_spaces(self.text, self.pos)
            self.ignore()

    # --------------------------------------------------------------- inside actions
    def _inside(self) -> bool:  # noqa: C901 - one branch per character class, as Go's
        while True:
            delim, trim = self._at_right()
            if delim:
                if self.paren:
                    self.error("unclosed left paren")
                    return False
                self._right(trim)
                return True
            ch = self.peek()
            if not ch:
                self.error("unclosed action")
                return False
            self.pos += 1
            ok = True
            if ch in SPACES:
                self.pos -= 1
                ok = self._space()
            elif ch == "=":
                self.emit("assign")
            elif ch == ":":
                if self.peek() != "=":
                    self.error("expected :=")
                    return False
                self.pos += 1
                self.emit("declare")
            elif ch == "|":
                self.emit("pipe")
            elif ch == '"':
                ok = self._quote('"', "string", "unterminated quoted string")
            elif ch == "`":
                ok = self._raw()
            elif ch == "'":
                ok = self._quote("'", "char", "unterminated character constant")
            elif ch == "$":
                ok = self._field_or_var("variable")
            elif ch == "." and not self.peek().isdigit():
                ok = self._field_or_var("field")
            elif ch in "+-." or ch.isdigit():
                self.pos -= 1
                ok = self._number()
            elif _alnum(ch):
                self.pos -= 1
                ok = self._identifier()
            elif ch == "(":
                self.emit("lparen")
                self.paren += 1
            elif ch == ")":
                self.paren -= 1
                if self.paren < 0:
                    self.error("unexpected right paren")
                    return False
                self.emit("rparen")
            elif ch.isascii() and ch.isprintable():
                self.emit("charitem")
            else:
                self.error(f"unrecognized character in action: {_unicode(ch)}")
                return False
            if not ok:
                return False

    def _space(self) -> bool:
        count = 0
        while self.peek() and self.peek() in SPACES:
            self.pos += 1
            count += 1
        if _right_trim(self.text, self.pos - 1) and \
                self.text.startswith(self.right, self.pos + 1):
            self.pos -= 1
            if count == 1:
                return True
        self.emit("space")
        return True

    def _quote(self, quote: str, kind: str, unterminated: str) -> bool:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt and nxt != "\n":
                    continue
                ch = ""
            if not ch or ch == "\n":
                self.error(unterminated)
                return False
            if ch == quote:
                self.emit(kind)
                return True

    def _raw(self) -> bool:
        end = self.text.find("`", self.pos)
        if end < 0:
            self.error("unterminated raw quoted string")
            return False
        self.pos = end + 1
        self.emit("raw")
        return True

    def _at_terminator(self) -> bool:
        ch = self.peek()
        if not ch or ch in _TERMINATORS:
            return True
        return self.text.startswith(self.right, self.pos)

    def _field_or_var(self, kind: str) -> bool:
        if self._at_terminator():
            self.emit("variable" if kind == "variable" else "dot")
            return True
        while self.peek() and _alnum(self.peek()):
            self.pos += 1
        if not self._at_terminator():
            self.error(f"bad character {_unicode(self.peek())}")
            return False
        self.emit(kind)
        return True

    def _identifier(self) -> bool:
        while self.peek() and _alnum(self.peek()):
            self.pos += 1
        word = self.text[self.start:self.pos]
        if not self._at_terminator():
            self.error(f"bad character {_unicode(self.peek())}")
            return False
        if word in KEYWORDS:
            self.emit("nil" if word == "nil" else "keyword")
        elif word in ("true", "false"):
            self.emit("bool")
        else:
            self.emit("ident")
        return True

    def _accept(self, chars: str) -> bool:
        if self.peek() and self.peek() in chars:
            self.pos += 1
            return True
        return False

    def _accept_run(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1

    def _number(self) -> bool:
        if not self._scan_number():
            self.error(f"bad number syntax: {go_quote(self.text[self.start:self.pos])}")
            return False
        if self.peek() and self.peek() in "+-":
            # Go reads 1+2i as one complex constant; anything else glued on is refused
            if not self._scan_number() or self.text[self.pos - 1] != "i":
                self.error(f"bad number syntax: {go_quote(self.text[self.start:self.pos])}")
                return False
        self.emit("number")
        return True

    def _scan_number(self) -> bool:
        self._accept("+-")
        digits = "0123456789_"
        if self._accept("0"):
            if self._accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self._accept("oO"):
                digits = "01234567_"
            elif self._accept("bB"):
                digits = "01_"
        self._accept_run(digits)
        if self._accept("."):
            self._accept_run(digits)
        if len(digits) == 11 and self._accept("eE"):
            self._accept("+-")
            self._accept_run("0123456789_")
        if len(digits) == 23 and self._accept("pP"):
            self._accept("+-")
            self._accept_run("0123456789_")
        self._accept("i")
        if self.peek() and _alnum(self.peek()):
            self.pos += 1
            return False
        return True


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def _unicode(ch: str) -> str:
    """Go's %#U: U+007D '}'."""
    if not ch:
        return "U+FFFFFFFF"  # Go's eof rune, -1
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _left_trim(text: str, at: int) -> bool:
    return text[at: at + 1] == "-" and text[at + 1: at + 2] != "" and text[at + 1] in SPACES


def _right_trim(text: str, at: int) -> bool:
    return text[at: at + 1] != "" and text[at] in SPACES and text[at + 1: at + 2] == "-"


def _lead_spaces(text: str, at: int) -> int:
    return len(text[at:]) - len(text[at:].lstrip(SPACES))
