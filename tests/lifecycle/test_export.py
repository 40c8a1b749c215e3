"""``export`` through the real CLI gives the tar the plain writer gives for the container's
merged filesystem (``support.tarref``), byte for byte: hard links (within a layer and
across the image and the container), symlinks, whiteouts, opaque directories, xattrs from
the image and from the container, device nodes, FIFOs, long and non-ASCII names, files
that fill and cross the writer's buffer."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from support.tarref import reference_tar

from forklift import archive

pytestmark = pytest.mark.root

CHUNK = archive.COPY_CHUNK
SCRIPT = " && ".join([
    "rm /etc/group",                                     # a whiteout over the image's file
    "rm -rf /lower/dir && mkdir /lower/dir && echo new > /lower/dir/n",   # an opaque dir
    "echo appended >> /lower/caps",                      # copied up with its xattr
    "mkdir -p /data/sub",
    "echo hi > /data/a && ln /data/a /data/sub/a-link && ln /data/a /data/a2",
    "ln -s ../a /data/sub/sym && ln -s /" + "t" * 120 + " /data/long-target",
    f"dd if=/dev/urandom of=/data/chunk bs={CHUNK} count=1 2>/dev/null",
    f"dd if=/dev/urandom of=/data/over bs={CHUNK + 1} count=1 2>/dev/null",
    f"dd if=/dev/urandom of=/data/big bs={CHUNK} count=3 2>/dev/null",
    "head -c 513 /dev/urandom > /data/odd",
    "mknod /data/null c 1 3 && mknod /data/disk b 8 0 && mkfifo /data/fifo",
    "touch /data/" + "n" * 140 + " /data/ünï",
    "chmod 4755 /data/a && chown 12345:54321 /data/odd",
])


def _base_image(fl, busybox_tar: Path, tmp: Path) -> str:
    """busybox plus files carrying xattrs and a hard link inside the layer."""
    tar = tmp / "base.tar"
    shutil.copy(busybox_tar, tar)
    with tarfile.open(tar, "a", format=tarfile.PAX_FORMAT) as tf:
        for name, xattrs in (("lower", {}), ("lower/dir", {}), ("lower/dir/old", {}),
                             ("lower/caps", {"SCHILY.xattr.user.from": "image"}),
                             ("lower/plain", {})):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE if "." not in name and name in ("lower", "lower/dir") \
                else tarfile.REGTYPE
            info.mode, info.mtime, info.pax_headers = 0o755, 1_600_000_000, xattrs
            data = name.encode() if info.isfile() else b""
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("lower/plain-link")
        link.type, link.linkname = tarfile.LNKTYPE, "lower/plain"
        tf.addfile(link)
    assert fl("import", str(tar), "exportbase:1").code == 0
    return "exportbase:1"


def test_export_is_the_plain_writers_tar(fl, busybox_tar, tmp_path):
    image = _base_image(fl, busybox_tar, tmp_path)
    res = fl("run", "--network", "none", "--name", "ex", image, "sh", "-c", SCRIPT)
    assert res.code == 0, res.err
    from forklift.engine import rootfs
    from forklift.store import containers, open_store

    store = open_store(str(fl.root))
    try:
        rec = containers.resolve(store, "ex")
        upper = rootfs.paths(store, rec.id)["upper"]
        os.setxattr(os.path.join(upper, "data/a"), "user.from", b"container")
        with rootfs.readonly_view(store, rec.id, rec.image_id) as root:
            expected = reference_tar(root, layer=False)
    finally:
        store.close()
    out = tmp_path / "ex.tar"
    assert fl("export", "ex", "-o", str(out)).code == 0
    got = out.read_bytes()
    assert got == expected
    assert fl("export", "ex").data == expected  # to stdout: the same bytes
    with tarfile.open(out) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert "etc/group" not in members and "lower/dir/old" not in members
    assert members["lower/dir/n"].isfile()
    assert members["data/sub/a-link"].islnk() and members["data/sub/a-link"].linkname == "data/a"
    assert members["lower/plain-link"].islnk()
    assert members["lower/caps"].pax_headers["SCHILY.xattr.user.from"] == "image"
    assert members["data/a"].pax_headers["SCHILY.xattr.user.from"] == "container"
    assert members["data/null"].ischr() and members["data/disk"].isblk()
    assert members["data/fifo"].isfifo() and members["data/big"].size == 3 * CHUNK
    assert members["data/odd"].uid == 12345 and members["data/a"].mode == 0o4755
