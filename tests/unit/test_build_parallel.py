"""Concurrent stages without a runtime: which stages depend on which, the jobs setting, and
the scheduler driven by stand-in stage builds (threads meeting at barriers prove what
runs at once; every wait is bounded, a hang fails)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from forklift.build import parallel, stages
from forklift.build.dockerfile import parse
from forklift.errors import InvalidArgument
from forklift.store.db import Store

BOUND = 20   # seconds: far beyond what any of these waits takes when things work


def split(text: str) -> list[stages.Stage]:
    return stages.split(parse(text.encode()), {}, "Dockerfile")


def test_what_a_stage_depends_on() -> None:
    found = split("FROM busybox AS a\nFROM a AS b\nRUN --mount=type=cache,target=/c,from=a true\n"
                  "FROM scratch AS c\nCOPY --from=b /x /x\nCOPY --from=0 /y /y\nCOPY --from=img /z /\n"
                  "FROM busybox AS d\nRUN --mount=type=bind,from=c,target=/m true\n")
    assert [stages.depends_on(found, s) for s in found] == [set(), {0}, {1, 0}, {2}]
    assert not stages.independent(found, found)                 # a chain
    assert stages.independent(found, [found[0]] + found[2:]) is False
    two = split("FROM busybox AS a\nFROM busybox AS b\nFROM a\nCOPY --from=b /x /x\n")
    assert stages.independent(two, two)
    assert not stages.independent(two, [two[0], two[2]])
    assert not stages.independent(two[:1], two[:1])


def test_jobs_from_the_environment() -> None:
    assert parallel.jobs_from_env({"FORKLIFT_BUILD_JOBS": "3"}) == 3
    assert parallel.jobs_from_env({}) >= 1
    for bad in ("0", "-1", "two", "1.5", " 2", "٣", "9" * 7):
        with pytest.raises(InvalidArgument, match="FORKLIFT_BUILD_JOBS"):
            parallel.jobs_from_env({"FORKLIFT_BUILD_JOBS": bad})


class Run:
    """A scheduler over ``n`` stand-in stages (no Dockerfile needed: only their index)."""

    def __init__(self, tmp_path: Path, deps: dict[int, set[int]], jobs: int) -> None:
        self.store = Store(str(tmp_path / "store")).open()
        self.stages = split("".join(f"FROM busybox AS s{i}\n" for i in range(len(deps))))
        self.local = threading.local()
        self.cancelled = threading.Event()
        self.sched = parallel.Scheduler(self.store, self.stages, deps, jobs, self.local,
                                        self.cancelled)

    def run(self, build_one: Any) -> list[tuple[str, str]]:
        """``Scheduler.run`` from a thread of the test, bounded: a hang fails the test."""
        outcome: dict[str, Any] = {}

        def go() -> None:
            try:
                outcome["value"] = self.sched.run(build_one)
            except BaseException as exc:
                outcome["error"] = exc
        thread = threading.Thread(target=go)
        thread.start()
        thread.join(BOUND * 2)
        assert not thread.is_alive(), "the scheduler hangs"
        self.store.close()
        if "error" in outcome:
            raise outcome["error"]
        return list(outcome["value"])


def test_independent_stages_overlap_and_wait_for_what_they_name(tmp_path: Path) -> None:
    run = Run(tmp_path, {0: set(), 1: set(), 2: {0, 1}}, jobs=2)
    meet = threading.Barrier(2, timeout=BOUND)   # 0 and 1 must run at once to pass it
    stores = []

    def build_one(stage: stages.Stage) -> str:
        stores.append(run.local.store)
        run.local.cache_used.append((f"key{stage.index}", f"img{stage.index}"))
        if stage.index < 2:
            meet.wait()
        else:
            assert dict(run.sched.built) == {0: "img0", 1: "img1"}
        return f"img{stage.index}"

    # the cache entries come back in stage order, whatever order the stages finished in
    assert run.run(build_one) == [("key0", "img0"), ("key1", "img1"), ("key2", "img2")]
    assert dict(run.sched.built) == {0: "img0", 1: "img1", 2: "img2"}
    assert len({id(s) for s in stores}) == 3 and run.store not in stores   # a store each


def test_no_more_stages_at_once_than_jobs(tmp_path: Path) -> None:
    run = Run(tmp_path, {0: set(), 1: set(), 2: set()}, jobs=2)
    three = threading.Barrier(3, timeout=0.5)   # passable only by three stages at once
    passed = []

    def build_one(stage: stages.Stage) -> str:
        try:
            three.wait()
            passed.append(stage.index)
        except threading.BrokenBarrierError:
            pass
        return "img"

    run.run(build_one)
    assert passed == []


def test_reading_an_unnamed_stage_waits_and_gives_up_the_place_meanwhile(tmp_path: Path) -> None:
    # 1 reads 0's image without naming it; with 0 and 1 holding both places, 2 can start
    # (and let 0 finish) only if 1 gave its place up while it waits
    run = Run(tmp_path, {0: set(), 1: set(), 2: set()}, jobs=2)
    started = threading.Event()

    def build_one(stage: stages.Stage) -> str:
        if stage.index == 0:
            assert started.wait(BOUND)
        elif stage.index == 1:
            return f"saw {run.sched.built.get(0)}"
        else:
            started.set()
        return f"img{stage.index}"

    run.run(build_one)
    assert run.sched.built[1] == "saw img0"


def test_a_failure_cancels_the_running_stages_and_starts_no_other(tmp_path: Path) -> None:
    run = Run(tmp_path, {0: set(), 1: set(), 2: {1}}, jobs=2)
    meet = threading.Barrier(2, timeout=BOUND)
    seen = []

    def build_one(stage: stages.Stage) -> str:
        seen.append(stage.index)
        if stage.index == 2:
            return "never"
        meet.wait()
        if stage.index == 0:
            raise ValueError("boom")
        assert run.cancelled.wait(BOUND)   # a step of 1 sees the cancel and stops
        raise parallel.Cancelled("the build was cancelled")

    with pytest.raises(ValueError, match="boom"):
        run.run(build_one)
    assert sorted(seen) == [0, 1] and 2 not in run.sched.built


def test_the_shared_context_takes_every_argument_the_context_does():
    """SharedContext wraps Context's caching lookups: a new keyword on one (COPY --exclude's
    ``exclude``) must not be a TypeError in concurrent builds only."""
    import inspect

    from forklift.build.context import Context
    from forklift.build.parallel import SharedContext

    for name in ("sources", "checksum"):
        assert inspect.signature(getattr(SharedContext, name)).parameters.keys() == \
            inspect.signature(getattr(Context, name)).parameters.keys(), name
