"""Terminals: receive a pty master from runc (--console-socket) and shuttle bytes.

runc allocates the pseudo-terminal inside the container and sends its master
side over a unix socket with SCM_RIGHTS. The caller owns the master from then on:
it copies the user's keystrokes in and the container's output out, puts the
user's terminal in raw mode (so Ctrl-C travels as a byte and the container's
line discipline turns it into SIGINT) and forwards window size changes.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from typing import Any

from forklift.errors import RuntimeFailure

CONSOLE_SOCKET = "console.sock"


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
    dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(f"/proc/self/fd/{dirfd}/{name}")
    finally:
        os.close(dirfd)
    return sock


def receive_master(listener: socket.socket, proc: subprocess.Popen[bytes],
                   timeout: float = 30.0) -> int:
    """Wait for runc to connect and hand over the pty master; fail if runc exits first."""
    deadline = time.monotonic() + timeout
    listener.settimeout(0.05)
    while True:
        try:
            conn, _ = listener.accept()
            break
        except TimeoutError:
            if proc.poll() is not None:
                raise RuntimeFailure("runc exited before sending the terminal") from None
            if time.monotonic() > deadline:
                raise RuntimeFailure("timed out waiting for runc's terminal") from None
    with conn:
        conn.settimeout(timeout)
        fds = array.array("i")
        _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        raise RuntimeFailure("runc sent no terminal")
    return fds[0]


def get_winsize(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def set_winsize(fd: int, rows: int, cols: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@contextlib.contextmanager
def raw_terminal(fd: int) -> Any:
    """Put ``fd`` in raw mode if it is a terminal; restore it afterwards."""
    if not os.isatty(fd):
        yield False
        return
    import tty as tty_mod

    old = termios.tcgetattr(fd)
    try:
        tty_mod.setraw(fd, termios.TCSANOW)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


def shuttle(master: int, in_fd: int | None, out_fd: int, done: Callable[[], bool],
            tee: Callable[[bytes], None] | None = None) -> None:
    """Copy in_fd -> master and master -> out_fd (and ``tee``) until the container side closes.

    Window size follows the user's terminal (SIGWINCH). ``done`` says whether the
    process on the other side has exited (then the master is drained and we return).
    """
    size_source = in_fd if in_fd is not None and os.isatty(in_fd) else (
        out_fd if os.isatty(out_fd) else None)
    if size_source is not None:
        size = get_winsize(size_source)
        if size:
            set_winsize(master, *size)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)

    def on_winch(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(wake_w, b"w")

    old_handler = signal.signal(signal.SIGWINCH, on_winch) if size_source is not None else None
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
                if size_source is not None:
                    size = get_winsize(size_source)
                    if size:
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
                    _write_all(out_fd, data)
            if reading_input and in_fd is not None and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    reading_input = False
                    if not os.isatty(in_fd):
                        with contextlib.suppress(OSError):
                            _write_all(master, b"\x04")  # end of input, as ^D at a terminal
                else:
                    with contextlib.suppress(OSError):
                        _write_all(master, data)
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


class ConsoleResult:
    """What run_with_console saw: runc's own failure, or the process's exit code."""

    def __init__(self, runc_code: int, exit_code: int | None) -> None:
        self.runc_code = runc_code
        self.exit_code = exit_code


def run_with_console(argv: list[str], cwd: str, pid_file: str, *, interactive: bool,
                     stdin: Any = None, stdout: Any = None,
                     tee: Callable[[bytes], None] | None = None) -> ConsoleResult:
    """Run ``argv`` (a runc verb with ``--detach --console-socket console.sock --pid-file
    PID_FILE``), connect the user's terminal to the process's and wait for it.

    We become a child subreaper, so the detached process is reparented to us and
    its exit status comes from waitpid, as with a foreground runc.
    """
    import ctypes

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    in_fd = _fd(stdin, 0) if interactive else None
    out_fd = _fd(stdout, 1)
    listener = bind_in_dir(cwd, CONSOLE_SOCKET)
    forwarded = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT)
    target: dict[str, int] = {}
    old: dict[Any, Any] = {}
    status: dict[str, int] = {}
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, restore_signals=True)

        def forward(signum: int, frame: Any) -> None:
            pid = target.get("pid", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        for sig in forwarded:
            old[sig] = signal.signal(sig, forward)
        try:
            master = receive_master(listener, proc)
        except RuntimeFailure:
            return ConsoleResult(proc.wait(), None)
        finally:
            listener.close()
        code = proc.wait()
        if code != 0:
            os.close(master)
            return ConsoleResult(code, None)
        with open(pid_file) as f:
            pid = int(f.read().strip())
        target["pid"] = pid

        def done() -> bool:
            if "code" in status:
                return True
            try:
                got, st = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                status["code"] = 255
                return True
            if got:
                c = os.waitstatus_to_exitcode(st)
                status["code"] = 128 - c if c < 0 else c
                return True
            return False

        try:
            with raw_terminal(in_fd if in_fd is not None else out_fd):
                shuttle(master, in_fd, out_fd, done, tee)
        finally:
            os.close(master)
        while not done():
            time.sleep(0.02)
        return ConsoleResult(0, status["code"])
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(cwd, CONSOLE_SOCKET))


def _fd(stream: Any, default: int) -> int:
    if stream is None:
        return default
    if isinstance(stream, int):
        return stream
    return int(stream.fileno())


def run_foreground(runc: Any, container_id: str, bundle: str, *, stdin: Any = None,
                   stdout: Any = None, tee: Callable[[bytes], None] | None = None) -> int:
    """The foreground path of ``run -t`` / ``start -a`` of a -t container."""
    from forklift.runtime.runc import _map_start_failure, _truncate

    log_path = os.path.join(bundle, "runc.log")
    pid_file = os.path.join(bundle, "init.pid")
    _truncate(log_path)
    argv = runc._argv("--log", log_path, "--log-format", "json", "run", "--detach",
                      "--console-socket", CONSOLE_SOCKET, "--pid-file", pid_file,
                      "--bundle", bundle, container_id)
    interactive = stdin is not None and not _is_devnull(stdin)
    res = run_with_console(argv, bundle, pid_file, interactive=interactive, stdin=stdin,
                           stdout=stdout, tee=tee)
    if res.exit_code is None:
        return _map_start_failure(res.runc_code, log_path)
    return res.exit_code


def _is_devnull(stream: Any) -> bool:
    try:
        st = os.fstat(_fd(stream, 0))
        null = os.stat("/dev/null")
    except OSError:
        return False
    return (st.st_rdev, st.st_ino) == (null.st_rdev, null.st_ino)
