"""``port``: a container's published ports, as Docker reads them from its NetworkSettings."""

from __future__ import annotations

import re

from forklift.engine import containers
from forklift.errors import InvalidArgument, NotFound
from forklift.store.db import Store

_PROTOCOLS = ("tcp", "udp", "sctp")


def _port_key(key: str) -> tuple[int, str]:
    number, _, proto = key.partition("/")
    return int(number), proto


def normalize(private: str) -> str:
    """``80`` → ``80/tcp``; ``53/udp`` stays. Raises InvalidArgument for anything else."""
    number, sep, proto = private.partition("/")
    proto = proto if sep and proto else "tcp"
    if not re.fullmatch(r"\d{1,5}", number) or not 0 < int(number) < 65536:
        raise InvalidArgument(f"Invalid containerPort: {number}")
    if proto.lower() not in _PROTOCOLS:
        raise InvalidArgument(f"Invalid proto: {proto}")
    return f"{int(number)}/{proto.lower()}"


def published(store: Store, name: str) -> list[tuple[str, str]]:
    """Every published port of a container as (``80/tcp``, ``0.0.0.0:8080``), by port
    number; nothing for a container that is not running (Docker's NetworkSettings.Ports is
    empty then). Raises NotFound for an unknown container."""
    ports = containers.inspect(store, name)["NetworkSettings"]["Ports"] or {}
    out = []
    for key in sorted(ports, key=_port_key):
        for binding in ports[key] or []:
            host = binding.get("HostIp") or "0.0.0.0"
            host = f"[{host}]" if ":" in host else host
            out.append((key, f"{host}:{binding['HostPort']}"))
    return out


def lookup(store: Store, name: str, private: str) -> list[str]:
    """The host addresses ``private`` (``80``, ``80/tcp``) is published on. Raises
    NotFound with Docker's message when it is not published (or the container is not
    running), InvalidArgument for a malformed port."""
    key = normalize(private)
    hosts = [host for port, host in published(store, name) if port == key]
    if not hosts:
        raise NotFound(f"No public port '{key}' published for {name}")
    return hosts
