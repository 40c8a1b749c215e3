"""runc behind the `forklift.runtime.Runtime` interface.

Each store has its own runc state directory (``--root``) so forklift never sees
or touches containers of Docker, Podman or another store.

A foreground ``run`` spawns runc with posix_spawn (no fork of the Python process)
and waits with sigwaitinfo, which tells it who sent a signal: a Ctrl-C typed at the
terminal reaches runc directly (same process group), so only signals sent to
forklift with kill(2) are forwarded; the container never sees a signal twice.

runc says why it failed in its JSON log (``--log-format json``); `_failure` is the
one place that reads its wording and turns it into an error class.
"""

from __future__ import annotations

import _thread  # not threading: its import is not free, and only the id is needed
import contextlib
import json
import os
import signal

from forklift import programs
from forklift.errors import (
    CommandNotExecutable,
    CommandNotFound,
    NoSuchRuntimeContainer,
    RuntimeFailure,
)

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any

    Stdio = int | IO[Any] | None

# si_code of signals the kernel generates, e.g. from the terminal (Ctrl-C, Ctrl-\).
SI_KERNEL = 0x80
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_WATCHED = {*FORWARDED_SIGNALS, signal.SIGCHLD}
# Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve, so reset them.
_RESET_TO_DEFAULT = (signal.SIGPIPE, signal.SIGXFSZ)
_WAIT_POLL = 0.1   # seconds: the longest a foreground run's exit goes unseen

def _fd(stream: Stdio) -> int | None:
    if stream is None or isinstance(stream, int):
        return stream
    return stream.fileno()


def exit_code(status: int) -> int:
    """A wait status as a shell shows it: the exit code, or 128+N when killed by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Runc:
    """runc bound to one state directory."""

    name = "runc"

    def __init__(self, state_root: str, binary: str | None = None) -> None:
        self.binary = programs.find(binary or "runc")
        self.state_root = state_root

    def _argv(self, log: str, *args: str) -> list[str]:
        return [self.binary, "--root", self.state_root, "--log", log, "--log-format", "json",
                *args]

    # -- creating and running ------------------------------------------------

    def run(self, container_id: str, bundle: str, *, stdin: Stdio = None,
            stdout: Stdio = None, stderr: Stdio = None, keep: bool = False,
            detach: bool = False, console_socket: str | None = None,
            pid_file: str | None = None) -> int:
        """See `forklift.runtime.Runtime.run`. runc's own error is on its stderr (the
        container's) too by the time this raises. Call a foreground run from the main
        thread: signals are blocked only in the calling thread."""
        log = os.path.join(bundle, "runc.log")
        args = ["run", *(["--keep"] if keep else []), *(["--detach"] if detach else []),
                *(["--pid-file", pid_file] if pid_file else []), "--bundle", bundle]
        if detach:
            self._call(*args, container_id, log=log, console_socket=console_socket,
                       stdin=stdin, stdout=stdout, stderr=stderr)
            return 0
        assert console_socket is None, "a terminal needs detach=True"
        actions = [
            (os.POSIX_SPAWN_DUP2, fd, target)
            for target, fd in ((0, _fd(stdin)), (1, _fd(stdout)), (2, _fd(stderr)))
            if fd is not None and fd != target
        ]
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        try:
            with self._log(log):
                pid = os.posix_spawn(self.binary, self._argv(log, *args, container_id),
                                     os.environ, file_actions=actions, setsigmask=(),
                                     setsigdef=_RESET_TO_DEFAULT)
                code = _wait_forwarding(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        error = _last_error(log) if code == 1 else None  # else: the container's own status
        if error is not None:
            raise _failure(error)
        return code

    def create(self, container_id: str, bundle: str, *, pid_file: str | None = None,
               console_socket: str | None = None, stdin: Stdio = None,
               stdout: Stdio = None, stderr: Stdio = None) -> None:
        """``runc create``: the container process inherits the given stdio."""
        args = ["create", "--bundle", bundle, *(["--pid-file", pid_file] if pid_file else [])]
        self._call(*args, container_id, log=os.path.join(bundle, "runc.log"),
                   console_socket=console_socket, stdin=stdin, stdout=stdout, stderr=stderr)

    def start(self, container_id: str) -> None:
        self._call("start", container_id)

    def exec(self, container_id: str, process: str, *, detach: bool = False,
             console_socket: str | None = None, pid_file: str | None = None,
             stdin: Stdio = None, stdout: Stdio = None, stderr: Stdio = None) -> int:
        """See `forklift.runtime.Runtime.exec`."""
        args = ["exec", "--process", process, *(["--detach"] if detach else []),
                *(["--pid-file", pid_file] if pid_file else [])]
        if detach:
            self._call(*args, container_id, console_socket=console_socket, stdin=stdin,
                       stdout=stdout, stderr=stderr)
            return 0
        assert console_socket is None, "a terminal needs detach=True"
        with self._log() as log:
            code, _ = _spawn(self._argv(log, *args, container_id), stdin, stdout, stderr,
                             inherit=True)
            # runc exec exits with the process's status; 1 or 255 with an error logged
            # is runc's own failure (the process never ran)
            error = _last_error(log) if code in (1, 255) else None
        if error is not None:
            raise _failure(error)
        return code

    # -- the other verbs -----------------------------------------------------

    def kill(self, container_id: str, sig: int | str = signal.SIGTERM, all: bool = False) -> None:
        """``runc kill``; a signal to the init alone is sent without a runc process when
        runc's state names a live init (`_signal_init`), as runc itself would send it."""
        if not all and isinstance(sig, int) and self._signal_init(container_id, sig):
            return
        name = sig if isinstance(sig, str) else str(int(sig))
        self._call("kill", *(["--all"] if all else []), container_id, name)

    def _signal_init(self, container_id: str, sig: int) -> bool:
        """Signal the container's init through a pidfd once its pid and start time match
        runc's ``state.json`` (so a recycled pid is never signalled); False, having sent
        nothing, for anything else (no state, an init gone or a zombie): runc kill then
        decides, with its own error."""
        try:
            with open(os.path.join(self.state_root, container_id, "state.json"), "rb") as f:
                state = json.load(f)
            pid, start = int(state["init_process_pid"]), int(state["init_process_start"])
            pidfd = os.pidfd_open(pid)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
            if fields[0] == b"Z" or int(fields[19]) != start:  # fields 3 and 22 of stat
                return False
            signal.pidfd_send_signal(pidfd, sig)
            return True
        except (OSError, ValueError, IndexError):
            return False
        finally:
            os.close(pidfd)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Delete the container; a container runc does not know is not an error (and costs
        no runc process: its state directory is not there)."""
        if not os.path.exists(os.path.join(self.state_root, container_id)):
            return
        try:
            self._call("delete", *(["--force"] if force else []), container_id)
        except NoSuchRuntimeContainer:
            pass

    def state(self, container_id: str) -> dict[str, Any] | None:
        """runc's state JSON (status, pid, bundle...), or None if it does not exist."""
        try:
            out = self._call("state", container_id, capture=True)
        except NoSuchRuntimeContainer:
            return None
        result: dict[str, Any] = json.loads(out)
        return result

    def pause(self, container_id: str) -> None:
        self._call("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._call("resume", container_id)

    def pids(self, container_id: str) -> list[int]:
        out = self._call("ps", "--format", "json", container_id, capture=True)
        return [int(p) for p in (json.loads(out or "[]") or [])]

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """``runc update --resources FILE`` (the file in the state directory, removed after)."""
        os.makedirs(self.state_root, mode=0o700, exist_ok=True)
        path = os.path.join(self.state_root, f"update-{os.getpid()}-{container_id[:12]}.json")
        with open(path, "w") as f:
            json.dump(resources, f)
        try:
            self._call("update", "--resources", path, container_id)
        finally:
            _unlink(path)

    # -- plumbing ------------------------------------------------------------

    def _log(self, path: str | None = None) -> contextlib.AbstractContextManager[str]:
        """A log of its own for one call (in the state directory, removed afterwards), or
        ``path``, which stays (the bundle's ``runc.log``)."""
        if path is not None:
            return _log_file(path, keep=True)
        os.makedirs(self.state_root, mode=0o700, exist_ok=True)
        return _log_file(os.path.join(self.state_root, f"runc-{os.getpid()}-{_thread.get_native_id()}.log"), keep=False)

    def _call(self, *args: str, log: str | None = None, capture: bool = False,
              console_socket: str | None = None, stdin: Stdio = None, stdout: Stdio = None,
              stderr: Stdio = None) -> str:
        """Run one runc verb to completion (stdio: /dev/null unless given); its error
        message becomes the error raised.

        runc dials ``console_socket`` by a path that must fit in sun_path, so it runs in
        the socket's directory and is given the name only."""
        cwd = None
        if console_socket is not None:
            cwd, name = os.path.split(console_socket)
            args = (*args[:-1], "--console-socket", name, args[-1])
        with self._log(log) as log_path:
            code, out = _spawn(self._argv(log_path, *args), stdin, stdout, stderr, cwd=cwd,
                               capture=capture)
            if code != 0:
                raise _failure(_last_error(log_path) or f"runc {args[0]} exited with {code}")
        return out


@contextlib.contextmanager
def _log_file(path: str, keep: bool) -> Iterator[str]:
    """runc's ``--log``, emptied first (runc appends); removed afterwards unless ``keep``."""
    _truncate(path)
    try:
        yield path
    finally:
        if not keep:
            _unlink(path)


def _spawn(argv: list[str], stdin: Stdio, stdout: Stdio, stderr: Stdio, *,
           cwd: str | None = None, capture: bool = False,
           inherit: bool = False) -> tuple[int, str]:
    """Run runc; (its exit code as a shell shows it, its stdout if ``capture``).
    Missing stdio is ours with ``inherit``, else /dev/null."""
    fds = (_fd(stdin), _fd(stdout), _fd(stderr))
    if cwd is None and not capture and all(fd is None or fd > 2 or fd == target
                                           for target, fd in enumerate(fds)):
        return _posix_spawn(argv, fds, inherit), ""
    import subprocess  # threading, selectors: not on the plain exec/kill path

    default = None if inherit else subprocess.DEVNULL
    proc = subprocess.run(argv, stdin=default if stdin is None else stdin,
                          stdout=subprocess.PIPE if capture else (default if stdout is None else stdout),
                          stderr=default if stderr is None else stderr, cwd=cwd, check=False)
    code = 128 - proc.returncode if proc.returncode < 0 else proc.returncode
    return code, proc.stdout.decode() if capture else ""


def _posix_spawn(argv: list[str], fds: tuple[int | None, ...], inherit: bool) -> int:
    """`_spawn` without subprocess: the same stdio, the same reset signals, and runc
    killed if we are interrupted while waiting, as subprocess.run does."""
    null = None if inherit or all(fd is not None for fd in fds) else \
        os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null if fd is None else fd, target)
                   for target, fd in enumerate(fds)
                   if (fd is not None or null is not None) and fd != target]
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions,
                             setsigdef=_RESET_TO_DEFAULT)
    finally:
        if null is not None:
            os.close(null)
    try:
        return exit_code(os.waitpid(pid, 0)[1])
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def _failure(message: str) -> RuntimeFailure:
    """runc's error message as the error class it means."""
    if "exec:" in message:  # runc could not execve the container's command
        if "permission denied" in message:
            return CommandNotExecutable(message)
        if "not found" in message or "no such file or directory" in message:
            return CommandNotFound(message)
    if "container does not exist" in message:
        return NoSuchRuntimeContainer(message)
    return RuntimeFailure(message)


def _wait_forwarding(pid: int) -> int:
    """Wait for ``pid`` (signals in _WATCHED must be blocked); forward kill(2)-sent signals."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return exit_code(status)
        # A timeout: another thread waiting for its own runc (concurrent build stages)
        # may take the one SIGCHLD pending for both (standard signals do not queue).
        info = signal.sigtimedwait(_WATCHED, _WAIT_POLL)
        if info is None:
            continue
        if info.si_signo != signal.SIGCHLD and info.si_code != SI_KERNEL:
            try:
                os.kill(pid, info.si_signo)
            except ProcessLookupError:
                pass  # runc just exited; the next waitpid reaps it


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
