"""Pull/push progress: rich bars on a terminal, Docker's plain lines otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO


class Reporter:
    """Plain-line reporter (also the base: ``quiet`` prints only final lines)."""

    def __init__(self, quiet: bool = False, out: TextIO | None = None) -> None:
        self.quiet = quiet
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def message(self, text: str) -> None:
        if not self.quiet:
            self._print(text)

    def layer(self, short: str, status: str) -> None:
        self.message(f"{short}: {status}")

    def start(self, short: str, total: int, verb: str) -> None:
        """A transfer begins (bars only)."""

    def advance(self, short: str, n: int) -> None:
        """Bytes moved (bars only)."""

    def final(self, text: str) -> None:
        self._print(text)

    def close(self) -> None:
        """Release the terminal."""


class RichReporter(Reporter):
    """One bar per layer while it moves; status lines scroll above the bars."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__(False, out)
        # rich.progress costs ~50 ms to import: only terminals showing bars pay for it
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  DownloadColumn(), TransferSpeedColumn(),
                                  console=Console(file=self.out), transient=True)
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def message(self, text: str) -> None:
        self._progress.console.print(text, markup=False, highlight=False)

    def start(self, short: str, total: int, verb: str) -> None:
        with self._lock:
            self._tasks[short] = self._progress.add_task(f"{short}: {verb}", total=total)

    def advance(self, short: str, n: int) -> None:
        task = self._tasks.get(short)
        if task is not None:
            self._progress.update(task, advance=n)

    def layer(self, short: str, status: str) -> None:
        with self._lock:
            task = self._tasks.pop(short, None)
        if task is not None:
            self._progress.remove_task(task)
            self._progress.refresh()
        self.message(f"{short}: {status}")

    def final(self, text: str) -> None:
        self.message(text)

    def close(self) -> None:
        self._progress.stop()


def make_reporter(quiet: bool = False) -> Reporter:
    """Bars on a terminal (unless ``quiet``), plain lines otherwise."""
    if not quiet and sys.stdout.isatty():
        return RichReporter()
    return Reporter(quiet)
