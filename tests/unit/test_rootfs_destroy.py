"""Removing a container's directory (`rootfs.destroy`): the quick descriptor-based pass
removes everything of its own and nothing it only points at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.engine import rootfs
from forklift.store import db
from forklift.store.db import Store


def _container_dir(store: Store, outside: Path) -> Path:
    base = Path(store.container_path("c" * 64))
    (base / "upper" / "deep" / "er").mkdir(parents=True)
    (base / "upper" / "deep" / "er" / "file").write_text("x")
    (base / "work" / "work").mkdir(parents=True)
    os.chmod(base / "work" / "work", 0)  # as overlayfs leaves it
    (base / "upper" / "link-to-dir").symlink_to(outside)
    (base / "upper" / "link-to-file").symlink_to(outside / "keep")
    os.mkfifo(base / "upper" / "fifo")
    (base / "hosts").write_text("127.0.0.1 localhost\n")
    return base


def test_destroy_removes_the_tree_and_nothing_it_points_at(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept")
    base = _container_dir(store, outside)
    rootfs.destroy(store, "c" * 64)
    assert not os.path.lexists(base)
    assert (outside / "keep").read_text() == "kept"
    assert sorted(os.listdir(outside)) == ["keep"]
    rootfs.destroy(store, "c" * 64)  # idempotent


def test_a_directory_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("kept")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(OSError):
        db._remove_tree(str(link))
    assert (target / "keep").read_text() == "kept"
