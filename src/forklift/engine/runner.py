"""The start sequence of a container: claim → prepare → the runtime runs it → finish.

One sequence for both ways a container runs: attached to the CLI (`run_attached`, for
``run`` and ``start -a``) and detached under its monitor (`forklift.engine.monitor`).
`running` claims the container for the process that will wait for it, prepares it
(root filesystem, network, bundle), hands it over, and whatever happens, finishes it:
runtime state, network and mounts gone, exit code and finish time recorded, ``--rm``
honoured.
"""

from __future__ import annotations

import contextlib
import os
import signal

from forklift import faults, oci, runtime, threads
from forklift.engine import bundle as bundle_mod
from forklift.engine import events, hostconfig, logfile, network, rootfs
from forklift.errors import CommandNotExecutable, CommandNotFound, Conflict, ForkliftError, NotFound
from forklift.runtime import Runtime
from forklift.runtime.runc import FORWARDED_SIGNALS
from forklift.runtime.spec import write_bundle
from forklift.store import containers as container_store
from forklift.store import layers as layer_store
from forklift.store import volumes as volume_store
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any

# The exit code recorded when the process waiting for the container failed before it
# learnt one (Docker shows 255 for a container whose process vanished).
EXIT_UNKNOWN = 255


class Run:
    """One run of a container, from claim to finish: what `running` yields. (A plain
    class: a dataclass costs ~1 ms of import time on the `run` hot path.)"""

    __slots__ = ("rec", "runtime", "bundle", "code", "oom")

    def __init__(self, rec: ContainerRecord, rt: Runtime, bundle: str) -> None:
        self.rec, self.runtime, self.bundle = rec, rt, bundle
        self.code: int | None = None  # the exit code to record; None: it never got one
        self.oom = False


@contextlib.contextmanager
def running(store: Store, name_or_id: str, pid: int) -> Iterator[Run]:
    """Claim the container for ``pid``, prepare it and yield the `Run`; finish it on the
    way out, recording ``run.code``: if unset, `runtime.start_failure_code` of a
    ForkliftError that ends the run (127, 126, 128), else `EXIT_UNKNOWN`.

    Raises NotFound, MissingProgram (its runtime is not installed) or Conflict (it is
    already running) before anything changed; anything raised while preparing or
    running it propagates after the finish."""
    rec = container_store.resolve(store, name_or_id)
    rt = runtime.for_container(store.runc_dir, rec.host_config)
    rec = claim(store, rec, pid)
    run = Run(rec, rt, store.container_path(rec.id))
    try:
        run.bundle = prepare(store, rec, rt)
        events.container_event(store.root, "start", rec)
        yield run
    except ForkliftError as exc:
        if run.code is None:  # it never ran: Docker's code for the reason
            run.code = runtime.start_failure_code(exc)
        raise
    finally:
        finish(store, rec, rt, EXIT_UNKNOWN if run.code is None else run.code,
               oom_killed=run.oom)


def claim(store: Store, rec: ContainerRecord, pid: int) -> ContainerRecord:
    """Mark the container running under ``pid`` (the process that will wait for it), in
    one transaction; Conflict if a live process already runs it, NotFound if it is gone."""
    with store.transaction():
        current = container_store.get(store, rec.id)
        if current is None:
            raise NotFound(f"No such container: {rec.id}")
        own_restart = current.state == State.RESTARTING and current.pid == pid
        if current.effective_state().up and not own_restart:
            raise Conflict(f"container {rec.short_id} is already running")
        started = oci.now_rfc3339()
        container_store.update_state(store, rec.id, state=State.RUNNING, pid=pid,
                                     started_at=started, exit_code=None)
    rootfs.clear_exit_info(store, rec.id)
    current.state, current.pid, current.started_at, current.exit_code = (
        State.RUNNING, pid, started, None)
    return current


def prepare(store: Store, rec: ContainerRecord, rt: Runtime) -> str:
    """Mount the rootfs, set up the network and write the bundle; returns the bundle dir.
    Not atomic: `finish` undoes what it did (and is idempotent)."""
    merged = rootfs.mount(store, rec.id, rec.image_id,
                          volatile=bool(rec.host_config.get("AutoRemove")))
    bundle_mod.ensure_workdir(merged, rec.config.get("WorkingDir"))
    netns_path = network.setup(store, rec) if _networked(rec) else None
    bundle = store.container_path(rec.id)
    write_bundle(bundle, bundle_mod.spec(store, rec, merged, rootfs.paths(store, rec.id),
                                         netns_path))
    with contextlib.suppress(ForkliftError, OSError):
        rt.delete(rec.id, force=True)  # what a crashed run left in the runtime
    return bundle


def finish(store: Store, rec: ContainerRecord, rt: Runtime, code: int,
           oom_killed: bool = False) -> None:
    """Everything after the container's process is gone: runtime state, network, mounts,
    then the record (exited, ``code``); ``--rm`` removes the container. Idempotent; each
    step survives the failure of the ones before."""
    faults.checkpoint("start-after-runc")
    if _networked(rec):
        _delete_and_teardown(store, rec, rt)
    else:
        _delete_state(rt, rec.id)
    rootfs.unmount(store, rec.id)
    if oom_killed:
        rootfs.write_exit_info(store, rec.id, {"OOMKilled": True})
    if container_store.get(store, rec.id) is not None:
        container_store.update_state(store, rec.id, state=State.EXITED, pid=None,
                                     exit_code=code, finished_at=oci.now_rfc3339())
        events.container_event(store.root, "die", rec, exitCode=str(code))
    if rec.host_config.get("AutoRemove"):
        current = container_store.get(store, rec.id)
        if current is not None and not current.effective_state().up:  # not restarted since
            discard(store, current, volumes=True)


def _delete_state(rt: Runtime, container_id: str) -> None:
    with contextlib.suppress(ForkliftError, OSError):
        rt.delete(container_id, force=True)


def _delete_and_teardown(store: Store, rec: ContainerRecord, rt: Runtime) -> None:
    """The runtime's delete (cgroups, its state) and the CNI plugins' DEL (veth, address)
    touch different things and each costs a process or two: run them side by side. Both
    are done before the record says exited, so a new start never meets either."""
    worker = threads.start(_delete_state, rt, rec.id)
    try:
        with contextlib.suppress(Exception):
            network.teardown(store, rec)
    finally:
        worker.join()


def discard(store: Store, rec: ContainerRecord, volumes: bool = False) -> None:
    """Delete a container that no process runs: its record, then its files; ``volumes``:
    its anonymous volumes nothing else uses. The record goes in one transaction (a crash
    after it leaves only files, swept by ``system check --repair``)."""
    attached = volume_store.of_container(store, rec.id)
    held_layers = container_store.delete(store, rec.id)
    events.container_event(store.root, "destroy", rec)
    faults.checkpoint("rm-after-delete")
    rootfs.destroy(store, rec.id)
    if held_layers:  # the last user of a deleted image's layers frees them, as in Docker
        layer_store.collect_garbage(store)
    if volumes:
        volume_store.remove_unused_anonymous(store, [name for name, _ in attached])


def _networked(rec: ContainerRecord) -> bool:
    return rec.host_config.get("NetworkMode", "bridge") not in ("host", "none")


def oom_killed(rec: ContainerRecord) -> bool:
    """Whether the kernel's OOM killer struck in the container's memory cgroup; call after
    the container exited and before its runtime state (and so the cgroup) is deleted."""
    return bool(rec.host_config.get("Memory")) and hostconfig.oom_killed(rec.id)


# ----------------------------------------------------------------------------- attached

def run_attached(store: Store, name_or_id: str, *, stdin: IO[Any] | None = None,
                 stdout: IO[Any] | None = None, stderr: IO[Any] | None = None) -> int:
    """Run a container attached to the caller and return its exit code: 127/126 when its
    command cannot be run (the runtime's reason on ``stderr``), raise for any other failure
    to start it. Output goes to ``stdout``/``stderr`` (ours by default) and, as Docker's
    does, into the container's json-file log; ``stdin`` stays connected directly."""
    with running(store, name_or_id, os.getpid()) as run:
        log = logfile.open_log(logfile.log_path(store, run.rec.id), run.rec.host_config)
        faults.checkpoint("start-before-runc")
        try:
            if run.rec.config.get("Tty"):
                run.code = _run_terminal(run, log, stdin, stdout)
            else:
                run.code = _run_teed(run, log, stdin, stdout, stderr)
        except (CommandNotFound, CommandNotExecutable) as exc:
            run.code = exc.exit_code
        run.oom = oom_killed(run.rec)
        return run.code


def _run_terminal(run: Run, log: logfile.JsonLog, stdin: IO[Any] | None,
                  stdout: IO[Any] | None) -> int:
    """``run -t``: the terminal's output is teed into the log."""
    from forklift.engine import tty  # termios & co.: not on the hot path of `run --rm`

    try:
        return tty.run_with_console(
            lambda socket, pid_file: run.runtime.run(
                run.rec.id, run.bundle, detach=True, console_socket=socket, pid_file=pid_file,
                stdout=1, stderr=2),
            run.bundle, os.path.join(run.bundle, "init.pid"),
            interactive=stdin is not None and not tty.is_devnull(stdin),
            stdin=stdin, stdout=stdout, tee=lambda data: log.write("stdout", data),
            size_file=os.path.join(run.bundle, tty.SIZE_FILE))
    finally:
        log.close()


def _run_teed(run: Run, log: logfile.JsonLog, stdin: IO[Any] | None,
              stdout: IO[Any] | None, stderr: IO[Any] | None) -> int:
    """A foreground run with its stdout/stderr on pipes that a thread copies to ours and
    the log.

    A memory-limited container is kept in the runtime's state after it exits (``keep``) so
    its cgroup, where the kernel counts OOM kills, can be read before it is deleted."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    cfg = run.rec.config  # -a: a stream not attached goes to the log only
    tee = logfile.Tee(log, {
        out_r: ("stdout", _fileno(stdout, 1) if cfg.get("AttachStdout", True) else None),
        err_r: ("stderr", _fileno(stderr, 2) if cfg.get("AttachStderr", True) else None)})
    # The thread inherits a mask that blocks the signals a foreground run waits for with
    # sigwaitinfo: none of them may be delivered to it instead.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED_SIGNALS, signal.SIGCHLD})
    try:
        thread = threads.start(tee.run)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    logged = os.fstat(log.fd).st_size
    failed = True
    try:
        code = run.runtime.run(run.rec.id, run.bundle, stdin=stdin, stdout=out_w, stderr=err_w,
                               keep=bool(run.rec.host_config.get("Memory")))
        failed = False
        return code
    finally:
        os.close(out_w)
        os.close(err_w)
        thread.join()
        if failed:
            # The runtime said why it could not start the process on the stderr it shares
            # with the container: no output of the container (Docker's log stays empty).
            with contextlib.suppress(OSError):
                os.truncate(log.path, logged)


def _fileno(stream: IO[Any] | None, default: int) -> int:
    return default if stream is None else stream.fileno()
