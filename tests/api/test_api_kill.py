"""``kill -9`` of the service in the middle of a request that writes to the store (a pull,
a load): the client gets a closed connection, not a hang; the store the service leaves is
sound (crash leftovers only, cleaned by the next process), holds no half image, and the
same request through a restarted service then succeeds.

`kill_midway` is generic (any request, any "mid-way" condition): a build's kill -9 is one
more caller of it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.images import derive
from support.registry import Proxy
from support.service import Service, running_service
from support.store import (
    assert_clean,
    assert_no_corruption,
    image_ids,
    temporary_store,
    tmp_entries,
)

pytestmark = pytest.mark.root

HANG = 30.0   # seconds a client may wait for its connection to close once the service is gone


def request_bytes(method: str, path: str, body: bytes = b"", *,
                  content_type: str = "application/json", headers: str = "") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n")
    return head.encode() + body


def kill_midway(service: Service, request: bytes, midway: Callable[[], bool],
                send: int | None = None, timeout: float = 60) -> bytes:
    """Send ``request`` (its first ``send`` bytes only, the rest never: a body still being
    written), wait until ``midway()`` holds, then SIGKILL the service; everything the client
    read before its connection closed. A connection the dead service left open fails."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    got = b""
    try:
        sock.connect(str(service.socket))
        sock.sendall(request if send is None else request[:send])
        deadline = time.monotonic() + timeout
        while not midway():
            assert service.alive(), f"the service exited early: {service.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the request never got mid-way"
            time.sleep(0.005)
        service.proc.kill()
        service.proc.wait(HANG)
        sock.settimeout(HANG)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                got += chunk
    finally:
        sock.close()
    return got


def _stream_lines(answer: bytes) -> list[dict[str, object]]:
    """The JSON messages of a chunked progress stream (chunk sizes dropped)."""
    body = answer.partition(b"\r\n\r\n")[2]
    out = []
    for line in body.split(b"\n"):
        line = line.strip()
        if line.startswith(b"{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def _after_crash(store: Forklift) -> None:
    """What every kill -9 must leave: no corruption and no image; then a new process (the
    CLI's check) finds the store clean."""
    assert_no_corruption(store.root)
    assert image_ids(store.root) == []
    store("system", "check")
    assert tmp_entries(store.root) == []


# ----------------------------------------------------------------------------- pull

@pytest.fixture(scope="module")
def big_image(busybox_tar: Path, module_proxy: Proxy) -> str:
    """A two-layer image (busybox and 6 MB of random bytes) in the registry, as the proxy
    serves it: a pull has a large blob to be caught in the middle of."""
    ref = f"{module_proxy.host}/kill/big:1"
    with temporary_store() as src:
        src("import", "-c", "ENV PATH=/bin", str(busybox_tar), "busybox:latest")
        derive(src, "busybox", ref, "head -c 6000000 /dev/urandom > /big")
        src("push", ref)
    return ref


def _stall_big_blobs(proxy: Proxy) -> None:
    def mutate(method: str, path: str, status: int, headers: dict[str, str],
               data: bytes) -> tuple[int, dict[str, str], bytes] | None:
        if method == "GET" and "/blobs/sha256:" in path and len(data) > 1_000_000:
            return status, {**headers, "X-Test-Stall": str(len(data) // 2)}, data
        return None
    proxy.mutate = mutate


def test_kill_mid_pull(proxy: Proxy, big_image: str) -> None:
    repo, tag = big_image.rsplit(":", 1)
    pull = request_bytes("POST", f"/v1.41/images/create?fromImage={repo}&tag={tag}")
    _stall_big_blobs(proxy)
    with temporary_store() as store:
        with running_service(store) as svc:
            got = kill_midway(svc, pull, lambda: proxy.stalled.is_set()
                              and bool(tmp_entries(store.root)))
        proxy.release.set()
        proxy.mutate = None
        assert got.startswith(b"HTTP/1.1 200"), got[:300]
        messages = _stream_lines(got)
        assert {"status": f"Pulling from {repo.split('/', 1)[1]}", "id": tag} in messages
        assert not any("Downloaded newer image" in str(m.get("status")) for m in messages)
        _after_crash(store)
        with running_service(store) as again:
            answer = again.request("POST", f"/v1.41/images/create?fromImage={repo}&tag={tag}")
            assert answer.status == 200
            last = json.loads(answer.body.splitlines()[-1])
            assert last == {"status": f"Status: Downloaded newer image for {big_image}"}, last
        assert store.out("run", "--rm", "--network", "none", big_image, "wc", "-c", "/big") \
            .split()[0] == "6000000"
        assert_clean(store.root)


# ----------------------------------------------------------------------------- load

@pytest.fixture(scope="module")
def archive(busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A docker-archive of ~6 MB (busybox and random bytes), under the service's body limit."""
    out = tmp_path_factory.mktemp("kill-load") / "big.tar"
    with temporary_store() as src:
        src("import", "-c", "ENV PATH=/bin", str(busybox_tar), "busybox:latest")
        derive(src, "busybox", "loaded:1", "head -c 6000000 /dev/urandom > /big")
        src("save", "-o", str(out), "loaded:1")
    return out


@pytest.fixture
def store() -> Iterator[Forklift]:
    with temporary_store() as s:
        yield s


def _load_again(store: Forklift, body: bytes) -> None:
    with running_service(store) as again:
        answer = again.request("POST", "/v1.41/images/load", body,
                               headers={"Content-Type": "application/x-tar"})
        assert answer.status == 200, answer
        assert b"Loaded image: loaded:1" in answer.body
    assert store.out("run", "--rm", "--network", "none", "loaded:1", "wc", "-c", "/big") \
        .split()[0] == "6000000"
    assert_clean(store.root)


def test_kill_while_the_body_is_written(store: Forklift, archive: Path) -> None:
    body = archive.read_bytes()
    load = request_bytes("POST", "/v1.41/images/load", body, content_type="application/x-tar")
    with running_service(store) as svc:
        sent = len(load) - len(body) // 2
        got = kill_midway(svc, load, lambda: time.sleep(0.3) is None, send=sent)
    assert got == b""   # nothing was answered: the body never ended
    _after_crash(store)
    _load_again(store, body)


def test_kill_while_the_archive_is_loaded(store: Forklift, archive: Path) -> None:
    """The whole body sent; killed as soon as the service writes to the store's tmp/ (the
    scratch copy of the body, then the layer being extracted)."""
    body = archive.read_bytes()
    load = request_bytes("POST", "/v1.41/images/load", body, content_type="application/x-tar")
    before = set(tmp_entries(store.root))
    with running_service(store) as svc:
        got = kill_midway(svc, load, lambda: set(tmp_entries(store.root)) - before != set())
    assert b"Loaded image" not in got
    _after_crash(store)
    _load_again(store, body)


# ----------------------------------------------------------------------------- build

SLOW_RUN = b"FROM busybox\nCOPY big /big\nRUN sleep 30\n"
QUICK_RUN = b"FROM busybox\nCOPY big /big\nRUN true\n"


def _context(dockerfile: bytes, big: bytes) -> bytes:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("big", big)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def build_store(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as s:
        s("import", "-c", "ENV PATH=/bin", str(busybox_tar), "busybox:latest")
        yield s


def _containers(root: Path, state: str | None = None) -> list[str]:
    return [cid for cid, _ in _container_pids(root, state)]


def _container_pids(root: Path, state: str | None = None) -> list[tuple[str, int | None]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{root}/forklift.db?mode=ro", uri=True, timeout=5)
    try:
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        return [(r[0], r[1]) for r in conn.execute(f"SELECT id, pid FROM containers {where}", args)]
    finally:
        conn.close()


def _build_request(body: bytes, tag: str) -> bytes:
    return request_bytes("POST", f"/v1.41/build?networkmode=none&t={tag}", body,
                         content_type="application/x-tar")


def _after_build_crash(store: Forklift, tag: str) -> None:
    """No corruption, no image with the tag; once the service starts again (it removes a
    killed build's RUN container, as the next CLI build would) the store checks clean:
    no build container, no scratch and nothing mounted under the store."""
    from support.mounts import mounts_under

    assert_no_corruption(store.root)
    assert store("image", "inspect", tag, check=False).code != 0
    with running_service(store) as again:
        assert again.request("GET", "/_ping").status == 200
    store("system", "check")
    assert _containers(store.root) == []
    assert tmp_entries(store.root) == []
    assert mounts_under(store.root) == []


def _build_again(store: Forklift, body: bytes, tag: str) -> None:
    with running_service(store) as again:
        answer = again.request("POST", f"/v1.41/build?networkmode=none&t={tag}", body,
                               headers={"Content-Type": "application/x-tar"}, timeout=120)
        assert answer.status == 200, answer
        assert f"Successfully tagged {tag}".encode() in answer.body, answer.body[-500:]
    assert store.out("run", "--rm", "--network", "none", tag, "wc", "-c", "/big") \
        .split()[0] == "3000000"
    assert _containers(store.root) == []
    assert_clean(store.root)


def test_kill_while_the_build_context_is_sent(build_store: Forklift) -> None:
    body = _context(QUICK_RUN, os.urandom(3_000_000))
    build = _build_request(body, "killed:ctx")
    with running_service(build_store) as svc:
        got = kill_midway(svc, build, lambda: any("-api-upload-" in e
                                                  for e in tmp_entries(build_store.root)),
                          send=len(build) - len(body) // 2)
    assert got == b""   # the body never ended: nothing was answered
    _after_build_crash(build_store, "killed:ctx")
    _build_again(build_store, body, "killed:ctx")


def test_kill_while_a_run_step_runs(build_store: Forklift) -> None:
    big = os.urandom(3_000_000)
    build = _build_request(_context(SLOW_RUN, big), "killed:run")
    running: list[tuple[str, int | None]] = []

    def step_runs() -> bool:
        running[:] = _container_pids(build_store.root, "running")
        return bool(running)

    with running_service(build_store) as svc:
        got = kill_midway(svc, build, step_runs)
    assert got.startswith(b"HTTP/1.1 200"), got[:300]
    pid = running[0][1]
    assert pid is not None
    deadline = time.monotonic() + HANG   # the step's process dies with the service's runc
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"the RUN step's process {pid} outlived the service"
    assert {"stream": "Step 3/3 : RUN sleep 30"} in _stream_lines(got)
    assert not any("Successfully" in str(m) for m in _stream_lines(got))
    _after_build_crash(build_store, "killed:run")
    _build_again(build_store, _context(QUICK_RUN, big), "killed:run")
