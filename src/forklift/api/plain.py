"""Plain requests: a whole ``GET`` or ``HEAD`` head of HTTP/1.1 in one read, with nothing
that asks for h11's framing (no body, no ``Connection``, ``Expect`` or ``Upgrade``),
parsed and answered without h11. Every docker CLI command starts with one (``HEAD
/_ping``) and ``ps`` and ``images`` are one more; the service answers them from its
loop's reader callback (`service.Service._plain`).

Anything else, or anything these rules do not match exactly, is left to h11, which
parses it again and answers or refuses it as always: the rules below are a strict subset
of what h11 accepts, so a head is never read two ways.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from forklift.api.server import Reply, Request, reply_headers

_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[\x21-\x7e]*) HTTP/1\.1")
# A header line is cut at its first colon and checked with two patterns that cannot
# backtrack: one regex for the whole line, with whitespace on either side of an optional
# value, costs time quadratic in a run of spaces (h11's does: `service` mends it)
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_VALUE = re.compile(rb"[^\x21-\x7e\x80-\xff \t]")
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "expect",
                      "upgrade", "host"})
_HEAD_END = b"\r\n\r\n"


def parse(data: bytes) -> Request | None:
    """The request ``data`` holds, exactly and alone; None when h11 is to read it."""
    if not data.endswith(_HEAD_END) or data.find(_HEAD_END) != len(data) - 4:
        return None  # a head in parts, a body, or a second request behind it
    lines = data[:-4].split(b"\r\n")
    first = _REQUEST_LINE.fullmatch(lines[0])
    if first is None:
        return None
    headers: list[tuple[str, str]] = []
    hosts = 0
    for line in lines[1:]:
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not _NAME.fullmatch(raw_name) or _NOT_IN_VALUE.search(raw_value):
            return None
        name = raw_name.decode("ascii").lower()
        if name in _FRAMING:
            if name != "host":
                return None
            hosts += 1
        headers.append((name, raw_value.strip(b" \t").decode("latin-1")))
    if hosts != 1:
        return None  # h11 refuses a head of HTTP/1.1 without one
    return request(first.group(1).decode("ascii"), first.group(2).decode("latin-1"), headers)


def request(method: str, target: str, headers: list[tuple[str, str]]) -> Request:
    """A `Request` from a head's parts (names in lower case), as both readers make it."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    return Request(method, unquote(parts.path), query, dict(headers), b"")


_HEADS: dict[tuple[int, tuple[tuple[str, str], ...]], bytes] = {}


def response(reply: Reply, head: bool) -> bytes:
    """``reply`` as h11 writes it (``HEAD``: without the body); its head made once for
    each status and header list seen."""
    headers = reply_headers(reply)
    key = (reply.status, tuple(headers))
    out = _HEADS.get(key)
    if out is None:
        for name, value in headers:
            if "\r" in value or "\n" in value or ":" in name:
                raise ValueError(f"header {name!r} cannot be sent")
        lines = [f"HTTP/1.1 {reply.status} "] + [f"{n}: {v}" for n, v in headers] + ["", ""]
        out = "\r\n".join(lines).encode("latin-1")
        if len(_HEADS) >= 256:
            _HEADS.clear()
        _HEADS[key] = out
    return out if head else out + reply.body
