"""A look at one container's record that costs ``exec`` no store machinery.

`Store.open` (schema, migrations) and ``open_store``'s recovery, ``sqlite3`` (whose
package imports ``datetime`` for its default adapters) and the JSON decoder's ``re``
cost more import time than all the work of an ``exec``. `running_container` reads the
record through the ``_sqlite3`` extension itself, which needs none of them, in a store
that is already as ``open_store`` would leave it; for anything else (no database yet, an
older or newer schema, a leftover of a dead process to recover, no such container, one
not running) it answers None, and the caller takes the ordinary path, which gives the
ordinary answer.

``_sqlite3`` is the extension that ``sqlite3`` re-exports (``from _sqlite3 import *``);
this module uses only what both name alike (``connect``, ``Error``), passes no dates
(the adapters that ``sqlite3`` registers are then never asked for) and only reads. Its
initialisation's one import, ``functools.lru_cache``, is given a stand-in
(`_import_sqlite`).
"""

from __future__ import annotations

import os

from forklift.fastjson import loads
from forklift.procs import pid_alive
from forklift.store.layout import SCHEMA_VERSION

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

_COLUMNS = "id, name, image_name, state, pid, config, host_config"


class RunningContainer:
    """What ``exec`` needs of a running container's record (`events.container_event`
    reads ``id``, ``name``, ``image_name`` and ``config``)."""

    __slots__ = ("id", "name", "image_name", "pid", "config", "host_config")

    def __init__(self, id: str, name: str, image_name: str, pid: int,
                 config: dict[str, Any], host_config: dict[str, Any]) -> None:
        self.id, self.name, self.image_name, self.pid = id, name, image_name, pid
        self.config, self.host_config = config, host_config


def running_container(root: str, text: str) -> RunningContainer | None:
    """The container ``text`` names (full ID, name or unique ID prefix, as
    `containers.resolve` finds it) if it is running and the store at ``root`` needs no
    opening or recovery; None for anything else."""
    tmp = os.path.join(root, "tmp")
    try:
        leftovers = [n for n in os.listdir(tmp) if not _owner_alive(n)]
        if leftovers or not os.path.isdir(os.path.join(root, "runc")):
            return None
        row = _find(os.path.join(root, "forklift.db"), text)
    except (OSError, ValueError):
        return None
    if row is None or row[3] != "running" or not pid_alive(row[4]):
        return None
    return RunningContainer(row[0], row[1], row[2], row[4], loads(row[5]), loads(row[6]))


def _owner_alive(name: str) -> bool:
    """Whether scratch ``tmp/<pid>-…`` belongs to a live process (`Store.sweep_tmp`'s
    test: anything else is recovery's to remove)."""
    pid = name.split("-", 1)[0]
    return pid.isdigit() and pid_alive(int(pid))


def _import_sqlite() -> Any:
    """The ``_sqlite3`` extension. In CPython 3.11 its initialisation takes
    ``functools.lru_cache`` (for each connection's statement cache), and ``functools``
    costs ``collections``, ``operator``, ``reprlib``, ``keyword`` and ``types``: some
    2.5 ms, more than the rest of the reading. Unless ``functools`` is already loaded,
    the extension is given an ``lru_cache`` built on the same C cache class
    (``_functools._lru_cache_wrapper``) the real one returns, in a stand-in module that
    is gone from ``sys.modules`` once the extension is loaded (a later ``import
    functools`` loads the real one). Anything unexpected: the ordinary import."""
    import sys

    if "_sqlite3" in sys.modules or "functools" in sys.modules:
        import _sqlite3

        return _sqlite3
    import _functools

    def lru_cache(maxsize: int | None = 128, typed: bool = False) -> Any:
        # tuple for the cache_info type: only cache_info() uses it, and nothing calls it
        return lambda function: _functools._lru_cache_wrapper(function, maxsize, typed, tuple)

    stand_in = type(sys)("functools")
    stand_in.lru_cache = lru_cache  # type: ignore[attr-defined]
    sys.modules["functools"] = stand_in
    try:
        import _sqlite3
    except Exception:  # noqa: BLE001 - another Python's initialisation: the real functools
        sys.modules.pop("_sqlite3", None)
        del sys.modules["functools"]
        import _sqlite3
    else:
        del sys.modules["functools"]
    return _sqlite3


def _find(db: str, text: str) -> tuple[Any, ...] | None:
    _sqlite3 = _import_sqlite()
    if not os.path.isfile(db):  # connect would create it
        return None
    try:
        conn = _sqlite3.connect(db, timeout=60, isolation_level=None)
    except _sqlite3.Error:
        return None
    try:
        # WAL and this schema: what Store.open would otherwise have to set up first
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            return None
        schema = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if schema is None or schema[0] != str(SCHEMA_VERSION):
            return None
        return _resolve(conn, text)
    except _sqlite3.Error:
        return None
    finally:
        conn.close()


def _resolve(conn: Any, text: str) -> tuple[Any, ...] | None:
    """`containers.resolve`'s order: full ID, name, unique ID prefix."""
    name = text[1:] if text.startswith("/") else text
    query = f"SELECT {_COLUMNS} FROM containers WHERE "
    row = conn.execute(query + "id=?", (text,)).fetchone()
    if row is None:
        row = conn.execute(query + "name=?", (name,)).fetchone()
    if row is None and text and all(c in "0123456789abcdef" for c in text):
        rows = conn.execute(query + "id >= ? AND id < ? LIMIT 2", (text, text + "\x7f")).fetchall()
        row = rows[0] if len(rows) == 1 else None
    return row
