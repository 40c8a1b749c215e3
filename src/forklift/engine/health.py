"""Healthchecks: ``--health-*`` / ``--no-healthcheck`` and the image's HEALTHCHECK.

The container's Config.Healthcheck is Docker's (``Test`` ``["CMD-SHELL", cmd]``,
``["CMD", arg…]`` or ``["NONE"]``; durations in nanoseconds). While the container runs,
its monitor keeps a checker process (`run_checks`, forked from the monitor, touching no
database: only files) that execs the test in the container every Interval, each probe
in a process of its own so a probe past its Timeout is killed and recorded as such.
The result is ``containers/<id>/health.json`` in the shape of Docker's
``.State.Health`` (Status starting|healthy|unhealthy, FailingStreak, the Log of the
last 5 probes), which inspect and ps read.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time

from forklift.errors import InvalidArgument
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

NS = 1_000_000_000
DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096
_FILE = "health.json"


def _duration(flag: str, text: str | None) -> int | None:
    if text is None:
        return None
    from forklift.engine.timestamps import go_duration

    seconds = go_duration(text)
    if seconds is None:
        raise InvalidArgument(f'invalid argument "{text}" for "--{flag}" flag: time: invalid'
                              f' duration "{text}"')
    if seconds < 0:
        raise InvalidArgument(f"--{flag} cannot be negative")
    return int(round(seconds * NS))


def config(image_health: dict[str, Any] | None, cmd: str | None, interval: str | None,
           timeout: str | None, retries: int | None, start_period: str | None,
           disabled: bool) -> dict[str, Any] | None:
    """The container's Healthcheck: the flags over the image's (None: neither has one).
    InvalidArgument for a bad duration or flags that contradict each other."""
    given = {"Interval": _duration("health-interval", interval),
             "Timeout": _duration("health-timeout", timeout),
             "StartPeriod": _duration("health-start-period", start_period)}
    if retries is not None and retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    if disabled:
        if cmd is not None or retries is not None or any(v is not None for v in given.values()):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if cmd is None and retries is None and all(v is None for v in given.values()):
        return image_health
    health = dict(image_health or {})
    if cmd is not None:
        health["Test"] = ["CMD-SHELL", cmd]
    health.update({k: v for k, v in given.items() if v is not None})
    if retries is not None:
        health["Retries"] = retries
    return health


def test_command(health: dict[str, Any] | None) -> list[str] | None:
    """The command a probe runs; None when the container has no healthcheck."""
    test = list((health or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return test[1:] or None
    return test  # Docker runs a bare list as CMD


def duration_text(seconds: float) -> str:
    """Go's Duration.String() of a duration down to milliseconds (``500ms``, ``1m30s``)."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    out = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return out + f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"


def _path(store: Store, container_id: str) -> str:
    return os.path.join(store.container_path(container_id), _FILE)


def read(store: Store, container_id: str) -> dict[str, Any] | None:
    """The container's ``.State.Health``; None when it never had one."""
    try:
        with open(_path(store, container_id)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return None


def _write(store: Store, container_id: str, state: dict[str, Any]) -> None:
    tmp = _path(store, container_id) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, _path(store, container_id))


def begin(store: Store, container_id: str) -> dict[str, Any]:
    """A run starts: its health is ``starting``, with nothing in its log (idempotent)."""
    state: dict[str, Any] = {"Status": "starting", "FailingStreak": 0, "Log": []}
    _write(store, container_id, state)
    return state


def record(state: dict[str, Any], entry: dict[str, Any], since_start: float,
           health: dict[str, Any]) -> None:
    """Docker's rules for one probe's result: a success makes it healthy; a failure adds
    to the streak (not while still starting within StartPeriod), and Retries failures in
    a row make it unhealthy. The log keeps the last 5 probes."""
    state["Log"] = (state.get("Log") or [])[-(MAX_LOG - 1):] + [entry]
    if entry["ExitCode"] == 0:
        state["Status"], state["FailingStreak"] = "healthy", 0
        return
    start_period = (health.get("StartPeriod") or 0) / NS
    if state.get("Status") == "starting" and since_start < start_period:
        return
    state["FailingStreak"] = state.get("FailingStreak", 0) + 1
    if state["FailingStreak"] >= (health.get("Retries") or DEFAULT_RETRIES):
        state["Status"] = "unhealthy"


def run_checks(store: Store, rec: ContainerRecord) -> None:  # pragma: no cover - forked
    """The checker's life: probe every Interval until the monitor kills it. It never
    touches the database (the connection it inherited is the monitor's)."""
    from forklift import oci
    from forklift.engine import events

    container_id = rec.id
    health = rec.config.get("Healthcheck") or {}
    interval = (health.get("Interval") or 0) / NS or DEFAULT_INTERVAL
    timeout = (health.get("Timeout") or 0) / NS or DEFAULT_TIMEOUT
    started = time.monotonic()
    state = begin(store, container_id)
    while True:
        time.sleep(interval)
        probe_start = oci.now_rfc3339()
        since_start = time.monotonic() - started
        code, output = _probe(store, rec, timeout)
        before = state["Status"]
        record(state, {"Start": probe_start, "End": oci.now_rfc3339(), "ExitCode": code,
                       "Output": output}, since_start, health)
        _write(store, container_id, state)
        if state["Status"] != before:  # Docker's event of a change (a file append)
            events.container_event(store.root, f"health_status: {state['Status']}", rec)


def _probe(store: Store, rec: ContainerRecord,
           timeout: float) -> tuple[int, str]:  # pragma: no cover - a forked process
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.write(w, json.dumps(_exec(store, rec)).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        if not ready:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            return -1, f"Health check exceeded timeout ({duration_text(timeout)})"
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        try:
            code, output = json.loads(data)
            return int(code), str(output)
        except ValueError:
            return -1, "the health check could not be run"
    finally:
        os.close(r)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _exec(store: Store, rec: ContainerRecord) -> tuple[int, str]:  # pragma: no cover - forked
    """Run the probe in the container: its exit code and (the start of) its output."""
    import tempfile

    from forklift import runtime
    from forklift.engine import process, rootfs
    from forklift.errors import CommandNotExecutable, CommandNotFound, ForkliftError

    command = test_command(rec.config.get("Healthcheck"))
    if command is None:
        return -1, "no healthcheck"
    base = store.container_path(rec.id)
    process_file = os.path.join(base, f"health-{os.getpid()}.json")
    try:
        with open(process_file, "w") as f:
            json.dump(process.exec_process(rec, rootfs.paths(store, rec.id)["merged"], command,
                                           tty=False, user=None, workdir=None, env=[]), f)
        rt = runtime.for_container(store.runc_dir, rec.host_config)
        with tempfile.TemporaryFile(dir=base) as out, open(os.devnull, "rb") as null:
            try:
                code = rt.exec(rec.id, process_file, stdin=null, stdout=out, stderr=out)
            except (CommandNotFound, CommandNotExecutable) as exc:
                return exc.exit_code, exc.message
            except ForkliftError as exc:
                return -1, exc.message
            out.seek(0)
            return code, out.read(MAX_OUTPUT).decode(errors="replace")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(process_file)
