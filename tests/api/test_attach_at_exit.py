"""An attach that reaches a container's monitor after the container's process ended, but
before the monitor noticed: Compose 1.29's ``run`` (dockerpty) starts the container, then
attaches, then starts it again if it no longer runs. The attach must not be taken by the
ending run (whose output is already gone): it waits for the run's end to be recorded and
then for the next start, which carries the output."""

from __future__ import annotations

import os
import signal
import struct
import time
from pathlib import Path

import pytest
from support import Forklift
from support.service import Service

pytestmark = pytest.mark.root


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        kind, size = struct.unpack(">BxxxI", data[:8])
        out.append((kind, data[8:8 + size]))
        data = data[8 + size:]
    return out


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def test_attach_while_the_monitor_has_not_seen_the_exit(service: Service, fl: Forklift,
                                                          name: str) -> None:
    from forklift.store import containers, open_store

    fl("create", "--name", name, "busybox", "sh", "-c", "sleep 1; echo hi")
    try:
        assert service.request("POST", f"/v1.41/containers/{name}/start").status == 204
        store = open_store(str(fl.root))
        try:
            rec = containers.resolve(store, name)
            init_pid = int(Path(store.container_path(rec.id), "init.pid").read_text())
        finally:
            store.close()
        monitor = rec.pid
        assert monitor is not None
        os.kill(monitor, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 20
            while not _zombie(init_pid):  # it wrote "hi" to a pipe nobody reads, and ended
                assert time.monotonic() < deadline, "the container never ended"
                time.sleep(0.05)
            attach = service.socket_connection()
            attach.sendall(f"POST /v1.41/containers/{name}/attach?stream=1&stdout=1&stderr=1"
                           " HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: Upgrade\r\n"
                           "Upgrade: tcp\r\n\r\n".encode())
            time.sleep(0.5)  # the service's connection to the monitor waits to be taken
        finally:
            os.kill(monitor, signal.SIGCONT)
        with attach:
            rest = service.read_upgrade(attach)
            # as dockerpty: start it again unless it runs (the first run's end is recorded)
            state = service.request("GET", f"/v1.41/containers/{name}/json").json()["State"]
            assert not state["Running"], state
            assert service.request("POST", f"/v1.41/containers/{name}/start").status == 204
            while chunk := attach.recv(65536):
                rest += chunk
        assert _frames(rest) == [(1, b"hi\n")]
    finally:
        fl("rm", "-f", name, check=False)
