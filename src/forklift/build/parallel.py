"""Independent stages built at the same time.

`Scheduler.run` builds each needed stage in a thread of its own, started as soon as the
stages it names (`stages.depends_on`) are built, at most ``jobs`` of them working at once
(``FORKLIFT_BUILD_JOBS``, default: the CPUs this process may run on). What the threads
share is made safe for them:

* each thread has a ``Store`` of its own on the same root (a SQLite connection is not
  for sharing); the builder asks ``local.store`` for the calling thread's;
* the cache entries a stage used are kept per stage (``local.cache_used``), for the
  builder to join in stage order, as a serial build lists them;
* a stage that reads the image of a stage it did not name (a ``COPY --from=$VAR``, an
  ONBUILD trigger's) waits for it (`Images`), giving up its place meanwhile, so it sees
  what a serial build would;
* the context's lookups, which fill its digest cache, run one at a time (`SharedContext`).

Signals reach the main thread only, so it is the one that waits. When a stage fails or
the build is interrupted (Ctrl-C, SIGTERM), it cancels the others: no new stage or step
starts, and it kills this build's RUN containers until every thread has finished (each
removes its own container; a step commits whole or not at all); then it raises the
failing step's error, or KeyboardInterrupt. Meanwhile the main thread keeps SIGCHLD
blocked: runc's exit must reach the threads waiting for it with sigwaitinfo.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forklift.errors import ForkliftError, InvalidArgument
from forklift.store.db import Store

if TYPE_CHECKING:
    from forklift.build.context import Context
    from forklift.build.stages import Stage

JOBS_ENV = "FORKLIFT_BUILD_JOBS"
_POLL = 0.2   # seconds between looks at a cancelled build (signals are handled meanwhile)


class Cancelled(ForkliftError):
    """A stage stopped because another one failed or the build was interrupted."""


def jobs_from_env(environ: dict[str, str] | None = None) -> int:
    """``FORKLIFT_BUILD_JOBS`` (1 builds one stage at a time), else the CPUs we may use."""
    text = (os.environ if environ is None else environ).get(JOBS_ENV, "")
    if text == "":
        return max(1, len(os.sched_getaffinity(0)))
    if not text.isascii() or not text.isdigit() or len(text) > 6 or int(text) < 1:
        raise InvalidArgument(f"invalid {JOBS_ENV} {text!r}: a number of stages, 1 or more")
    return int(text)


class Images(dict[int, "str | None"]):
    """Each built stage's image, by stage index; reading a stage's that is still being
    built waits for it (``wait``)."""

    def __init__(self, wait: Callable[[int], None]) -> None:
        super().__init__()
        self._wait = wait

    def __getitem__(self, index: int) -> str | None:
        self._wait(index)
        return super().__getitem__(index)

    def get(self, index: int, default: Any = None) -> Any:   # type: ignore[override]
        self._wait(index)
        return super().get(index, default)


class SharedContext:
    """A build context that stages use at once: the lookups that fill its caches (the
    digest file above all, written while it is read) one at a time."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def sources(self, patterns: Sequence[str], *, doublestar: bool = False) -> list[Path]:
        with self._lock:
            return self._context.sources(patterns, doublestar=doublestar)

    def checksum(self, paths: Sequence[Path], *, with_mode: bool, with_owner: bool,
                 exclude: Callable[[str], bool] | None = None) -> str:
        with self._lock:
            return self._context.checksum(paths, with_mode=with_mode, with_owner=with_owner,
                                          exclude=exclude)


class Scheduler:
    """One concurrent build of ``needed`` (in stage order); ``deps``: the indices each
    stage waits for. ``local`` gets each stage thread's ``store`` and ``cache_used``;
    ``cancelled`` is set once the build is to stop."""

    def __init__(self, store: Store, needed: Sequence[Stage], deps: dict[int, set[int]],
                 jobs: int, local: threading.local, cancelled: threading.Event) -> None:
        self.store, self.needed, self.local, self.cancelled = store, list(needed), local, cancelled
        indices = {s.index for s in self.needed}
        self.deps = {i: d & indices for i, d in deps.items()}
        self.slots = threading.BoundedSemaphore(jobs)
        self.done = {i: threading.Event() for i in indices}
        self.wake = threading.Event()
        self.errors: list[BaseException] = []
        self.cache_used: dict[int, list[tuple[str, str]]] = {}
        self.built = Images(self._wait_for)

    def run(self, build_one: Callable[[Stage], str | None]) -> list[tuple[str, str]]:
        """Build every stage with ``build_one`` (in its thread); returns the cache entries
        they used, in stage order. Raises the first failure, or KeyboardInterrupt."""
        threads: list[threading.Thread] = []
        interrupted = False
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})   # the threads inherit it
        try:
            try:
                self._schedule(build_one, threads)
            except KeyboardInterrupt:
                interrupted = True
                self.cancelled.set()
            interrupted = self._finish(threads) or interrupted
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if interrupted:
            raise KeyboardInterrupt
        if self.errors:
            real = [e for e in self.errors if not isinstance(e, Cancelled)]
            raise (real or self.errors)[0]
        return [entry for s in self.needed for entry in self.cache_used.get(s.index, [])]

    def _schedule(self, build_one: Callable[[Stage], str | None],
                  threads: list[threading.Thread]) -> None:
        started: set[int] = set()
        while not self.cancelled.is_set():
            self.wake.clear()
            for stage in self.needed:
                if stage.index not in started and all(self.done[d].is_set() for d in self.deps[stage.index]):
                    started.add(stage.index)
                    thread = threading.Thread(target=self._work, args=(stage, build_one),
                                              name=f"build-stage-{stage.index}", daemon=True)
                    threads.append(thread)
                    thread.start()
            if all(e.is_set() for e in self.done.values()):
                return
            self.wake.wait(_POLL)

    def _finish(self, threads: list[threading.Thread]) -> bool:
        """Wait for every thread, killing the build's RUN containers once it is cancelled;
        True if interrupted meanwhile (the threads are still waited for)."""
        interrupted = False
        killed: set[str] = set()
        while alive := [t for t in threads if t.is_alive()]:
            try:
                if self.cancelled.is_set():
                    self._kill_runs(killed)
                alive[0].join(_POLL)
            except KeyboardInterrupt:
                interrupted = True
                self.cancelled.set()
        return interrupted

    def _kill_runs(self, killed: set[str]) -> None:
        """SIGKILL this build's running RUN containers (a step that starts one after the
        look is caught by the next)."""
        from forklift import runtime
        from forklift.build.running import BUILD_LABEL
        from forklift.store import containers as container_store

        mine = str(os.getpid())
        for rec in container_store.all_containers(self.store):
            if rec.id in killed or rec.state != container_store.State.RUNNING \
                    or (rec.config.get("Labels") or {}).get(BUILD_LABEL) != mine:
                continue
            with contextlib.suppress(ForkliftError, OSError):
                runtime.for_container(self.store.runc_dir, rec.host_config).kill(
                    rec.id, signal.SIGKILL, all=True)
                killed.add(rec.id)

    # -- in a stage's thread
    def _work(self, stage: Stage, build_one: Callable[[Stage], str | None]) -> None:
        try:
            with self._slot():
                self._check()
                store = Store(self.store.root).open()
                try:
                    store.conn.row_factory = sqlite3.Row
                    self.local.store = store
                    self.local.cache_used = self.cache_used.setdefault(stage.index, [])
                    self.built[stage.index] = build_one(stage)
                finally:
                    store.close()
        except BaseException as exc:  # handed to the main thread
            self.errors.append(exc)
            self.cancelled.set()
        finally:
            self.done[stage.index].set()
            self.wake.set()

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        while not self.slots.acquire(timeout=_POLL):
            self._check()
        try:
            yield
        finally:
            self.slots.release()

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the build was cancelled")

    def _wait_for(self, index: int) -> None:
        """A stage's thread reads stage ``index``'s image: wait until it is built, with its
        place given to another stage meanwhile (the one waited for may need it)."""
        event = self.done.get(index)
        if event is None or event.is_set() or getattr(self.local, "store", None) is None:
            return
        self.slots.release()
        try:
            while not event.wait(_POLL) and not self.cancelled.is_set():
                pass
        finally:
            self.slots.acquire()
        self._check()

