"""Running containers: stop, kill, wait, restart, pause/unpause, top, rename, logs, attach."""

from __future__ import annotations

# the extension sqlite3 re-exports: the package adds datetime's adapters (~2.5 ms)
import _sqlite3 as sqlite3
import contextlib
import json
import os
import select
import signal
import struct
import sys
import time

from forklift import programs, runtime
from forklift.engine import events
from forklift.engine import restart as restart_policy
from forklift.engine.logfile import log_path, rotated, write_all
from forklift.errors import Conflict, ForkliftError, InvalidArgument
from forklift.runtime import Runtime
from forklift.store import containers as container_store
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any


def _runtime(store: Store, rec: ContainerRecord) -> Runtime:
    return runtime.for_container(store.runc_dir, rec.host_config)


def parse_signal(text: str | int | None, default: int = signal.SIGKILL) -> int:
    """``KILL``, ``SIGHUP``, ``9`` as a signal number (``default`` when empty);
    InvalidArgument for an unknown name."""
    if text is None or text == "":
        return int(default)
    if isinstance(text, int):
        return text
    t = text.strip().upper()
    if t.isdigit():
        return int(t)
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return int(signal.Signals[t])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {text}") from None


def require_running(store: Store, name: str, paused_message: str) -> ContainerRecord:
    """The container, if it is running; Docker's errors otherwise (``paused_message``
    names the verb, with ``{id}`` for the container's ID)."""
    rec = container_store.resolve(store, name)
    state = rec.effective_state()
    if state == State.PAUSED:
        raise Conflict(paused_message.format(id=rec.id))
    if state == State.RESTARTING:
        raise Conflict(f"Container {rec.id} is restarting, wait until the container is running")
    if state != State.RUNNING:
        raise Conflict(f"Container {rec.id} is not running")
    return rec


def _wait_gone(store: Store, rec: ContainerRecord, timeout: float) -> bool:
    """Wait until the process that waits for the container has recorded its exit: the
    record is read every 10 ms, and at once when that process (its monitor) exits."""
    deadline = time.monotonic() + timeout
    pidfd = _pidfd(rec.pid)
    try:
        while True:
            cur = container_store.get(store, rec.id)
            if cur is None or not cur.effective_state().up:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd is None:
                time.sleep(min(0.01, left))
            elif select.select([pidfd], [], [], min(0.01, left))[0]:
                os.close(pidfd)  # it exited: readable from now on, so sleep instead
                pidfd = None
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int | None) -> int | None:
    """A pidfd of ``pid`` (readable once it exits), None if it is gone or there is none."""
    if not pid or pid == os.getpid():
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def kill(store: Store, name: str, sig: str | int | None = None) -> ContainerRecord:
    """``kill``: send ``sig`` (SIGKILL by default) to the container's init; Conflict
    unless it is running (paused included). After SIGKILL it returns once the exit is
    recorded, as Docker's does, so that an ``rm`` right after it finds the container
    stopped; another signal returns at once. A container waiting to be restarted gets no
    signal and is restarted no more (any signal, as Docker 20.10's kill)."""
    rec = container_store.resolve(store, name)
    if rec.effective_state() != State.RESTARTING:
        rec = require_running(store, name, "Container {id} is paused. Unpause the container"
                              " before stopping or killing")
    number = parse_signal(sig)
    with restart_policy.locked(store, rec.id):
        cur = container_store.get(store, rec.id) or rec
        if cur.state == State.RESTARTING:
            # Docker 20.10: no process to signal, and whatever the signal its restarts end
            restart_policy.request_stop(store, rec.id)
        else:
            if number in (signal.SIGKILL,
                          parse_signal(rec.config.get("StopSignal"), signal.SIGTERM)):
                restart_policy.request_stop(store, rec.id)
            _runtime(store, rec).kill(rec.id, number)
    events.container_event(store.root, "kill", rec, signal=str(number))
    if number == signal.SIGKILL and not _wait_gone(store, rec, 10):
        raise ForkliftError(f"cannot kill container: {rec.id[:12]}: did not exit after SIGKILL")
    return rec


def stop(store: Store, name: str, timeout: int | None = None,
         sig: str | None = None) -> ContainerRecord:
    """``stop``: StopSignal (SIGTERM by default), ``timeout`` seconds of grace (10 by
    default, negative: forever), then SIGKILL to every process; returns once the exit is
    recorded. Idempotent: a stopped container is left as it is (a dead monitor's leftovers
    tidied). ForkliftError if it survives SIGKILL for 10 s; MissingProgram without runc."""
    rec = container_store.resolve(store, name)
    restart_policy.request_stop(store, rec.id)  # before the state is read: see engine/restart
    state = rec.effective_state()
    if not state.up:
        _cleanup_ghost(store, rec)
        return rec
    rt = _runtime(store, rec)
    if state == State.PAUSED:
        with contextlib.suppress(ForkliftError):
            rt.resume(rec.id)
    stop_signal = parse_signal(sig or rec.config.get("StopSignal"), signal.SIGTERM)
    if timeout is None:  # the container's --stop-timeout, else Docker's 10 s
        timeout = rec.config.get("StopTimeout")
    grace = 10 if timeout is None else timeout
    with restart_policy.locked(store, rec.id), contextlib.suppress(ForkliftError):
        rt.kill(rec.id, stop_signal)
    if grace < 0:
        _wait_gone(store, rec, 365 * 86400)
        return rec
    if not _wait_gone(store, rec, grace):
        with contextlib.suppress(ForkliftError):
            rt.kill(rec.id, signal.SIGKILL, all=True)
        if not _wait_gone(store, rec, 10):
            raise ForkliftError(f"cannot stop container: {rec.id[:12]}: did not exit after SIGKILL")
    events.container_event(store.root, "stop", rec)
    return rec


def _cleanup_ghost(store: Store, rec: ContainerRecord) -> None:
    """A container whose monitor died: kill what the runtime still knows of it and tidy up."""
    if rec.state.up:
        from forklift.engine import runner  # the start machinery: off the stop/kill path

        rt = _runtime(store, rec)
        with contextlib.suppress(ForkliftError, OSError):
            rt.kill(rec.id, signal.SIGKILL, all=True)
        runner.finish(store, rec, rt, runner.EXIT_UNKNOWN if rec.exit_code is None else rec.exit_code)


def start(store: Store, name: str) -> ContainerRecord:
    """``start`` (detached): idempotent for a running container; Conflict for a paused one;
    raises what kept it from starting (it is then recorded as exited)."""
    from forklift.engine import monitor  # the start machinery: off the stop/kill path

    rec = container_store.resolve(store, name)
    state = rec.effective_state()
    if state in (State.RUNNING, State.RESTARTING):
        return rec
    if state == State.PAUSED:
        raise Conflict("cannot start a paused container, try unpause instead")
    if rec.state.up:
        _cleanup_ghost(store, rec)
    restart_policy.reset(store, rec.id)
    monitor.launch(store, container_store.resolve(store, rec.id))
    return rec


def restart(store: Store, name: str, timeout: int | None = None) -> ContainerRecord:
    """``restart``: `stop`, then `start`."""
    stop(store, name, timeout)
    rec = start(store, name)
    events.container_event(store.root, "restart", rec)
    return rec


def wait(store: Store, name: str, poll: float = 0.05) -> int:
    """``wait``: block until the container's current run ends and return its exit code
    (255 when the process waiting for it died; the last one known if it was removed
    meanwhile). As Docker's, under a restart policy that is the next exit, not the end
    of the restarts; a container waiting to be restarted is waited for through its
    next run."""
    rec = container_store.resolve(store, name)
    run_started: str | None = None
    while True:
        cur = container_store.get(store, rec.id)
        if cur is None:
            return rec.exit_code or 0
        state = cur.effective_state()
        if not state.up:
            if cur.state != state:
                return 255
            return cur.exit_code if cur.exit_code is not None else 0
        if state == State.RESTARTING:
            if run_started is not None:  # the run it waited for has ended
                return cur.exit_code or 0
        elif run_started is None:
            run_started = cur.started_at
        elif cur.started_at != run_started:  # it ended and restarted between two looks
            return restart_policy.last_exit(store, cur.id)
        rec = cur
        time.sleep(poll)


def pause(store: Store, name: str) -> ContainerRecord:
    """``pause``: freeze the container's processes; Conflict unless it is running."""
    rec = require_running(store, name, "Container {id} is already paused")
    _runtime(store, rec).pause(rec.id)
    container_store.update_state(store, rec.id, state=State.PAUSED)
    events.container_event(store.root, "pause", rec)
    return rec


def unpause(store: Store, name: str) -> ContainerRecord:
    """``unpause``: thaw a paused container; Conflict unless it is paused."""
    rec = container_store.resolve(store, name)
    if rec.effective_state() != State.PAUSED:
        raise Conflict(f"Container {rec.id} is not paused")
    _runtime(store, rec).resume(rec.id)
    cur = container_store.get(store, rec.id)
    if cur is not None and cur.state == State.PAUSED:
        container_store.update_state(store, rec.id, state=State.RUNNING)
    events.container_event(store.root, "unpause", rec)
    return rec


def rename(store: Store, name: str, new_name: str) -> None:
    """``rename``; InvalidArgument for a bad or unchanged name, Conflict if it is taken."""
    rec = container_store.resolve(store, name)
    new = new_name.lstrip("/")
    if not new or not new[0].isalnum() or not all(c.isalnum() or c in "_.-" for c in new):
        raise InvalidArgument(f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if new == rec.name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    try:
        with store.transaction():
            container_store.update_state(store, rec.id, name=new)
            _rename_in_links(store, rec.name, new)
    except sqlite3.IntegrityError:
        other = store.conn.execute("SELECT id FROM containers WHERE name=?", (new,)).fetchone()
        raise Conflict(f'Conflict. The container name "/{new}" is already in use by container'
                       f' "{other[0] if other else "?"}". You have to remove (or rename) that'
                       " container to be able to reuse that name.") from None
    rec.name, old = new, rec.name
    events.container_event(store.root, "rename", rec, oldName=old)


def _rename_in_links(store: Store, old: str, new: str) -> None:
    """HostConfig ``Links`` name the containers at both ends, as Docker shows them: by
    their current names."""
    from forklift.engine.runflags import rename_in_links

    for other in container_store.all_containers(store):
        links = other.host_config.get("Links")
        if links and (renamed := rename_in_links(links, old, new)) != links:
            container_store.set_host_config(store, other.id,
                                            dict(other.host_config, Links=renamed))


def top(store: Store, name: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """``ps`` on the host, filtered to the container's processes (like ``docker top``)."""
    import subprocess  # threading, selectors: only top needs it here

    rec = container_store.resolve(store, name)
    if rec.effective_state() == State.RESTARTING:
        raise Conflict(f"Container {rec.id} is restarting, wait until the container is running")
    if not rec.effective_state().up:
        raise Conflict(f"Container {rec.id} is not running")
    pids = set(_runtime(store, rec).pids(rec.id))
    args = ps_args or ["-ef"]
    proc = subprocess.run([programs.find("ps"), *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ForkliftError(f"Error running ps: {proc.stderr.strip()}")
    lines = proc.stdout.splitlines()
    if not lines:
        return [], []
    header = lines[0].split()
    if "PID" not in header:
        raise ForkliftError("Couldn't find PID field in ps output")
    col = header.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(header) - 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            rows.append(fields)
    return header, rows


# ----------------------------------------------------------------------------- logs

def _entries(path: str, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    try:
        with open(path, "rb") as f:
            return _read_entries(f, start)
    except FileNotFoundError:
        return [], start


def _read_entries(f: IO[bytes], start: int) -> tuple[list[dict[str, Any]], int]:
    f.seek(start)
    data = f.read()
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out, start + end


def _entry_time(e: dict[str, Any]) -> float:
    from forklift import oci  # dataclasses: not on the exec/stop path

    try:
        return float(oci.parse_time(e["time"]))
    except Exception:
        return 0.0


def logs(store: Store, name: str, *, follow: bool = False, tail: str = "all",
         since: str | None = None, until: str | None = None,
         timestamps: bool = False, stdout: IO[bytes] | None = None,
         stderr: IO[bytes] | None = None, details: bool = False,
         stop: Callable[[], bool] | None = None) -> None:
    """``logs``: the container's json-file log, filtered; ``follow`` until it stops (or
    ``stop()`` holds: the API's client left); ``details``: each line after its
    ``--log-opt labels/env`` attributes (``details_text``)."""
    from forklift.engine.timestamps import parse_timestamp  # datetime, re: only logs

    t0 = parse_timestamp(since, "since") if since else None
    t1 = parse_timestamp(until, "until") if until else None
    rec = container_store.resolve(store, name)
    out = stdout or sys.stdout.buffer
    err = stderr or sys.stderr.buffer
    path = log_path(store, rec.id)
    if (rec.host_config.get("LogConfig") or {}).get("Type") == "none":
        raise InvalidArgument("configured logging driver does not support reading")
    entries, offset = _entries(path)
    entries = [e for old in rotated(path) for e in _entries(old)[0]] + entries
    if t0 is not None:
        entries = [e for e in entries if _entry_time(e) >= t0]
    if t1 is not None:
        entries = [e for e in entries if _entry_time(e) <= t1]
    with contextlib.suppress(ValueError, TypeError):  # Docker: an unreadable --tail means all
        n = int(tail)
        if n >= 0:
            entries = entries[-n:] if n else []

    def emit(batch: list[dict[str, Any]]) -> None:
        for e in batch:
            text = e.get("log", "").encode()
            if details:
                text = details_text(e) + b" " + text
            if timestamps:
                text = e.get("time", "").encode() + b" " + text
            target = err if e.get("stream") == "stderr" else out
            target.write(text)
        out.flush()
        err.flush()

    emit(entries)
    if not follow:
        return
    held: IO[bytes] | None = None
    try:
        while True:
            cur = container_store.get(store, rec.id)
            running = cur is not None and cur.effective_state().up
            held = _follow_file(path, held)
            batch, offset = _read_entries(held, offset) if held else ([], offset)
            if t1 is not None:
                batch = [e for e in batch if _entry_time(e) <= t1]
            emit(batch)
            if not running:
                batch, offset = _read_entries(held, offset) if held else ([], offset)
                emit(batch)
                return
            if stop is not None and stop():
                return
            time.sleep(0.1)
    finally:
        if held is not None:
            held.close()


def _follow_file(path: str, held: IO[bytes] | None) -> IO[bytes] | None:
    """The log to follow: the file held open while the path still names it, so a removal
    (docker-py's ``run`` removes the container before it reads the followed logs) does not
    lose the last lines; the path's new file once it was rotated."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return held
    if held is not None:
        if os.fstat(held.fileno()).st_ino == st.st_ino:
            return held
        held.close()
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def details_text(entry: dict[str, Any]) -> bytes:
    """Docker's ``--details`` prefix of a log entry: its ``attrs`` as ``k=v`` pairs sorted by
    key, both sides query-escaped as Go's ``url.QueryEscape`` does, joined by commas."""
    from urllib.parse import quote_plus

    attrs = entry.get("attrs") or {}
    return ",".join(f"{quote_plus(str(k))}={quote_plus(str(v))}"
                    for k, v in sorted(attrs.items())).encode()


# ----------------------------------------------------------------------------- attach

def attach(store: Store, name: str, *, stdin: bool = True, sig_proxy: bool = True) -> int:
    """Connect the caller's terminal/pipes to a running container through its monitor;
    returns its exit code (`wait`). Conflict unless it runs detached."""
    from forklift.engine import monitor, tty  # sockets, termios: only attach needs them

    rec = container_store.resolve(store, name)
    if not rec.effective_state().up:
        raise Conflict("You cannot attach to a stopped container, start it first")
    try:
        conn = tty.connect_in_dir(store.container_path(rec.id), monitor.ATTACH_SOCKET)
    except ConnectionRefusedError:  # its process ended: the monitor is finishing the run
        raise Conflict("You cannot attach to a stopped container, start it first") from None
    except OSError:
        raise Conflict(f"cannot attach to container {rec.id[:12]}: it was not started detached") from None
    is_tty = bool(rec.config.get("Tty"))
    in_fd: int | None = 0 if stdin and rec.config.get("OpenStdin") else None
    out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()

    def send(kind: int, payload: bytes) -> None:
        conn.sendall(struct.pack(">BI", kind, len(payload)) + payload)

    def resize(*_: Any) -> None:
        size = tty.get_winsize(in_fd if in_fd is not None else out_fd)
        if size:
            with contextlib.suppress(OSError):
                send(monitor.IN_RESIZE, struct.pack(">HH", *size))

    old_winch = None
    if is_tty:
        resize()
        old_winch = signal.signal(signal.SIGWINCH, resize)
    buf = b""
    try:
        with tty.raw_terminal(in_fd) if (is_tty and in_fd is not None) else contextlib.nullcontext():
            while True:
                watch = [conn.fileno()] + ([in_fd] if in_fd is not None else [])
                try:
                    ready, _, _ = select.select(watch, [], [])
                except InterruptedError:
                    continue
                if conn.fileno() in ready:
                    try:
                        data = conn.recv(65536)
                    except ConnectionResetError:
                        # the monitor closed with our last input unread: the container is
                        # done and its output was already delivered
                        data = b""
                    if not data:
                        break
                    frames, buf = monitor.split_frames(buf + data)
                    for kind, payload in frames:
                        if kind != monitor.OUT_ATTACHED:
                            write_all(err_fd if kind == monitor.OUT_STDERR else out_fd, payload)
                if in_fd is not None and in_fd in ready:
                    data = os.read(in_fd, 65536)
                    try:
                        send(monitor.IN_STDIN if data else monitor.IN_CLOSE, data)
                    except OSError:  # the container ended; its output is still to be read
                        data = b""
                    if not data:
                        in_fd = None
    finally:
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        conn.close()
    return wait(store, rec.id)


__all__ = ["attach", "kill", "logs", "pause", "rename", "restart", "start", "stop", "top",
           "unpause", "wait"]
