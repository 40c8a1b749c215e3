"""A RUN step: its command in a real container on the engine, whose changes become the
step's layer; the container removed whatever happens (failure, Ctrl-C, SIGTERM), and
the containers of a build that was killed outright removed by the next build."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from forklift.build.progress import OutputPipe, Step
from forklift.errors import ForkliftError, InvalidArgument
from forklift.store import layers as layer_store
from forklift.store.db import Store

# On a RUN step's container: the pid of the build, so that the next build removes the
# containers of one that was killed (SIGKILL leaves no chance to remove them).
BUILD_LABEL = "org.forklift.build.pid"
REPRO_HOSTNAME = "buildkitsandbox"   # BuildKit's fixed one, under SOURCE_DATE_EPOCH


@dataclass
class RunSettings:
    """What a build gives every RUN container (``build --network/--add-host/--ulimit``)."""
    network: str = "bridge"
    add_hosts: list[str] = field(default_factory=list)
    ulimits: list[str] = field(default_factory=list)
    clamp_mtime: int | None = None   # SOURCE_DATE_EPOCH: the layer's mtimes clamped to it
    mounts: list[str] = field(default_factory=list)     # RUN --mount, as CreateOptions.mounts
    clean_upper: Callable[[str], None] | None = None    # undoes the mount points runc made
    shm_size: int | None = None   # build --shm-size, bytes: /dev/shm's size (None: 64 MiB)


def run(store: Store, parent: str | None, argv: list[str], environment: list[str],
        settings: RunSettings, step: Step, failed: Callable[[int], None]) -> layer_store.PreparedLayer:
    """Run ``argv`` on ``parent`` with the build args in ``environment``; its output goes
    to ``step``; ``failed(code)`` raises for a non-zero exit. Returns the layer of what it
    changed (the caller owns it)."""
    from forklift.engine import containers, rootfs

    if parent is None:
        raise InvalidArgument("RUN needs something to run: the stage is FROM scratch with no files yet")
    opts = containers.CreateOptions(entrypoint="", env=environment, network=settings.network,
                                    add_hosts=list(settings.add_hosts),
                                    ulimits=list(settings.ulimits), mounts=list(settings.mounts),
                                    tmpfs=[f"/dev/shm:size={settings.shm_size},mode=1777"] if settings.shm_size else [],
                                    labels=[f"{BUILD_LABEL}={os.getpid()}"],
                                    # the container's ID would be its hostname: not reproducible
                                    hostname=None if settings.clamp_mtime is None else REPRO_HOSTNAME)
    rec = containers.create(store, parent, argv, opts)
    try:
        step.container(rec.id)
        pipe = OutputPipe(step)
        try:
            code = _interruptible(store, rec, lambda: _start(store, rec.id, pipe))
        except KeyboardInterrupt:
            pipe.close()
            step.error("canceled")
            raise
        finally:
            pipe.close()
        if code != 0:
            failed(code)
        upper = rootfs.paths(store, rec.id)["upper"]
        if settings.clean_upper is not None:
            settings.clean_upper(upper)
        return layer_store.from_upper(store, upper, settings.clamp_mtime)
    finally:
        with contextlib.suppress(ForkliftError, OSError):
            containers.remove(store, rec.id, force=True, volumes=True)


def remove_leftovers(store: Store) -> list[str]:
    """Remove the RUN containers of builds that were killed; returns their IDs."""
    from forklift.engine import containers
    from forklift.procs import pid_alive
    from forklift.store import containers as container_store

    removed = []
    for rec in container_store.all_containers(store):
        owner = (rec.config.get("Labels") or {}).get(BUILD_LABEL, "")
        if owner.isdigit() and not pid_alive(int(owner)) and not rec.effective_state().up:
            with contextlib.suppress(ForkliftError, OSError):
                containers.remove(store, rec.id, force=True, volumes=True)
                removed.append(rec.id)
    return removed


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a build as Ctrl-C does (KeyboardInterrupt: every step cleans up)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _start(store: Store, container_id: str, pipe: OutputPipe) -> int:
    from forklift.engine import containers

    with open(os.devnull, "rb") as devnull:
        return containers.start(store, container_id, stdin=devnull,
                                stdout=cast(IO[Any], pipe), stderr=cast(IO[Any], pipe))


def _interruptible(store: Store, rec: Any, run: Callable[[], int]) -> int:
    """``run`` (a container in the foreground) in a worker thread, so that Ctrl-C or SIGTERM
    reach this thread as KeyboardInterrupt: the container is then killed, its run finished
    by the worker, and the interrupt goes on (the caller removes the container).

    SIGCHLD stays blocked here so that it reaches the worker's sigwaitinfo."""
    import signal
    import threading

    from forklift import runtime

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["code"] = run()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    worker = threading.Thread(target=work, name="build-run", daemon=True)
    try:
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
        except KeyboardInterrupt:
            rt = runtime.for_container(store.runc_dir, rec.host_config)
            with contextlib.suppress(ForkliftError, OSError):
                rt.kill(rec.id, signal.SIGKILL, all=True)
            worker.join()
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["code"])
