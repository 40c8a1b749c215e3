"""A finished upper directory moved into the store as a layer (``layers.from_upper``) must be
exactly the layer that copying it (``from_directory``: tar, then extract) would give: the
same diffID and size, the same tree, and a directory that tars to that diffID again."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from forklift import archive, fswalk
from forklift.store import layers
from forklift.store.db import Store

pytestmark = pytest.mark.root

T0 = 1_600_000_000
LATER = 1_900_000_000


def _upper(root: Path) -> str:
    """What overlayfs leaves in an upper directory, with what a tar cannot carry."""
    top = str(root)
    os.makedirs(f"{top}/app/sub")
    with open(f"{top}/app/sub/f", "wb") as f:
        f.write(b"data" * 1000)
    os.link(f"{top}/app/sub/f", f"{top}/app/hard")
    os.symlink("sub/f", f"{top}/app/link")
    os.mkfifo(f"{top}/app/fifo")
    os.mknod(f"{top}/gone", stat.S_IFCHR, 0)                       # a whiteout
    os.makedirs(f"{top}/opaque")
    os.setxattr(f"{top}/opaque", archive.OPAQUE_XATTR, b"y")
    os.setxattr(f"{top}/app", "trusted.overlay.impure", b"y")      # overlayfs' bookkeeping
    os.setxattr(f"{top}/app/sub/f", "trusted.overlay.origin", b"\0")
    os.setxattr(f"{top}/app/sub/f", "user.kept", b"yes")
    os.setxattr(f"{top}/app/sub/f", archive.OPAQUE_XATTR, b"y")   # meaningless on a file
    os.setxattr(top, "trusted.overlay.opaque", b"y")                 # the top is never opaque
    with socket.socket(socket.AF_UNIX) as s:                        # a tar has no sockets
        s.bind(f"{top}/app/sock")
    os.chown(f"{top}/app/sub/f", 1234, 5678)
    os.chmod(f"{top}/app/sub", 0o2750)
    os.chmod(top, 0o700)
    for rel, path, _st in reversed(list(fswalk.walk_sorted(top))):
        when = LATER if rel.startswith("app/sub") else T0
        os.utime(path, (when, when), follow_symlinks=False)
    return top


def _tree(top: str) -> list[tuple]:
    out = []
    for entry in [("", top, os.lstat(top))] + list(fswalk.walk_sorted(top)):
        rel, path, st = entry
        names = sorted(os.listxattr(path, follow_symlinks=False)) \
            if not stat.S_ISLNK(st.st_mode) else []
        out.append((rel, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                    st.st_size if stat.S_ISREG(st.st_mode) else 0, st.st_rdev, st.st_nlink,
                    int(st.st_mtime) if rel else 0,
                    os.readlink(path) if stat.S_ISLNK(st.st_mode) else "",
                    [(n, os.getxattr(path, n, follow_symlinks=False)) for n in names]))
    return out


@pytest.mark.parametrize("clamp", [None, T0 + 1])
def test_a_moved_upper_is_the_layer_its_copy_would_be(store: Store, tmp_path: Path, clamp):
    copied = layers.from_directory(store, _upper(tmp_path / "a"), clamp)
    moved_from = _upper(tmp_path / "b")
    moved = layers.from_upper(store, moved_from, clamp)
    try:
        assert not os.path.exists(moved_from)
        assert (moved.diff_id, moved.size) == (copied.diff_id, copied.size)
        assert moved.scratch is not None and copied.scratch is not None
        moved_dir, copied_dir = (os.path.join(p, "diff") for p in (moved.scratch, copied.scratch))
        assert _tree(moved_dir) == _tree(copied_dir)
        assert archive.hash_layer(moved_dir) == (moved.diff_id, moved.size)
        assert not os.path.exists(os.path.join(moved_dir, "app/sock"))
        assert os.getxattr(os.path.join(moved_dir, "app/sub/f"), "user.kept") == b"yes"
    finally:
        copied.cleanup()
        moved.cleanup()


def test_a_registered_moved_layer_tars_to_its_diff_id(store: Store, tmp_path: Path):
    prepared = layers.from_upper(store, _upper(tmp_path / "u"))
    with store.transaction():
        layer = prepared.register()
    prepared.cleanup()
    assert layer.blob_media_type == layers.UNSTORED
    assert archive.hash_layer(layer.path(store))[0] == layer.diff_id
    assert not [n for n in os.listdir(store.tmp_dir) if "-commit-" in n]


def test_an_upper_on_another_filesystem_is_copied_and_left_in_place(store: Store):
    if os.stat("/dev/shm").st_dev == os.stat(store.root).st_dev:
        pytest.skip("/dev/shm is on the store's filesystem here")
    elsewhere = Path(os.path.join("/dev/shm", f"fl-move-{os.getpid()}"))
    try:
        top = _upper(elsewhere)
        before = _tree(top)
        prepared = layers.from_upper(store, top)
        try:
            assert prepared.scratch is not None
            assert archive.hash_layer(os.path.join(prepared.scratch, "diff"))[0] == prepared.diff_id
            assert os.path.isdir(top)
            # settled on the way (sockets and foreign xattrs gone), still a valid upper
            assert len(_tree(top)) == len(before) - 1
        finally:
            prepared.cleanup()
    finally:
        import shutil
        shutil.rmtree(elsewhere, ignore_errors=True)
