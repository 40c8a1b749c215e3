"""Whether a process is still there: the liveness test behind stale scratch space,
ghost containers and dead monitors."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie (killed, not yet reaped)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
