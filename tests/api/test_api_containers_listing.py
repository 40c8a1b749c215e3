"""``GET /containers/json`` summarises each container from its record in one pass (no
inspect per row): with many containers in every state, each row must still say what the
container's own inspect document says, and a container removed between the listing's
reads is left out without failing the listing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import swagger
from support.service import Service

RUNNING, EXITED, CREATED = 4, 16, 10
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def _create(service: Service, name: str, body: dict[str, Any]) -> str:
    created = service.request("POST", f"/containers/create?name={name}", body)
    assert created.status == 201, created
    return str(created.json()["Id"])


def _start(service: Service, cid: str) -> None:
    started = service.request("POST", f"/containers/{cid}/start")
    assert started.status == 204, started


def _bodies(service: Service, vol: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(name suffix, create body, what to do with it) of each container: a running one on
    the default bridge with a named volume, a bind and an exposed port, the others on no
    network, labelled, some with an entrypoint."""
    base = {"Image": "busybox", "HostConfig": {"NetworkMode": "none"}}
    yield "run0", {"Image": "busybox", "Cmd": SLEEPER, "Labels": {"role": "web"},
                   "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                   "HostConfig": {"Binds": [f"{vol}:/data", "/tmp:/host-tmp:ro"]}}, "run"
    for i in range(1, RUNNING):
        yield f"run{i}", {**base, "Cmd": SLEEPER, "Labels": {"n": str(i)}}, "run"
    for i in range(EXITED):
        yield f"exit{i}", {**base, "Entrypoint": ["sh", "-c"], "Cmd": [f"exit {i % 3}"],
                           "Labels": {"n": str(i)}}, "exit"
    for i in range(CREATED):
        yield f"new{i}", {**base, "Cmd": ["echo", str(i)]}, "create"


@pytest.fixture(scope="module")
def crowd(service: Service) -> Iterator[list[str]]:
    """30 containers: 4 running, 16 exited (codes 0-2), 10 created; their IDs."""
    vol = "api-listing-vol"
    ids: list[str] = []
    try:
        for suffix, body, what in _bodies(service, vol):
            cid = _create(service, f"api-listing-{suffix}", body)
            ids.append(cid)
            if what != "create":
                _start(service, cid)
            if what == "exit":
                assert service.request("POST", f"/containers/{cid}/wait").status == 200
        _wait_running(service, ids[:RUNNING])
        yield ids
    finally:
        for cid in ids:
            service.request("DELETE", f"/containers/{cid}?force=1&v=1")
        service.request("DELETE", f"/volumes/{vol}?force=1")


def _wait_running(service: Service, ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    for cid in ids:
        while service.request("GET", f"/containers/{cid}/json").json()["State"]["Status"] != "running":
            assert time.monotonic() < deadline, f"{cid} never ran"
            time.sleep(0.05)


def _expected(doc: dict[str, Any]) -> dict[str, Any]:
    """What a ContainerSummary shows of an inspect document, in Docker's words."""
    ports = []
    published = doc["NetworkSettings"]["Ports"] or {}
    for key in sorted(set(published) | set(doc["Config"].get("ExposedPorts") or {})):
        number, _, proto = key.partition("/")
        bindings = published.get(key) or []
        ports += [{"IP": b["HostIp"], "PrivatePort": int(number),
                   "PublicPort": int(b["HostPort"]), "Type": proto} for b in bindings]
        if not bindings:
            ports.append({"PrivatePort": int(number), "Type": proto})
    return {"Id": doc["Id"], "Names": [doc["Name"]], "ImageID": doc["Image"],
            "Command": " ".join([doc["Path"], *doc["Args"]]),
            "State": doc["State"]["Status"], "Labels": doc["Config"]["Labels"] or {},
            "Ports": ports, "HostConfig": {"NetworkMode": doc["HostConfig"]["NetworkMode"]},
            "NetworkSettings": {"Networks": doc["NetworkSettings"]["Networks"]},
            "Mounts": doc["Mounts"]}


def test_listing_equals_each_inspect(service: Service, crowd: list[str]) -> None:
    listed = service.request("GET", "/containers/json?all=1")
    assert listed.status == 200, listed
    swagger.validate_response(listed.json(), "GET", "/containers/json", 200, as_docker=True)
    rows = {row["Id"]: row for row in listed.json() if row["Id"] in crowd}
    assert set(rows) == set(crowd)
    states = [rows[cid]["State"] for cid in crowd]
    assert states == ["running"] * RUNNING + ["exited"] * EXITED + ["created"] * CREATED
    for cid in crowd:
        doc = service.request("GET", f"/containers/{cid}/json").json()
        row = rows[cid]
        assert {k: row[k] for k in _expected(doc)} == _expected(doc), cid
        assert row["Image"] == "busybox"
    first = rows[crowd[0]]
    assert [m["Destination"] for m in first["Mounts"]] == ["/data", "/host-tmp"]
    assert first["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert [p["PrivatePort"] for p in first["Ports"]] == [53, 80]
    assert [rows[cid]["Status"][:6] for cid in crowd[RUNNING:RUNNING + 3]] == [
        "Exited"] * 3
    running = {row["Id"] for row in service.request("GET", "/containers/json").json()}
    assert running & set(crowd) == set(crowd[:RUNNING])


def test_a_container_removed_mid_listing_is_left_out(service: Service, crowd: list[str],
                                                     fl) -> None:  # type: ignore[no-untyped-def]
    from forklift.api.containers import summaries
    from forklift.engine import containers as engine
    from forklift.store import open_store

    store = open_store(str(fl.root))
    try:
        gone = _create(service, "api-listing-gone", {"Image": "busybox", "Cmd": ["true"]})
        rows = engine.list_containers(store, True)
        assert gone in [row.id for row in rows]
        assert service.request("DELETE", f"/containers/{gone}").status == 204
        docs = summaries(store, rows)
    finally:
        store.close()
    assert [doc["Id"] for doc in docs] == [row.id for row in rows if row.id != gone]
    assert set(crowd) <= {doc["Id"] for doc in docs}


def test_a_kept_listing_follows_every_change(service: Service, fl) -> None:  # type: ignore[no-untyped-def]
    """The service keeps the records between listings until a commit: a container made,
    started and stopped by another process, or through the service itself, shows at once."""
    def listed(all_: bool = False) -> dict[str, str]:
        rows = service.request("GET", "/containers/json" + ("?all=1" if all_ else "")).json()
        return {row["Names"][0]: row["State"] for row in rows}

    listed(), listed(True)
    cid = fl.out("run", "-d", "--network", "none", "--name", "api-listing-kept", "busybox",
                 *SLEEPER)
    try:
        _wait_running(service, [cid])
        assert listed()["/api-listing-kept"] == "running"
        fl("stop", "-t", "1", cid)
        assert "/api-listing-kept" not in listed()
        assert listed(True)["/api-listing-kept"] == "exited"
        _start(service, cid)
        _wait_running(service, [cid])
        assert listed()["/api-listing-kept"] == "running"
        assert service.request("POST", f"/containers/{cid}/stop?t=1").status == 204
        assert "/api-listing-kept" not in listed()
        renamed = service.request("POST", f"/containers/{cid}/rename?name=api-listing-kept2")
        assert renamed.status == 204, renamed
        assert listed(True)["/api-listing-kept2"] == "exited"
    finally:
        fl("rm", "-f", cid)
    assert "/api-listing-kept2" not in listed(True)


def test_a_kept_listing_follows_image_names_and_volumes(service: Service, fl) -> None:  # type: ignore[no-untyped-def]
    """What the service keeps beside the records follows commits too: the name ``ps``
    shows for the image (its ID once the name is gone) and the volumes' mounts."""
    def row(cid: str) -> dict[str, Any]:
        return next(r for r in service.request("GET", "/containers/json?all=1").json()
                    if r["Id"] == cid)

    fl.out("tag", "busybox", "api-listing-img:1")
    cid = fl.out("create", "--name", "api-listing-img", "api-listing-img:1", "true").strip()
    try:
        assert row(cid)["Image"] == "api-listing-img:1"
        assert row(cid)["Mounts"] == []
        fl.out("rmi", "api-listing-img:1")
        assert row(cid)["Image"] == fl.inspect(cid)["Image"]
        other = fl.out("run", "-d", "--network", "none", "-v", "api-listing-vol:/data", "busybox",
                       "true").strip()  # (its volume is attached at the start)
        try:
            assert [m["Name"] for m in row(other)["Mounts"]] == ["api-listing-vol"]
        finally:
            fl("rm", "-v", other)
            fl("volume", "rm", "api-listing-vol", check=False)
    finally:
        fl("rm", "-f", cid)
        fl("rmi", "api-listing-img:1", check=False)
