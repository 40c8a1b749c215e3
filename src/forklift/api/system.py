"""``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/containers/prune``,
``/build/prune``, ``/events``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forklift.api.server import (
    API_VERSION,
    Context,
    Reply,
    Request,
    Stream,
    always,
    json_reply,
    route,
)


@route("GET", "/_ping", inline=always)
def ping(ctx: Context, req: Request) -> Reply:
    """Docker's client reads the API version (and the builder) from these headers."""
    return Reply(200, b"OK", "text/plain; charset=utf-8", [
        ("Builder-Version", "1"), ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache")])


@route("GET", "/version")
def version(ctx: Context, req: Request) -> Reply:
    from forklift.engine import version as version_mod

    server: dict[str, Any] = dict(version_mod.version()["Server"])
    server.pop("Daemon", None)
    server.pop("PythonVersion", None)
    server["ApiVersion"] = API_VERSION
    server["GoVersion"] = ""
    server["Experimental"] = False
    return json_reply(server)


@route("GET", "/info")
def info(ctx: Context, req: Request) -> Reply:
    from forklift.engine import info as info_mod

    doc = info_mod.info(ctx.store)
    doc.pop("ClientInfo", None)  # the CLI's half of `docker info`, not the engine's
    doc["Warnings"] = doc.get("Warnings") or []  # the schema's array (the CLI prints null)
    return json_reply(doc)


@route("GET", "/system/df")
def disk_usage(ctx: Context, req: Request) -> Reply:
    """Docker's SystemDataUsageResponse from `forklift system df`'s counts; forklift keeps
    no build cache (its builds cache image layers), so BuildCache is empty."""
    from forklift.api.containers import summaries
    from forklift.engine import containers as engine_containers
    from forklift.engine import images as images_mod
    from forklift.engine import system as system_mod
    from forklift.engine import volumes

    store = ctx.store
    usage = system_mod.disk_usage(store)
    sizes = {c.id: c.size for c in usage.containers}
    images = [{"Id": i.id, "ParentId": "", "RepoTags": i.names or ["<none>:<none>"],
               "RepoDigests": [], "Created": int(i.created), "Size": i.size,
               "SharedSize": i.shared_size, "VirtualSize": i.size,
               "Labels": images_mod.labels(store, i.id), "Containers": i.containers}
              for i in usage.images]
    containers = summaries(store, engine_containers.list_containers(store, True, None))
    for doc in containers:
        doc["SizeRw"] = sizes.get(doc["Id"], 0)
    vols = [{**volumes.inspect(store, v.name), "UsageData": {"Size": v.size, "RefCount": v.links}}
            for v in usage.volumes]
    return json_reply({"LayersSize": usage.layers_size, "Images": images,
                       "Containers": containers, "Volumes": vols, "BuildCache": []})


@route("POST", "/containers/prune")
def prune_containers(ctx: Context, req: Request) -> Reply:
    from forklift.engine import system as system_mod
    from forklift.engine.filters import Filters

    result = system_mod.prune_containers(ctx.store, Filters(req.filters()))
    return json_reply({"ContainersDeleted": result.deleted, "SpaceReclaimed": result.reclaimed})


@route("POST", "/build/prune")
def prune_build_cache(ctx: Context, req: Request) -> Reply:
    """Nothing to remove: forklift has no build cache apart from image layers."""
    req.filters()  # a malformed filter is still a 400
    return json_reply({"CachesDeleted": [], "SpaceReclaimed": 0})


@route("GET", "/events")
def events(ctx: Context, req: Request) -> Stream:
    """The store's event log (`engine.events`: what every forklift process, CLI or service,
    logs), one JSON line per event, each sent as read. Without ``until`` it follows until
    the client leaves or the service stops."""
    import json

    from forklift.engine import events as events_mod
    from forklift.engine.filters import Filters

    query = events_mod.query(_time(req.arg("since")), _time(req.arg("until")),
                             Filters(req.filters()))
    root = ctx.store_root()

    def produce(write: Callable[[bytes], None]) -> None:
        stop = lambda: ctx.stopping.is_set() or stream.gone.is_set()  # noqa: E731
        for event in events_mod.read(root, query, stop=stop):
            write(json.dumps(event).encode() + b"\n")

    stream = Stream(produce)
    return stream


def _time(text: str) -> str | None:
    """Docker's client sends 0 (or nothing) for an unset since/until."""
    return None if text in ("", "0") else text
