"""``exec``'s common case in the fewest modules: a running container, no terminal, in the
foreground, under runc.

A whole ``docker exec`` takes some 75 ms; the ordinary path (`forklift.engine.exec`)
spends about 20 of its own on imports alone: the store (``sqlite3``, ``datetime``,
recovery), ``json`` (``re``, ``enum``), ``contextlib``, ``signal``, the lifecycle and
rootfs modules and the runtime driver. This one reads the record through `store.peek`,
builds the same process.json with the same function (`process.process_for`), writes the
same events and runs ``runc exec`` as the runc driver does (`forklift.runtime.runc`,
loaded only to read an error runc logged). Whatever it does not handle it leaves alone
(`run` answers None before changing anything) and `forklift.engine.exec` decides, with
its own errors: no such container, one not running, paused or restarting, a store to
open or recover, another runtime.
"""

from __future__ import annotations

import os

from forklift import programs
from forklift.engine import events, process
from forklift.fastjson import dumps
from forklift.store.layout import default_root
from forklift.store.peek import running_container

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from forklift.store.peek import RunningContainer

# what subprocess and the runc driver reset in the child: Python ignores both, and an
# ignored disposition survives execve (the numbers from _signal: signal's import costs enum)
import _signal  # type: ignore[import-not-found]  # noqa: E402

_RESET_TO_DEFAULT = (_signal.SIGPIPE, _signal.SIGXFSZ)


def run(root: str | None, name: str, command: list[str], *, interactive: bool,
        user: str | None, workdir: str | None, env: list[str]) -> int | None:
    """Run ``command`` in the running container ``name`` of the store at ``root`` (None:
    the default) as `forklift.engine.exec.exec_` would, with our stdout and stderr and
    our stdin if ``interactive`` (else /dev/null); its exit code. None, having done
    nothing, where `forklift.engine.exec.exec_` must decide."""
    root = os.path.abspath(root or default_root())
    rec = running_container(root, name) if command else None
    if rec is None or rec.host_config.get("Runtime", "runc") != "runc":
        return None
    binary = programs.find("runc")
    merged = os.path.join(root, "containers", rec.id, "merged")
    spec = process.process_for(rec.config, rec.host_config, merged, command, tty=False,
                               user=user, workdir=workdir, env=env)
    scratch = os.path.join(root, "tmp", f"{os.getpid()}-exec-{os.urandom(6).hex()}")
    try:
        os.mkdir(scratch, 0o700)
    except OSError:  # a full disk, say: the ordinary path says so
        return None
    try:
        process_file = os.path.join(scratch, "process.json")
        with open(process_file, "w") as f:
            f.write(dumps(spec))
        return _run_runc(root, rec, binary, process_file, scratch, command, interactive)
    finally:
        for entry in os.listdir(scratch):
            os.unlink(os.path.join(scratch, entry))
        os.rmdir(scratch)


def _run_runc(root: str, rec: RunningContainer, binary: str, process_file: str,
              scratch: str, command: list[str], interactive: bool) -> int:
    exec_id = os.urandom(32).hex()
    events.container_event(root, f"exec_start: {' '.join(command)}", rec, execID=exec_id)
    log = os.path.join(scratch, "runc.log")
    argv = [binary, "--root", os.path.join(root, "runc"), "--log", log, "--log-format",
            "json", "exec", "--process", process_file, rec.id]
    code = _spawn(argv, interactive)
    # runc exec exits with the process's status; 1 or 255 with an error logged is runc's
    # own failure (the process never ran)
    if code in (1, 255) and os.path.exists(log) and os.path.getsize(log):
        from forklift.errors import CommandNotExecutable, CommandNotFound
        from forklift.runtime.runc import _failure, _last_error

        error = _last_error(log)
        if error is not None:
            failure = _failure(error)
            if not isinstance(failure, (CommandNotFound, CommandNotExecutable)):
                raise failure
            code = failure.exit_code
    events.container_event(root, "exec_die", rec, execID=exec_id, exitCode=str(code))
    return code


def _spawn(argv: list[str], interactive: bool) -> int:
    """runc with our stdout and stderr, our stdin or /dev/null; its exit code as a shell
    shows it. Killed and reaped if we are interrupted while waiting (as subprocess)."""
    null = None if interactive else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        actions = [] if null is None else [(os.POSIX_SPAWN_DUP2, null, 0)]
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions,
                             setsigdef=_RESET_TO_DEFAULT)
    finally:
        if null is not None:
            os.close(null)
    try:
        status = os.waitpid(pid, 0)[1]
    except BaseException:
        try:
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        raise
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
