"""What the monitor adds to a container: ``--init`` (tini as PID 1)."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.root


def test_init_is_pid_1_and_reaps_orphans(fl: Any, name: str) -> None:
    cmdline = fl.out("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline")
    assert cmdline.split("\0")[:4] == ["/sbin/docker-init", "--", "cat", "/proc/1/cmdline"]
    # the orphaned sleep is reparented to PID 1: tini reaps it, no zombie is left
    script = "(sleep 0.1 &); sleep 1; cat /proc/[0-9]*/stat"
    stats = fl.out("run", "--rm", "--init", "busybox", "sh", "-c", script).splitlines()
    assert len(stats) >= 2
    assert all(line.split(") ")[1].split()[0] != "Z" for line in stats), stats


def test_init_forwards_signals(fl: Any, name: str) -> None:
    # sleep as PID 1 would ignore SIGTERM (no handler) and stop would wait its 20 s;
    # under tini it gets the signal and dies of it
    fl("run", "-d", "--init", "--name", name, "busybox", "sleep", "100")
    cfg = fl.inspect(name)
    assert cfg["HostConfig"]["Init"] is True
    t0 = time.monotonic()
    fl("stop", "-t", "20", name)
    assert time.monotonic() - t0 < 10
    assert fl.inspect(name)["State"]["ExitCode"] == 143
    fl("rm", name)
