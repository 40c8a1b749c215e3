"""A command on a pseudo-terminal, and the screen a terminal shows for what it wrote.

``Terminal(argv, env)`` runs ``argv`` with its stderr (and stdout, unless ``stdout_pipe``)
on the slave of a new pty of ``columns`` × ``rows``; ``expect(regex)`` reads the master
until the raw output matches, ``finish()`` until EOF, then waits for the exit status.
``render(raw)`` replays the output as a terminal would (cursor moves, line erasing,
carriage returns, wrapping at the width) and gives the lines, scrollback included, and
whether the cursor was left visible."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\x1b\[([0-9;?]*)([ -/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|[\s\S]")


def set_size(fd: int, rows: int, cols: int) -> None:
    """The window size of the terminal ``fd`` is (or is the master of)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_pty(fd: int, out: bytes, want: bytes | None, deadline: float) -> bytes:
    """``out`` and what the pty master ``fd`` gives until ``want`` is in it, or (``want``
    None) until its end; at most until ``deadline`` (``time.monotonic``)."""
    while (want is None or want not in out) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


@dataclass
class Screen:
    lines: list[str]
    cursor_visible: bool

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def render(raw: str, columns: int = 100) -> Screen:
    grid: list[list[str]] = [[]]
    row = col = 0
    visible = True

    def put(ch: str) -> None:
        nonlocal row, col
        if col >= columns:   # the terminal wraps before the character after the last column
            row, col = row + 1, 0
        while len(grid) <= row:
            grid.append([])
        line = grid[row]
        line.extend(" " * (col + 1 - len(line)))
        line[col] = ch
        col += 1

    for m in _TOKEN.finditer(raw):
        text = m.group(0)
        if m.group(3):
            params, final = m.group(1), m.group(3)
            n = int(params) if params.isdigit() else 1
            if final == "A":
                row = max(0, row - n)
            elif final == "B":
                row += n
            elif final == "C":
                col += n
            elif final == "D":
                col = max(0, col - n)
            elif final == "G":
                col = n - 1
            elif final == "K" and row < len(grid):
                line = grid[row]
                grid[row] = [] if params == "2" else (line[:col] if params in ("", "0") else
                                                      [" "] * col + line[col + 1:])
            elif final in "hl" and params == "?25":
                visible = final == "h"
        elif text == "\r":
            col = 0
        elif text == "\n":   # as the tty's output processing (onlcr) makes it: CR LF
            row, col = row + 1, 0
            while len(grid) <= row:
                grid.append([])
        elif text == "\b":
            col = max(0, col - 1)
        elif text.startswith("\x1b") or (len(text) == 1 and ord(text) < 0x20):
            continue
        else:
            put(text)
    lines = ["".join(line).rstrip() for line in grid]
    while lines and not lines[-1]:
        lines.pop()
    return Screen(lines, visible)


class Terminal:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, columns: int = 100,
                 rows: int = 40, stdout_pipe: bool = False) -> None:
        self.columns = columns
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        try:
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, env=dict(env), stderr=slave,
                stdout=subprocess.PIPE if stdout_pipe else slave)
        finally:
            os.close(slave)
        self.raw = b""
        self.eof = False

    def _read(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            self.kill()
            raise AssertionError(f"timed out; the terminal shows:\n{self.screen().text}")
        ready, _, _ = select.select([self.master], [], [], min(left, 1.0))
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError as exc:   # EIO: every slave end is closed
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if chunk:
            self.raw += chunk
        else:
            self.eof = True

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read until the raw output (escape sequences included) matches ``pattern``."""
        found = self.wait_for(lambda text: re.search(pattern, text), pattern, timeout)
        assert isinstance(found, re.Match)
        return found

    def wait_for(self, pred: Callable[[str], object], what: str, timeout: float = 60) -> object:
        """Read until ``pred(raw output so far)`` is true; returns what it returned."""
        deadline = time.monotonic() + timeout
        while True:
            found = pred(self.text)
            if found:
                return found
            if self.eof:
                raise AssertionError(f"{what} never shown:\n{self.screen().text}")
            self._read(deadline)

    def finish(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._read(deadline)
        self._close_master()
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))

    def close(self) -> None:
        """Stop the command (``kill``) and close the terminal; for a test's teardown too."""
        self.kill()
        self._close_master()

    def _close_master(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def kill(self) -> None:
        """Stop the command if it still runs: SIGTERM first (a build then removes its
        container), SIGKILL if that is not enough."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        deadline = time.monotonic() + 30
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._drain()   # a command blocked on a full terminal would never exit
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _drain(self) -> None:
        if self.master < 0 or self.eof:
            time.sleep(0.05)
            return
        if select.select([self.master], [], [], 0.1)[0]:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:
                self.eof = True

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")

    def screen(self) -> Screen:
        return render(self.text, self.columns)
