"""Terminals: receive a pty master from the runtime (a console socket) and shuttle bytes.

The runtime allocates the pseudo-terminal inside the container and sends its master
side over a unix socket with SCM_RIGHTS before its call returns (the connection and
the descriptor wait in the socket's queue). The caller owns the master from then on:
it copies the user's keystrokes in and the container's output out, puts the
user's terminal in raw mode (so Ctrl-C travels as a byte and the container's
line discipline turns it into SIGINT) and forwards window size changes.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import time
import tty as tty_mod

from forklift.engine.logfile import write_all
from forklift.errors import RuntimeFailure

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

CONSOLE_SOCKET = "console.sock"
# An attached run with no terminal of its own (the API service's child) takes its size
# from this file in its bundle, read on SIGWINCH; the service writes it on a resize.
SIZE_FILE = "console.size"
PR_SET_CHILD_SUBREAPER = 36
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT)


def bind_in_dir(directory: str, name: str) -> socket.socket:
    """A listening unix socket ``directory/name``; bound through /proc/self/fd so long
    store paths never hit the 108-byte sun_path limit."""
    path = os.path.join(directory, name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(f"/proc/self/fd/{dirfd}/{name}")
    finally:
        os.close(dirfd)
    os.chmod(path, 0o600)
    sock.listen(4)
    return sock


def connect_in_dir(directory: str, name: str) -> socket.socket:
    """Connect to the unix socket ``directory/name`` (long paths allowed, as `bind_in_dir`)."""
    dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(f"/proc/self/fd/{dirfd}/{name}")
    finally:
        os.close(dirfd)
    return sock


def take_master(listener: socket.socket) -> int:
    """The pty master the runtime sent to ``listener`` during the call that just returned;
    RuntimeFailure if it sent none."""
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        raise RuntimeFailure("the runtime sent no terminal") from None
    with conn:
        conn.setblocking(True)
        fds = array.array("i")
        _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        raise RuntimeFailure("the runtime sent no terminal")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal ``fd``, None if it is none."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def read_size_file(path: str) -> tuple[int, int] | None:
    """(rows, columns) from a file of two numbers (`write_size_file`), None without one."""
    try:
        with open(path) as f:
            rows, cols = (int(n) for n in f.read().split())
    except (OSError, ValueError):
        return None
    return rows, cols


def write_size_file(path: str, rows: int, cols: int) -> None:
    """Replace the size file whole (renamed into place: a reader never sees half of it)."""
    import threading  # the service's worker threads may resize at once

    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{rows} {cols}\n")
    os.replace(tmp, path)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """Resize the terminal ``fd`` (the container's side sees SIGWINCH); errors ignored."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@contextlib.contextmanager
def raw_terminal(fd: int) -> Any:
    """Put ``fd`` in raw mode if it is a terminal; restore it afterwards."""
    if not os.isatty(fd):
        yield False
        return
    old = termios.tcgetattr(fd)
    try:
        tty_mod.setraw(fd, termios.TCSANOW)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _size_reader(in_fd: int | None, out_fd: int,
                 size_file: str | None) -> Callable[[], tuple[int, int] | None] | None:
    """Where the window size comes from: the user's terminal, else ``size_file``."""
    source = in_fd if in_fd is not None and os.isatty(in_fd) else (
        out_fd if os.isatty(out_fd) else None)
    if source is not None:
        return lambda: get_winsize(source)
    if size_file is not None:
        return lambda: read_size_file(size_file)
    return None


def shuttle(master: int, in_fd: int | None, out_fd: int, done: Callable[[], bool],
            tee: Callable[[bytes], None] | None = None, size_file: str | None = None) -> None:
    """Copy in_fd -> master and master -> out_fd (and ``tee``) until the container side closes.

    Window size follows the user's terminal, or without one ``size_file``, on SIGWINCH.
    ``done`` says whether the process on the other side has exited (then the master is
    drained and we return).
    """
    read_size = _size_reader(in_fd, out_fd, size_file)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)

    def on_winch(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(wake_w, b"w")

    # the handler first: a size written before it is read below, one after it wakes us
    old_handler = signal.signal(signal.SIGWINCH, on_winch) if read_size is not None else None
    if read_size is not None and (size := read_size()):
        set_winsize(master, *size)
    try:
        reading_input = in_fd is not None
        exited_at: float | None = None
        while True:
            watch = [master, wake_r] + ([in_fd] if reading_input and in_fd is not None else [])
            try:
                ready, _, _ = select.select(watch, [], [], 0.1)
            except InterruptedError:
                continue
            if wake_r in ready:
                os.read(wake_r, 512)
                if read_size is not None and (size := read_size()):
                    set_winsize(master, *size)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    return
                if tee is not None:
                    tee(data)
                with contextlib.suppress(BrokenPipeError):
                    write_all(out_fd, data)
            if reading_input and in_fd is not None and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    reading_input = False
                    if not os.isatty(in_fd):
                        with contextlib.suppress(OSError):
                            write_all(master, b"\x04")  # end of input, as ^D at a terminal
                else:
                    with contextlib.suppress(OSError):
                        write_all(master, data)
            if not ready and done():
                # The process is gone; anything left in the master was read above.
                if exited_at is None:
                    exited_at = time.monotonic()
                elif time.monotonic() - exited_at > 0.3:
                    return
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGWINCH, old_handler)
        os.close(wake_r)
        os.close(wake_w)


def run_with_console(start: Callable[[str, str], object], directory: str, pid_file: str, *,
                     interactive: bool, stdin: Any = None, stdout: Any = None,
                     tee: Callable[[bytes], None] | None = None,
                     size_file: str | None = None) -> int:
    """Start a process with a terminal, connect the user's terminal to it and wait for
    it; return its exit code (128+N when killed by signal N).

    ``start(console_socket, pid_file)`` has the runtime start the process detached, its
    terminal's master sent to the socket (made in ``directory``) and its pid written to
    ``pid_file``; whatever it raises propagates. We become a child subreaper, so the
    process is reparented to us and its exit status comes from waitpid, as with a
    foreground runtime. Signals sent to us go to the process (held until it exists).
    Without a terminal of the caller's, ``size_file`` gives the size (`shuttle`)."""
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    in_fd = _fd(stdin, 0) if interactive else None
    out_fd = _fd(stdout, 1)
    listener = bind_in_dir(directory, CONSOLE_SOCKET)
    target: dict[str, int] = {}
    held: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        if "pid" not in target:
            held.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(target["pid"], signum)

    old = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        try:
            start(os.path.join(directory, CONSOLE_SOCKET), pid_file)
            master = take_master(listener)
        finally:
            listener.close()
        with open(pid_file) as f:
            target["pid"] = int(f.read().strip())
        for signum in held:
            forward(signum, None)
        process = _Child(target["pid"])
        try:
            with raw_terminal(in_fd if in_fd is not None else out_fd):
                shuttle(master, in_fd, out_fd, lambda: process.poll() is not None, tee,
                        size_file)
        finally:
            os.close(master)
        while (code := process.poll()) is None:
            time.sleep(0.02)
        return code
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for leftover in (os.path.join(directory, CONSOLE_SOCKET), size_file):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)


class _Child:
    """A process reparented to us (we are its subreaper), waited for without blocking."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None

    def poll(self) -> int | None:
        """Its exit code once it exited (255 if it is not our child), else None."""
        if self.code is None:
            try:
                got, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.code = 255
            else:
                if got:
                    code = os.waitstatus_to_exitcode(status)
                    self.code = 128 - code if code < 0 else code
        return self.code


def _fd(stream: Any, default: int) -> int:
    if stream is None:
        return default
    if isinstance(stream, int):
        return stream
    return int(stream.fileno())


def is_devnull(stream: Any) -> bool:
    """Whether ``stream`` is /dev/null (a run given no input: no terminal input either)."""
    try:
        st = os.fstat(_fd(stream, 0))
        null = os.stat("/dev/null")
    except OSError:
        return False
    return (st.st_rdev, st.st_ino) == (null.st_rdev, null.st_ino)
