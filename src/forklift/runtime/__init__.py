"""The OCI runtime seam: what the engine asks of runc, and the one factory that gives it.

The engine never builds a runtime's command line: it calls the methods of a `Runtime`
obtained from `get` (``runtime.get(store.runc_dir, name)``). A runtime reports why a
start failed with an error class, never with text the caller must read:
`CommandNotFound` (Docker's exit status 127), `CommandNotExecutable` (126), or any
other `RuntimeFailure` (the engine could not start it: 125 from the CLI, 128 recorded
as the container's exit code). `start_failure_code` is the one mapping of those.

``RUNTIMES`` names every runtime `get` can build; a test adds a fake one there and
names it in a container's ``HostConfig.Runtime`` to drive the engine without runc.
"""

from __future__ import annotations

# SIGTERM's number from _signal, the C module: signal's import (enum) would come with
# every runtime submodule, onto exec's light path (engine/quickexec) too
from _signal import SIGTERM  # type: ignore[import-not-found]

from forklift.errors import CommandNotExecutable, CommandNotFound, InvalidArgument

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from forklift.runtime.runc import Stdio
else:  # a Protocol only for the type checker: nothing checks it at run time
    Protocol = object

DEFAULT = "runc"
# Docker records this exit code for a container the runtime failed to start for any
# reason other than its command (moby's daemon/start.go).
EXIT_START_FAILED = 128


class Runtime(Protocol):
    """An OCI runtime bound to one state directory (runc's command-line verbs).

    Every method raises `RuntimeFailure` (or a subclass) when the runtime fails; a
    ``console_socket`` is the path of a listening unix socket to which the runtime
    sends the pseudo-terminal's master before the call returns."""

    name: str

    def run(self, container_id: str, bundle: str, *, stdin: Stdio = None,
            stdout: Stdio = None, stderr: Stdio = None, keep: bool = False,
            detach: bool = False, console_socket: str | None = None,
            pid_file: str | None = None) -> int:
        """Create and start the bundle's container. In the foreground (the default) wait
        for it and return its exit status (128+N when killed by signal N), forwarding
        signals sent to us with kill(2); ``keep`` leaves its state (and cgroup) for
        `delete`. ``detach``: return 0 once it runs (its pid in ``pid_file``).
        Raises CommandNotFound / CommandNotExecutable when its command cannot be run."""
        ...

    def create(self, container_id: str, bundle: str, *, pid_file: str | None = None,
               console_socket: str | None = None, stdin: Stdio = None,
               stdout: Stdio = None, stderr: Stdio = None) -> None:
        """Create the container, its process waiting for `start`; it keeps the given stdio."""
        ...

    def start(self, container_id: str) -> None:
        """Start a created container's process. Raises CommandNotFound /
        CommandNotExecutable when its command cannot be run."""
        ...

    def exec(self, container_id: str, process: str, *, detach: bool = False,
             console_socket: str | None = None, pid_file: str | None = None,
             stdin: Stdio = None, stdout: Stdio = None, stderr: Stdio = None) -> int:
        """Run the process described by the OCI process JSON file ``process`` in the
        running container; return its exit status (0 once started with ``detach``).
        Raises CommandNotFound / CommandNotExecutable when its command cannot be run."""
        ...

    def kill(self, container_id: str, sig: int | str = SIGTERM,
             all: bool = False) -> None:
        """Send ``sig`` to the container's init (``all``: to every process of it)."""
        ...

    def delete(self, container_id: str, force: bool = False) -> None:
        """Forget a stopped container (``force``: kill it first). Idempotent: a container
        the runtime does not know is not an error."""
        ...

    def state(self, container_id: str) -> dict[str, Any] | None:
        """The runtime's state of the container (status, pid, bundle…), None if unknown."""
        ...

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container."""
        ...

    def resume(self, container_id: str) -> None:
        """Thaw a paused container."""
        ...

    def pids(self, container_id: str) -> list[int]:
        """Host pids of the container's processes."""
        ...

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """Apply the spec's ``linux.resources`` to the running container's cgroup."""
        ...


def _runc(state_root: str) -> Runtime:
    # Imported here: every forklift.runtime submodule loads this package first, and the
    # driver's subprocess & co. need not come with overlay, spec or user (ps, inspect).
    from forklift.runtime.runc import Runc

    return Runc(state_root)


RUNTIMES: dict[str, Callable[[str], Runtime]] = {"runc": _runc}


def get(state_root: str, name: str | None = None) -> Runtime:
    """The runtime ``name`` (default runc) keeping its state under ``state_root``.

    Raises MissingProgram when its program is not installed (before anything is set up),
    InvalidArgument for a name it does not know."""
    factory = RUNTIMES.get(name or DEFAULT)
    if factory is None:
        raise InvalidArgument(f"unknown or invalid runtime name: {name}")
    return factory(state_root)


def for_container(state_root: str, host_config: dict[str, Any]) -> Runtime:
    """The runtime a container runs under (its ``HostConfig.Runtime``, runc by default)."""
    return get(state_root, host_config.get("Runtime"))


def start_failure_code(exc: BaseException) -> int:
    """The exit code Docker records for a container whose start failed with ``exc``:
    127 when its command does not exist, 126 when it cannot be executed, else 128."""
    if isinstance(exc, (CommandNotFound, CommandNotExecutable)):
        return exc.exit_code
    return EXIT_START_FAILED
