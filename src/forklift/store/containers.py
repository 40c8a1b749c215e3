"""Container records: identity, image, configuration and state."""

from __future__ import annotations

# the extension sqlite3 re-exports: the package adds datetime's adapters (~2.5 ms)
import _sqlite3 as sqlite3

from forklift.errors import Conflict, NotFound, StoreCorrupt
from forklift.fastjson import dumps, loads
from forklift.procs import pid_alive
from forklift.records import SlotRecord
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:  # images and layers load only where layers are read: not on exec/stop
    from typing import Any

    from forklift.store.layers import Layer

_COLUMNS = ("id, name, image_id, image_name, created, state, pid, exit_code, started_at,"
            " finished_at, config, host_config")


class State(str):
    """A container's recorded state: one of five strings (Docker's names), stored and
    compared as the plain text. An enum's interface (``State.RUNNING``, ``State("running")``
    refusing any other text with ValueError, ``.value``, ``.name``) without ``enum``,
    whose import (some 2 ms, with ``functools`` and ``operator``) the stop and run paths
    would otherwise pay for it alone."""

    __slots__ = ()
    CREATED: State
    RUNNING: State
    PAUSED: State
    EXITED: State
    # between two runs, its monitor (the recorded pid) waiting to start it again
    RESTARTING: State
    _MEMBERS: dict[str, State] = {}

    def __new__(cls, value: str) -> State:
        member = cls._MEMBERS.get(value)
        if member is None:
            raise ValueError(f"{value!r} is not a valid State")
        return member

    def __repr__(self) -> str:
        return f"<State.{self.name}: {str.__repr__(self)}>"

    def __str__(self) -> str:
        return str.__str__(self)

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.upper()

    @property
    def up(self) -> bool:
        """Whether a process of the container may exist: running or paused (or restarting:
        its monitor lives and will run it again)."""
        return self in (State.RUNNING, State.PAUSED, State.RESTARTING)


for _text in ("created", "running", "paused", "exited", "restarting"):
    State._MEMBERS[_text] = str.__new__(State, _text)
    setattr(State, _text.upper(), State._MEMBERS[_text])


class ContainerRecord(SlotRecord):
    """One row of the containers table. A plain slotted class, not a dataclass: this module
    is on the ``exec``/``stop`` hot path, and dataclasses costs inspect, ast and dis."""

    __slots__ = ("id", "name", "image_id", "image_name", "created", "state", "pid",
                 "exit_code", "started_at", "finished_at", "config", "host_config")

    def __init__(self, id: str, name: str, image_id: str, image_name: str, created: float,
                 state: State = State.CREATED, pid: int | None = None,
                 exit_code: int | None = None, started_at: str | None = None,
                 finished_at: str | None = None, config: dict[str, Any] | None = None,
                 host_config: dict[str, Any] | None = None) -> None:
        self.id = id
        self.name = name
        self.image_id = image_id
        self.image_name = image_name
        self.created = created
        self.state = state
        self.pid = pid
        self.exit_code = exit_code
        self.started_at = started_at
        self.finished_at = finished_at
        self.config: dict[str, Any] = {} if config is None else config
        self.host_config: dict[str, Any] = {} if host_config is None else host_config

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def effective_state(self) -> State:
        """The state to show: a running or paused container whose recorded process (its
        monitor, or the CLI of a foreground run) is gone has exited. Costs a kill(2)."""
        if self.state.up and not pid_alive(self.pid):
            return State.EXITED
        return self.state


def _from_row(row: Any) -> ContainerRecord:
    values = list(row)
    values[5] = State(values[5])
    values[10] = loads(values[10])
    values[11] = loads(values[11])
    return ContainerRecord(*values)


def insert(store: Store, rec: ContainerRecord) -> None:
    """Insert inside the caller's transaction (asserted: the caller checks the image
    in the same one); a taken name is Docker's conflict error."""
    assert store.conn.in_transaction, "containers.insert outside a transaction"
    try:
        store.conn.execute(
            f"INSERT INTO containers({_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.id, rec.name, rec.image_id, rec.image_name, rec.created, rec.state, rec.pid,
             rec.exit_code, rec.started_at, rec.finished_at, dumps(rec.config),
             dumps(rec.host_config)),
        )
    except sqlite3.IntegrityError:
        check_name_free(store, rec.name)
        raise Conflict(f'Conflict. The container name "/{rec.name}" is already in use.') from None


def check_name_free(store: Store, name: str) -> None:
    """Conflict, in Docker's words, if a container has the name ``name``."""
    row = store.conn.execute("SELECT id FROM containers WHERE name=?", (name,)).fetchone()
    if row is not None:
        raise Conflict(
            f'Conflict. The container name "/{name}" is already in use by container "{row[0]}".'
            " You have to remove (or rename) that container to be able to reuse that name.")


def update_state(store: Store, container_id: str, **fields: Any) -> None:
    """Set state columns (state, pid, exit_code, started_at, finished_at, name) in one
    transaction (its own or the caller's); an unknown ID changes nothing."""
    allowed = {"state", "pid", "exit_code", "started_at", "finished_at", "name"}
    assert set(fields) <= allowed
    sets = ", ".join(f"{k}=?" for k in fields)
    with store.transaction() as conn:
        conn.execute(f"UPDATE containers SET {sets} WHERE id=?", (*fields.values(), container_id))


def set_host_config(store: Store, container_id: str, host_config: dict[str, Any]) -> None:
    """Replace the container's HostConfig (``update``), in one transaction."""
    with store.transaction() as conn:
        conn.execute("UPDATE containers SET host_config=? WHERE id=?",
                     (dumps(host_config), container_id))


def get(store: Store, container_id: str) -> ContainerRecord | None:
    """The container with this full ID, or None."""
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE id=?", (container_id,)).fetchone()
    return _from_row(row) if row else None


def all_containers(store: Store, up_only: bool = False) -> list[ContainerRecord]:
    """Every container, newest first; with ``up_only`` those recorded running, paused or
    restarting (the others' JSON is then not even parsed: ``ps`` without ``-a``)."""
    where = " WHERE state IN ('running', 'paused', 'restarting')" if up_only else ""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM containers{where} ORDER BY created DESC").fetchall()
    return [_from_row(r) for r in rows]


def resolve(store: Store, text: str) -> ContainerRecord:
    """Find a container by full ID, name, or unique ID prefix (Docker's order).
    NotFound if nothing matches, Conflict for an ambiguous prefix."""
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
    """The containers created from ``image_id`` (read it inside the transaction that
    acts on the answer)."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM containers WHERE image_id=?", (image_id,)
    ).fetchall()
    return [_from_row(r) for r in rows]


def delete(store: Store, container_id: str) -> bool:
    """Delete the record, its volume attachments and own layer list in one transaction
    (its own or the caller's); True if it held layers of its own (a deleted image's),
    which the caller should then let the garbage collection free. Idempotent; the
    container's directory is the caller's to remove."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM container_volumes WHERE container_id=?", (container_id,))
        conn.execute("DELETE FROM containers WHERE id=?", (container_id,))
        held = conn.execute("DELETE FROM container_layers WHERE container_id=?", (container_id,))
        return held.rowcount > 0


def detach_from_image(store: Store, image_id: str) -> None:
    """Before the record of ``image_id`` is deleted (``rmi -f``), give each container on
    it its own copy of the image's layer list, as Docker's containers keep their layer
    chain without the image. Inside the caller's transaction (asserted), the one that
    deletes the image record. Idempotent."""
    assert store.conn.in_transaction, "detach_from_image outside a transaction"
    store.conn.execute(
        "INSERT OR IGNORE INTO container_layers(container_id, position, diff_id)"
        " SELECT c.id, il.position, il.diff_id FROM containers c"
        " JOIN image_layers il ON il.image_id = c.image_id WHERE c.image_id=?", (image_id,))


def layers(store: Store, rec: ContainerRecord) -> list[Layer]:
    """The container's lower layers, bottom first: its image's, or its own copy once the
    image record is gone. StoreCorrupt if one of them is missing."""
    from forklift.store import images as image_store
    from forklift.store.layers import Layer

    rows = store.conn.execute(
        "SELECT l.diff_id, l.dir, l.size, l.blob, l.blob_media_type FROM container_layers cl"
        " JOIN layers l ON l.diff_id = cl.diff_id WHERE cl.container_id=? ORDER BY cl.position",
        (rec.id,)).fetchall()
    if not rows:
        return image_store.layers(store, rec.image_id)
    expected = store.conn.execute(
        "SELECT COUNT(*) FROM container_layers WHERE container_id=?", (rec.id,)).fetchone()[0]
    if len(rows) != expected:
        raise StoreCorrupt(f"container {rec.short_id} refers to a missing layer")
    return [Layer(*r) for r in rows]


# A stopped container's ``commit`` may move its upper directory into the store as the
# new image's layer (engine/commitlayer): the container then sits on that layer, its
# "own" layer, below a fresh upper directory. Its whole stack is then in
# container_layers: the image's layers at their positions, its own from OWN_POSITION up
# (so rmi -f, which copies the image's layers at their positions, keeps them apart).
OWN_POSITION = 1 << 20


def stack(store: Store, rec: ContainerRecord) -> tuple[list[Layer], list[Layer]]:
    """(the image's layers, the container's own layers), each bottom first. StoreCorrupt
    if one of them is missing."""
    from forklift.store import images as image_store
    from forklift.store.layers import Layer

    rows = store.conn.execute(
        "SELECT l.diff_id, l.dir, l.size, l.blob, l.blob_media_type, cl.position"
        " FROM container_layers cl JOIN layers l ON l.diff_id = cl.diff_id"
        " WHERE cl.container_id=? ORDER BY cl.position", (rec.id,)).fetchall()
    if not rows:
        return image_store.layers(store, rec.image_id), []
    expected = store.conn.execute(
        "SELECT COUNT(*) FROM container_layers WHERE container_id=?", (rec.id,)).fetchone()[0]
    if len(rows) != expected:
        raise StoreCorrupt(f"container {rec.short_id} refers to a missing layer")
    return ([Layer(*r[:5]) for r in rows if r[5] < OWN_POSITION],
            [Layer(*r[:5]) for r in rows if r[5] >= OWN_POSITION])


def adopt_layer(store: Store, rec: ContainerRecord, diff_id: str) -> None:
    """Put the layer ``diff_id`` on top of the container's own layers (its image's layer
    list is copied first, as ``detach_from_image`` does). Inside the caller's transaction
    (asserted), the one that moves the container's upper directory into that layer."""
    assert store.conn.in_transaction, "adopt_layer outside a transaction"
    conn = store.conn
    conn.execute(
        "INSERT OR IGNORE INTO container_layers(container_id, position, diff_id)"
        " SELECT ?, position, diff_id FROM image_layers WHERE image_id=?", (rec.id, rec.image_id))
    top = conn.execute("SELECT MAX(position) FROM container_layers WHERE container_id=?"
                       " AND position >= ?", (rec.id, OWN_POSITION)).fetchone()[0]
    conn.execute("INSERT INTO container_layers(container_id, position, diff_id) VALUES(?,?,?)",
                 (rec.id, OWN_POSITION if top is None else top + 1, diff_id))


def image_deleted(store: Store, rec: ContainerRecord) -> bool:
    """Whether the container outlived its image record (``rmi -f``)."""
    return store.conn.execute("SELECT 1 FROM images WHERE id=?", (rec.image_id,)).fetchone() is None
