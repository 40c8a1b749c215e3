"""Threads for the run hot path without importing threading (~1 ms of every `run`:
its own module, _weakrefset and the bookkeeping it starts with): `start` runs a
function in a new thread and returns a handle that waits for it. The thread inherits
the caller's signal mask, as threading's do; an exception it raises is reported on
stderr by sys.unraisablehook (threading's excepthook prints the same traceback).
Such threads are not counted by `threading.active_count`: every caller joins its
thread before it returns."""

from __future__ import annotations

import _thread

TYPE_CHECKING = False  # not typing's: its import is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable


class Started:
    """A started thread; `join` returns once its function has returned or raised."""

    __slots__ = ("_running",)

    def __init__(self) -> None:
        self._running = _thread.allocate_lock()
        self._running.acquire()

    def join(self) -> None:
        with self._running:
            pass


def start(target: Callable[..., object], *args: object) -> Started:
    started = Started()

    def body() -> None:
        try:
            target(*args)
        finally:
            started._running.release()

    _thread.start_new_thread(body, ())
    return started
