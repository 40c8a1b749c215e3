"""procs.pid_alive: a running process is alive; a zombie, a reaped one and no pid are not."""

from __future__ import annotations

import os
import subprocess
import time

from forklift.procs import pid_alive


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rpartition(b")")[2].split()[0].decode()


def test_running_zombie_and_reaped() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert pid_alive(proc.pid)
    finally:
        proc.kill()
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "Z":  # killed, not yet reaped: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not pid_alive(proc.pid)
    proc.wait()
    assert not pid_alive(proc.pid)


def test_no_pid_and_this_process() -> None:
    assert not pid_alive(None)
    assert not pid_alive(0)
    assert pid_alive(os.getpid())
    assert pid_alive(1)  # someone else's process: alive all the same
