"""``ps -s``/``inspect -s`` sizes as Docker's overlay2 counts them, on a store with no runtime."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from forklift.engine import rootfs, sizes
from forklift.store import containers as container_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store


def test_tree_size_counts_each_inode_once_and_no_directories(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "f").write_bytes(b"x" * 1000)
    os.link(tmp_path / "d" / "f", tmp_path / "hard")          # the same inode: once
    os.symlink("d/f", tmp_path / "soft")                        # a link's own size: 3
    os.symlink("d", tmp_path / "dirlink")                       # a link to a directory: 1
    (tmp_path / "empty").touch()
    if os.geteuid() == 0:   # an overlay whiteout: a 0/0 character device, no bytes
        os.mknod(tmp_path / "whiteout", 0o600 | stat.S_IFCHR, 0)
    assert sizes.tree_size(str(tmp_path)) == 1000 + 3 + 1
    assert sizes.tree_size(str(tmp_path / "missing")) == 0


def test_a_container_of_a_removed_image_counts_the_layers_it_kept(store: Store) -> None:
    rec = ContainerRecord(os.urandom(32).hex(), "c", "sha256:" + "1" * 64, "gone", time.time())
    upper = Path(rootfs.paths(store, rec.id)["upper"])
    upper.mkdir(parents=True)
    (upper / "new").write_bytes(b"12345")
    with store.transaction():
        container_store.insert(store, rec)
        for pos, (diff_id, size) in enumerate((("sha256:" + "a" * 64, 100), ("sha256:" + "b" * 64, 20))):
            store.conn.execute("INSERT INTO layers(diff_id, dir, size, blob, blob_media_type)"
                               " VALUES(?,?,?,?,?)", (diff_id, diff_id[7:19], size, "", "x"))
            store.conn.execute("INSERT INTO container_layers(container_id, position, diff_id)"
                               " VALUES(?,?,?)", (rec.id, pos, diff_id))
    assert sizes.container_sizes(store, rec) == (5, 125)
