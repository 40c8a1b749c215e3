"""The local store: one root directory, metadata in SQLite, content on disk.

Layout under the root::

    forklift.db              metadata (WAL): blobs, layers, images, tags, containers, volumes
    blobs/sha256/<hex>       content-addressed blobs (configs, layer tars, manifests)
    layers/<id>/diff         each layer extracted once, overlayfs-native whiteouts
    containers/<id>/         a container's writable layer, runtime bundle, hosts files
    volumes/<name>/_data     volume content
    tmp/<pid>-<rand>/        work in progress; removed when its process is gone
    runc/                    runc's state root

Submodules: ``db`` (schema, transactions), ``blobs``, ``layers``, ``images``,
``containers``, ``volumes``.
"""

from forklift.store.db import Store, default_root, open_store

__all__ = ["Store", "default_root", "open_store"]
