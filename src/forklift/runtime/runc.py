"""Drive runc: run a bundle in the foreground, and the create/start/kill/delete verbs.

Each store has its own runc state directory (``--root``) so forklift never sees
or touches containers of Docker, Podman or another store.

``run`` spawns runc with posix_spawn (no fork of the Python process) and waits
with sigwaitinfo, which tells it who sent a signal: a Ctrl-C typed at the
terminal reaches runc directly (same process group), so only signals sent to
forklift with kill(2) are forwarded; the container never sees a signal twice.
"""

from __future__ import annotations

import json
import os
import signal
from typing import IO, Any

from forklift import programs
from forklift.errors import RuntimeFailure

# si_code of signals the kernel generates, e.g. from the terminal (Ctrl-C, Ctrl-\).
SI_KERNEL = 0x80
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_WATCHED = {*FORWARDED_SIGNALS, signal.SIGCHLD}
# Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve, so reset them.
_RESET_TO_DEFAULT = (signal.SIGPIPE, signal.SIGXFSZ)

# Docker's exit codes when the command cannot be started.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126

Stdio = int | IO[Any] | None


def _fd(stream: Stdio) -> int | None:
    if stream is None or isinstance(stream, int):
        return stream
    return stream.fileno()


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N -> 128+N, like a shell


class Runc:
    """runc bound to one state directory."""

    def __init__(self, state_root: str, binary: str | None = None) -> None:
        self.binary = programs.find(binary or "runc")
        self.state_root = state_root

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.state_root, *args]

    # -- foreground run ------------------------------------------------------

    def run(
        self,
        container_id: str,
        bundle: str,
        *,
        stdin: Stdio = None,
        stdout: Stdio = None,
        stderr: Stdio = None,
        keep: bool = False,
    ) -> int:
        """Run the bundle in the foreground and return the container's exit status.

        ``keep`` leaves the stopped container (and its cgroup) for ``delete``.

        stdio defaults to ours. Returns 127/126 like Docker when the command is
        missing / not executable; raises RuntimeFailure when runc fails for any
        other reason (runc has already printed its error to stderr by then).
        Call from the main thread: signals are blocked only in the calling thread.
        """
        log_path = os.path.join(bundle, "runc.log")
        _truncate(log_path)
        argv = self._argv("--log", log_path, "--log-format", "json")
        argv += ["run", *(["--keep"] if keep else []), "--bundle", bundle, container_id]
        actions = [
            (os.POSIX_SPAWN_DUP2, fd, target)
            for target, fd in ((0, _fd(stdin)), (1, _fd(stdout)), (2, _fd(stderr)))
            if fd is not None and fd != target
        ]
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        try:
            pid = os.posix_spawn(
                self.binary,
                argv,
                os.environ,
                file_actions=actions,
                setsigmask=(),
                setsigdef=_RESET_TO_DEFAULT,
            )
            code = _wait_forwarding(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return _map_start_failure(code, log_path)

    # -- detached lifecycle --------------------------------------------------

    def create(
        self,
        container_id: str,
        bundle: str,
        *,
        pid_file: str | None = None,
        stdin: Stdio = None,
        stdout: Stdio = None,
        stderr: Stdio = None,
    ) -> None:
        """``runc create``: the container process inherits the given stdio."""
        args = ["create", "--bundle", bundle]
        if pid_file:
            args += ["--pid-file", pid_file]
        self._call(*args, container_id, stdin=stdin, stdout=stdout, stderr=stderr)

    def start(self, container_id: str) -> None:
        self._call("start", container_id)

    def kill(self, container_id: str, sig: int | str = signal.SIGTERM, all: bool = False) -> None:
        name = sig if isinstance(sig, str) else str(int(sig))
        args = ["kill", "--all"] if all else ["kill"]
        self._call(*args, container_id, name)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Delete the container; a container runc does not know is not an error."""
        args = ["delete", "--force"] if force else ["delete"]
        try:
            self._call(*args, container_id)
        except RuntimeFailure as e:
            if "does not exist" not in e.message:
                raise

    def state(self, container_id: str) -> dict[str, Any] | None:
        """runc's state JSON (status, pid, bundle...), or None if it does not exist."""
        try:
            out = self._call("state", container_id, capture=True)
        except RuntimeFailure as e:
            if "does not exist" in e.message:
                return None
            raise
        result: dict[str, Any] = json.loads(out)
        return result

    def _call(
        self,
        *args: str,
        capture: bool = False,
        stdin: Stdio = None,
        stdout: Stdio = None,
        stderr: Stdio = None,
    ) -> str:
        """Run one runc verb to completion; its error message goes into RuntimeFailure."""
        import subprocess  # only the detached verbs need it; keep `run` imports lean

        log_path = os.path.join(self.state_root, f"runc-{os.getpid()}.log")
        os.makedirs(self.state_root, mode=0o700, exist_ok=True)
        _truncate(log_path)
        argv = self._argv("--log", log_path, "--log-format", "json", *args)
        null = subprocess.DEVNULL
        try:
            proc = subprocess.run(
                argv,
                stdin=null if stdin is None else stdin,
                stdout=subprocess.PIPE if capture else (null if stdout is None else stdout),
                stderr=null if stderr is None else stderr,
                check=False,
            )
            if proc.returncode != 0:
                msg = _last_error(log_path) or f"runc {args[0]} exited with {proc.returncode}"
                raise RuntimeFailure(msg)
            return proc.stdout.decode() if capture else ""
        finally:
            _unlink(log_path)


def _wait_forwarding(pid: int) -> int:
    """Wait for ``pid`` (signals in _WATCHED must be blocked); forward kill(2)-sent signals."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _exit_code(status)
        info = signal.sigwaitinfo(_WATCHED)
        if info.si_signo != signal.SIGCHLD and info.si_code != SI_KERNEL:
            try:
                os.kill(pid, info.si_signo)
            except ProcessLookupError:
                pass  # runc just exited; the next waitpid reaps it


def _map_start_failure(code: int, log_path: str) -> int:
    """Turn runc's exit 1 for "could not start the command" into Docker's 127/126."""
    if code != 1:
        return code
    error = _last_error(log_path)
    if error is None:
        return code  # the container's own exit status 1
    if "unable to start container process: exec:" in error:
        if "permission denied" in error:
            return EXIT_NOT_EXECUTABLE
        if "not found" in error or "no such file or directory" in error:
            return EXIT_NOT_FOUND
    raise RuntimeFailure(error)


def _last_error(log_path: str) -> str | None:
    """The last error-level message in runc's JSON log, if any."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", "")).strip() or None
    return None


def _truncate(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
