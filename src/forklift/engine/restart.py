"""Restart policies (``--restart``), as the container's monitor applies them.

There is no daemon: the monitor of a detached container (`forklift.engine.monitor`)
outlives each run and decides, when the container exits, whether to run it again:
``always`` and ``unless-stopped`` always, ``on-failure[:N]`` on a non-zero exit (at
most N times), ``no`` never. Between two runs it waits Docker's backoff (100 ms,
doubling, at most a minute; back to 100 ms after a run of 10 s or more) with the
container recorded as ``restarting`` under its own pid.

A user's ``stop``, ``kill`` (with SIGKILL or the stop signal) or ``rm -f`` ends the
loop: it leaves a marker file in the container's directory, under a lock the monitor
also holds from its check of the marker until the container's process runs, so the
signal either finds the process or the monitor finds the marker. ``start`` removes
the marker and the restart count.

After a reboot no monitor is left and nothing restarts anything: ``always`` and
``unless-stopped`` are the same here (Docker tells them apart only when its daemon
starts). Containers that should come back after a reboot need a unit of the host's
init system running ``forklift start``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0
_STOP_MARKER = "stop-requested"
_LOCK = "restart.lock"
_COUNT = "restart-count"
_LAST_EXIT = "last-exit"


def policy(host_config: dict[str, Any]) -> tuple[str, int]:
    """The container's policy name and maximum retry count (0: no maximum)."""
    p = host_config.get("RestartPolicy") or {}
    return str(p.get("Name") or "no"), int(p.get("MaximumRetryCount") or 0)


def should_restart(host_config: dict[str, Any], code: int, count: int) -> bool:
    """Whether a run that ended with ``code``, after ``count`` restarts, is run again."""
    name, maximum = policy(host_config)
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return code != 0 and (maximum == 0 or count < maximum)
    return False


def next_delay(delay: float, ran_for: float) -> float:
    """The wait before the next restart, given the last one and how long the run lasted."""
    if ran_for >= RESET_AFTER:
        return FIRST_DELAY
    return min(delay * 2, MAX_DELAY)


def _path(store: Store, container_id: str, name: str) -> str:
    return os.path.join(store.container_path(container_id), name)


@contextlib.contextmanager
def locked(store: Store, container_id: str) -> Iterator[None]:
    """Hold the container's restart lock (see the module docstring)."""
    try:
        fd = os.open(_path(store, container_id, _LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # its directory is gone: nothing left to restart
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def request_stop(store: Store, container_id: str) -> None:
    """Mark the container stopped by its user: its monitor restarts it no more."""
    with contextlib.suppress(OSError):
        os.close(os.open(_path(store, container_id, _STOP_MARKER), os.O_WRONLY | os.O_CREAT,
                         0o600))


def stop_requested(store: Store, container_id: str) -> bool:
    return os.path.exists(_path(store, container_id, _STOP_MARKER))


def count(store: Store, container_id: str) -> int:
    """``RestartCount``: how often the monitor restarted it since its last ``start``."""
    try:
        with open(_path(store, container_id, _COUNT)) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def set_count(store: Store, container_id: str, n: int) -> None:
    with contextlib.suppress(OSError), open(_path(store, container_id, _COUNT), "w") as f:
        f.write(str(n))


def set_last_exit(store: Store, container_id: str, code: int) -> None:
    """Keep the exit code of a run the monitor is about to restart (the record's is
    cleared when the next run starts): what a ``wait`` that missed the gap returns."""
    with contextlib.suppress(OSError), open(_path(store, container_id, _LAST_EXIT), "w") as f:
        f.write(str(code))


def last_exit(store: Store, container_id: str) -> int:
    try:
        with open(_path(store, container_id, _LAST_EXIT)) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def reset(store: Store, container_id: str) -> None:
    """A user's ``start``: no stop requested, no restarts counted."""
    for name in (_STOP_MARKER, _COUNT):
        with contextlib.suppress(OSError):
            os.unlink(_path(store, container_id, name))
