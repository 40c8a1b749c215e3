"""Detach keys (Docker's default ctrl-p,ctrl-q; ``detachKeys`` of an attach,
``DetachKeys`` of an exec): typed into a TTY's stdin they end the client's connection and
leave the container, or the exec's process, running. Over raw HTTP (the service catches
the keys) and through the docker 20.10 CLI under a pty (the CLI catches them and hangs
up: the service then leaves the container's stdin open)."""

from __future__ import annotations

import json
import os
import pty
import socket
import time
from collections.abc import Iterator

import pytest
from support import Forklift
from support.service import DOCKER20, Service
from support.terminal import read_pty

pytestmark = pytest.mark.root


# ----------------------------------------------------------------------------- the keys

def test_parse_as_docker_reads_them() -> None:
    from forklift.api import detach
    from forklift.api.server import ApiError

    assert detach.parse("") == b"\x10\x11"
    assert detach.parse("ctrl-a,x,ctrl-@,ctrl-_,ctrl-Z") == b"\x01x\x00\x1f\x1a"
    for bad in ("ctrl-", "ctrl-1", "ab", "x,,y", "ctrl-ab", "é"):
        with pytest.raises(ApiError) as info:
            detach.parse(bad)
        assert info.value.status == 400 and bad in info.value.message


def test_escape_holds_a_partial_match() -> None:
    from forklift.api.detach import Escape

    esc = Escape(b"\x10\x11")
    assert esc.feed(b"ab\x10") == (b"ab", False)       # held: maybe the sequence
    assert esc.feed(b"\x10") == (b"\x10", False)       # not it: passed on, the new one held
    assert esc.feed(b"c\x10") == (b"\x10c", False)
    assert esc.feed(b"\x11") == (b"", True)            # \x10\x11: detached, never passed on
    esc = Escape(b"\x10\x11")
    assert esc.feed(b"\x10x\x10\x11tail") == (b"\x10x", True)


# ----------------------------------------------------------------------------- raw HTTP

def _until(s: socket.socket, got: bytes, want: bytes) -> bytes:
    while want not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    return got


def _to_the_end(s: socket.socket) -> bytes:
    """What the service still sends before it closes the connection (a hang fails)."""
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out


@pytest.fixture
def tty_container(fl: Forklift, name: str) -> Iterator[str]:
    cid = fl.out("run", "-dit", "--name", name, "busybox", "sh").strip()
    try:
        yield cid
    finally:
        fl("rm", "-f", cid, check=False)


def test_exec_detach_keys(service: Service, fl: Forklift, tty_container: str) -> None:
    made = service.request("POST", f"/v1.41/containers/{tty_container}/exec", {
        "AttachStdin": True, "AttachStdout": True, "Tty": True, "DetachKeys": "ctrl-a,d",
        "Cmd": ["sh", "-c", "echo ready; while read line; do echo got $line; done"]})
    assert made.status == 201, made
    exec_id = made.json()["Id"]
    s, got = service.hijack(f"/v1.41/exec/{exec_id}/start", b'{"Tty": true}')
    with s:
        got = _until(s, got, b"ready")
        s.sendall(b"one\r")
        got = _until(s, got, b"got one")
        s.sendall(b"\x10\x11two\r\x01d")   # Docker's default keys are no detach keys here
        assert b"\x01" not in _to_the_end(s)
    doc = service.request("GET", f"/v1.41/exec/{exec_id}/json").json()
    assert doc["Running"] is True and doc["Pid"] > 0, doc
    assert doc["DetachKeys"] == "ctrl-a,d"
    assert os.path.exists(f"/proc/{doc['Pid']}")   # the process runs on, without its client
    bad = service.request("POST", f"/v1.41/containers/{tty_container}/exec",
                          {"Cmd": ["true"], "DetachKeys": "ctrl-1"})
    assert bad.status == 400 and "Invalid detach keys (ctrl-1)" in bad.json()["message"]


def test_attach_detach_keys(service: Service, fl: Forklift, tty_container: str) -> None:
    for keys, typed in (("", b"\x10\x11"), ("ctrl-x,ctrl-y", b"\x18\x19")):
        query = "stream=1&stdin=1&stdout=1&stderr=1" + (f"&detachKeys={keys}" if keys else "")
        s, got = service.hijack(f"/v1.41/containers/{tty_container}/attach?{query}")
        with s:
            s.sendall(b"echo $((6*7))\r")
            got = _until(s, got, b"42")
            s.sendall(typed)
            _to_the_end(s)
        assert fl.status(tty_container) == "running"
    s, got = service.hijack(f"/v1.41/containers/{tty_container}/attach?"
                     "stream=1&stdin=1&stdout=1")
    with s:   # the shell still reads its terminal: the detaches left its stdin open
        s.sendall(b"exit 3\r")
        _to_the_end(s)
    deadline = time.monotonic() + 20
    while fl.status(tty_container) == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fl.inspect(tty_container)["State"]["ExitCode"] == 3
    bad = service.request("POST", f"/v1.41/containers/{tty_container}/attach?stream=1"
                          "&stdin=1&detachKeys=ctrl-")
    assert bad.status == 400 and "Invalid detach keys" in bad.json()["message"]


# ----------------------------------------------------------------------------- docker CLI

@pytest.mark.usefixtures("docker_cli")
def test_docker_run_it_detaches(service: Service, fl: Forklift, name: str) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: docker on the pty's slave as its terminal
        os.environ["DOCKER_HOST"] = service.host
        os.execv(DOCKER20, [DOCKER20, "run", "-it", "--name", name, "busybox", "sh"])
    out = b""
    try:
        deadline = time.monotonic() + 60
        out = read_pty(fd, out, b"# ", deadline)
        os.write(fd, b"echo $((6*7))\r")
        out = read_pty(fd, out, b"42", deadline)
        if b"42" in out:
            os.write(fd, b"\x10\x11")
            out += b"[detaching]"
        out = read_pty(fd, out, None, deadline)  # the CLI's end
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    try:
        assert b"[detaching]" in out, out
        assert os.waitstatus_to_exitcode(status) == 0, out
        time.sleep(1)   # a shell that got an end of file would be gone by now
        assert fl.status(name) == "running", json.dumps(fl.inspect(name)["State"])
    finally:
        fl("rm", "-f", name, check=False)
