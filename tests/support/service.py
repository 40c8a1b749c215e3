"""`forklift system service` for tests: started on a socket of its own against one store,
stopped (SIGTERM) afterwards; raw HTTP over its socket and Debian's docker CLI (20.10)
pointed at it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.cli import Forklift, Result, run

DOCKER20 = "/usr/bin/docker"  # Debian's docker.io: the client the service is tested with


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]   # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def json_lines(self) -> list[dict[str, Any]]:
        """A 200 answer's JSON stream (pull, push, load, build): one document a line."""
        assert self.status == 200, self
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]

    def refusal(self, status: int) -> str:
        """This answer as a refusal: ``status`` and Docker's one-line ``{"message": …}``,
        no traceback; the message."""
        assert self.status == status, self
        doc = self.json()
        assert list(doc) == ["message"] and "\n" not in doc["message"], doc
        assert "Traceback" not in doc["message"]
        return str(doc["message"])


@dataclass
class Service:
    fl: Forklift
    socket: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def request(self, method: str, path: str, body: Any = None, *,
                headers: dict[str, str] | None = None, timeout: float = 60) -> Answer:
        conn = _UnixConnection(str(self.socket), timeout)
        try:
            data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
            hdrs = dict(headers or {})
            if data is not None:
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def hijack(self, path: str, body: bytes = b"",
               timeout: float = 30) -> tuple[socket.socket, bytes]:
        """``POST path`` with ``Upgrade: tcp``: the connection once the ``101`` head is
        read, and the bytes that came after that head."""
        s = self.socket_connection(timeout)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                  .encode() + body)
        return s, self.read_upgrade(s)

    def socket_connection(self, timeout: float = 30) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(str(self.socket))
        return s

    @staticmethod
    def read_upgrade(s: socket.socket) -> bytes:
        """Read the ``101`` head of an upgrade request sent on ``s``; the bytes after it."""
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = s.recv(4096)
            assert chunk, raw
            raw += chunk
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return rest

    def docker(self, *args: str, check: bool = True, input: str | bytes | None = None,
               timeout: float = 120) -> Result:
        env = dict(os.environ, DOCKER_HOST=self.host)
        return run([DOCKER20, *args], input=input, env=env, check=check, timeout=timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None


def wait_listening(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until the service accepts a connection (or fail if it exited or took too long)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited {proc.returncode} before listening")
        with contextlib.closing(socket.socket(socket.AF_UNIX)) as s:
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError(f"the service did not listen on {path} in {timeout}s")


def start_service(fl: Forklift, sock: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = sock.with_suffix(".log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([*fl.argv, "system", "service", "--socket", f"unix://{sock}",
                                 *extra], env=fl.environ(), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)
    return proc, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a user stops the service; SIGKILL if it has not gone in 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_service(fl: Forklift, *extra: str) -> Iterator[Service]:
    """The service on ``fl``'s store, never idling out (``--time 0``), stopped after."""
    home = Path(tempfile.mkdtemp(prefix="fl-api-", dir="/tmp"))
    sock = home / "docker.sock"
    proc, log = start_service(fl, sock, "--time", "0", *extra)
    try:
        wait_listening(sock, proc)
        yield Service(fl, sock, proc, log)
    finally:
        stop(proc)
        for p in home.iterdir():
            p.unlink()
        home.rmdir()
