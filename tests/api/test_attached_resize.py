"""``POST /containers/{id}/resize`` of an attached run (an attach, then the start: the
service's ``start -a`` child runs it): a TTY's terminal takes the size, through the
docker 20.10 CLI's ``run -it`` under a pty and over raw HTTP; a run without a TTY
has none to resize (200, nothing changes)."""

from __future__ import annotations

import os
import pty
import re
import socket
import time

import pytest
from support import Forklift
from support.service import DOCKER20, Service
from support.terminal import read_pty, set_size

pytestmark = pytest.mark.root


@pytest.mark.usefixtures("docker_cli")
def test_docker_run_it_follows_the_terminal_size(service: Service, fl: Forklift,
                                                  name: str) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: docker on the pty's slave, sized before it starts
        set_size(0, 30, 90)
        os.environ["DOCKER_HOST"] = service.host
        os.execv(DOCKER20, [DOCKER20, "run", "-it", "--name", name, "busybox", "sh"])
    out = b""
    try:
        deadline = time.monotonic() + 60
        out = read_pty(fd, out, b"# ", deadline)
        os.write(fd, b"stty size\r")
        out = read_pty(fd, out, b"30 90", deadline)
        first = out
        set_size(fd, 40, 100)  # the CLI gets SIGWINCH and sends a resize
        while b"40 100" not in out and time.monotonic() < deadline:
            os.write(fd, b"stty size\r")
            out = read_pty(fd, out, b"40 100", time.monotonic() + 1)
        os.write(fd, b"exit 3\r")
        out = read_pty(fd, out, b"\0", deadline)  # to its end
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        fl("rm", "-f", name, check=False)
    assert b"30 90" in first, out
    assert b"40 100" in out, out
    assert os.waitstatus_to_exitcode(status) == 3, out


def _attached_start(service: Service, name: str, tty: bool,
                    cmd: list[str]) -> tuple[str, socket.socket, bytes]:
    made = service.request("POST", f"/v1.41/containers/create?name={name}", {
        "Image": "busybox", "Cmd": cmd, "Tty": tty, "OpenStdin": True,
        "AttachStdin": True, "AttachStdout": True, "AttachStderr": True})
    assert made.status == 201, made.body
    cid = made.json()["Id"]
    s, got = service.hijack(f"/v1.41/containers/{cid}/attach?stream=1&stdin=1&stdout=1"
                              "&stderr=1")
    assert service.request("POST", f"/v1.41/containers/{cid}/start").status == 204
    return cid, s, got


def _until(s: socket.socket, got: bytes, pattern: bytes) -> bytes:
    while not re.search(pattern, got):
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    return got


def test_resize_an_attached_tty_run(service: Service, fl: Forklift, name: str) -> None:
    cid, s, got = _attached_start(service, name, True, ["sh"])
    try:
        s.sendall(b"stty size\n")  # a console of 0x0 at first: busybox fails on it
        got = _until(s, got, rb"stty size\r\n.+\r\n")
        assert b"33 77" not in got
        ans = service.request("POST", f"/v1.41/containers/{cid}/resize?h=33&w=77")
        assert ans.status == 200, ans.body
        deadline = time.monotonic() + 20
        s.settimeout(1)
        while b"33 77" not in got:
            assert time.monotonic() < deadline, got
            s.sendall(b"stty size\n")
            try:
                got = _until(s, got, rb"33 77")
            except TimeoutError:
                pass
        s.settimeout(30)
        s.sendall(b"exit 4\n")
        while s.recv(4096):
            pass
        assert service.request("POST", f"/v1.41/containers/{cid}/wait").json()[
            "StatusCode"] == 4
        assert not (fl.root / "containers" / cid / "console.size").exists()  # no leftover
    finally:
        s.close()
        fl("rm", "-f", cid, check=False)


def test_resize_an_attached_run_without_a_tty(service: Service, fl: Forklift,
                                              name: str) -> None:
    cid, s, got = _attached_start(service, name, False, ["sh", "-c", "read x; echo got $x"])
    try:
        ans = service.request("POST", f"/v1.41/containers/{cid}/resize?h=33&w=77")
        assert ans.status == 200, ans.body
        bad = service.request("POST", f"/v1.41/containers/{cid}/resize?h=x&w=1")
        assert bad.status == 400 and "\n" not in bad.json()["message"]
        s.sendall(b"line\n")
        got = _until(s, got, b"got line")  # the run goes on, untouched
        assert not (fl.root / "containers" / cid / "console.size").exists()
    finally:
        s.close()
        fl("rm", "-f", cid, check=False)
