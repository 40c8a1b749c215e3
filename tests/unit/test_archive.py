"""Deterministic layer tars and whiteout conversion, through the library."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from forklift import archive, fswalk


def _tree(root):
    os.makedirs(os.path.join(root, "d/sub"))
    with open(os.path.join(root, "d/sub/f"), "w") as f:
        f.write("content")
    os.symlink("sub/f", os.path.join(root, "d/link"))
    os.link(os.path.join(root, "d/sub/f"), os.path.join(root, "d/hard"))
    os.mknod(os.path.join(root, "gone"), stat.S_IFCHR, 0)
    os.makedirs(os.path.join(root, "opaque"))
    os.setxattr(os.path.join(root, "opaque"), archive.OPAQUE_XATTR, b"y")


@pytest.mark.root
def test_layer_tar_is_deterministic_and_uses_oci_whiteouts(tmp_path):
    _tree(tmp_path / "upper")
    first, second = io.BytesIO(), io.BytesIO()
    archive.write_layer(str(tmp_path / "upper"), first)
    archive.write_layer(str(tmp_path / "upper"), second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert ".wh.gone" in members and members[".wh.gone"].isreg()
    assert "opaque/.wh..wh..opq" in members
    assert members["d/hard"].isreg()  # first in sorted order carries the content
    assert members["d/sub/f"].islnk() and members["d/sub/f"].linkname == "d/hard"
    assert members["d/link"].issym()
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    # sorted by the upper directory's names (a whiteout sits where its file would)
    assert list(members) == ["d", "d/hard", "d/link", "d/sub", "d/sub/f", ".wh.gone", "opaque",
                             "opaque/.wh..wh..opq"]


def test_walk_and_layer_tar_order_names_by_their_bytes(tmp_path):
    """One order for every walk: the names' bytes (non-UTF-8 names included), depth first;
    str order would put U+00E9 (bytes c3 a9) after the undecodable byte 0xff."""
    root = tmp_path / "t"
    root.mkdir()
    raw = [b"a", b"B", b"a-b", b"a.b", b"\xc3\xa9", b"\xff", b"\x80x", b"a0"]
    for name in raw:
        os.mkdir(os.path.join(bytes(root), name))
        open(os.path.join(bytes(root), name, b"f"), "wb").close()
    expected = []
    for name in sorted(raw):
        text = os.fsdecode(name)
        expected += [text, f"{text}/f"]
    walked = [rel for rel, _, _ in fswalk.walk_sorted(str(root))]
    assert walked == expected
    assert sorted(walked) != walked  # str order differs: the key is the bytes
    buf = io.BytesIO()
    archive.write_tree(str(root), buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue()), encoding="utf-8",
                      errors="surrogateescape") as tf:
        assert tf.getnames() == expected


@pytest.mark.root
def test_extract_converts_whiteouts_back(tmp_path):
    _tree(tmp_path / "upper")
    buf = io.BytesIO()
    archive.write_layer(str(tmp_path / "upper"), buf)
    out = tmp_path / "out"
    out.mkdir()
    stats = archive.extract(io.BytesIO(buf.getvalue()), str(out))
    st = os.lstat(out / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(out / "opaque", archive.OPAQUE_XATTR) == b"y"
    assert os.stat(out / "d/hard").st_ino == os.stat(out / "d/sub/f").st_ino
    assert stats.size == len("content") + len("sub/f")  # the file once, the link's target


@pytest.mark.root
def test_trusted_xattrs_from_a_tarball_are_ignored(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                            "SCHILY.xattr.user.note": "kept"}
        tf.addfile(info)
    out = tmp_path / "out"
    out.mkdir()
    archive.extract(io.BytesIO(buf.getvalue()), str(out))
    assert os.listxattr(out / "d") == ["user.note"]


def test_compression_detection():
    assert archive.detect_compression(b"\x1f\x8b\x08") == "gzip"
    assert archive.detect_compression(b"\xfd7zXZ\x00") == "xz"
    assert archive.detect_compression(b"\x28\xb5\x2f\xfd") == "zstd"
    assert archive.detect_compression(b"BZh9") == "bzip2"
    assert archive.detect_compression(b"ustar") == "none"


@pytest.mark.root
def test_device_nodes_and_fifos_are_kept_byte_exact(tmp_path):
    """A real root filesystem's /dev survives extract -> write_layer unchanged."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, major, minor in [("dev", tarfile.DIRTYPE, 0, 0),
                                         ("dev/console", tarfile.CHRTYPE, 5, 1),
                                         ("dev/null", tarfile.CHRTYPE, 1, 3),
                                         ("dev/sda", tarfile.BLKTYPE, 8, 0),
                                         ("dev/xconsole", tarfile.FIFOTYPE, 0, 0)]:
            info = tarfile.TarInfo(name)
            info.type, info.devmajor, info.devminor = kind, major, minor
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o640
            info.uname = info.gname = ""
            tf.addfile(info)
    out = tmp_path / "out"
    out.mkdir()
    archive.extract(io.BytesIO(buf.getvalue()), str(out))
    null, sda, fifo = (os.lstat(out / "dev" / n) for n in ("null", "sda", "xconsole"))
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_ISBLK(sda.st_mode) and (os.major(sda.st_rdev), os.minor(sda.st_rdev)) == (8, 0)
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o640
    again = io.BytesIO()
    archive.write_layer(str(out), again)
    with tarfile.open(fileobj=io.BytesIO(again.getvalue())) as tf:
        kept = {m.name: (m.type, m.devmajor, m.devminor, m.mode) for m in tf.getmembers()}
    assert kept["dev/console"] == (tarfile.CHRTYPE, 5, 1, 0o640)
    assert kept["dev/sda"] == (tarfile.BLKTYPE, 8, 0, 0o640)
    assert kept["dev/xconsole"][0] == tarfile.FIFOTYPE


def test_layer_size_counts_as_dockers_overlay2(tmp_path):
    """Docker's directory.Size: every non-directory's st_size once per inode, so a symlink
    counts its target's length and a hard link nothing more; extraction and the layer
    writer (commit, build) agree with a walk of the result."""
    from forklift.engine.sizes import tree_size

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("bin/busybox", b"x" * 1000), ("etc/motd", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, kind, target in (("bin/sh", tarfile.SYMTYPE, "busybox"),
                                   ("bin/ls", tarfile.SYMTYPE, "/bin/busybox"),
                                   ("bin/hard", tarfile.LNKTYPE, "bin/busybox")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    dest = tmp_path / "layer"
    dest.mkdir()
    buf.seek(0)
    stats = archive.extract(buf, str(dest))
    assert stats.size == 1000 + 6 + len("busybox") + len("/bin/busybox")
    assert tree_size(str(dest)) == stats.size
    assert archive.hash_layer(str(dest))[1] == stats.size
