"""Build output in the shape of BuildKit's plain progress (``#2 [2/3] RUN echo hi``,
the step's output lines, ``#2 CACHED``, ``#2 DONE 0.4s``), or nothing (quiet). The live
display of ``--progress tty`` (``build/ttyprogress.py``, drawn with rich) is a second
implementation of the same interface; ``build/display.py`` chooses."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from types import TracebackType
from typing import IO

TAIL_LINES = 10
SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD}


class Progress:
    def __init__(self, out: IO[str] | None, quiet: bool = False) -> None:
        self.out = None if quiet else out
        self._number = 0
        self._lock = threading.RLock()

    def _write(self, text: str) -> None:
        if self.out is not None:
            with self._lock:
                self.out.write(text + "\n")
                self.out.flush()

    def step(self, label: str) -> Step:
        with self._lock:   # stages built at once number their steps from one count
            self._number += 1
            self._write(f"#{self._number} {label}")
            return Step(self, self._number, label)

    def note(self, text: str) -> None:
        self._write(text)

    def plan(self, steps: int) -> None:
        """How many instruction steps the build will show (a display that counts them
        needs it; this one does not)."""

    def built(self, image_id: str) -> None:
        """The build's image, before its "Successfully built" note."""

    def close(self, failure: type[BaseException] | None = None) -> None:
        """The build is over (``failure``: the exception that ended it); plain output has
        nothing to end."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(kind)


class Step:
    """One numbered step; its lines are prefixed with its number and elapsed time."""

    def __init__(self, progress: Progress, number: int, label: str) -> None:
        self.progress, self.number, self.label = progress, number, label
        self.started = time.monotonic()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.image_id: str | None = None   # what the step made or found cached, once known

    def container(self, container_id: str) -> None:
        """The RUN container this step runs in (shown by the classic display only)."""

    def line(self, text: str) -> None:
        self.tail.append(text)
        self.progress._write(f"#{self.number} {time.monotonic() - self.started:.3f} {text}")

    def cached(self) -> None:
        self.progress._write(f"#{self.number} CACHED")

    def done(self) -> None:
        self.progress._write(f"#{self.number} DONE {time.monotonic() - self.started:.1f}s")

    def error(self, text: str) -> None:
        self.progress._write(f"#{self.number} ERROR: {text}")


class OutputPipe:
    """A pipe a container writes its output into; a thread turns it into step lines."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self._read, self._write_fd = os.pipe()
        self._thread = threading.Thread(target=self._pump, name="build-output", daemon=True)
        # Signals are for the main thread and the one waiting for runc (sigwaitinfo), never
        # this one: a thread inherits its creator's mask.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def fileno(self) -> int:
        return self._write_fd

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self.step.line(raw.decode("utf-8", "replace").rstrip("\r"))
        if pending:
            self.step.line(pending.decode("utf-8", "replace"))
        os.close(self._read)

    def close(self) -> None:
        """Close our end and wait for the last lines."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
        self._thread.join()
