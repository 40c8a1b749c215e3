"""``exec``: run another process in a running container."""

from __future__ import annotations

import contextlib
import json
import os

from forklift import runtime
from forklift.engine import events, process, rootfs
from forklift.engine.lifecycle import require_running
from forklift.errors import CommandNotExecutable, CommandNotFound, InvalidArgument
from forklift.records import SlotRecord
from forklift.runtime import Runtime
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store, remove_path

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any


class ExecOptions(SlotRecord):
    """How to run an exec'd process. A plain slotted class: dataclasses (inspect, ast, dis)
    would cost more import time than the rest of ``exec``'s Python."""

    __slots__ = ("tty", "interactive", "detach", "user", "workdir", "env", "privileged",
                 "pid_file")

    def __init__(self, tty: bool = False, interactive: bool = False, detach: bool = False,
                 user: str | None = None, workdir: str | None = None,
                 env: list[str] | None = None, privileged: bool = False,
                 pid_file: str | None = None) -> None:
        self.tty = tty
        self.interactive = interactive
        self.detach = detach
        self.user = user
        self.workdir = workdir
        self.env: list[str] = [] if env is None else env
        self.privileged = privileged
        self.pid_file = pid_file  # a piped exec's host PID is written there once it runs


def process_json(store: Store, rec: ContainerRecord, command: list[str],
                 opts: ExecOptions) -> dict[str, Any]:
    """The OCI process of ``command`` run in ``rec``: see `process.exec_process`."""
    return process.exec_process(rec, rootfs.paths(store, rec.id)["merged"], command,
                               tty=opts.tty, user=opts.user, workdir=opts.workdir, env=opts.env)


def exec_(store: Store, name: str, command: list[str], opts: ExecOptions, *,
          stdin: Any = None, stdout: Any = None, stderr: Any = None) -> int:
    """``exec``: the process's exit code (0 once started with ``detach``), 127/126 when
    its command cannot be run (the runtime's reason on stderr). Conflict unless the
    container is running, InvalidArgument for a bad user or working directory,
    RuntimeFailure when the runtime fails otherwise."""
    if not command:
        raise InvalidArgument("exec requires at least 1 argument")
    rec = require_running(store, name, "Container {id} is paused, unpause the container before exec")
    rt = runtime.for_container(store.runc_dir, rec.host_config)
    scratch = store.make_tmp("exec")
    try:
        process_file = os.path.join(scratch, "process.json")
        with open(process_file, "w") as f:
            json.dump(process_json(store, rec, command, opts), f)
        exec_id = os.urandom(32).hex()
        events.container_event(store.root, f"exec_start: {' '.join(command)}", rec,
                               execID=exec_id)
        try:
            code = _exec(rt, rec.id, process_file, scratch, opts, stdin, stdout, stderr)
        except (CommandNotFound, CommandNotExecutable) as exc:
            code = exc.exit_code
        if not opts.detach:
            events.container_event(store.root, "exec_die", rec, execID=exec_id,
                                   exitCode=str(code))
        return code
    finally:
        remove_path(scratch)


def _exec(rt: Runtime, container_id: str, process_file: str, scratch: str, opts: ExecOptions,
          stdin: Any, stdout: Any, stderr: Any) -> int:
    if opts.tty:
        return _exec_with_terminal(rt, container_id, process_file, scratch, opts, stdin, stdout)
    if opts.detach:
        return rt.exec(container_id, process_file, detach=True)
    if opts.interactive:
        return rt.exec(container_id, process_file, pid_file=opts.pid_file, stdin=stdin,
                       stdout=stdout, stderr=stderr)
    with open("/dev/null", "rb") as null:
        return rt.exec(container_id, process_file, pid_file=opts.pid_file, stdin=null,
                       stdout=stdout, stderr=stderr)


def _exec_with_terminal(rt: Runtime, container_id: str, process_file: str, scratch: str,
                        opts: ExecOptions, stdin: Any, stdout: Any) -> int:
    from forklift.engine import tty  # termios & co.: only -t needs them

    if opts.detach:
        # the runtime needs someone to take the terminal; output is discarded, like
        # docker exec -dt
        listener = tty.bind_in_dir(scratch, tty.CONSOLE_SOCKET)
        try:
            rt.exec(container_id, process_file, detach=True,
                    console_socket=os.path.join(scratch, tty.CONSOLE_SOCKET))
            with contextlib.suppress(Exception):
                os.close(tty.take_master(listener))
        finally:
            listener.close()
        return 0
    return tty.run_with_console(
        lambda socket, pid_file: rt.exec(container_id, process_file, detach=True,
                                         console_socket=socket, pid_file=pid_file,
                                         stdout=1, stderr=2),
        scratch, os.path.join(scratch, "exec.pid"), interactive=opts.interactive,
        stdin=stdin, stdout=stdout)
