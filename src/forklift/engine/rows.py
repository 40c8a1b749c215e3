"""What Docker's list rows show about a container beyond its record (``ps``'s
``.Mounts``, ``.LocalVolumes``, ``.Networks``), as its ``/containers/json`` reports them."""

from __future__ import annotations

from dataclasses import dataclass

from forklift.engine import mounts as mounts_mod
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store


@dataclass(frozen=True)
class Attachments:
    mounts: list[str]        # volume names, bind sources (tmpfs mounts have neither)
    local_volumes: int       # mounts of the local volume driver
    networks: list[str]      # networks it is attached to, sorted


def attachments(store: Store, rec: ContainerRecord) -> Attachments:
    """A container's mounts and networks, read from the store (one query for volumes)."""
    described = [m for m in mounts_mod.describe(store, rec) if m["Type"] != "tmpfs"]
    names = [m.get("Name") or m["Source"] for m in described]
    local = sum(1 for m in described if m.get("Driver") == "local")
    return Attachments(names, local, networks(rec))


def networks(rec: ContainerRecord) -> list[str]:
    """The networks of ``rec``'s NetworkSettings: its mode (none when it shares another
    container's) and the ones ``network connect`` added."""
    mode = rec.host_config.get("NetworkMode") or "bridge"
    first = [] if mode.startswith("container:") else ["bridge" if mode == "default" else mode]
    return sorted(dict.fromkeys([*first, *(rec.host_config.get("ExtraNetworks") or [])]))
