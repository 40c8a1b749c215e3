"""Network endpoints: ``GET /networks``, ``GET``/``DELETE /networks/{id}``, ``POST
/networks/create``, ``/networks/{id}/connect`` and ``/disconnect``, ``/networks/prune``
(the engine's ``network`` commands)."""

from __future__ import annotations

from typing import Any

from forklift.api.server import ApiError, Context, Reply, Request, json_reply, no_content, route


def _string(doc: dict[str, Any], key: str, default: str = "") -> str:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ApiError(400, f"invalid {key}: a string is expected")
    return value


def _ipam(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    """The one IPv4 pool the engine takes: (subnet, gateway) of IPAM.Config[0]."""
    ipam = doc.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise ApiError(400, "invalid IPAM: an object is expected")
    if _string(ipam, "Driver", "default") != "default":
        raise ApiError(400, f"IPAM driver {ipam['Driver']!r} is not supported: only default")
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise ApiError(400, "invalid IPAM.Config: a list of objects is expected")
    if len(configs) > 1:
        raise ApiError(400, "only one IPAM pool is supported")
    if not configs:
        return None, None
    return _string(configs[0], "Subnet") or None, _string(configs[0], "Gateway") or None


@route("GET", "/networks")
def list_networks(ctx: Context, req: Request) -> Reply:
    from forklift.engine import network
    from forklift.engine.filters import Filters

    found = network.list_networks(ctx.store, Filters(req.filters()))
    return json_reply([_shown(network.inspect(ctx.store, n["Id"])) for n in found])


@route("GET", "/networks/{id}")
def inspect_network(ctx: Context, req: Request) -> Reply:
    from forklift.engine import network

    return json_reply(_shown(network.inspect(ctx.store, req.params["id"])))


BRIDGE_NAME = "com.docker.network.bridge.name"


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    """A user-defined network's ``Options`` as Docker's: only those its creator gave, and
    this service's create takes none. forklift's own bridge name is left out: Compose
    compares the options with its project's and would call the network changed."""
    if doc["Name"] not in ("bridge", "host", "none") and BRIDGE_NAME in doc["Options"]:
        doc["Options"] = {k: v for k, v in doc["Options"].items() if k != BRIDGE_NAME}
    return doc


@route("POST", "/networks/create")
def create_network(ctx: Context, req: Request) -> Reply:
    """Duplicate names are always refused (Docker's ``CheckDuplicate``, here the rule)."""
    from forklift.engine import network

    doc = req.json()
    name = _string(doc, "Name")
    if not name:
        raise ApiError(400, "network name is required")
    labels = doc.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ApiError(400, "invalid Labels: a map of strings is expected")
    if doc.get("EnableIPv6"):
        raise ApiError(400, "IPv6 networks are not supported")
    subnet, gateway = _ipam(doc)
    rec = network.create(ctx.store, name, driver=_string(doc, "Driver", "bridge") or "bridge",
                         subnet=subnet, gateway=gateway, internal=bool(doc.get("Internal")),
                         labels=labels)
    return json_reply({"Id": rec["Id"], "Warning": ""}, 201)


@route("DELETE", "/networks/{id}")
def remove_network(ctx: Context, req: Request) -> Reply:
    from forklift.engine import network

    network.remove(ctx.store, req.params["id"])
    return no_content()


def _container(req: Request) -> tuple[str, dict[str, Any]]:
    doc = req.json()
    container = _string(doc, "Container")
    if not container:
        raise ApiError(400, "Container is required")
    return container, doc


@route("POST", "/networks/{id}/connect")
def connect(ctx: Context, req: Request) -> Reply:
    """EndpointConfig ``Aliases`` (Compose names a service by them on each of its
    networks), ``IPAMConfig.IPv4Address`` and ``Links`` are taken; a MAC or IPv6 address
    is not."""
    from forklift.engine import network

    container, doc = _container(req)
    endpoint = doc.get("EndpointConfig") or {}
    if not isinstance(endpoint, dict):
        raise ApiError(400, "invalid EndpointConfig: an object is expected")
    if endpoint.get("MacAddress") or (endpoint.get("IPAMConfig") or {}).get("IPv6Address"):
        raise ApiError(400, "EndpointConfig MacAddress and IPv6Address are not supported"
                       " by network connect")
    ipam = endpoint.get("IPAMConfig") or {}
    address = ipam.get("IPv4Address") if isinstance(ipam, dict) else None
    if not isinstance(address, str | None):
        raise ApiError(400, "invalid EndpointConfig.IPAMConfig: an IPv4Address string is"
                       " expected")
    network.connect(ctx.store, req.params["id"], container, _names(endpoint, "Aliases"),
                    address or "", _names(endpoint, "Links"))
    return Reply(200, b"", None)


def _names(endpoint: dict[str, Any], key: str) -> list[str]:
    names = endpoint.get(key) or []
    if not isinstance(names, list) or not all(isinstance(a, str) and a for a in names):
        raise ApiError(400, f"invalid EndpointConfig.{key}: a list of names is expected")
    return names


@route("POST", "/networks/{id}/disconnect")
def disconnect(ctx: Context, req: Request) -> Reply:
    from forklift.engine import network

    container, doc = _container(req)
    network.disconnect(ctx.store, req.params["id"], container, force=bool(doc.get("Force")))
    return Reply(200, b"", None)


@route("POST", "/networks/prune")
def prune_networks(ctx: Context, req: Request) -> Reply:
    from forklift.engine import system
    from forklift.engine.filters import Filters

    result = system.prune_networks(ctx.store, Filters(req.filters()))
    return json_reply({"NetworksDeleted": result.deleted})
