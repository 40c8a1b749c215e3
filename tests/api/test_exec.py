"""Exec endpoints over raw HTTP (hijacked and not, framed and TTY), their documents
against Docker's swagger, and the docker 20.10 CLI's ``docker exec``."""

from __future__ import annotations

import json
import os
import pty
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from support import Forklift, swagger
from support.service import DOCKER20, Service
from support.terminal import read_pty, set_size

pytestmark = pytest.mark.root


@pytest.fixture
def running(service: Service, fl: Forklift, name: str) -> Iterator[str]:
    cid = fl.out("run", "-d", "--name", name, "busybox", "sleep", "300").strip()
    try:
        yield cid
    finally:
        fl("rm", "-f", cid, check=False)


def _create(service: Service, cid: str, **config: object) -> str:
    ans = service.request("POST", f"/v1.41/containers/{cid}/exec", config)
    assert ans.status == 201, ans.body
    swagger.validate_response(ans.json(), "post", "/containers/{id}/exec", 201)
    exec_id: str = ans.json()["Id"]
    return exec_id


def _hijack(service: Service, exec_id: str, body: dict[str, object], upgrade: bool = True,
            send: bytes = b"", timeout: float = 30) -> tuple[bytes, bytes]:
    """The head and everything after it of ``POST /exec/ID/start``; ``send`` written
    after the head, then our write half closed."""
    data = json.dumps(body).encode()
    head = (f"POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n")
    if upgrade:
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    s = service.socket_connection(timeout)
    s.sendall(head.encode() + b"\r\n" + data)
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = s.recv(65536)
        assert chunk, raw
        raw += chunk
    reply_head, _, rest = raw.partition(b"\r\n\r\n")
    if send:
        s.sendall(send)
    s.shutdown(socket.SHUT_WR)
    while chunk := s.recv(65536):
        rest += chunk
    s.close()
    return reply_head, rest


def _frames(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {1: b"", 2: b""}
    while data:
        kind, size = struct.unpack(">BxxxI", data[:8])
        out[kind] += data[8:8 + size]
        data = data[8 + size:]
    return out


def _inspect(service: Service, exec_id: str) -> dict[str, object]:
    ans = service.request("GET", f"/v1.41/exec/{exec_id}/json")
    assert ans.status == 200, ans.body
    doc: dict[str, object] = ans.json()
    # Docker's ExitCode is null until the process ends (a nil *int), which the file's
    # inline schema does not allow: the rest is checked meanwhile
    checked = {k: v for k, v in doc.items() if not (k == "ExitCode" and v is None)}
    swagger.validate_response(checked, "get", "/exec/{id}/json")
    return doc


def test_exec_framed_exit_code_and_inspect(service: Service, running: str) -> None:
    exec_id = _create(service, running, AttachStdout=True, AttachStderr=True,
                      Cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
    before = _inspect(service, exec_id)
    assert (before["Running"], before["ExitCode"], before["ContainerID"]) == (False, None, running)
    head, body = _hijack(service, exec_id, {"Detach": False, "Tty": False})
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert _frames(body) == {1: b"out\n", 2: b"err\n"}
    after = _inspect(service, exec_id)
    assert (after["Running"], after["ExitCode"]) == (False, 3)
    assert after["ProcessConfig"] == {"arguments": ["-c", "echo out; echo err >&2; exit 3"],
                                      "entrypoint": "sh", "privileged": False, "tty": False,
                                      "user": ""}
    again = service.request("POST", f"/v1.41/exec/{exec_id}/start", {})
    assert again.status == 409 and len(again.json()["message"].splitlines()) == 1


def test_exec_stdin_env_workdir_user_without_upgrade(service: Service, running: str) -> None:
    exec_id = _create(service, running, AttachStdin=True, AttachStdout=True,
                      AttachStderr=True, Env=["X=42"], WorkingDir="/etc", User="nobody",
                      Cmd=["sh", "-c", "cat; echo $X $(pwd) $(id -un)"])
    head, body = _hijack(service, exec_id, {}, upgrade=False, send=b"piped\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert _frames(body)[1] == b"piped\n42 /etc nobody\n"
    assert _inspect(service, exec_id)["ExitCode"] == 0


def test_exec_tty_raw_stream_and_resize(service: Service, running: str) -> None:
    exec_id = _create(service, running, AttachStdin=True, AttachStdout=True, Tty=True,
                      Cmd=["sh", "-c", "sleep 1; stty size; read line; echo got $line"])
    s, out = service.hijack(f"/v1.41/exec/{exec_id}/start", b'{"Tty": true}')
    assert service.request("POST", f"/v1.41/exec/{exec_id}/resize?h=33&w=77").status == 201
    for bad in ("h=70000&w=1", "h=x&w=1", "h=-1&w=1"):
        ans = service.request("POST", f"/v1.41/exec/{exec_id}/resize?{bad}")
        assert ans.status == 400 and "\n" not in ans.json()["message"]
    assert _inspect(service, exec_id)["Running"] is True
    s.sendall(b"hello\r")
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    assert b"33 77" in out and b"got hello" in out
    assert b"\x01\x00\x00\x00" not in out  # raw, not framed
    assert _inspect(service, exec_id)["ExitCode"] == 0
    gone = service.request("POST", f"/v1.41/exec/{exec_id}/resize?h=1&w=1")
    assert gone.status == 409


def test_exec_detached_records_exit_code(service: Service, running: str) -> None:
    exec_id = _create(service, running, Cmd=["sh", "-c", "sleep 0.5; exit 7"])
    ans = service.request("POST", f"/v1.41/exec/{exec_id}/start", {"Detach": True})
    assert ans.status == 200
    deadline = time.monotonic() + 30
    while (doc := _inspect(service, exec_id))["Running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert doc["ExitCode"] == 7


def test_exec_bad_input(service: Service, fl: Forklift, running: str, name: str) -> None:
    def refused(ans: object, status: int) -> None:
        assert ans.status == status, ans.body  # type: ignore[attr-defined]
        message = ans.json()["message"]  # type: ignore[attr-defined]
        assert message and "\n" not in message and "Traceback" not in message

    refused(service.request("POST", "/v1.41/containers/nope/exec", {"Cmd": ["true"]}), 404)
    refused(service.request("POST", f"/v1.41/containers/{running}/exec", {"Cmd": []}), 400)
    refused(service.request("POST", f"/v1.41/containers/{running}/exec", {"Cmd": 5}), 400)
    refused(service.request("POST", f"/v1.41/containers/{running}/exec", b"[1"), 400)
    refused(service.request("POST", "/v1.41/exec/nope/start", {}), 404)
    refused(service.request("GET", "/v1.41/exec/nope/json"), 404)
    refused(service.request("POST", "/v1.41/exec/nope/resize?h=1&w=1"), 404)
    stopped = fl.out("create", "busybox", "true").strip()
    try:
        refused(service.request("POST", f"/v1.41/containers/{stopped}/exec",
                                {"Cmd": ["true"]}), 409)
    finally:
        fl("rm", stopped)


@pytest.mark.usefixtures("docker_cli")
def test_docker_exec_pipe_and_exit_code(service: Service, running: str) -> None:
    data = "".join(f"line {i}\n" for i in range(2000))
    assert service.docker("exec", "-i", running, "cat", input=data).out == data
    res = service.docker("exec", running, "sh", "-c", "echo out; echo err >&2; exit 3",
                         check=False)
    assert (res.code, res.out, res.err) == (3, "out\n", "err\n")
    assert service.docker("exec", "-e", "A=b", "-w", "/tmp", running, "sh", "-c",
                          "echo $A $(pwd)").out == "b /tmp\n"
    assert service.docker("exec", "-u", "nobody", running, "id", "-un").out == "nobody\n"
    detached = service.docker("exec", "-d", running, "sh", "-c", "echo d > /tmp/detached")
    assert (detached.out, detached.err) == ("", "")
    deadline = time.monotonic() + 20
    while service.docker("exec", running, "cat", "/tmp/detached", check=False).out != "d\n":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    missing = service.docker("exec", "nope", "true", check=False)
    assert missing.code != 0 and "No such container" in missing.err


@pytest.mark.usefixtures("docker_cli")
def test_docker_exec_tty_under_a_pty(service: Service, running: str) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: docker on the pty's slave as its terminal
        os.environ["DOCKER_HOST"] = service.host
        os.execv(DOCKER20, [DOCKER20, "exec", "-it", running, "sh"])
    out = b""
    try:
        set_size(fd, 30, 90)
        os.write(fd, b"echo $((6*7)); stty size; exit 5\r")
        out = read_pty(fd, out, None, time.monotonic() + 30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert b"42" in out and b"30 90" in out  # the docker CLI's size, through exec resize
    assert os.waitstatus_to_exitcode(status) == 5


def test_exec_refused_while_paused_and_missing_command(service: Service, fl: Forklift,
                                                       running: str) -> None:
    fl("pause", running)
    try:
        ans = service.request("POST", f"/v1.41/containers/{running}/exec", {"Cmd": ["true"]})
        assert ans.status == 409 and "paused" in ans.json()["message"]
    finally:
        fl("unpause", running)
    exec_id = _create(service, running, AttachStdout=True, AttachStderr=True,
                      Cmd=["no-such-command"])
    _, body = _hijack(service, exec_id, {})
    assert b"no-such-command" in _frames(body)[2]
    assert _inspect(service, exec_id)["ExitCode"] == 127
