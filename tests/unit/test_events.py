"""The event log (engine/events): appended by every process, bounded, read back with
Docker's window, filters and default line."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from forklift.engine import events
from forklift.engine.filters import Filters
from forklift.errors import InvalidArgument, InvalidFilter


def _all(root: str, **filters: str) -> list[dict]:
    q = events.Query(0.0, time.time(), Filters({k: [v] for k, v in filters.items()}))
    return list(events.read(root, q))


class Rec:
    """Just what `container_event` reads of a container record."""

    def __init__(self, cid: str, name: str, image: str = "busybox", labels: dict | None = None):
        self.id, self.name, self.image_name = cid, name, image
        self.config = {"Labels": labels or {}}


def test_an_event_has_dockers_fields(tmp_path: Path):
    root = str(tmp_path)
    before = time.time_ns()
    events.container_event(root, "start", Rec("c" * 64, "web", labels={"tier": "front"}))
    (event,) = _all(root)
    assert set(event) == {"status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                          "timeNano"}
    assert event["Type"] == "container" and event["Action"] == event["status"] == "start"
    assert event["Actor"] == {"ID": "c" * 64, "Attributes": {"image": "busybox", "name": "web",
                                                              "tier": "front"}}
    assert event["from"] == "busybox" and event["scope"] == "local"
    assert before <= event["timeNano"] <= time.time_ns()
    assert event["time"] == event["timeNano"] // 10**9
    events.emit(root, "volume", "create", "v1", {"driver": "local"})
    assert set(_all(root)[1]) == {"Type", "Action", "Actor", "scope", "time", "timeNano"}


def test_default_line_is_dockers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        event = {"Type": "container", "Action": "start", "timeNano": 1_796_032_800_000_000_123,
                 "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}}
        assert events.line(event) == ("2026-11-30T10:00:00.000000123Z container start abc"
                                      " (image=busybox, name=web)")
        event["Actor"]["Attributes"] = {}
        assert events.line(event).endswith("container start abc")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_filters_follow_mobys_rules(tmp_path: Path):
    root = str(tmp_path)
    web = Rec("a1" * 32, "web", "nginx:1.25", {"tier": "front", "env": "prod"})
    db = Rec("b2" * 32, "db", "postgres", {"tier": "back"})
    events.container_event(root, "create", web)
    events.container_event(root, "start", db)
    events.container_event(root, "exec_start: sh -c true", web)
    events.emit(root, "image", "tag", "sha256:" + "f" * 64, {"name": "nginx:1.25"})
    events.emit(root, "network", "connect", "n" * 64, {"name": "appnet", "container": web.id})
    events.emit(root, "volume", "create", "data", {"driver": "local"})

    def actions(**filters: str) -> list[str]:
        return [e["Action"] for e in _all(root, **filters)]

    assert actions(container="web") == ["create", "exec_start: sh -c true"]
    assert actions(container="b2b2") == ["start"]  # an ID prefix
    assert actions(event="exec_start") == ["exec_start: sh -c true"]  # exec's prefix rule
    assert actions(event="start") == ["start"]  # others exactly
    assert actions(type="image") == ["tag"]
    assert actions(image="nginx") == ["create", "exec_start: sh -c true", "tag"]  # tag stripped
    assert actions(image="nginx:1.25", type="container") == ["create", "exec_start: sh -c true"]
    assert actions(label="tier=back") == ["start"]
    assert actions(label="env") == ["create", "exec_start: sh -c true"]
    assert actions(network="appnet") == ["connect"]
    assert actions(volume="data") == ["create"]
    assert actions(scope="swarm") == []
    two = Filters({"event": ["create", "start"], "type": ["container"]})
    assert [e["Action"] for e in events.read(root, events.Query(0.0, time.time(), two))] == [
        "create", "start"]


def test_the_window_since_and_until(tmp_path: Path):
    root = str(tmp_path)
    events.emit(root, "volume", "create", "old")
    middle = time.time()
    events.emit(root, "volume", "create", "new")
    ids = [e["Actor"]["ID"] for e in events.read(root, events.Query(middle, time.time(), Filters()))]
    assert ids == ["new"]
    ids = [e["Actor"]["ID"] for e in events.read(root, events.Query(None, middle, Filters()))]
    assert ids == ["old"]  # --until alone reads the log from its start, as Docker does


def test_query_refuses_bad_times_and_filters():
    with pytest.raises(InvalidArgument, match='invalid value for "since"'):
        events.query("yesterday", None, Filters())
    with pytest.raises(InvalidArgument, match='invalid value for "until"'):
        events.query(None, "2026-13-01", Filters())
    with pytest.raises(InvalidFilter, match="^Invalid filter 'status'$"):
        events.query(None, None, Filters({"status": ["x"]}))
    q = events.query("10m", "1700000000.5", Filters({"type": ["image"]}), now=1_700_000_600.0)
    assert (q.since, q.until) == (1_700_000_000.0, 1_700_000_000.5)


def test_following_sees_new_events_and_stops(tmp_path: Path):
    root = str(tmp_path)
    seen: list[str] = []
    events.emit(root, "volume", "create", "before")

    def stop() -> bool:
        # called after each poll: the first one writes while the reader follows
        if not seen and not (tmp_path / "wrote").exists():
            (tmp_path / "wrote").touch()
            for n in range(2):
                events.emit(root, "volume", "create", f"new{n}")
        return len(seen) >= 2

    for event in events.read(root, events.Query(None, None, Filters()), stop=stop):
        seen.append(event["Actor"]["ID"])
    assert seen == ["new0", "new1"]  # not "before": without --since, from now on


def test_an_event_never_fails_the_command(tmp_path: Path):
    events.emit(str(tmp_path / "no" / "such" / "dir"), "volume", "create", "x")
    (tmp_path / events.LOG).mkdir()  # not a file: the write fails, quietly
    events.emit(str(tmp_path), "volume", "create", "x")


def test_a_long_event_is_shortened_to_one_atomic_line(tmp_path: Path):
    root = str(tmp_path)
    labels = {f"label{i}": "x" * 500 for i in range(40)}
    events.container_event(root, "create", Rec("c" * 64, "big", labels=labels))
    data = (tmp_path / events.LOG).read_bytes()
    assert data.count(b"\n") == 1 and len(data) <= events.LINE_LIMIT
    (event,) = _all(root)
    assert event["Actor"]["ID"] == "c" * 64 and event["Action"] == "create"


def test_the_log_is_rotated_and_both_halves_are_read(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(events, "MAX_BYTES", 2000)
    root = str(tmp_path)
    for n in range(100):
        events.emit(root, "volume", "create", f"v{n}")
    sizes = [os.path.getsize(tmp_path / name) for name in (events.LOG, events.LOG + ".1")]
    assert all(size <= 2000 + events.LINE_LIMIT for size in sizes)
    ids = [e["Actor"]["ID"] for e in _all(root)]
    assert ids == [f"v{n}" for n in range(100 - len(ids), 100)]  # the newest, in order
    assert 10 < len(ids) < 100


def _writer(root: str, tag: str) -> None:
    for n in range(200):
        events.emit(root, "volume", "create", f"{tag}-{n}", {"pad": "p" * 300})


def test_concurrent_writers_never_interleave(tmp_path: Path):
    root = str(tmp_path)
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(root, t))
             for t in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / events.LOG).read_bytes().splitlines()
    assert len(lines) == 800
    by_writer: dict[str, list[int]] = {}
    for line in lines:
        tag, _, n = json.loads(line)["Actor"]["ID"].partition("-")
        by_writer.setdefault(tag, []).append(int(n))
    assert by_writer == {t: list(range(200)) for t in "abcd"}
