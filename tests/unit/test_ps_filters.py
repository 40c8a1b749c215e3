"""``ps --filter`` through the library on container records (no runtime): Docker 20.10's
keys, what each keeps, the order-dependent before/since, and Docker's error words."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from forklift.engine.containers import list_containers
from forklift.engine.filters import Filters
from forklift.errors import InvalidFilter, NotFound
from forklift.store import containers as container_store
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import Store

T0 = time.time() - 100


def add(store: Store, name: str, age: int, state: State = State.CREATED, *,
        config: dict[str, Any] | None = None, host_config: dict[str, Any] | None = None,
        exit_code: int | None = None) -> ContainerRecord:
    up = state in (State.RUNNING, State.PAUSED)
    rec = ContainerRecord(os.urandom(32).hex(), name, "sha256:" + "0" * 64, "img", T0 - age,
                          state=state, pid=os.getpid() if up else None, exit_code=exit_code,
                          started_at=None if state == State.CREATED else "2026-01-01T00:00:00Z",
                          config={"Cmd": ["sh"], **(config or {})},
                          host_config={"NetworkMode": "none", **(host_config or {})})
    with store.transaction():
        container_store.insert(store, rec)
    return rec


@pytest.fixture
def some(store: Store) -> dict[str, ContainerRecord]:
    """Newest first: new (created, on the host's network), job (exited 0), db (exited 3,
    a bind mount), web (running on the bridge, -p 8080:80, exposes 81)."""
    return {
        "new": add(store, "new", 10, host_config={"NetworkMode": "host"}),
        "job": add(store, "job", 20, State.EXITED, exit_code=0, config={"Labels": {"tier": "batch"}}),
        "db": add(store, "db", 30, State.EXITED, exit_code=3, config={"Labels": {"tier": "db"}},
                  host_config={"Binds": ["/srv/db:/var/lib/db"]}),
        "web": add(store, "web", 40, State.RUNNING,
                   config={"ExposedPorts": {"81/tcp": {}}, "Labels": {"tier": "front", "x": ""}},
                   host_config={"NetworkMode": "bridge", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}),
    }


def names(store: Store, *flags: str, show_all: bool = True) -> list[str]:
    return [r.names for r in list_containers(store, show_all, Filters.parse(flags))]


@pytest.mark.usefixtures("some")
@pytest.mark.parametrize(("flags", "expected"), [
    ((), ["new", "job", "db", "web"]),
    (("status=exited",), ["job", "db"]),
    (("status=exited", "status=created"), ["new", "job", "db"]),
    (("status=paused",), []),
    (("exited=3",), ["db"]),
    (("exited=0", "exited=3"), ["job", "db"]),
    (("exited=0", "status=created"), []),          # a created container has no exit code
    (("label=tier",), ["job", "db", "web"]),
    (("label=tier=db",), ["db"]),
    (("label=tier", "label=x"), ["web"]),          # every label must hold
    (("label=x=",), ["web"]),
    (("name=j|d",), ["job", "db"]),                # regular expressions, found anywhere
    (("name=^/?new$",), ["new"]),
    (("name=job", "name=web"), ["job", "web"]),
    (("network=host",), ["new"]),
    (("network=bridge",), ["web"]),
    (("network=none",), ["job", "db"]),
    (("network=no",), []),                         # a name must be whole
    (("volume=/var/lib/db",), ["db"]),
    (("volume=/srv/db",), ["db"]),
    (("volume=/srv",), []),
    (("publish=80",), ["web"]),
    (("publish=80/tcp",), ["web"]),
    (("publish=70-90",), ["web"]),
    (("publish=8080",), []),                       # the container's port, not the host's
    (("publish=80/udp",), []),
    (("publish=81",), []),                         # exposed, not published
    (("expose=81",), ["web"]),
    (("expose=80",), ["web"]),
    (("health=none",), ["new", "job", "db", "web"]),
    (("health=healthy",), []),
    (("is-task=false",), ["new", "job", "db", "web"]),
    (("is-task=true",), []),
    (("before=job",), ["db", "web"]),
    (("since=db",), ["new", "job"]),
    (("since=web", "before=new"), ["job", "db"]),
])
def test_what_each_key_keeps(store: Store, flags: tuple[str, ...], expected: list[str]) -> None:
    assert names(store, *flags) == expected


def test_status_lists_stopped_containers_without_all(store: Store, some: dict[str, Any]) -> None:
    assert names(store, show_all=False) == ["web"]
    assert names(store, "status=exited", show_all=False) == ["job", "db"]
    assert names(store, "status=running", show_all=False) == ["web"]
    # exited= alone does not: Docker 20.10 keeps only running containers then
    assert names(store, "exited=3", show_all=False) == []
    assert names(store, "label=tier=db", show_all=False) == []


def test_id_filter_matches_a_prefix_and_the_whole(store: Store, some: dict[str, Any]) -> None:
    db = some["db"].id
    assert names(store, f"id={db[:6]}") == ["db"]
    assert names(store, f"id={db}") == ["db"]


@pytest.mark.usefixtures("some")
@pytest.mark.parametrize(("flag", "error"), [
    ("bogus=1", "Invalid filter 'bogus'"),
    ("label!=tier", "Invalid filter 'label!'"),
    ("status=up", "Invalid filter 'status=up'"),
    ("exited=x", 'strconv.Atoi: parsing "x": invalid syntax'),
    ("health=sick", "Unrecognised filter value for health: sick"),
    ("is-task=maybe", "Invalid filter 'is-task=[maybe]'"),
    ("publish=1:2", "filter for 'publish' should not contain ':': 1:2"),
    ("expose=x", 'error while looking up for expose x: strconv.ParseUint: parsing "x": invalid syntax'),
])
def test_invalid_filters_in_dockers_words(store: Store, flag: str, error: str) -> None:
    with pytest.raises(InvalidFilter) as exc:
        names(store, flag)
    assert exc.value.message == error


@pytest.mark.usefixtures("some")
def test_before_and_since_name_an_existing_container(store: Store) -> None:
    for key in ("before", "since"):
        with pytest.raises(NotFound) as exc:
            names(store, f"{key}=nope")
        assert exc.value.message == "no such container nope"


def test_health_reads_the_state_only_for_a_container_with_a_check(store: Store) -> None:
    add(store, "checked", 5, config={"Healthcheck": {"Test": ["CMD", "true"]}})
    add(store, "disabled", 6, config={"Healthcheck": {"Test": ["NONE"]}})
    # never started: no health state yet, which Docker lists as none
    assert names(store, "health=none") == ["checked", "disabled"]
    assert names(store, "health=starting") == []
