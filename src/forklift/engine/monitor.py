"""The per-container monitor: what keeps a detached container company.

``run -d`` / ``start`` fork twice (setsid in between) so the monitor outlives
the CLI and belongs to no terminal. The monitor:

- records itself as the container's pid in the store (so a dead monitor means
  an exited container, never a ghost "running" one),
- mounts the rootfs, sets up the network and runs ``runc create`` + ``runc start``
  with the container's stdout/stderr on pipes (or its terminal's master, received
  over the console socket),
- becomes a child subreaper, so the container's init is reparented to it and its
  exit status comes from waitpid,
- writes every line of output to ``containers/<id>/<id>-json.log`` in Docker's
  json-file format and relays it to ``attach`` clients over ``attach.sock``,
- when the container exits: notes OOM kills, tears down runc state, network and
  mounts, records the exit code and finish time, and honours ``--rm``.

The CLI waits on a status pipe until the container is running (or failed to start).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

from forklift.engine.logfile import JsonLog, log_path
from forklift.errors import Conflict, ForkliftError, MissingProgram, NotFound, RuntimeFailure
from forklift.procs import pid_alive
from forklift.store.db import Store

PR_SET_CHILD_SUBREAPER = 36
ATTACH_SOCKET = "attach.sock"
# attach protocol frames: >BI header (kind, length) + payload
OUT_STDOUT, OUT_STDERR = 1, 2
IN_STDIN, IN_RESIZE, IN_CLOSE = 0, 1, 2
_keep: list[Any] = []  # objects inherited over fork that must never be finalized


# ----------------------------------------------------------------------------- launching

_ERRORS = {"NotFound": NotFound, "Conflict": Conflict, "MissingProgram": MissingProgram}


def launch(store: Store, rec: Any) -> None:
    """Start ``rec`` detached under a new monitor; return once it runs, raise if it cannot."""
    if rec.state in ("running", "paused") and pid_alive(rec.pid):
        raise Conflict(f"container {rec.id[:12]} is already running")
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # SQLite keeps per-process lock bookkeeping that a forked child must not inherit:
    # close our connection across the fork (the child opens its own) and reopen after.
    row_factory = store.conn.row_factory
    store.close()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked child
            code = 0
            try:
                os.close(r)
                os.setsid()
                if os.fork() == 0:
                    _daemon_main(store.root, rec.id, w)
            except BaseException:
                code = 1
            os._exit(code)
    finally:
        if os.getpid() != 0:
            store.open()
            store.conn.row_factory = row_factory
    os.close(w)
    os.waitpid(pid, 0)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    msg = b"".join(chunks).decode("utf-8", "replace").strip()
    if msg == "ok":
        return
    if not msg:
        raise RuntimeFailure("the container monitor exited before the container started")
    kind, _, text = msg.partition(" ")
    raise _ERRORS.get(kind, RuntimeFailure)(text)


def _daemon_main(root: str, container_id: str, status_w: int) -> None:  # pragma: no cover
    code = 0
    try:
        devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        errlog = os.open(os.path.join(root, "containers", container_id, "monitor.log"),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(errlog, 2)
        keep = {0, 1, 2, status_w}
        for fd in _open_fds():
            if fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.chdir("/")
        from forklift.store import open_store

        store = open_store(root)
        Monitor(store, container_id, status_w).run()
    except BaseException as exc:
        code = 1
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
            os.write(status_w, f"RuntimeFailure monitor failed: {exc}".encode())
    os._exit(code)


def _open_fds() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


def main(argv: list[str] | None = None) -> int:
    """``python -m forklift.engine.monitor --root ROOT ID``: start a container detached."""
    import argparse

    parser = argparse.ArgumentParser(prog="forklift-monitor")
    parser.add_argument("--root", required=True)
    parser.add_argument("container")
    args = parser.parse_args(argv)
    from forklift.store import containers as container_store
    from forklift.store import open_store

    store = open_store(args.root)
    try:
        launch(store, container_store.resolve(store, args.container))
    except ForkliftError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------- the monitor

class Monitor:
    def __init__(self, store: Store, container_id: str, status_w: int) -> None:
        self.store = store
        self.id = container_id
        self.status_w: int | None = status_w
        self.master: int | None = None
        self.stdin_w: int | None = None
        self.outputs: dict[int, str] = {}
        self.clients: list[socket.socket] = []
        self.client_buf: dict[socket.socket, bytes] = {}

    def report(self, text: str) -> None:
        if self.status_w is not None:
            with contextlib.suppress(OSError):
                os.write(self.status_w, text.encode())
            os.close(self.status_w)
            self.status_w = None

    def run(self) -> None:
        from forklift.engine import containers
        from forklift.runtime.runc import Runc

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake_r = wake_r

        try:
            runc = Runc(self.store.runc_dir)
            rec = containers.claim(self.store, self.id, os.getpid())
        except ForkliftError as exc:
            self.report(f"{type(exc).__name__} {exc.message}")
            return
        code = 255
        oom = False
        bundle = self.store.container_path(self.id)
        try:
            try:
                bundle = containers.prepare(self.store, rec, runc)
                init_pid = self._create(rec, runc, bundle)
                runc.start(self.id)
            except ForkliftError as exc:
                code = _start_failure_code(exc.message)
                self.report(f"{type(exc).__name__} {exc.message}")
                return
            with open(os.path.join(bundle, "init.pid"), "w") as f:
                f.write(str(init_pid))
            self.report("ok")
            code = self._loop(init_pid)
            oom = containers.oom_killed(rec)
        finally:
            self.report("RuntimeFailure the container could not be started")
            for fd in list(self.outputs) + [x for x in (self.master, self.stdin_w) if x is not None]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            for c in self.clients:
                with contextlib.suppress(OSError):
                    c.close()
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(bundle, ATTACH_SOCKET))
            containers.finish(self.store, rec, runc, code, oom_killed=oom)

    # -- starting

    def _create(self, rec: Any, runc: Any, bundle: str) -> int:
        from forklift.engine import tty
        from forklift.runtime.runc import _last_error, _truncate

        pid_file = os.path.join(bundle, "init.pid")
        log = os.path.join(bundle, "runc.log")
        _truncate(log)
        argv = runc._argv("--log", log, "--log-format", "json", "create", "--bundle", bundle,
                          "--pid-file", pid_file)
        self.log = JsonLog(log_path(self.store, self.id))
        self.listener = tty.bind_in_dir(bundle, ATTACH_SOCKET)
        null = os.open("/dev/null", os.O_RDWR)
        try:
            if rec.config.get("Tty"):
                console = tty.bind_in_dir(bundle, tty.CONSOLE_SOCKET)
                try:
                    proc = subprocess.Popen([*argv, "--console-socket", tty.CONSOLE_SOCKET, self.id],
                                            cwd=bundle, stdin=null, stdout=null, stderr=null)
                    try:
                        self.master = tty.receive_master(console, proc)
                    finally:
                        proc.wait()
                finally:
                    console.close()
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(bundle, tty.CONSOLE_SOCKET))
                tty.set_winsize(self.master, 24, 80)
                self.outputs[self.master] = "stdout"
            else:
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                in_r = null
                if rec.config.get("OpenStdin"):
                    in_r, self.stdin_w = os.pipe()
                try:
                    proc = subprocess.Popen([*argv, self.id], cwd=bundle, stdin=in_r,
                                            stdout=out_w, stderr=err_w)
                    proc.wait()
                finally:
                    for fd in (out_w, err_w) + ((in_r,) if in_r != null else ()):
                        os.close(fd)
                self.outputs[out_r] = "stdout"
                self.outputs[err_r] = "stderr"
        finally:
            os.close(null)
        if proc.returncode != 0:
            raise RuntimeFailure(_last_error(log) or f"runc create exited with {proc.returncode}")
        with open(pid_file) as f:
            return int(f.read().strip())

    # -- running

    def _loop(self, init_pid: int) -> int:
        status: int | None = None
        exited_at = 0.0
        while True:
            watch = list(self.outputs) + [self.wake_r, self.listener.fileno()] + [
                c.fileno() for c in self.clients]
            try:
                ready, _, _ = select.select(watch, [], [], 1.0 if status is None else 0.1)
            except InterruptedError:
                ready = []
            for fd in ready:
                if fd in self.outputs:
                    self._read_output(fd)
                elif fd == self.wake_r:
                    with contextlib.suppress(OSError):
                        os.read(self.wake_r, 4096)
                elif fd == self.listener.fileno():
                    self._accept()
                else:
                    self._client_input(fd)
            while True:  # reap the container's init and any orphan reparented to us
                try:
                    pid, st = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == init_pid:
                    code = os.waitstatus_to_exitcode(st)
                    status = 128 - code if code < 0 else code
                    exited_at = time.monotonic()
            if status is None and not pid_alive(init_pid):
                # it died after the loop above (a zombie of ours: reap it for its real
                # status) or it was never our child (no status to be had)
                status, exited_at = _reap(init_pid), time.monotonic()
            if status is not None and (not self.outputs or time.monotonic() - exited_at > 2.0):
                for fd in list(self.outputs):
                    self._read_output(fd, final=True)
                self.log.close()
                return status

    def _read_output(self, fd: int, final: bool = False) -> None:
        stream = self.outputs[fd]
        while True:
            if final:
                r, _, _ = select.select([fd], [], [], 0)
                if not r:
                    break
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                del self.outputs[fd]
                with contextlib.suppress(OSError):
                    os.close(fd)
                if fd == self.master:
                    self.master = None
                return
            self.log.write(stream, data)
            frame = struct.pack(">BI", OUT_STDERR if stream == "stderr" else OUT_STDOUT,
                                len(data)) + data
            for c in list(self.clients):
                try:
                    c.sendall(frame)
                except OSError:
                    self._drop(c)
            if not final:
                return

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.listener.accept()
            self.clients.append(conn)
            self.client_buf[conn] = b""

    def _drop(self, conn: socket.socket) -> None:
        if conn in self.clients:
            self.clients.remove(conn)
        self.client_buf.pop(conn, None)
        with contextlib.suppress(OSError):
            conn.close()

    def _client_input(self, fd: int) -> None:
        conn = next((c for c in self.clients if c.fileno() == fd), None)
        if conn is None:
            return
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self.client_buf.get(conn, b"") + data
        while len(buf) >= 5:
            kind, size = struct.unpack(">BI", buf[:5])
            if len(buf) < 5 + size:
                break
            payload, buf = buf[5: 5 + size], buf[5 + size:]
            self._handle(kind, payload)
        self.client_buf[conn] = buf

    def _handle(self, kind: int, payload: bytes) -> None:
        from forklift.engine import tty

        target = self.master if self.master is not None else self.stdin_w
        if kind == IN_STDIN and target is not None:
            with contextlib.suppress(OSError):
                tty._write_all(target, payload)
        elif kind == IN_RESIZE and self.master is not None and len(payload) == 4:
            rows, cols = struct.unpack(">HH", payload)
            tty.set_winsize(self.master, rows, cols)
        elif kind == IN_CLOSE and self.stdin_w is not None:
            with contextlib.suppress(OSError):
                os.close(self.stdin_w)
            self.stdin_w = None


def _reap(pid: int) -> int:
    """Exit status of ``pid`` if it is our dead child, 255 if it is not our child."""
    try:
        _, st = os.waitpid(pid, 0)  # returns at once: the caller saw it is not running
    except ChildProcessError:
        return 255
    code = os.waitstatus_to_exitcode(st)
    return 128 - code if code < 0 else code


def _start_failure_code(message: str) -> int:
    if "exec:" in message or "executable file not found" in message:
        if "permission denied" in message:
            return 126
        return 127
    return 128


if __name__ == "__main__":
    sys.exit(main())
