"""api.plain: the heads it answers without h11 are ones h11 reads to the same request,
and its answers are h11's bytes; everything else it leaves to h11."""

from __future__ import annotations

import h11
import pytest

from forklift.api import plain
from forklift.api.server import Reply, json_reply, reply_headers
from forklift.api.service import _request, _response

PING = b"HEAD /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/20.10.24+dfsg1 (linux)\r\n\r\n"
PLAIN = [
    PING,
    b"GET /v1.41/containers/json?all=1&filters=%7B%22name%22%3A%5B%22a%20b%22%5D%7D HTTP/1.1\r\nHost: docker\r\n\r\n",
    b"GET /images/json HTTP/1.1\r\nhost:x\r\nX-Empty:\r\nX-Spaces: \t a  b \t\r\nX-High: \xe9t\xe9\r\n\r\n",
    b"GET /v1.41/containers/%2Fodd/json HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n",
]
# each either refused by h11 or needing its framing: plain must leave them all to h11
NOT_PLAIN = [
    b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    b"POST /exec/x/start HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
    b"GET /_ping HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n\r\n",                                    # no Host
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /_ping HTTP/1.1\r\nHost: x\r\n\r\n",  # pipelined
    b"GET /_ping HTTP/1.1\r\nHost: x\r\n",                              # a head in parts
    b"GET /_ping HTTP/1.1\nHost: x\n\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
    b"GET /_p\x7fing HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET _ping HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET  /_ping HTTP/1.1\r\nHost: x\r\n\r\n",
    b"get /_ping HTTP/1.1\r\nHost: x\r\n\r\n",
    b"NONSENSE\r\n\r\n",
    b"\r\n\r\n",
]


def _h11_request(data: bytes) -> h11.Request:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    return event


@pytest.mark.parametrize("data", PLAIN)
def test_plain_heads_read_as_h11_reads_them(data: bytes) -> None:
    req = plain.parse(data)
    assert req is not None
    assert req == _request(_h11_request(data))


@pytest.mark.parametrize("data", NOT_PLAIN)
def test_everything_else_is_left_to_h11(data: bytes) -> None:
    assert plain.parse(data) is None


@pytest.mark.parametrize("reply", [
    json_reply([{"Id": "x"}]),
    json_reply({"message": "page not found"}, 404),
    Reply(200, b"OK", "text/plain; charset=utf-8", [("Builder-Version", "1")]),
    Reply(204, b"", None, []),
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_answers_are_h11s_bytes(reply: Reply, method: str) -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    conn.next_event()
    conn.next_event()
    expected = conn.send(_response(reply.status, reply_headers(reply))) or b""
    if method == "GET" and reply.body:
        expected += conn.send(h11.Data(data=reply.body)) or b""
    expected += conn.send(h11.EndOfMessage()) or b""
    assert plain.response(reply, head=method == "HEAD") == expected
    assert plain.response(reply, head=method == "HEAD") == expected  # from its cache


def test_an_answer_with_a_line_break_in_a_header_is_refused() -> None:
    with pytest.raises(ValueError):
        plain.response(Reply(200, b"", None, [("X-Bad", "a\r\nInjected: 1")]), head=False)


# Header lines that cost time quadratic in their length to a regex with whitespace on
# both sides of an optional value (h11's own, before `service` mends it): ~60 KB each
HOSTILE_LINES = [
    b"X:" + b" \t" * 30000 + b"\x00",
    b"X:" + b" " * 60000 + b"a" + b" " * 10 + b"\x00",
    b"X: " + b"a " * 30000 + b"\x00",
    b"X: " + b"a" * 60000 + b"\r",
    b"X:" + b"\t" * 60000,
]


@pytest.mark.parametrize("line", HOSTILE_LINES, ids=range(len(HOSTILE_LINES)))
def test_hostile_header_lines_are_read_in_linear_time(line: bytes) -> None:
    """Neither reader spends more than a moment on a 60 KB header line (h11's regex
    as shipped took 30 s on the first one, holding the service's loop)."""
    import time

    head = b"GET /_ping HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
    started = time.monotonic()
    plain.parse(head)
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(head)
    try:
        conn.next_event()
    except h11.RemoteProtocolError:
        pass
    assert time.monotonic() - started < 2.0


def test_mended_h11_reads_header_lines_as_before() -> None:
    """`service._linear_header_lines` changes how fast h11 reads a header line, not
    what it reads: the shipped pattern and the mended one agree on every line here."""
    import re

    from h11 import _readers

    from forklift.api.service import _linear_header_lines

    assert _linear_header_lines()
    mended = _readers.header_field_re
    shipped = re.compile(mended.pattern.replace(rb"[ \t]*+", rb"[ \t]*", 1))
    assert shipped.pattern != mended.pattern
    values = [b"", b" ", b"\t", b"a", b" a", b"a ", b" a ", b"a b", b"a  \t b ", b"\ta\t",
              b"\x01", b" \x7f ", b"\xe9t\xe9", b"a\x00", b"\x00", b" \x00 ", b"a\rb", b"a\x0bb"]
    for name in (b"X", b"Host", b"Bad Name", b"", b"x-y_z"):
        for value in values:
            line = name + b":" + value
            theirs, ours = shipped.fullmatch(line), mended.fullmatch(line)
            assert (theirs is None) == (ours is None), line
            if theirs and ours:
                assert theirs.groupdict() == ours.groupdict(), line
