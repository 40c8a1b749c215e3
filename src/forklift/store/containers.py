"""Container records: identity, image, configuration and state."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import Conflict, NotFound
from forklift.store.db import Store

_COLUMNS = ("id, name, image_id, image_name, created, state, pid, exit_code, started_at,"
            " finished_at, config, host_config")


@dataclass
class ContainerRecord:
    id: str
    name: str
    image_id: str
    image_name: str
    created: float
    state: str = "created"
    pid: int | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]


def _from_row(row: Any) -> ContainerRecord:
    values = list(row)
    values[10] = json.loads(values[10])
    values[11] = json.loads(values[11])
    return ContainerRecord(*values)


def insert(store: Store, rec: ContainerRecord) -> None:
    """Insert inside the caller's transaction; a taken name is Docker's conflict error."""
    try:
        store.conn.execute(
            f"INSERT INTO containers({_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.id, rec.name, rec.image_id, rec.image_name, rec.created, rec.state, rec.pid,
             rec.exit_code, rec.started_at, rec.finished_at, json.dumps(rec.config),
             json.dumps(rec.host_config)),
        )
    except sqlite3.IntegrityError:
        row = store.conn.execute("SELECT id FROM containers WHERE name=?", (rec.name,)).fetchone()
        other = row[0] if row else "?"
        raise Conflict(
            f'Conflict. The container name "/{rec.name}" is already in use by container "{other}".'
            " You have to remove (or rename) that container to be able to reuse that name."
        ) from None


def update_state(store: Store, container_id: str, **fields: Any) -> None:
    allowed = {"state", "pid", "exit_code", "started_at", "finished_at", "name"}
    assert set(fields) <= allowed
    sets = ", ".join(f"{k}=?" for k in fields)
    with store.transaction() as conn:
        conn.execute(f"UPDATE containers SET {sets} WHERE id=?", (*fields.values(), container_id))


def get(store: Store, container_id: str) -> ContainerRecord | None:
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE id=?", (container_id,)).fetchone()
    return _from_row(row) if row else None


def all_containers(store: Store) -> list[ContainerRecord]:
    rows = store.conn.execute(f"SELECT {_COLUMNS} FROM containers ORDER BY created DESC").fetchall()
    return [_from_row(r) for r in rows]


def resolve(store: Store, text: str) -> ContainerRecord:
    """Find a container by full ID, name, or unique ID prefix (Docker's order)."""
    name = text[1:] if text.startswith("/") else text
    conn = store.conn
    row = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE id=?", (text,)).fetchone()
    if row is None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE name=?", (name,)).fetchone()
    if row is None and text and all(c in "0123456789abcdef" for c in text):
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE id >= ? AND id < ? LIMIT 2",
            (text, text + "\x7f"),
        ).fetchall()
        if len(rows) > 1:
            raise Conflict(f"multiple containers match ID prefix {text!r}")
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"No such container: {text}")
    return _from_row(row)


def users_of_image(store: Store, image_id: str) -> list[ContainerRecord]:
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM containers WHERE image_id=?", (image_id,)
    ).fetchall()
    return [_from_row(r) for r in rows]


def delete(store: Store, container_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM container_volumes WHERE container_id=?", (container_id,))
        conn.execute("DELETE FROM containers WHERE id=?", (container_id,))
