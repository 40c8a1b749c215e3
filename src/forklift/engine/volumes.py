"""Volume operations: ``volume create``, ``ls``, ``inspect``, ``rm`` (``prune`` is in
``engine/system`` with the other prunes)."""

from __future__ import annotations

import os
import time
from typing import Any

from forklift.engine import events
from forklift.engine.filters import Filters
from forklift.errors import InvalidArgument, NotFound
from forklift.store import volumes as volume_store
from forklift.store.db import Store
from forklift.store.volumes import Volume

LIST_FILTERS = ("dangling", "driver", "label", "name")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def create(store: Store, name: str | None = None, *, driver: str = "local",
           labels: dict[str, str] | None = None, options: list[str] | None = None) -> Volume:
    """``volume create``: a named volume (a random 64-hex name without ``name``).

    Idempotent: an existing volume of that name is returned as it is (Docker's rule).
    Raises InvalidArgument for another driver, driver options or an invalid name.
    """
    if driver != "local":
        raise InvalidArgument(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
    if options:
        raise InvalidArgument("driver options (-o) are not supported by the local driver here")
    vol, made = volume_store.ensure(store, name or os.urandom(32).hex(), anonymous=False,
                                    labels=labels or {})
    if made:
        events.emit(store.root, "volume", "create", vol.name, {"driver": "local"})
    return vol


def shown_labels(vol: Volume) -> dict[str, str]:
    """The labels Docker shows: an anonymous volume carries ``com.docker.volume.anonymous``."""
    return {**vol.labels, ANONYMOUS_LABEL: ""} if vol.anonymous else dict(vol.labels)


def list_volumes(store: Store, filters: Filters | None = None) -> list[Volume]:
    """``volume ls``: every volume by name, filtered as Docker filters them: ``name=`` (an
    exact name or an expression found in it, alternatives), ``driver=`` (exact),
    ``label=k[=v]`` (all must hold), ``dangling=true|1|false|0`` (used by no container).

    Raises InvalidFilter for another key or a dangling value that is no boolean. Reads only.
    """
    filters = filters or Filters()
    filters.validate(LIST_FILTERS)
    dangling = filters.boolean("dangling")
    out = []
    for vol in volume_store.all_volumes(store):
        if not (filters.match("name", vol.name) and filters.exact("driver", "local")
                and filters.labels(vol.labels)):
            continue
        if dangling is not None and (not volume_store.users(store, vol.name)) != dangling:
            continue
        out.append(vol)
    return out


def inspect(store: Store, name: str) -> dict[str, Any]:
    """``volume inspect``: Docker's fields for one volume. Raises NotFound."""
    vol = volume_store.get(store, name)
    if vol is None:
        raise NotFound(f"No such volume: {name}")
    return {"CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(vol.created)),
            "Driver": "local", "Labels": shown_labels(vol), "Mountpoint": vol.path(store),
            "Name": vol.name, "Options": {}, "Scope": "local"}


def remove(store: Store, name: str) -> None:
    """``volume rm``: refuses a volume a container uses (Conflict); NotFound when missing."""
    volume_store.remove(store, name, force=False)
    events.emit(store.root, "volume", "destroy", name, {"driver": "local"})
