"""Whether a process is still there: the liveness test behind stale scratch space,
ghost containers and dead monitors."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie (killed, not yet reaped). One read of
    its /proc stat file (three system calls: ``ps`` asks this of every running container)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:  # no /proc to read: whether it exists is all there is to know
        return _exists(pid)
    try:
        stat = os.read(fd, 4096)
    except OSError:  # it went between the open and the read
        return False
    finally:
        os.close(fd)
    try:
        return stat.rpartition(b")")[2].split()[0] != b"Z"
    except IndexError:
        return False


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        pass
    return True
