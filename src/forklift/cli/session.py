"""What every entry point shares without importing click: the stores this process opened
and the one way out (`leave`). `cli.main` (click) and `cli.fast` (the hot commands without
click) both leave through it; the command bodies never exit the process themselves, so an
in-process caller of the click group (an API service) keeps running."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any, NoReturn

OPENED: list[Any] = []  # the stores this process opened, closed by `leave`


class State:
    """Per-invocation options shared by all commands, on both entry points (the store is
    opened on first use)."""

    def __init__(self, root: str | None) -> None:
        self.root = root
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = open_store(self.root)
        return self._store


def open_store(root: str | None) -> Any:
    """The store at ``root`` (None: FORKLIFT_ROOT's or the default), opened and recovered;
    closed by `leave`."""
    from forklift.errors import ForkliftError

    if os.geteuid() != 0:
        raise ForkliftError("forklift must run as root: overlayfs mounts, runc and layer"
                            " ownership need it (rootless mode is not supported)")
    from forklift.store import open_store as open_

    store = open_(root)
    OPENED.append(store)
    return store


def leave(code: Any) -> NoReturn:
    """Exit with ``code`` as ``sys.exit`` would, without the interpreter's teardown, which
    frees every module one by one (some 7 ms of CPU, a tenth of a short command's Python):
    atexit handlers run, the stores are closed, output is flushed, then ``os._exit``.
    While another thread still runs, the ordinary exit, which waits for it."""
    # not imported here: a command that never loaded threading started no thread with it
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"), as the interpreter reports it
        print(code, file=sys.stderr)
        status = 1
    import atexit

    atexit._run_exitfuncs()
    for store in OPENED:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - leaving anyway: SQLite recovers an unclosed WAL
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            pass
    os._exit(status & 0xFF)
