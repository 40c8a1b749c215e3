"""The per-container monitor: what keeps a detached container company.

``run -d`` / ``start`` fork twice (setsid in between) so the monitor outlives
the CLI and belongs to no terminal. The monitor runs the container through the
start sequence of `forklift.engine.runner`:

- it claims the container under its own pid (so a dead monitor means an exited
  container, never a ghost "running" one) and prepares it (rootfs, network, bundle),
- has the runtime create and start it with its stdout/stderr on pipes (or its
  terminal's master, received over the console socket),
- is a child subreaper, so the container's init is reparented to it and its
  exit status comes from waitpid,
- writes every line of output to ``containers/<id>/<id>-json.log`` in Docker's
  json-file format and relays it to ``attach`` clients over ``attach.sock``,
- when the container exits: notes OOM kills and finishes it (runtime state, network
  and mounts gone, exit code and finish time recorded, ``--rm`` honoured),
- runs it again as its restart policy says (`forklift.engine.restart`).

The CLI waits on a status pipe until the container runs or could not be started
(`to_wire` / `from_wire`: a failure arrives as the error it was, after the finish).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import time

from forklift import errors
from forklift.engine import health, restart, runner, tty
from forklift.engine.logfile import log_path, open_log, write_all
from forklift.errors import Conflict, ForkliftError, RuntimeFailure
from forklift.procs import pid_alive
from forklift.store import containers as container_store
from forklift.store import open_store
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import Store

PR_SET_CHILD_SUBREAPER = 36
ATTACH_SOCKET = "attach.sock"
# attach protocol frames: >BI header (kind, length) + payload. OUT_ATTACHED (empty) is the
# first frame of every attach the monitor takes: one refused because the container's process
# had ended gets none (the socket is closed then), so its client knows that it missed the run.
OUT_STDOUT, OUT_STDERR, OUT_ATTACHED = 1, 2, 3


def split_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole ``(kind, payload)`` frames at the start of ``buf`` (a 1-byte kind and a
    4-byte big-endian length before each payload), and the incomplete rest."""
    frames = []
    while len(buf) >= 5:
        kind, size = struct.unpack(">BI", buf[:5])
        if len(buf) < 5 + size:
            break
        frames.append((kind, buf[5:5 + size]))
        buf = buf[5 + size:]
    return frames, buf
IN_STDIN, IN_RESIZE, IN_CLOSE = 0, 1, 2


# ----------------------------------------------------------------------------- the status pipe

def to_wire(error: ForkliftError | None) -> bytes:
    """The monitor's word to the CLI: the container runs (None), or why it does not."""
    if error is None:
        return b'{"ok":true}'
    return json.dumps({"error": type(error).__name__, "message": error.message}).encode()


def from_wire(data: bytes) -> ForkliftError | None:
    """The CLI's reading of `to_wire`: None when the container runs, else the error, of
    the class the monitor raised (RuntimeFailure when the monitor said nothing usable)."""
    try:
        word = json.loads(data)
    except ValueError:
        word = None
    if not isinstance(word, dict):
        return RuntimeFailure("the container monitor exited before the container started")
    if word.get("ok") is True:
        return None
    cls = _error_classes().get(str(word.get("error")), RuntimeFailure)
    return cls(str(word.get("message") or "the container could not be started"))


def _error_classes() -> dict[str, type[ForkliftError]]:
    """Every error class of `forklift.errors`, by name."""
    return {name: obj for name, obj in vars(errors).items()
            if isinstance(obj, type) and issubclass(obj, ForkliftError)}


# ----------------------------------------------------------------------------- launching

def launch(store: Store, rec: ContainerRecord,
           after: tuple[int, float] | None = None) -> None:
    """Start ``rec`` detached under a new monitor; return once it runs, raise the error
    it could not start with (after its finish: the record says exited) otherwise.
    Conflict if it is running already. ``after``: (exit code, seconds it ran) of a
    foreground run that just ended: the monitor only restarts it as its policy says
    (Docker's daemon does so after its attached client has returned), and this returns
    at once."""
    if rec.effective_state().up:
        raise Conflict(f"container {rec.short_id} is already running")
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    # SQLite keeps per-process lock bookkeeping that a forked child must not inherit:
    # close our connection across the fork (the child opens its own) and reopen after.
    row_factory = store.conn.row_factory
    store.close()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked child, which never returns
            code = 0
            try:
                os.close(r)
                os.setsid()
                if os.fork() == 0:
                    _daemon_main(store.root, rec.id, w, after)
            except BaseException:
                code = 1
            os._exit(code)
    finally:
        store.open()
        store.conn.row_factory = row_factory
    os.close(w)
    os.waitpid(pid, 0)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    error = from_wire(b"".join(chunks))
    if error is not None:
        raise error


def _daemon_main(root: str, container_id: str, status_w: int,  # pragma: no cover
                 after: tuple[int, float] | None = None) -> None:
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
        Monitor(open_store(root), container_id, status_w).run(after)
    except BaseException as exc:
        code = 1
        with contextlib.suppress(Exception):
            import traceback  # textwrap & co.: only for a monitor that failed

            traceback.print_exc()
            os.write(status_w, to_wire(RuntimeFailure(f"monitor failed: {exc}")))
    os._exit(code)


def _open_fds() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


# ----------------------------------------------------------------------------- the monitor

class Monitor:
    """The monitor process's state: the container's output fds, its terminal or stdin,
    the attach clients, and the status pipe to the CLI until it has been told."""

    def __init__(self, store: Store, container_id: str, status_w: int) -> None:
        self.store = store
        self.id = container_id
        self.status_w: int | None = status_w
        self.master: int | None = None
        self.stdin_w: int | None = None
        self.listener: socket.socket | None = None
        self.outputs: dict[int, str] = {}
        self.clients: list[socket.socket] = []
        self.client_buf: dict[socket.socket, bytes] = {}
        self.checker = 0

    def report(self, error: ForkliftError | None) -> None:
        """Tell the CLI, once: the container runs (None) or the error it failed with."""
        if self.status_w is not None:
            with contextlib.suppress(OSError):
                os.write(self.status_w, to_wire(error))
            os.close(self.status_w)
            self.status_w = None

    def run(self, after: tuple[int, float] | None = None) -> None:
        """The container's whole run (`runner.running`); the CLI hears the outcome once.
        ``after``: a foreground run ended so (`launch`): only its restarts are left."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake_r = wake_r
        failure: ForkliftError | None = None
        try:
            if after is not None:
                self.report(None)
                self._restarts(*after)
                return
            started = time.monotonic()
            code = self._run_once()
            if code is not None:
                self._restarts(code, time.monotonic() - started)
        except ForkliftError as exc:
            failure = exc
        finally:
            self.report(failure or RuntimeFailure("the container could not be started"))

    def _run_once(self) -> int | None:
        """One run of the container: its exit code; None if its user stopped it before it
        started (`forklift.engine.restart`: the lock is held until its process runs)."""
        self._reset_io()
        with contextlib.ExitStack() as held:
            held.enter_context(restart.locked(self.store, self.id))
            if restart.stop_requested(self.store, self.id):
                self._give_up()
                return None
            try:
                with runner.running(self.store, self.id, os.getpid()) as run:
                    try:
                        init_pid = self._start(run)
                        held.close()
                        self.report(None)
                        self._start_checker(run.rec)
                        run.code = self._loop(init_pid)
                        run.oom = runner.oom_killed(run.rec)
                    finally:
                        self._stop_checker()
                        self._close()
            finally:
                # only once the record says exited: until then a connection is refused (not
                # "no such file"), which tells an attach that the run is ending
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.store.container_path(self.id), ATTACH_SOCKET))
            return run.code

    def _restarts(self, code: int, ran_for: float) -> None:
        """Run the container again while its restart policy says so, with the backoff."""
        n, delay = 0, restart.FIRST_DELAY
        while True:
            rec = container_store.get(self.store, self.id)
            if rec is None or not restart.should_restart(rec.host_config, code, n):
                return
            restart.set_last_exit(self.store, self.id, code)
            if not self._wait_to_restart(delay):
                return
            n += 1
            restart.set_count(self.store, self.id, n)
            started = time.monotonic()
            got = self._run_once()
            if got is None:
                return
            code, delay = got, restart.next_delay(delay, time.monotonic() - started)

    def _wait_to_restart(self, delay: float) -> bool:
        """Be ``restarting`` for ``delay`` seconds; False if its user stopped or removed it."""
        with restart.locked(self.store, self.id):
            if restart.stop_requested(self.store, self.id):
                return False
            container_store.update_state(self.store, self.id, state=State.RESTARTING,
                                         pid=os.getpid())
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            if restart.stop_requested(self.store, self.id):
                self._give_up()
                return False
            time.sleep(min(0.05, left))
        return True

    def _give_up(self) -> None:
        """Stopped while restarting: exited, with the last run's exit code."""
        if container_store.get(self.store, self.id) is not None:
            container_store.update_state(self.store, self.id, state=State.EXITED, pid=None)

    def _start_checker(self, rec: ContainerRecord) -> None:
        """Fork the healthcheck process (`forklift.engine.health`) if it has a check."""
        if health.test_command(rec.config.get("Healthcheck")) is None:
            return
        health.begin(self.store, rec.id)  # no earlier run's state shown meanwhile
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the checker, which never returns
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                health.run_checks(self.store, rec)
            finally:
                os._exit(0)
        self.checker = pid

    def _stop_checker(self) -> None:
        if self.checker:
            with contextlib.suppress(OSError):
                os.kill(self.checker, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.checker, 0)
        self.checker = 0

    def _reset_io(self) -> None:
        self.master = self.stdin_w = self.listener = None
        self.outputs, self.clients, self.client_buf = {}, [], {}

    def _close(self) -> None:
        for fd in list(self.outputs) + [x for x in (self.master, self.stdin_w) if x is not None]:
            with contextlib.suppress(OSError):
                os.close(fd)
        for c in self.clients:
            with contextlib.suppress(OSError):
                c.close()
        self._stop_listening()

    def _stop_listening(self) -> None:
        """No attach from now on: connections waiting to be taken are reset."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # -- starting

    def _start(self, run: runner.Run) -> int:
        """Create and start the container; returns its init's pid."""
        pid_file = os.path.join(run.bundle, "init.pid")
        self.log = open_log(log_path(self.store, self.id), run.rec.host_config)
        self.listener = tty.bind_in_dir(run.bundle, ATTACH_SOCKET)
        if run.rec.config.get("Tty"):
            self._create_with_terminal(run, pid_file)
            run.runtime.start(self.id)
        else:
            self._run_with_pipes(run, pid_file)
        with open(pid_file) as f:
            return int(f.read().strip())

    def _create_with_terminal(self, run: runner.Run, pid_file: str) -> None:
        console = tty.bind_in_dir(run.bundle, tty.CONSOLE_SOCKET)
        try:
            run.runtime.create(self.id, run.bundle, pid_file=pid_file,
                               console_socket=os.path.join(run.bundle, tty.CONSOLE_SOCKET))
            self.master = tty.take_master(console)
        finally:
            console.close()
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(run.bundle, tty.CONSOLE_SOCKET))
        tty.set_winsize(self.master, 24, 80)
        self.outputs[self.master] = "stdout"

    def _run_with_pipes(self, run: runner.Run, pid_file: str) -> None:
        """Create and start in one runtime process (``runc run --detach``): one exec fewer
        than create + start, nothing to do between the two without a terminal."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.outputs[out_r] = "stdout"
        self.outputs[err_r] = "stderr"
        in_r = None
        if run.rec.config.get("OpenStdin"):
            in_r, self.stdin_w = os.pipe()
        try:
            run.runtime.run(self.id, run.bundle, detach=True, pid_file=pid_file, stdin=in_r,
                            stdout=out_w, stderr=err_w)
        finally:
            for fd in (out_w, err_w) + ((in_r,) if in_r is not None else ()):
                os.close(fd)

    # -- running

    def _loop(self, init_pid: int) -> int:
        status: int | None = None
        exited_at = 0.0
        while True:
            watch = list(self.outputs) + [self.wake_r] + [c.fileno() for c in self.clients]
            if self.listener is not None:
                watch.append(self.listener.fileno())
            try:
                ready, _, _ = select.select(watch, [], [], 1.0 if status is None else 0.1)
            except InterruptedError:
                ready = []
            if status is None:
                status = self._exit_status(init_pid)
                if status is not None:
                    # an attach taken now would carry nothing of this run: refuse it
                    exited_at = time.monotonic()
                    self._stop_listening()
            if self.listener is not None and self.listener.fileno() in ready:
                self._accept()  # before the output: an attach that came first gets it
            for fd in ready:
                if fd in self.outputs:
                    self._read_output(fd)
                elif fd == self.wake_r:
                    with contextlib.suppress(OSError):
                        os.read(self.wake_r, 4096)
                elif any(c.fileno() == fd for c in self.clients):
                    self._client_input(fd)
            if status is not None and (not self.outputs or time.monotonic() - exited_at > 2.0):
                for fd in list(self.outputs):
                    self._read_output(fd, final=True)
                self.log.close()
                return status

    def _exit_status(self, init_pid: int) -> int | None:
        """The container's exit status once its init is gone (None while it runs); reaps
        any orphan reparented to us on the way."""
        status = None
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == init_pid:
                code = os.waitstatus_to_exitcode(st)
                status = 128 - code if code < 0 else code
        if status is None and not pid_alive(init_pid):
            # it died after the loop above (a zombie of ours: reap it for its real status)
            # or it was never our child (no status to be had)
            status = _reap(init_pid)
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
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with contextlib.suppress(OSError):  # one that left already (a resize's) is still read
            conn.sendall(struct.pack(">BI", OUT_ATTACHED, 0))
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
        frames, self.client_buf[conn] = split_frames(self.client_buf.get(conn, b"") + data)
        for kind, payload in frames:
            self._handle(kind, payload)

    def _handle(self, kind: int, payload: bytes) -> None:
        target = self.master if self.master is not None else self.stdin_w
        if kind == IN_STDIN and target is not None:
            with contextlib.suppress(OSError):
                write_all(target, payload)
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
