"""Image endpoints: ``GET /images/json``, ``GET /images/{name}/json``."""

from __future__ import annotations

from typing import Any

from forklift.api.server import Context, Reply, Request, json_reply, route


@route("GET", "/images/json")
def list_images(ctx: Context, req: Request) -> Reply:
    """Docker's ImageSummary list: one entry per image (the engine's rows are per tag)."""
    from forklift.engine import images as images_mod
    from forklift.engine.filters import Filters
    from forklift.store import images as image_store

    store = ctx.store
    rows = images_mod.list_images(store, req.flag("all"), Filters(req.filters()))
    summaries: dict[str, dict[str, Any]] = {}
    for row in rows:
        doc = summaries.get(row.id)
        if doc is None:
            rec = image_store.get(store, row.id)
            doc = summaries[row.id] = {
                "Id": row.id, "ParentId": (rec.parent if rec else None) or "",
                "RepoTags": [], "RepoDigests": [], "Created": int(row.created),
                "Size": row.size, "VirtualSize": row.size, "SharedSize": -1,
                "Labels": images_mod.labels(store, row.id), "Containers": -1}
        if row.repository != "<none>":
            doc["RepoTags"].append(f"{row.repository}:{row.tag}")
            if row.digest != "<none>":
                doc["RepoDigests"].append(f"{row.repository}@{row.digest}")
    for doc in summaries.values():
        if not doc["RepoTags"]:  # Docker's words for an untagged image
            doc["RepoTags"] = ["<none>:<none>"]
            doc["RepoDigests"] = doc["RepoDigests"] or ["<none>@<none>"]
    return json_reply(list(summaries.values()))


@route("GET", "/images/{name*}/json")
def inspect_image(ctx: Context, req: Request) -> Reply:
    from forklift.engine import images as images_mod

    doc = images_mod.inspect(ctx.store, req.params["name"])
    metadata = doc.get("Metadata") or {}
    if not metadata.get("LastTagTime"):  # Go's clients parse it: its zero time, as Docker's
        doc["Metadata"] = {**metadata, "LastTagTime": "0001-01-01T00:00:00Z"}
    return json_reply(doc)
