"""The local store: one root directory, metadata in SQLite, content on disk.

Layout under the root::

    forklift.db              metadata (WAL): blobs, layers, images, tags, containers, volumes
    config.toml              optional limits (``forklift.limits``)
    blobs/sha256/<hex>       content-addressed blobs (configs, layer tars, manifests)
    layers/<id>/diff         each layer extracted once, overlayfs-native whiteouts
    containers/<id>/         a container's writable layer, runtime bundle, hosts files
    volumes/<name>/_data     volume content
    networks/<name>.json     user-defined networks;  netns/<id>: network namespaces
    tmp/<pid>-<purpose>-…    work in progress; removed once its process is gone
    runc/                    runc's state root

Submodules: ``layout`` (the default root and the schema version, without SQLite),
``db`` (the ``Store``: schema, transactions, scratch space; it imports no other store
module but ``layout``), ``peek`` (a running container's record for ``exec``, read
without ``db``), ``recovery`` (cleaning up after a killed process),
``blobs``, ``layers``, ``images``, ``containers``, ``volumes``, ``check``
(``system check``). Importing the package loads only ``layout``: ``open_store``
and ``Store`` load ``db`` (and sqlite3) on first use.
"""

from __future__ import annotations

from forklift.store.layout import default_root

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

    from forklift.store.db import Store


def open_store(root: str | None = None) -> Store:
    """Open the store at ``root`` (default: ``default_root()``), creating it if needed,
    then clean up after any forklift process that was killed (``recovery.recover``).

    Rows come back as ``sqlite3.Row``. Raises ``ForkliftError`` when the root cannot
    be created, ``StoreCorrupt`` for a database it cannot read or a newer schema,
    ``NoSpace`` when creating or migrating it fills the disk. Safe to call from many
    processes at once."""
    # imported here, not above: a submodule that needs neither (`peek`, `layout`) is
    # then imported without sqlite3 (datetime) and the recovery machinery
    import _sqlite3 as sqlite3  # not the package: datetime's adapters (~2.5 ms)

    from forklift.store import recovery
    from forklift.store.db import Store

    store = Store(root or default_root()).open()
    store.conn.row_factory = sqlite3.Row
    recovery.recover(store)
    return store


def __getattr__(name: str) -> Any:
    if name == "Store":  # loaded on first use, as open_store loads it
        from forklift.store.db import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Store", "default_root", "open_store"]
