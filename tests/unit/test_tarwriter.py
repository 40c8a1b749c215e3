"""The tar writer's fast paths (headers built without tarfile, one buffer for many files,
writes from a thread of their own) give the same bytes as tarfile's encoding of every entry.

``support.tarref.reference_tar`` is the writer as it was before those fast paths: every
header through ``TarInfo.tobuf(PAX_FORMAT)``, every file copied on its own. Layer digests
(diffIDs of commits), exports and ``system check --full`` depend on these bytes not changing.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.tarref import reference_tar

from forklift import archive
from forklift.errors import ForkliftError
from forklift.fswalk import walk_sorted

CHUNK = archive.COPY_CHUNK
# sizes around a block, and around the writer's buffer (a file that fills it, crosses it,
# spans several)
SIZES = (0, 1, 511, 512, 513, CHUNK - 512, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7)


def _every_kind(root: str) -> None:
    """A tree with every entry the writer knows, and the names and numbers that need a PAX
    header (or fit the plain header exactly)."""
    os.makedirs(os.path.join(root, "d/sub"))
    for size in SIZES:
        with open(os.path.join(root, f"d/f{size}"), "wb") as f:
            f.write(os.urandom(size))
    os.link(os.path.join(root, "d/f513"), os.path.join(root, "d/sub/hard"))
    os.link(os.path.join(root, "d/f513"), os.path.join(root, "hard2"))
    os.symlink("sub/hard", os.path.join(root, "d/link"))
    os.symlink("t" * 100, os.path.join(root, "d/link100"))
    os.symlink("t" * 101, os.path.join(root, "d/link101"))
    os.symlink("ü", os.path.join(root, "d/link-utf8"))
    os.mknod(os.path.join(root, "gone"), stat.S_IFCHR, 0)            # a whiteout in a layer
    os.mknod(os.path.join(root, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(os.path.join(root, "sda"), stat.S_IFBLK | 0o660, os.makedev(8, 0))
    os.mknod(os.path.join(root, "big-dev"), stat.S_IFCHR | 0o600, os.makedev(4095, (1 << 20) - 1))
    os.mkfifo(os.path.join(root, "fifo"))
    os.makedirs(os.path.join(root, "opaque/in"))
    os.setxattr(os.path.join(root, "opaque"), archive.OPAQUE_XATTR, b"y")
    for name in ("n" * 100, "n" * 101, "ünïcode", os.fsdecode(b"bad-\xff-utf8")):
        with open(os.path.join(root, "d", name), "wb") as f:
            f.write(os.fsencode(name))
    deep = os.path.join(root, "x" * 60, "y" * 39)  # a directory of exactly 100 characters
    os.makedirs(deep)
    with open(os.path.join(root, "caps"), "w") as f:
        f.write("caps")
    os.setxattr(os.path.join(root, "caps"), "user.note", b"kept")
    os.setxattr(os.path.join(root, "d"), "user.dir", b"too")
    for name, owner in (("uid-max", 8 ** 7 - 1), ("uid-big", 8 ** 7), ("uid-huge", 2 ** 31)):
        with open(os.path.join(root, name), "w") as f:
            f.write(name)
        os.chown(os.path.join(root, name), owner, owner)
    os.chmod(os.path.join(root, "uid-max"), 0o4755)
    os.utime(os.path.join(root, "d/f0"), (0, 0))
    os.utime(os.path.join(root, "d/f1"), (-5, -5), follow_symlinks=False)
    os.utime(os.path.join(root, "d/f511"), (8 ** 11, 8 ** 11))


@pytest.mark.root
@pytest.mark.parametrize("write_behind", [False, True])
def test_tree_tar_is_the_bytes_tarfile_encodes(tmp_path, write_behind):
    root = str(tmp_path / "root")
    _every_kind(root)
    out = io.BytesIO()
    archive.write_tree(root, out, write_behind=write_behind)
    assert out.getvalue() == reference_tar(root, layer=False)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = {m.name: m for m in tf.getmembers()}
    assert names["d/sub/hard"].islnk() and names["hard2"].linkname == "d/f513"
    assert names["caps"].pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert names["uid-huge"].uid == 2 ** 31 and names["big-dev"].devminor == (1 << 20) - 1


@pytest.mark.root
def test_layer_tar_is_the_bytes_tarfile_encodes(tmp_path):
    root = str(tmp_path / "root")
    _every_kind(root)
    out = io.BytesIO()
    archive.write_layer(root, out)
    assert out.getvalue() == reference_tar(root, layer=True)
    assert archive.hash_layer(root)[0] == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()


_names = st.text(st.sampled_from("ab/.-_é\udcff"), min_size=1, max_size=120)
_numbers = st.sampled_from([0, 1, 0o777, 8 ** 7 - 1, 8 ** 7, 2 ** 32 - 2, 8 ** 11 - 1, 8 ** 11])


@settings(max_examples=600, deadline=None)
@given(name=_names, kind=st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                          tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                                          tarfile.FIFOTYPE]),
       mode=st.sampled_from([0, 0o644, 0o4755, 0o7777]), uid=_numbers, gid=_numbers,
       size=_numbers, mtime=st.one_of(_numbers, st.just(-1)), link=st.one_of(st.just(""), _names),
       major=_numbers, minor=_numbers, xattr=st.booleans())
def test_plain_header_is_tarfiles_or_left_to_it(name, kind, mode, uid, gid, size, mtime, link,
                                                major, minor, xattr):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = kind, mode, uid, gid
    info.size, info.mtime, info.linkname = size, mtime, link
    info.uname = info.gname = ""
    info.devmajor, info.devminor = major, minor
    if xattr:
        info.pax_headers = {"SCHILY.xattr.user.a": "b"}
    block = archive._ustar_block(info)
    if block is None:
        return  # tarfile encodes it (PAX records), as before
    assert bytes(block) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_common_entries_take_the_plain_header():
    info = tarfile.TarInfo("usr/bin/env")
    info.size, info.mtime, info.uname, info.gname = 5, 1_700_000_000, "", ""
    assert archive._ustar_block(info) is not None


class _Full(io.RawIOBase):
    """A sink that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)


@pytest.mark.parametrize("write_behind", [False, True])
def test_a_failed_write_is_raised_and_the_writer_stops(tmp_path, write_behind):
    for i in range(12):
        (tmp_path / f"f{i}").write_bytes(os.urandom(300_000))
    with pytest.raises(OSError) as failed:
        archive.write_tree(str(tmp_path), _Full(2 * CHUNK), write_behind=write_behind)
    assert failed.value.errno == errno.ENOSPC


def test_a_file_that_shrinks_is_an_error_and_the_thread_ends(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 5000)
    tree = list(walk_sorted(str(tmp_path)))
    rel, path, st_a = tree[0]
    os.truncate(path, 100)  # smaller than the size the walk saw
    writer = archive.TarWriter(io.BytesIO(), write_behind=True)
    with pytest.raises(ForkliftError, match="shrank"):
        writer.add(rel, path, st_a)
    writer.stop()
    assert writer._behind is not None and not writer._behind._thread.is_alive()
