"""Go's fmt as templates use it: Sprint, Sprintln, Sprintf and the %v of every value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from forklift.gotemplate.lexer import go_quote, quote_rune
from forklift.gotemplate.values import NO_VALUE, EmptyStruct, GoMap, NilMap, is_int, type_name


@dataclass
class Spec:
    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    width: int | None = None
    prec: int | None = None


_PLAIN = Spec()


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out, prev_string = [], False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i and not is_string and not prev_string:
            out.append(" ")
        out.append(value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(value(a) for a in args) + "\n"


def value(arg: Any) -> str:
    """``%v``: how an action prints its value."""
    if arg is NO_VALUE:
        return "<no value>"
    return format_arg(arg, "v", _PLAIN)


# ----------------------------------------------------------------------------- Sprintf

def sprintf(template: str, args: list[Any]) -> str:  # noqa: C901 - Go's doPrintf, one pass
    out: list[str] = []
    i, argnum, reordered, end = 0, 0, False, len(template)
    while i < end:
        j = template.find("%", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        spec = Spec()
        while i < end and template[i] in "-+# 0":
            _flag(spec, template[i])
            i += 1
        i, argnum, reordered = _index(template, i, argnum, reordered)
        if i < end and template[i] == "*":
            i += 1
            spec.width, argnum, bad = _star(args, argnum)
            if bad:
                out.append("%!(BADWIDTH)")
            elif spec.width is not None and spec.width < 0:
                spec.minus, spec.zero, spec.width = True, False, -spec.width
        else:
            start = i
            while i < end and template[i].isdigit():
                i += 1
            if i > start:
                spec.width = int(template[start:i])
        if i < end and template[i] == ".":
            i += 1
            i, argnum, reordered = _index(template, i, argnum, reordered)
            if i < end and template[i] == "*":
                i += 1
                spec.prec, argnum, bad = _star(args, argnum)
                if bad or (spec.prec is not None and spec.prec < 0):
                    spec.prec = None
                    out.append("%!(BADPREC)")
            else:
                start = i
                while i < end and template[i].isdigit():
                    i += 1
                spec.prec = int(template[start:i] or "0")
        i, argnum, reordered = _index(template, i, argnum, reordered)
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = template[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v" and spec.sharp:
                out.append(_sharp_v(args[argnum]))
            else:
                out.append(format_arg(args[argnum], verb, spec))
            argnum += 1
    if not reordered and argnum < len(args):
        extra = ", ".join("<nil>" if a is None else f"{type_name(a)}={value(a)}"
                          for a in args[argnum:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _flag(spec: Spec, ch: str) -> None:
    if ch == "-":
        spec.minus, spec.zero = True, False
    elif ch == "+":
        spec.plus = True
    elif ch == "#":
        spec.sharp = True
    elif ch == " ":
        spec.space = True
    elif ch == "0":
        spec.zero = not spec.minus


def _index(template: str, i: int, argnum: int, reordered: bool) -> tuple[int, int, bool]:
    """An explicit argument index ``[n]``."""
    if i < len(template) and template[i] == "[":
        close = template.find("]", i)
        if close > i and template[i + 1: close].isdigit():
            return close + 1, int(template[i + 1: close]) - 1, True
    return i, argnum, reordered


def _star(args: list[Any], argnum: int) -> tuple[int | None, int, bool]:
    if argnum >= len(args) or not is_int(args[argnum]):
        return None, argnum + 1, True
    return args[argnum], argnum + 1, False


# ----------------------------------------------------------------------------- one value

def format_arg(arg: Any, verb: str, spec: Spec) -> str:  # noqa: C901 - a type switch
    if verb == "T":
        return _pad("<nil>" if arg is None else type_name(arg), spec)
    if arg is None or arg is NO_VALUE:
        return _pad("<nil>", spec) if verb == "v" else f"%!{verb}(<nil>)"
    if isinstance(arg, bool):
        return _pad("true" if arg else "false", spec) if verb in "tv" else _bad(arg, verb)
    if isinstance(arg, int):
        return _integer(arg, verb, spec)
    if isinstance(arg, float):
        return _float(arg, verb, spec)
    if isinstance(arg, str):
        return _string(arg, verb, spec)
    if isinstance(arg, (list, tuple)):
        return "[" + " ".join(format_arg(a, verb, spec) for a in arg) + "]"
    if isinstance(arg, EmptyStruct):
        return "{}"
    if isinstance(arg, dict):
        keys = sorted(arg)
        return "map[" + " ".join(f"{format_arg(k, verb, spec)}:{format_arg(arg[k], verb, spec)}"
                                 for k in keys) + "]"
    return _pad(str(arg), spec)


def _bad(arg: Any, verb: str) -> str:
    return f"%!{verb}({type_name(arg)}={value(arg)})"


def _pad(text: str, spec: Spec, zero_ok: bool = True) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    return ("0" if spec.zero and zero_ok else " ") * fill + text


_BASES = {"b": 2, "o": 8, "O": 8, "x": 16, "X": 16, "d": 10, "v": 10}


def _integer(num: int, verb: str, spec: Spec) -> str:
    if verb == "c":
        return _pad(chr(num) if 0 <= num <= 0x10FFFF else "\ufffd", spec)
    if verb == "q":
        return _pad(quote_rune(chr(num)) if 0 <= num <= 0x10FFFF else "'\ufffd'", spec)
    if verb == "U":
        text = f"U+{num:04X}"
        if spec.sharp and 0 <= num <= 0x10FFFF and chr(num).isprintable():
            text += f" '{chr(num)}'"
        return _pad(text, spec)
    if verb not in _BASES:
        return _bad(num, verb)
    base = _BASES[verb]
    digits = _digits(abs(num), base, verb == "X")
    prec = spec.prec
    if prec is not None:
        if prec == 0 and num == 0:
            return _pad("", Spec(width=spec.width, minus=spec.minus))
        digits = digits.rjust(prec, "0")
    elif spec.zero and spec.width is not None and not spec.minus:
        room = spec.width - (1 if num < 0 or spec.plus or spec.space else 0)
        digits = digits.rjust(room, "0")
    prefix = ""
    if spec.sharp:
        prefix = {2: "0b", 8: "0" if not digits.startswith("0") else "",
                  16: "0X" if verb == "X" else "0x"}.get(base, "")
    if verb == "O":
        prefix = "0o"
    sign = "-" if num < 0 else "+" if spec.plus else " " if spec.space else ""
    return _pad(sign + prefix + digits, spec, zero_ok=False)


def _digits(num: int, base: int, upper: bool) -> str:
    if base == 10:
        return str(num)
    text = {2: format(num, "b"), 8: format(num, "o"), 16: format(num, "x")}[base]
    return text.upper() if upper else text


def _float(num: float, verb: str, spec: Spec) -> str:
    if verb not in "vbeEfFgGxX":
        return _bad(num, verb)
    if math.isinf(num) or math.isnan(num):
        text = "NaN" if math.isnan(num) else ("-Inf" if num < 0 else "+Inf")
        return _pad(text, spec, zero_ok=False)
    text = _float_text(num, verb, spec.prec)
    negative = text.startswith("-")
    body = text[1:] if negative else text
    sign = "-" if negative else "+" if spec.plus else " " if spec.space else ""
    if spec.zero and not spec.minus and spec.width is not None:
        return sign + body.rjust(spec.width - len(sign), "0")
    return _pad(sign + body, spec, zero_ok=False)


def _float_text(num: float, verb: str, prec: int | None) -> str:
    if verb in "xX":
        text = _hex_float(num, prec)
        return text.upper().replace("0X", "0X") if verb == "X" else text
    if verb in "eEfF":
        text = f"%.{6 if prec is None else prec}{verb.lower()}" % num
        return text.upper() if verb == "E" else text
    if verb == "b":
        mant, exp = math.frexp(num)
        return f"{int(mant * 2 ** 53)}p{exp - 53:+d}"
    if prec is None:
        return shortest(num, upper=verb == "G")
    text = f"%.{prec or 1}g" % num
    return text.upper() if verb == "G" else text


def shortest(num: float, upper: bool = False) -> str:
    """strconv.FormatFloat(num, 'g', -1, 64): %e past an exponent of 21... no: of -4 and 6."""
    neg, digits, dp = _shortest_digits(num)
    exp = dp - 1
    if exp < -4 or exp >= 6 and not (len(digits) == 1 and digits == "0"):
        text = _fmt_e(digits, exp, len(digits) - 1)
    else:
        text = _fmt_f(digits, dp, max(len(digits) - dp, 0))
    text = ("-" if neg else "") + text
    return text.upper() if upper else text


def _shortest_digits(num: float) -> tuple[bool, str, int]:
    """The shortest decimal digits that read back as ``num``, and the decimal point's place."""
    dec = Decimal(repr(abs(num))).normalize()
    sign = math.copysign(1.0, num) < 0
    tup = dec.as_tuple()
    digits = "".join(str(d) for d in tup.digits)
    if digits == "0":
        return sign, "0", 1
    assert isinstance(tup.exponent, int)
    return sign, digits, len(digits) + tup.exponent


def _fmt_e(digits: str, exp: int, prec: int) -> str:
    mant = digits[0] + ("." + digits[1:].ljust(prec, "0")[:prec] if prec > 0 else "")
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    whole = digits[:dp].ljust(dp, "0") if dp > 0 else "0"
    if prec <= 0:
        return whole
    frac = "".join(digits[dp + i] if 0 <= dp + i < len(digits) else "0" for i in range(prec))
    return whole + "." + frac


def json_float(num: float) -> str:
    """encoding/json's float64: %f between 1e-6 and 1e21, else %e without a padded exponent."""
    if num == 0:
        return "-0" if math.copysign(1.0, num) < 0 else "0"
    neg, digits, dp = _shortest_digits(num)
    if 1e-6 <= abs(num) < 1e21:
        text = _fmt_f(digits, dp, max(len(digits) - dp, 0))
    else:
        exp = dp - 1
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mant}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return ("-" if neg else "") + text


def _hex_float(num: float, prec: int | None) -> str:
    if num == 0:
        return "0x0p+00"
    mant, exp = math.frexp(abs(num))     # 0.5 <= mant < 1
    bits = int(mant * 2 ** 53)           # 53 significant bits, leading one first
    frac = bits - (1 << 52)
    hexdigits = f"{frac:013x}".rstrip("0")
    if prec is not None:
        hexdigits = hexdigits[:prec].ljust(prec, "0")
    body = "0x1" + ("." + hexdigits if hexdigits else "")
    return ("-" if num < 0 else "") + f"{body}p{exp - 1:+03d}"


def _string(text: str, verb: str, spec: Spec) -> str:
    if verb in "vs":
        if spec.prec is not None:
            text = text[: spec.prec]
        return _pad(text, spec)
    if verb == "q":
        if spec.sharp and "`" not in text and all(c.isprintable() or c == "\t" for c in text):
            return _pad("`" + text + "`", spec)
        quoted = go_quote(text)
        if spec.plus:
            quoted = "".join(c if c.isascii() else _ascii_escape(c) for c in quoted)
        return _pad(quoted, spec)
    if verb in "xX":
        data = text.encode()
        if spec.prec is not None:
            data = data[: spec.prec]
        pieces = [format(b, "02X" if verb == "X" else "02x") for b in data]
        prefix = ("0X" if verb == "X" else "0x") if spec.sharp else ""
        if spec.space:
            return _pad(" ".join(prefix + p for p in pieces), spec)
        return _pad(prefix + "".join(pieces), spec)
    return _bad(text, verb)


def _ascii_escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _sharp_v(arg: Any) -> str:
    """``%#v``: the value as Go source."""
    if arg is None or arg is NO_VALUE:
        return "<nil>"
    if isinstance(arg, str):
        return go_quote(arg)
    if isinstance(arg, bool):
        return "true" if arg else "false"
    if isinstance(arg, float):
        return shortest(arg)
    if isinstance(arg, int):
        return str(arg)
    if isinstance(arg, (list, tuple)):
        return type_name(arg) + "{" + ", ".join(_sharp_v(a) for a in arg) + "}"
    if isinstance(arg, NilMap):
        return "map[string]interface {}(nil)"
    if isinstance(arg, (dict, GoMap)):
        return "map[string]interface {}{" + ", ".join(
            f"{go_quote(k)}:{_sharp_v(arg[k])}" for k in sorted(arg)) + "}"
    return str(arg)
