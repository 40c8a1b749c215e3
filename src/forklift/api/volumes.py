"""Volume endpoints: ``GET /volumes``, ``POST /volumes/create``, ``GET``/``DELETE
/volumes/{name}``, ``POST /volumes/prune`` (the engine's ``volume`` commands)."""

from __future__ import annotations

from typing import Any

from forklift.api.server import ApiError, Context, Reply, Request, json_reply, no_content, route
from forklift.errors import NotFound


def _labels(doc: dict[str, Any], key: str) -> dict[str, str]:
    value = doc.get(key) or {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ApiError(400, f"invalid {key}: a map of strings is expected")
    return value


@route("GET", "/volumes")
def list_volumes(ctx: Context, req: Request) -> Reply:
    from forklift.engine import volumes
    from forklift.engine.filters import Filters

    found = volumes.list_volumes(ctx.store, Filters(req.filters()))
    docs = [volumes.inspect(ctx.store, vol.name) for vol in found]
    return json_reply({"Volumes": docs, "Warnings": []})


@route("POST", "/volumes/create")
def create_volume(ctx: Context, req: Request) -> Reply:
    from forklift.engine import volumes

    doc = req.json()
    name = doc.get("Name") or None
    driver = doc.get("Driver") or "local"
    if not isinstance(name, str | None) or not isinstance(driver, str):
        raise ApiError(400, "invalid volume config: Name and Driver are strings")
    labels = _labels(doc, "Labels")
    opts = [f"{k}={v}" for k, v in _labels(doc, "DriverOpts").items()]
    vol = volumes.create(ctx.store, name, driver=driver, labels=labels, options=opts)
    return json_reply(volumes.inspect(ctx.store, vol.name), 201)


@route("GET", "/volumes/{name}")
def inspect_volume(ctx: Context, req: Request) -> Reply:
    from forklift.engine import volumes

    return json_reply(volumes.inspect(ctx.store, req.params["name"]))


@route("DELETE", "/volumes/{name}")
def remove_volume(ctx: Context, req: Request) -> Reply:
    """``force`` forgives a missing volume only: one in use is a 409 either way (Docker's)."""
    from forklift.engine import volumes

    try:
        volumes.remove(ctx.store, req.params["name"])
    except NotFound:
        if not req.flag("force"):
            raise
    return no_content()


@route("POST", "/volumes/prune")
def prune_volumes(ctx: Context, req: Request) -> Reply:
    """API 1.41 prunes every unused volume, named ones too (``all`` came with 1.42)."""
    from forklift.engine import system
    from forklift.engine.filters import Filters

    result = system.prune_volumes(ctx.store, all_volumes=True, filters=Filters(req.filters()))
    return json_reply({"VolumesDeleted": result.deleted, "SpaceReclaimed": result.reclaimed})
