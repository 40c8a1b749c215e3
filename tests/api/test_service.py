"""`forklift system service` itself: the socket (mode, owner, group, a live or stale one
at its path), the idle exit, SIGTERM, bad options."""

from __future__ import annotations

import grp
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Forklift
from support.cli import one_line_error
from support.service import running_service, start_service, wait_listening

pytestmark = pytest.mark.root


@pytest.fixture
def sockdir() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="fl-api-", dir="/tmp"))
    yield home
    for p in home.iterdir():
        p.unlink()
    home.rmdir()


def test_socket_mode_owner_and_group(fl: Forklift) -> None:
    with running_service(fl) as svc:
        st = svc.socket.lstat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        assert (st.st_uid, st.st_gid) == (0, 0)
    some = next(g for g in grp.getgrall() if g.gr_gid != 0)
    with running_service(fl, "--group", some.gr_name) as svc:
        assert svc.socket.lstat().st_gid == some.gr_gid


def test_sigterm_closes_and_removes_the_socket(fl: Forklift) -> None:
    with running_service(fl) as svc:
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(30) == 0
        assert not svc.socket.exists()


def test_idle_exit(fl: Forklift, sockdir: Path) -> None:
    sock = sockdir / "d.sock"
    proc, _ = start_service(fl, sock, "--time", "1")
    wait_listening(sock, proc)
    with socket.socket(socket.AF_UNIX) as s:  # a connection holds it up while open
        s.connect(str(sock))
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(2.5)
    assert proc.wait(30) == 0
    assert not sock.exists()


def test_refuses_a_live_socket_and_replaces_a_stale_one(fl: Forklift, sockdir: Path) -> None:
    with running_service(fl) as svc:
        res = fl("system", "service", "--socket", svc.host, "--time", "1", check=False)
        assert "in use" in one_line_error(res)
        assert svc.request("GET", "/_ping").status == 200
    stale = sockdir / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # the path stays, nobody listens
    proc, _ = start_service(fl, stale, "--time", "1")
    wait_listening(stale, proc)
    assert proc.wait(30) == 0


@pytest.mark.parametrize("args, words", [
    (["--socket", "tcp://127.0.0.1:2375"], "only unix:///absolute/path"),
    (["--group", "no-such-group-here"], "group 'no-such-group-here' not found"),
])
def test_bad_options(fl: Forklift, sockdir: Path, args: list[str], words: str) -> None:
    if args[0] == "--group":
        args = ["--socket", f"unix://{sockdir}/d.sock", *args]
    assert words in one_line_error(fl("system", "service", *args, check=False))
    assert list(sockdir.iterdir()) == []


def test_not_a_socket_at_the_path(fl: Forklift, sockdir: Path) -> None:
    path = sockdir / "file"
    path.write_text("keep me")
    assert "not a socket" in one_line_error(
        fl("system", "service", "--socket", f"unix://{path}", check=False))
    assert path.read_text() == "keep me"


def test_sigterm_with_requests_in_flight(fl: Forklift) -> None:
    """A wait and a log follow that would last a minute do not hold the exit up."""
    import http.client
    import threading

    cid = fl.out("run", "-d", "--network", "none", "busybox", "sleep", "60")
    try:
        with running_service(fl) as svc:
            answers: list[object] = []

            def ask(path: str) -> None:
                try:
                    answers.append(svc.request("POST" if path.endswith("wait") else "GET", path))
                except (OSError, http.client.HTTPException) as exc:
                    # a closed connection, also one cut inside the streamed answer
                    answers.append(exc)

            threads = [threading.Thread(target=ask, args=(p,)) for p in (
                f"/containers/{cid}/wait", f"/containers/{cid}/logs?follow=1&stdout=1")]
            for t in threads:
                t.start()
            svc.proc.send_signal(signal.SIGTERM)
            assert svc.proc.wait(30) == 0
            for t in threads:
                t.join(30)
                assert not t.is_alive()
            assert len(answers) == 2  # each got an answer or a closed connection
        assert fl.status(cid) == "running"  # the service's end is not the container's
    finally:
        fl("rm", "-f", cid)


def test_socket_activation(fl: Forklift, sockdir: Path) -> None:
    """systemd's way (contrib/systemd/forklift.socket): the socket passed as fd 3, used as
    it is and left in place at the exit."""
    import shutil

    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate missing: install the Debian package systemd")
    sock = sockdir / "activated.sock"
    env = fl.environ()
    passed = [arg for key in env if key in ("PATH", "PYTHONPATH") or key.startswith("FORKLIFT_")
              for arg in ("-E", key)]  # it passes no other variable
    proc = subprocess.Popen([activate, "-l", str(sock), *passed, *fl.argv, "system", "service",
                             "--socket", f"unix://{sockdir}/unused.sock", "--time", "1"],
                            env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_listening(sock, proc)
        from support.service import Service

        answer = Service(fl, sock, proc, sock).request("GET", "/_ping")
        assert answer.status == 200 and answer.headers["api-version"] == "1.41"
        assert proc.wait(30) == 0
        assert sock.exists() and not (sockdir / "unused.sock").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _switches(pid: int) -> dict[str, int]:
    """Each thread's voluntary context switches: a thread that polls makes some at every
    sleep, an idle worker none."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                out[task.name] = int(line.split()[1])
    return out


def _busy_threads(pid: int, span: float = 1.0, rate: float = 3) -> list[str]:
    """The threads of ``pid`` that woke up at least ``rate`` times a second during ``span``
    (a wait polls 20 times a second, an event follower 5; an idle service's threads, with
    no idle timer, not at all)."""
    import time

    before = _switches(pid)
    time.sleep(span)
    after = _switches(pid)
    return [t for t, n in after.items() if n - before.get(t, n) >= rate * span]


def _no_busy_threads(pid: int, what: str) -> None:
    import time

    deadline = time.monotonic() + 10
    while (busy := _busy_threads(pid)) and time.monotonic() < deadline:
        pass
    assert busy == [], f"{len(busy)} threads still polling for {what}"


def _abandon(svc: Any, method: str, path: str) -> None:
    """Send a request, read the head of its answer, hang up."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(svc.socket))
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
                  .encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")  # the head at once


def test_abandoned_waits_stop_polling(fl: Forklift) -> None:
    """Twenty clients ask to wait for a container's next exit and go away, five to follow
    the events, five a quiet container's logs: each ends with its connection (none keeps a worker polling the store), and
    the service still answers, and waits, for the next client."""
    cid = fl.out("create", "--network", "none", "busybox", "true")
    quiet = fl.out("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    try:
        with running_service(fl) as svc:
            _no_busy_threads(svc.proc.pid, "nothing (a service just started)")
            for _ in range(20):
                _abandon(svc, "POST", f"/v1.41/containers/{cid}/wait?condition=next-exit")
            _no_busy_threads(svc.proc.pid, "abandoned waits")
            for _ in range(5):
                _abandon(svc, "GET", "/v1.41/events")
            _no_busy_threads(svc.proc.pid, "abandoned event followers")
            for _ in range(5):
                _abandon(svc, "GET", f"/v1.41/containers/{quiet}/logs?follow=1&stdout=1")
            _no_busy_threads(svc.proc.pid, "abandoned log followers")
            answer = svc.request("POST", f"/containers/{cid}/wait?condition=not-running")
            assert answer.status == 200 and answer.json() == {"StatusCode": 0}
    finally:
        fl("rm", "-f", cid, quiet)
