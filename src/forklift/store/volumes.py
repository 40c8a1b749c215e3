"""Volumes: named or anonymous directories under ``volumes/<name>/_data``."""

from __future__ import annotations

import json
import os
import re
import time

from forklift.errors import Conflict, InvalidArgument, NotFound
from forklift.records import SlotRecord
from forklift.store.db import Store, remove_path

# compiled (and cached by re) when first used: only a named volume needs it
_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"


class Volume(SlotRecord):
    """A volume row; its content is ``path(store)``. (A slotted record, not a dataclass:
    this module is on the `run` hot path.)"""

    name: str
    anonymous: bool
    created: float
    labels: dict[str, str]
    __slots__ = ("name", "anonymous", "created", "labels")

    def __init__(self, name: str, anonymous: bool, created: float,
                 labels: dict[str, str]) -> None:
        self.name, self.anonymous, self.created, self.labels = name, anonymous, created, labels

    def path(self, store: Store) -> str:
        return os.path.join(store.volumes_dir, self.name, "_data")


def validate_name(name: str) -> str:
    """``name`` if Docker's local driver accepts it, else InvalidArgument (its wording)."""
    if not re.match(_NAME, name):
        raise InvalidArgument(
            f'"{name}" includes invalid characters for a local volume name,'
            ' only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    return name


def get(store: Store, name: str) -> Volume | None:
    """The volume called ``name``, or None."""
    row = store.conn.execute(
        "SELECT name, anonymous, created, labels FROM volumes WHERE name=?", (name,)).fetchone()
    return Volume(row[0], bool(row[1]), row[2], json.loads(row[3])) if row else None


def ensure(store: Store, name: str, anonymous: bool = False,
           labels: dict[str, str] | None = None) -> tuple[Volume, bool]:
    """Create the volume if missing; returns (volume, created_now). Idempotent and safe
    against a concurrent ``ensure`` of the same name (the directory first, then the
    row in its own transaction: a crash between leaves a directory ``system check``
    reports). InvalidArgument for a bad name; an existing volume keeps its labels."""
    validate_name(name)
    found = get(store, name)
    if found:
        return found, False
    os.makedirs(os.path.join(store.volumes_dir, name, "_data"), mode=0o755, exist_ok=True)
    vol = Volume(name, anonymous, time.time(), labels or {})
    with store.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO volumes(name, anonymous, created, labels) VALUES(?,?,?,?)",
                     (name, int(anonymous), vol.created, json.dumps(vol.labels)))
    return get(store, name) or vol, True


def attach(store: Store, container_id: str, name: str, destination: str) -> None:
    """Record that a container mounts volume ``name`` at ``destination`` (replacing what
    it mounted there); its own transaction or the caller's. Checks neither exists."""
    with store.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO container_volumes(container_id, volume, destination)"
                     " VALUES(?,?,?)", (container_id, name, destination))


def detach(store: Store, container_id: str) -> None:
    """Forget every volume the container mounts (its own transaction or the caller's)."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM container_volumes WHERE container_id=?", (container_id,))


def remove_unused_anonymous(store: Store, names: list[str]) -> None:
    """Remove those of the volumes ``names`` that are anonymous and no container uses
    (``rm -v``, a failed create): a named volume outlives its containers."""
    for name in names:
        vol = get(store, name)
        if vol and vol.anonymous and not users(store, name):
            remove(store, name)


def users(store: Store, name: str) -> list[str]:
    """IDs of the containers the volume is attached to."""
    return [r[0] for r in store.conn.execute(
        "SELECT container_id FROM container_volumes WHERE volume=?", (name,))]


def of_container(store: Store, container_id: str) -> list[tuple[str, str]]:
    """(volume, destination) of each volume attached to the container."""
    return [(r[0], r[1]) for r in store.conn.execute(
        "SELECT volume, destination FROM container_volumes WHERE container_id=?", (container_id,))]


def attachments(store: Store) -> dict[str, list[tuple[str, str]]]:
    """`of_container` of every container at once (container ID -> its (volume,
    destination) pairs, in the order `of_container` gives them: by destination)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for r in store.conn.execute("SELECT container_id, volume, destination FROM container_volumes"
                                " ORDER BY container_id, destination"):
        out.setdefault(r[0], []).append((r[1], r[2]))
    return out


def all_volumes(store: Store) -> list[Volume]:
    """Every volume, by name."""
    rows = store.conn.execute("SELECT name, anonymous, created, labels FROM volumes ORDER BY name")
    return [Volume(r[0], bool(r[1]), r[2], json.loads(r[3])) for r in rows]


def remove(store: Store, name: str, force: bool = False) -> None:
    """Delete the volume's row and attachments (one transaction), then its directory.
    NotFound if there is none; Conflict while a container uses it, unless ``force``."""
    if get(store, name) is None:
        raise NotFound(f"No such volume: {name}")
    in_use = users(store, name)
    if in_use and not force:
        raise Conflict(f"remove {name}: volume is in use - [{', '.join(in_use)}]")
    with store.transaction() as conn:
        conn.execute("DELETE FROM volumes WHERE name=?", (name,))
        conn.execute("DELETE FROM container_volumes WHERE volume=?", (name,))
    remove_path(os.path.join(store.volumes_dir, name))
