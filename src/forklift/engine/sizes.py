"""Container sizes as Docker's overlay2 driver counts them, for ``ps -s`` and
``inspect -s``: SizeRw is the bytes of the non-directory entries of the container's upper
directory (each inode once, so hard links count once), SizeRootFs that plus its image's
size."""

from __future__ import annotations

import os
from typing import Any

from forklift.engine import rootfs
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store


def container_sizes(store: Store, rec: ContainerRecord) -> tuple[int, int]:
    """(SizeRw, SizeRootFs) of ``rec``."""
    size_rw = tree_size(rootfs.paths(store, rec.id)["upper"]) + own_size(store, rec)
    return size_rw, size_rw + _image_size(store, rec)


def own_size(store: Store, rec: ContainerRecord) -> int:
    """The layers a commit moved out of the container's upper directory: still its
    changes (a file changed again after the commit counts in both)."""
    row = store.conn.execute(
        "SELECT COALESCE(SUM(l.size), 0) FROM container_layers c JOIN layers l"
        " ON l.diff_id = c.diff_id WHERE c.container_id=? AND c.position >= ?",
        (rec.id, container_store.OWN_POSITION)).fetchone()
    return int(row[0])


def tree_size(top: str) -> int:
    """Docker's ``directory.Size``: st_size of every non-directory, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue   # removed while the container runs
            if st.st_size and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _image_size(store: Store, rec: ContainerRecord) -> int:
    image = image_store.get(store, rec.image_id)
    if image is not None:
        return image.size
    # its image was removed with rmi -f: the layers the container kept
    row = store.conn.execute(
        "SELECT COALESCE(SUM(l.size), 0) FROM container_layers c JOIN layers l"
        " ON l.diff_id = c.diff_id WHERE c.container_id=? AND c.position < ?",
        (rec.id, container_store.OWN_POSITION)).fetchone()
    return int(row[0])


def inspect(store: Store, name_or_id: str) -> dict[str, Any]:
    """``inspect -s``: the container's document with SizeRw and SizeRootFs after
    GraphDriver, where Docker puts them."""
    from forklift.engine import containers

    doc = containers.inspect(store, name_or_id)
    size_rw, size_root = container_sizes(store, container_store.resolve(store, doc["Id"]))
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "GraphDriver":
            out.update(SizeRw=size_rw, SizeRootFs=size_root)
    out.setdefault("SizeRw", size_rw)
    out.setdefault("SizeRootFs", size_root)
    return out
