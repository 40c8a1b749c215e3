"""The service over raw HTTP: headers, versions, errors in Docker's form, hostile input
(the service answers one line and keeps serving), every JSON body against Docker's
Engine API schema (API 1.41)."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import pytest
from support import swagger
from support.service import Answer, Service

pytestmark = pytest.mark.root


def _error(answer: Answer, status: int) -> str:
    return answer.refusal(status)


def _raw(service: Service, data: bytes) -> bytes:
    """Send ``data`` as it is and read the answer to the end of the connection."""
    with contextlib.closing(socket.socket(socket.AF_UNIX)) as s:
        s.settimeout(30)
        s.connect(str(service.socket))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("prefix", ["", "/v1.41", "/v1.24"])
def test_ping_headers(service: Service, method: str, prefix: str) -> None:
    answer = service.request(method, f"{prefix}/_ping")
    assert answer.status == 200
    assert answer.body == (b"OK" if method == "GET" else b"")
    h = answer.headers
    assert (h["api-version"], h["ostype"], h["builder-version"], h["docker-experimental"]) == \
        ("1.41", "linux", "1", "false")


def test_version_and_info_validate(service: Service, fl) -> None:  # type: ignore[no-untyped-def]
    version = service.request("GET", "/v1.41/version")
    assert version.status == 200
    swagger.validate_response(version.json(), "GET", "/version", 200)
    assert version.json()["ApiVersion"] == "1.41"
    info = service.request("GET", "/info")
    assert info.status == 200
    # as Docker's own answer: "Isolation": "" (a Linux daemon's), nulls for empty lists
    swagger.validate_response(info.json(), "GET", "/info", 200, as_docker=True)
    assert info.json()["Images"] == 1  # this store's busybox


@pytest.mark.parametrize("path, status, words", [
    ("/v1.99/_ping", 400, "client version 1.99 is too new"),
    ("/v1.0/_ping", 400, "client version 1.0 is too old"),
    ("/vabc/_ping", 404, "page not found"),
    ("/v1.41/nothing/here", 404, "page not found"),
    ("/containers/nosuch/json", 404, "No such container: nosuch"),
    ("/v1.41/images/nosuch:1/json", 404, "nosuch"),
])
def test_errors(service: Service, path: str, status: int, words: str) -> None:
    message = _error(service.request("GET", path), status)
    assert words in message
    if status != 400:
        swagger.validate(service.request("GET", path).json(), "ErrorResponse")


def test_wrong_method(service: Service) -> None:
    _error(service.request("DELETE", "/_ping"), 405)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"Image": 3}', b'{"Image": ""}'])
def test_create_with_bad_body(service: Service, fl, body: bytes) -> None:  # type: ignore[no-untyped-def]
    before = fl.out("ps", "-aq")
    _error(service.request("POST", "/v1.41/containers/create", body), 400)
    assert fl.out("ps", "-aq") == before


def test_create_of_missing_image_is_404(service: Service) -> None:
    assert "No such image" in _error(
        service.request("POST", "/containers/create", {"Image": "nosuch:latest"}), 404)


def test_bad_filters_and_parameters(service: Service) -> None:
    _error(service.request("GET", "/containers/json?filters=%7Bnope"), 400)
    _error(service.request("GET", "/containers/json?filters=%7B%22nokey%22%3A%5B%22x%22%5D%7D"), 400)
    _error(service.request("POST", "/containers/nosuch/wait?condition=never"), 400)


@pytest.mark.parametrize("data, status", [
    (b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", b"431"),
    (b"NONSENSE\r\n\r\n", b"400"),
    (b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"400"),
])
def test_hostile_requests_then_service_serves_on(service: Service, data: bytes,
                                                  status: bytes) -> None:
    answer = _raw(service, data)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == status, answer[:200]
    assert b"Traceback" not in answer
    assert service.request("GET", "/_ping").status == 200
    assert service.alive()


def test_keep_alive_serves_several_requests(service: Service) -> None:
    answer = _raw(service, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    assert answer.count(b"HTTP/1.1 200") == 3


def test_listings_and_inspect_validate(service: Service, fl, name: str) -> None:  # type: ignore[no-untyped-def]
    created = service.request("POST", f"/v1.41/containers/create?name={name}",
                              {"Image": "busybox", "Cmd": ["true"], "Labels": {"a": "b"}})
    assert created.status == 201, created
    swagger.validate_response(created.json(), "POST", "/containers/create", 201)
    cid = created.json()["Id"]
    try:
        assert fl.out("inspect", "-f", "{{.Name}} {{.Config.Labels.a}}", cid) == f"/{name} b"
        listed = service.request("GET", "/containers/json?all=1&size=1")
        # as Docker's own answers: null for a network's empty Links, Aliases, …
        swagger.validate_response(listed.json(), "GET", "/containers/json", 200, as_docker=True)
        row = next(c for c in listed.json() if c["Id"] == cid)
        assert (row["Names"], row["State"], row["Labels"]) == ([f"/{name}"], "created", {"a": "b"})
        assert cid not in [c["Id"] for c in service.request("GET", "/containers/json").json()]
        doc = service.request("GET", f"/containers/{name}/json?size=1").json()
        swagger.validate_response(doc, "GET", "/containers/{id}/json", 200, as_docker=True)
        assert doc["Id"] == cid and "SizeRw" in doc
        images = service.request("GET", "/images/json").json()
        swagger.validate_response(images, "GET", "/images/json", 200)
        assert [i["RepoTags"] for i in images] == [["busybox:latest"]]
        image = service.request("GET", "/images/busybox:latest/json").json()
        swagger.validate_response(image, "GET", "/images/{name}/json", 200, as_docker=True)
        assert image["Id"] == images[0]["Id"]
    finally:
        fl("rm", "-f", cid)


def test_start_wait_logs_delete(service: Service, fl, name: str) -> None:  # type: ignore[no-untyped-def]
    body = {"Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
    cid = service.request("POST", f"/containers/create?name={name}", body).json()["Id"]
    assert service.request("POST", f"/containers/{cid}/start").status == 204
    waited = service.request("POST", f"/containers/{cid}/wait")
    assert waited.status == 200 and waited.json() == {"StatusCode": 3}
    swagger.validate_response(waited.json(), "POST", "/containers/{id}/wait", 200)
    logs = service.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1").body
    assert logs == b"\x01\x00\x00\x00\x00\x00\x00\x04out\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    only_err = service.request("GET", f"/containers/{cid}/logs?stderr=1&tail=1").body
    assert only_err == b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    _error(service.request("GET", f"/containers/{cid}/logs"), 400)
    assert service.request("POST", f"/containers/{cid}/stop").status == 304
    _error(service.request("POST", f"/containers/{cid}/kill"), 409)
    assert service.request("DELETE", f"/containers/{cid}").status == 204
    _error(service.request("DELETE", f"/containers/{cid}"), 404)


def test_running_container_conflicts(service: Service, fl, name: str) -> None:  # type: ignore[no-untyped-def]
    body = {"Image": "busybox", "Cmd": ["sleep", "60"]}
    cid = service.request("POST", f"/containers/create?name={name}", body).json()["Id"]
    try:
        assert service.request("POST", f"/containers/{cid}/start").status == 204
        assert fl.status(cid) == "running"
        assert service.request("POST", f"/containers/{cid}/start").status == 304
        assert "cannot remove a running container" in _error(
            service.request("DELETE", f"/containers/{cid}"), 409)
        assert service.request("POST", f"/containers/{cid}/kill?signal=KILL").status == 204
        waited = service.request("POST", f"/containers/{cid}/wait?condition=not-running")
        assert waited.json() == {"StatusCode": 137}
    finally:
        fl("rm", "-f", cid)


class _Answers:
    """The answers that come one after another on a kept-alive connection."""

    def __init__(self, s: socket.socket) -> None:
        self.s = s
        self.buffer = b""

    def _more(self, what: object) -> None:
        chunk = self.s.recv(65536)
        assert chunk, what
        self.buffer += chunk

    def next(self, head_only: bool = False) -> tuple[bytes, bytes]:
        """The next answer's head and body (``head_only``: an answer to HEAD)."""
        while b"\r\n\r\n" not in self.buffer:
            self._more(self.buffer)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = 0 if head_only else int(next(
            line.split(b":", 1)[1] for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")))
        while len(self.buffer) < length:
            self._more((head, len(self.buffer)))
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return head, body


@pytest.mark.parametrize("method, path", [
    ("HEAD", "/_ping"), ("GET", "/_ping"), ("GET", "/v1.41/containers/json?all=1"),
    ("GET", "/images/json"), ("GET", "/nope"), ("HEAD", "/nope"), ("GET", "/v9.9/_ping"),
    ("GET", "/v1.41/version"),
])
def test_plain_requests_get_the_answers_h11_gives(service: Service, method: str, path: str) -> None:
    """A plain head is answered without h11 (api.plain), the same head with a Connection
    header through it: the two answers are the same bytes."""
    plain = _raw(service, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    through_h11 = _raw(service, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".encode())
    assert plain == through_h11
    assert plain.startswith(b"HTTP/1.1 ")


@pytest.mark.parametrize("pipelined", [False, True])
def test_head_of_an_unknown_path_answers_no_body_and_keeps_the_connection(
        service: Service, pipelined: bool) -> None:
    with contextlib.closing(service.socket_connection()) as s:
        unknown = b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        ping = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
        answers = _Answers(s)
        s.sendall(unknown + ping if pipelined else unknown)  # pipelined: h11 reads them
        head, _ = answers.next(head_only=True)
        assert head.startswith(b"HTTP/1.1 404 "), head
        if not pipelined:
            s.sendall(ping)
        head, body = answers.next()
        assert head.startswith(b"HTTP/1.1 200 ") and body == b"OK", (head, body)
        assert answers.buffer == b""
    assert service.alive()


def test_a_long_answer_to_a_slow_reader_then_the_next_request(service: Service, name: str) -> None:
    """A listing larger than the socket takes at once: the rest is sent as the client
    reads, and the connection serves on."""
    made = service.request("POST", f"/containers/create?name={name}",
                           {"Image": "busybox", "Labels": {"big": "x" * 1_000_000}})
    assert made.status == 201, made
    try:
        with contextlib.closing(service.socket_connection()) as s:
            answers = _Answers(s)
            s.sendall(b"GET /containers/json?all=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.5)  # the service's first send fills the socket's buffer
            head, body = answers.next()
            assert head.startswith(b"HTTP/1.1 200 "), head
            big = [c for c in json.loads(body) if c["Id"] == made.json()["Id"]]
            assert big and big[0]["Labels"]["big"] == "x" * 1_000_000
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answers.next()[1] == b"OK"
    finally:
        assert service.request("DELETE", f"/containers/{name}").status == 204


def test_a_head_of_spaces_is_refused_at_once(service: Service) -> None:
    """A 60 KB header line of spaces and tabs ending in a bad byte: h11's regex as
    shipped spent 30 s on it, on the service's loop, answering nobody meanwhile. Now a
    400 at once, its message cut short, and the service serves on."""
    head = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX:" + b" \t" * 30000 + b"\x00\r\n\r\n"
    started = time.monotonic()
    answer = _raw(service, head)
    assert time.monotonic() - started < 5
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", answer[:200]
    assert len(answer) < 2048 and b"Traceback" not in answer
    assert service.request("GET", "/_ping").status == 200
