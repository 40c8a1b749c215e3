"""api.plain: the heads it answers without h11 are ones h11 reads to the same request,
and its answers are h11's bytes; everything else it leaves to h11."""

from __future__ import annotations

import h11
import pytest

from forklift.api import plain
from forklift.api.server import Reply, json_reply
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
    headers = plain.headers_for(reply.content_type, reply.headers)
    if reply.status != 204:
        headers.append(("Content-Length", str(len(reply.body))))
    expected = conn.send(_response(reply.status, headers)) or b""
    if method == "GET" and reply.body:
        expected += conn.send(h11.Data(data=reply.body)) or b""
    expected += conn.send(h11.EndOfMessage()) or b""
    assert plain.response(reply, head=method == "HEAD") == expected
    assert plain.response(reply, head=method == "HEAD") == expected  # from its cache


def test_an_answer_with_a_line_break_in_a_header_is_refused() -> None:
    with pytest.raises(ValueError):
        plain.response(Reply(200, b"", None, [("X-Bad", "a\r\nInjected: 1")]), head=False)
