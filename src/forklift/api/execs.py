"""Exec endpoints: create, start, resize, inspect.

An exec instance lives in the service's memory only (as in Docker, they vanish with the
service). Its process is the CLI's ``exec`` in a child process, as an attached start is:
the runtime's exec waits for its child with signals handled in the main thread, which a
service's worker threads are not. The child's exit status is the exec's exit code,
recorded before the connection closes (the docker CLI inspects the exec right after).
A TTY exec runs the child on a pty of ours: its master carries the client's raw stream,
and a resize sets the pty's size and tells the child (SIGWINCH), which passes it on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from forklift.api import containers, detach
from forklift.api.server import (
    ApiError,
    Context,
    Hijack,
    Reply,
    Request,
    json_reply,
    route,
)
from forklift.errors import Conflict, InvalidArgument, NotFound


@dataclass
class ExecInstance:
    id: str
    container_id: str
    cmd: list[str]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    user: str
    workdir: str
    env: list[str]
    privileged: bool
    detach_keys: str
    started: bool = False
    running: bool = False
    exit_status: int | None = None
    pid: int = 0                # a TTY or detached exec's forklift child
    pid_file: str | None = None  # a piped exec's: the runtime writes its process's PID there
    master: int | None = None   # the pty's master of a running TTY exec
    size: tuple[int, int] | None = None  # the last resize (it may come before the pty)
    done: threading.Event = field(default_factory=threading.Event)


def _execs(ctx: Context) -> dict[str, ExecInstance]:
    with ctx.lock:
        table: dict[str, ExecInstance] | None = getattr(ctx, "execs", None)
        if table is None:
            table = {}
            ctx.execs = table  # type: ignore[attr-defined]
        return table


def _find(ctx: Context, exec_id: str) -> ExecInstance:
    found = _execs(ctx).get(exec_id)
    if found is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    return found


@route("POST", "/containers/{id}/exec")
def create(ctx: Context, req: Request) -> Reply:
    from forklift.engine.lifecycle import require_running

    body = req.json()
    cmd = containers._strings(body.get("Cmd"), "Cmd")
    if not cmd:
        raise InvalidArgument("No exec command specified")
    detach.parse(_text(body, "DetachKeys"))   # a 400 now, not at the start
    rec = require_running(ctx.store, req.params["id"],
                          "Container {id} is paused, unpause the container before exec")
    instance = ExecInstance(
        id=os.urandom(32).hex(), container_id=rec.id, cmd=cmd, tty=bool(body.get("Tty")),
        stdin=bool(body.get("AttachStdin")), stdout=bool(body.get("AttachStdout")),
        stderr=bool(body.get("AttachStderr")), user=_text(body, "User"),
        workdir=_text(body, "WorkingDir"), env=containers._strings(body.get("Env"), "Env"),
        privileged=bool(body.get("Privileged")), detach_keys=_text(body, "DetachKeys"))
    _execs(ctx)[instance.id] = instance
    return json_reply({"Id": instance.id}, 201)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{key}: a string is expected")
    return value


def _argv(ctx: Context, ex: ExecInstance, tty: bool) -> list[str]:
    argv = [sys.executable, "-m", "forklift", "--root", ctx.store_root(), "exec"]
    argv += ["-i"] if ex.stdin else []
    argv += ["-t"] if tty else []
    argv += ["--privileged"] if ex.privileged else []
    argv += ["-u", ex.user] if ex.user else []
    argv += ["-w", ex.workdir] if ex.workdir else []
    for item in ex.env:
        argv += ["-e", item]
    return [*argv, ex.container_id, *ex.cmd]


@route("POST", "/exec/{id}/start")
def start(ctx: Context, req: Request) -> Reply | Hijack:
    ex = _find(ctx, req.params["id"])
    body = req.json()
    tty = bool(body.get("Tty", ex.tty))
    with ctx.lock:
        if ex.started:
            raise Conflict(f"Error: Exec command {ex.id} is already running")
        ex.started = ex.running = True
    try:
        _still_running(ctx, ex)
    except Exception:
        ex.running = False
        ex.done.set()
        raise
    if body.get("Detach"):
        proc = subprocess.Popen(_argv(ctx, ex, False), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        ex.pid = proc.pid
        threading.Thread(target=_reap, args=(ex, proc), daemon=True).start()
        return Reply(200, b"", None)
    runner = _run_tty if tty else _run_piped
    return Hijack(lambda sock, early: _ended(runner, ctx, ex, sock, early))


def _ended(runner: Any, ctx: Context, ex: ExecInstance, sock: socket.socket,
           early: bytes) -> None:
    """Run the exec; whatever happens, it is not left looking like it still runs."""
    try:
        runner(ctx, ex, sock, early)
    finally:
        if not ex.done.is_set():
            _finish(ex, 126)  # the child could not be started (Docker's "cannot invoke")


def _still_running(ctx: Context, ex: ExecInstance) -> None:
    from forklift.engine.lifecycle import require_running

    require_running(ctx.store, ex.container_id,
                    "Container {id} is paused, unpause the container before exec")


def _reap(ex: ExecInstance, proc: subprocess.Popen[bytes]) -> None:
    _finish(ex, proc.wait())


def _finish(ex: ExecInstance, code: int) -> None:
    ex.exit_status = code if code >= 0 else 128 - code
    ex.running = False
    ex.master = None
    ex.done.set()


def _run_piped(ctx: Context, ex: ExecInstance, sock: socket.socket, early: bytes) -> None:
    """Multiplexed frames (stdout 1, stderr 2) from the process's pipes; the client's bytes
    to its stdin up to the client's half-close. The engine's exec runs here, in this worker
    thread: without a terminal it is a posix_spawn of ``runc exec`` and a waitpid, which
    need no signal handling of the main thread (a TTY's console does: `_run_tty` keeps a
    child). What the CLI would print for an error (``Error: …``) goes to stderr's frames,
    its exit status is the exec's."""
    from types import SimpleNamespace

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if ex.stdin else (None, None)
    pipes = SimpleNamespace(stdin=None if in_w is None else open(in_w, "wb", buffering=0),
                            stdout=open(out_r, "rb", buffering=0),
                            stderr=open(err_r, "rb", buffering=0))
    pump = threading.Thread(target=containers.pump_child, daemon=True,
                            args=(pipes, sock, early, (ex.stdout, ex.stderr), True))
    pump.start()
    try:
        code = _exec_here(ctx, ex, in_r, out_w, err_w)
    finally:
        for fd in (out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)  # the pumps see the end once the process's copies are gone
    pump.join()
    _finish(ex, code)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _exec_here(ctx: Context, ex: ExecInstance, stdin: int | None, stdout: int,
               stderr: int) -> int:
    from forklift.engine import exec as exec_mod
    from forklift.errors import EXIT_ENGINE, ForkliftError
    from forklift.store.db import remove_path

    scratch = ctx.store.make_tmp("api-exec")
    ex.pid_file = os.path.join(scratch, "pid")
    opts = exec_mod.ExecOptions(interactive=ex.stdin, user=ex.user or None,
                                workdir=ex.workdir or None, env=list(ex.env),
                                privileged=ex.privileged, pid_file=ex.pid_file)
    try:
        return exec_mod.exec_(ctx.store, ex.container_id, ex.cmd, opts, stdin=stdin,
                              stdout=stdout, stderr=stderr)
    except ForkliftError as exc:
        with contextlib.suppress(OSError):
            os.write(stderr, f"Error: {exc.message}\n".encode())
        return exc.exit_code or EXIT_ENGINE
    finally:
        ex.pid_file = None
        remove_path(scratch)


def _run_tty(ctx: Context, ex: ExecInstance, sock: socket.socket, early: bytes) -> None:
    """The raw stream both ways through a pty whose slave is the child's terminal."""
    import pty
    import tty as tty_mod

    from forklift.engine import tty

    master, slave = pty.openpty()
    tty_mod.setraw(slave)  # the container's own terminal echoes and translates
    if ex.size:
        tty.set_winsize(slave, *ex.size)
    try:
        proc = subprocess.Popen(_argv(ctx, ex, True), stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
    finally:
        os.close(slave)
    ex.pid, ex.master = proc.pid, master
    if ex.size:  # a resize that came while the child started
        tty.set_winsize(master, *ex.size)
    if ex.stdin:
        escape = detach.Escape(detach.parse(ex.detach_keys))
        threading.Thread(target=_to_master, args=(sock, early, master, escape),
                         daemon=True).start()
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""  # EIO: every holder of the slave is gone
            if not data:
                break
            with contextlib.suppress(OSError):
                if ex.stdout:
                    sock.sendall(data)
        _finish(ex, proc.wait())
    finally:
        ex.master = None
        os.close(master)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _to_master(sock: socket.socket, early: bytes, master: int, escape: detach.Escape) -> None:
    """The client's keys to the terminal, to its end or its detach keys (then the client's
    connection ends, the process runs on; its output is read and dropped)."""
    def put(data: bytes) -> None:
        os.write(master, data)

    with contextlib.suppress(OSError):
        containers.relay(sock, early, escape, put)


@route("POST", "/exec/{id}/resize")
def resize(ctx: Context, req: Request) -> Reply:
    ex = _find(ctx, req.params["id"])
    height, width = req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0
    if not (0 <= height < 65536 and 0 <= width < 65536):
        raise ApiError(400, f"invalid terminal size {height}x{width}")
    if not ex.running:
        raise Conflict(f"Exec process {ex.id} is not running")
    ex.size = (height, width)
    master = ex.master
    if master is not None and ex.tty:
        from forklift.engine import tty

        with contextlib.suppress(OSError):
            tty.set_winsize(master, height, width)
            os.kill(ex.pid, signal.SIGWINCH)
    return Reply(201, b"", None)


def _pid(ex: ExecInstance) -> int:
    """The exec's process's host PID, as Docker reports it; 0 until it exists."""
    if ex.pid_file is not None:
        try:
            with open(ex.pid_file) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0
    return _container_pid(ex.pid) if ex.pid else 0


def _container_pid(child: int) -> int:
    """The exec's process as Docker reports it: the first process under our ``forklift
    exec`` child (and its runtime) that is in another PID namespace, the container's; 0
    until there is one."""
    try:
        ours = os.readlink("/proc/self/ns/pid")
    except OSError:
        return 0
    parents = _parents()
    level = [child]
    while level:
        level = [pid for pid, ppid in parents.items() if ppid in level]
        for pid in sorted(level):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/pid") != ours:
                    return pid
    return 0


def _parents() -> dict[int, int]:
    """Every process's parent (from /proc/PID/stat: the field after the command's ``)``)."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry}/stat", "rb") as f:
                    out[int(entry)] = int(f.read().rpartition(b")")[2].split()[1])
    return out


@route("GET", "/exec/{id}/json")
def inspect(ctx: Context, req: Request) -> Reply:
    ex = _find(ctx, req.params["id"])
    return json_reply({
        "CanRemove": False, "ContainerID": ex.container_id, "DetachKeys": ex.detach_keys,
        "ExitCode": ex.exit_status, "ID": ex.id, "OpenStderr": ex.stderr,
        "OpenStdin": ex.stdin, "OpenStdout": ex.stdout, "Running": ex.running,
        "Pid": _pid(ex) if ex.running else 0,
        "ProcessConfig": {"arguments": ex.cmd[1:], "entrypoint": ex.cmd[0],
                          "privileged": ex.privileged, "tty": ex.tty, "user": ex.user}})
