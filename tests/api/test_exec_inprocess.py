"""A piped exec runs the engine's exec in the service's worker thread (no CLI child): what
the CLI child used to give must still come out: its ``Error:`` line and exit status for a
refused exec, a large stdin and output through the pipes without a stall, several execs
at once each with its own streams, and a long exec that holds no store lock."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from support import Forklift
from support.service import Service

pytestmark = pytest.mark.root


@pytest.fixture
def running(fl: Forklift, name: str) -> Iterator[str]:
    cid = fl.out("run", "-d", "--network", "none", "--name", name, "busybox", "sleep",
                 "300").strip()
    try:
        yield cid
    finally:
        fl("rm", "-f", cid, check=False)


def _exec(service: Service, cid: str, cmd: list[str], send: bytes = b"",
          **config: object) -> tuple[dict[int, bytes], int]:
    """Create and start (upgraded) an exec, write ``send`` to it, half-close; its frames by
    stream and its exit code."""
    made = service.request("POST", f"/v1.41/containers/{cid}/exec",
                           {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd,
                            "AttachStdin": bool(send), **config})
    assert made.status == 201, made
    exec_id = made.json()["Id"]
    body = b"{}"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(str(service.socket))
        s.sendall(f"POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: d\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode() + body)
        sender = threading.Thread(target=_send_then_close, args=(s, send))
        sender.start()
        raw = b""
        while chunk := s.recv(1 << 16):
            raw += chunk
        sender.join()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    code = service.request("GET", f"/v1.41/exec/{exec_id}/json").json()["ExitCode"]
    return _frames(rest), code


def _send_then_close(s: socket.socket, data: bytes) -> None:
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)


def _frames(data: bytes) -> dict[int, bytes]:
    out = {1: b"", 2: b""}
    while data:
        kind, size = struct.unpack(">BxxxI", data[:8])
        out[kind] += data[8:8 + size]
        data = data[8 + size:]
    return out


def test_refused_exec_says_why_as_the_cli_does(service: Service, fl: Forklift,
                                              running: str) -> None:
    frames, code = _exec(service, running, ["true"], User="nosuchuser")
    cli = fl("exec", "-u", "nosuchuser", running, "true", check=False)
    assert frames[1] == b""
    assert frames[2].decode() == cli.err
    assert frames[2].startswith(b"Error: unable to find user nosuchuser")
    assert code == cli.code != 0
    frames, code = _exec(service, running, ["true"], WorkingDir="/no/such/dir")
    assert b"/no/such/dir" in frames[2] and code != 0


def test_large_stdin_and_output_do_not_stall(service: Service, running: str) -> None:
    data = bytes(range(256)) * 8192   # 2 MiB: far beyond a pipe's buffer both ways
    frames, code = _exec(service, running, ["sh", "-c", "cat; cat /etc/hostname >&2"], data)
    assert (len(frames[1]), frames[1] == data, code) == (len(data), True, 0)
    assert frames[2].strip() == running[:12].encode()


def test_concurrent_execs_keep_their_own_streams(service: Service, running: str) -> None:
    results: dict[int, tuple[dict[int, bytes], int]] = {}

    def one(n: int) -> None:
        results[n] = _exec(service, running, ["sh", "-c", f"echo {n}; echo e{n} >&2; exit {n}"])
    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {n: ({1: f"{n}\n".encode(), 2: f"e{n}\n".encode()}, n) for n in range(8)}


def test_a_long_exec_holds_no_store_lock(service: Service, fl: Forklift, running: str) -> None:
    """While an exec runs (its stdin open), a write to the store goes through; the exec
    ends with its container."""
    made = service.request("POST", f"/v1.41/containers/{running}/exec",
                           {"AttachStdin": True, "AttachStdout": True, "Cmd": ["sleep", "30"]})
    exec_id = made.json()["Id"]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(str(service.socket))
    s.sendall(f"POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n"
              "Content-Type: application/json\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n{}"
              .encode())
    try:
        assert s.recv(1 << 16).startswith(b"HTTP/1.1 101")
        created = service.request("POST", "/v1.41/containers/create",
                                  {"Image": "busybox", "Cmd": ["true"]}, timeout=20)
        assert created.status == 201, created
        fl("rm", created.json()["Id"])
        assert json.loads(service.request("GET", f"/v1.41/exec/{exec_id}/json").body)["Running"]
    finally:
        fl("rm", "-f", running)
        s.settimeout(30)
        while s.recv(1 << 16):
            pass
        s.close()
