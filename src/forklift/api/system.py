"""``/_ping``, ``/version``, ``/info``."""

from __future__ import annotations

from typing import Any

from forklift.api.server import API_VERSION, Context, Reply, Request, json_reply, route


@route("GET", "/_ping")
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
