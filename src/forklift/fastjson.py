"""``json.dumps`` and ``json.loads`` for the hot paths, without the ``json`` package.

Importing ``json`` loads ``re`` (for its number and whitespace patterns), and ``re``
loads ``enum``, ``functools`` and ``collections``: some 6 ms, a tenth of a whole
``exec``. The C accelerator ``_json`` that ``json`` itself encodes and decodes with
needs none of them; these two functions call it the way ``json``'s default encoder
and decoder do, so they give the same text and the same values (a unit test compares
them with ``json`` on many documents). Where ``_json`` is missing, ``json`` does it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

_SPACE = " \t\n\r"


def _unserializable(obj: object) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class _Decoding:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


try:
    import _json

    _scan = _json.make_scanner(_Decoding())  # type: ignore[arg-type]  # reads only those
except (ImportError, AttributeError, TypeError):  # another Python: json's own code
    _json = None  # type: ignore[assignment]


def dumps(obj: Any, separators: tuple[str, str] = (", ", ": ")) -> str:
    """``json.dumps(obj, separators=separators)``."""
    if _json is None:
        import json

        return json.dumps(obj, separators=separators)
    encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                                separators[1], separators[0], False, False, True)
    return "".join(encode(obj, 0))


def loads(text: str) -> Any:
    """``json.loads(text)`` for a str; ValueError (json's JSONDecodeError is one) for
    anything that is not one JSON document."""
    if _json is None:
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        obj, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"Expecting value: char {start}") from None
    if text[end:].strip(_SPACE):
        raise ValueError(f"Extra data: char {end}")
    return obj
