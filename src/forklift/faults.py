"""Named crash points for the crash-injection tests.

``FORKLIFT_CRASH_AT=name`` makes the process kill itself (SIGKILL, no cleanup)
when it reaches ``checkpoint(name)``; unset, a checkpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("FORKLIFT_CRASH_AT")


def checkpoint(name: str) -> None:
    if _TARGET is not None and _TARGET == name:
        os.kill(os.getpid(), signal.SIGKILL)
