"""`db.remove_path`'s quick pass (`rootfs.destroy` uses it) over a real mount (needs
root): it never empties another filesystem mounted inside the container's directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.runtime.overlay import mount_tmpfs, unmount
from forklift.store import db

pytestmark = pytest.mark.root


def test_quick_removal_leaves_a_mounted_filesystem_alone(tmp_path: Path) -> None:
    tree = tmp_path / "c"
    mnt = tree / "upper" / "mnt"
    mnt.mkdir(parents=True)
    (tree / "upper" / "own").write_text("x")
    mount_tmpfs(str(mnt), "size=1m")
    try:
        (mnt / "theirs").write_text("kept")
        with pytest.raises(OSError):  # the mount point itself cannot go
            db._remove_tree(str(tree))
        assert (mnt / "theirs").read_text() == "kept"
        assert not (tree / "upper" / "own").exists()
    finally:
        unmount(str(mnt), lazy=True)
    db._remove_tree(str(tree))
    assert not os.path.lexists(tree)
