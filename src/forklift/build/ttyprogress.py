"""The live display of ``build --progress tty``: BuildKit's tty mode, drawn with rich.

    [+] Building 3.2s (4/5)
     => [1/5] FROM busybox                                                  0.0s
     => CACHED [2/5] COPY . /src                                            0.0s
     => [3/5] RUN make                                                      1.2s
     => => # cc -c main.c

A header, one line per step (its duration; a running step's ticking) and the last lines
of each running step's output under it, folded away when the step ends. One thread draws
(ten frames a second) and is the only writer to the terminal while the display lasts; the
steps, from any thread, only change what it draws, so an interrupt never leaves half a
frame. When a step fails the display ends with a last frame, then the step, its last
lines and its error follow as plain mode prints them; so does every event after that.
"""

from __future__ import annotations

import collections
import re
import signal
import threading
import time
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from forklift.build.progress import SIGNALS, TAIL_LINES, Progress, Step

SHOWN_LINES = 6      # a running step's last output lines shown under it, as BuildKit shows
FRAME = 0.1          # seconds between frames
RUNNING, DONE, CACHED, ERROR, CANCELED = "", "DONE", "CACHED", "ERROR", "CANCELED"
_STYLES = {DONE: "blue", CACHED: "blue", "FINISHED": "blue", ERROR: "red", CANCELED: "red"}
# Escape sequences of a step's output (colours, cursor moves, titles) would draw on the
# display itself: dropped, as are the other control characters.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROLS = {c: None for c in [*range(0x20), 0x7f]}


def console_on(stream: IO[str]) -> Console:
    """A console drawing on ``stream``, a terminal or not (``--progress tty`` into a file
    draws there, as asked)."""
    return Console(file=stream, force_terminal=True, highlight=False)


def visible(text: str) -> str:
    """What a terminal would leave of an output line: the part after its last carriage
    return (progress meters rewrite their line), without escapes and control characters."""
    parts = [part for part in text.split("\r") if part]
    shown = _ESCAPES.sub("", parts[-1] if parts else "")
    return shown.expandtabs(8).translate(_CONTROLS)


class TtyStep(Step):
    """A step as the display draws it (and prints it once the display has ended)."""

    progress: TtyProgress

    def __init__(self, progress: TtyProgress, number: int, label: str) -> None:
        super().__init__(progress, number, label)
        self.ended: float | None = None
        self.status = RUNNING
        self.timed: collections.deque[tuple[float, str]] = collections.deque(maxlen=TAIL_LINES)
        self.announced = False   # its header printed in plain form

    def elapsed(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started

    def line(self, text: str) -> None:
        at = time.monotonic() - self.started
        with self.progress.lock:
            self.tail.append(text)
            if not self._plain():
                self.timed.append((at, text))
                return
            self.progress.write(f"#{self.number} {at:.3f} {text}")

    def cached(self) -> None:
        self._finish(CACHED, "CACHED")

    def done(self) -> None:
        self._finish(DONE, f"DONE {time.monotonic() - self.started:.1f}s")

    def error(self, text: str) -> None:
        status = CANCELED if text == "canceled" else ERROR   # running.run's word for Ctrl-C
        with self.progress.lock:
            self.status, self.ended = status, time.monotonic()
        self.progress.stop(status)   # its last frame shows this step failed
        with self.progress.lock:
            self._plain()
            self.progress.write(f"#{self.number} ERROR: {text}")

    def _finish(self, status: str, plain: str) -> None:
        with self.progress.lock:
            self.status, self.ended = status, time.monotonic()
            if self._plain():
                self.progress.write(f"#{self.number} {plain}")

    def _plain(self) -> bool:
        """False while the display draws this step; after it, True, once this step's header
        and the last lines the display had are printed as plain mode prints them."""
        if self.progress.drawing:
            return False
        if not self.announced:
            self.announced = True
            self.progress.write(f"#{self.number} {self.label}")
            for at, text in self.timed:
                self.progress.write(f"#{self.number} {at:.3f} {text}")
        return True


class TtyProgress(Progress):
    """The live display on ``console``; notes outside it, and the classic builder's last
    lines (``Successfully built``), go to ``out`` as plain mode writes them."""

    def __init__(self, out: IO[str], console: Console) -> None:
        super().__init__(out)
        self.console = console
        self.lock = threading.RLock()
        self.began = time.monotonic()
        self.steps: list[TtyStep] = []
        self._notes: list[str] = []
        self._state = "idle"        # → drawing → ended
        self._outcome = ""          # the header's last word on the last frame
        self._final = False         # the last frame: every step, none of their output
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def drawing(self) -> bool:
        return self._state == "drawing"

    def write(self, text: str) -> None:
        """A plain line on the display's terminal (once the display has ended)."""
        with self.lock:
            self.console.file.write(text + "\n")
            self.console.file.flush()

    def step(self, label: str) -> TtyStep:
        with self.lock:
            self._number += 1
            step = TtyStep(self, self._number, label)
            self.steps.append(step)
            if self._state == "idle":
                self._start()
            step._plain()
        return step

    def _write(self, text: str) -> None:
        """A note (and any plain line of ``Step``'s own): above the display while it draws
        (its thread prints it), else on ``out`` as plain mode writes it."""
        with self.lock:
            if self.drawing:
                self._notes.append(text)
                return
        super()._write(text)

    def close(self, failure: type[BaseException] | None = None) -> None:
        outcome = "FINISHED" if failure is None else (
            CANCELED if issubclass(failure, KeyboardInterrupt) else ERROR)
        with self.lock:
            now = time.monotonic()
            for step in self.steps:
                if step.status == RUNNING and failure is not None:
                    step.status, step.ended = outcome, now
        self.stop(outcome)

    def stop(self, outcome: str) -> None:
        """End the display: a last frame showing every step, the cursor shown again."""
        with self.lock:
            if self._state == "idle":
                self._state = "ended"
            thread = self._thread if self._state == "drawing" else None
            if thread is not None and not self._stop.is_set():
                self._outcome = outcome   # the first to stop it says why
        self._stop.set()
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        self._state = "drawing"
        # Not a daemon: an interrupt that cuts stop() short still gets a whole last frame.
        self._thread = threading.Thread(target=self._draw, name="build-display")
        # Signals are for the main thread and the one waiting for runc (see OutputPipe).
        old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self._thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _draw(self) -> None:
        live = Live(console=self.console, get_renderable=self.frame, auto_refresh=False,
                    redirect_stdout=False, redirect_stderr=False)
        try:
            with live:
                while True:
                    self._print_notes()
                    live.refresh()
                    # the main thread gone without stop(): end anyway, or the process hangs
                    if self._stop.wait(FRAME) or not threading.main_thread().is_alive():
                        break
                self._print_notes()
                with self.lock:
                    self._final = True
        except OSError:
            pass   # the terminal went away: the build goes on without its display
        finally:
            with self.lock:
                self._state = "ended"

    def _print_notes(self) -> None:
        with self.lock:
            notes, self._notes = self._notes, []
        for note in notes:
            self.console.print(Text(note))

    def frame(self) -> Table:
        """What the display shows now: the header and the steps, cut to the terminal's
        height (the earliest finished steps go first) until the last frame."""
        now = time.monotonic()
        with self.lock:
            final = self._final
            done = sum(step.status in (DONE, CACHED) for step in self.steps)
            header = f"[+] Building {now - self.began:.1f}s ({done}/{len(self.steps)})"
            if final:
                header += f" {self._outcome}"
            groups = [(step.status != RUNNING, self._rows(step, now, final)) for step in self.steps]
        rows = [(Text(header, style=_STYLES.get(self._outcome, "") if final else ""), Text())]
        rows += _fit(groups, max(self.console.size.height - 2, 1)) if not final else \
            [row for _, group in groups for row in group]
        table = Table.grid(expand=True, padding=(0, 1))
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column(justify="right", no_wrap=True)
        for left, right in rows:
            table.add_row(left, right)
        return table

    @staticmethod
    def _rows(step: TtyStep, now: float, final: bool) -> list[tuple[Text, Text]]:
        style = _STYLES.get(step.status, "")
        left = Text(" => ", style=style)
        if step.status not in (RUNNING, DONE):
            left.append(f"{step.status} ", style=style)
        left.append(visible(step.label), style=style)
        rows = [(left, Text(f"{step.elapsed(now):.1f}s", style=style))]
        if step.status == RUNNING and not final:
            rows += [(Text(f" => => # {visible(text)}", style="dim"), Text())
                     for text in list(step.tail)[-SHOWN_LINES:]]
        return rows


def _fit(groups: list[tuple[bool, list[tuple[Text, Text]]]], height: int) -> list[tuple[Text, Text]]:
    """The rows of ``groups`` (finished?, [the step's row, its output lines]) in at most
    ``height`` lines: finished steps leave from the top first, then the running steps'
    earliest output lines, so that every running step keeps its own row if it can."""
    total = sum(len(rows) for _, rows in groups)
    kept = []
    for finished, rows in groups:
        if finished and total > height:
            total -= len(rows)
            continue
        kept.append(rows)
    for rows in kept:
        while len(rows) > 1 and total > height:
            del rows[1]
            total -= 1
    return [row for rows in kept for row in rows][-height:]
