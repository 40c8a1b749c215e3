"""The extractor leaves out a new file's chown and chmod where its creation already set
them (archive._Creation): every entry must still come out with exactly the owner, mode
and time its header gives, whatever the umask, a set-group-ID directory or a default ACL
would make of a plain creation."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
from pathlib import Path

import pytest

from forklift import archive

pytestmark = pytest.mark.root

MODES = (0o644, 0o755, 0o600, 0o444, 0o000, 0o777, 0o666, 0o640, 0o4755, 0o2755, 0o1777, 0o2700)
OWNERS = ((0, 0), (1000, 1000), (0, 1234), (1234, 0))


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, uid: int = 0,
          gid: int = 0, mtime: int = 1_600_000_000, **extra: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def _tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    out: list[tuple[tarfile.TarInfo, bytes]] = [(_info("d", tarfile.DIRTYPE, 0o755), b"")]
    n = 0
    for mode in MODES:
        for uid, gid in OWNERS:
            n += 1
            out.append((_info(f"d/f{n}", mode=mode, uid=uid, gid=gid, mtime=1_500_000_000 + n),
                        b"x" * n))
            out.append((_info(f"d/s{n}", tarfile.SYMTYPE, uid=uid, gid=gid, linkname=f"f{n}"), b""))
    # a set-group-ID directory of group 1234: what is created in it would take that group
    out.append((_info("g", tarfile.DIRTYPE, 0o2775, 0, 1234), b""))
    out += [(_info("g/root-file", mode=0o644), b"root's"),
            (_info("g/root-dir", tarfile.DIRTYPE, 0o755), b""),
            (_info("g/root-dir/deeper", mode=0o600), b"deeper"),
            (_info("g/link", tarfile.SYMTYPE, linkname="root-file"), b""),
            (_info("g/fifo", tarfile.FIFOTYPE, 0o644), b"")]
    out.append((_info("x", mode=0o644, pax_headers={"SCHILY.xattr.user.note": "kept"}), b"xattr"))
    return out


def _check(dest: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    for info, data in entries:
        st = os.lstat(dest / info.name)
        assert (st.st_uid, st.st_gid) == (info.uid, info.gid), info.name
        if info.type != tarfile.SYMTYPE:
            assert stat.S_IMODE(st.st_mode) == info.mode, (info.name, oct(st.st_mode))
        if info.type != tarfile.DIRTYPE:
            assert st.st_mtime == info.mtime, info.name
        if info.type == tarfile.REGTYPE:
            assert (dest / info.name).read_bytes() == data
    assert os.getxattr(dest / "x", "user.note") == b"kept"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000, 0o002])
def test_owner_mode_and_time_are_the_headers_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    entries = _entries()
    data = _tar(*entries)
    dest = tmp_path / "out"
    dest.mkdir()
    old = os.umask(umask)
    try:
        archive.extract(io.BytesIO(data), str(dest))
    finally:
        os.umask(old)
    _check(dest, entries)


def test_a_set_group_id_target_hands_its_group_to_nothing(tmp_path: Path) -> None:
    entries = _entries()
    dest = tmp_path / "out"
    dest.mkdir()
    os.chown(dest, 0, 4321)
    os.chmod(dest, 0o2755)
    archive.extract(io.BytesIO(_tar(*entries)), str(dest))
    _check(dest, entries)


def _default_acl(rwx_user: int, rwx_group: int, rwx_other: int) -> bytes:
    """A POSIX default ACL as the kernel takes it (setfacl -d -m u::…,g::…,o::…)."""
    entries = ((0x01, rwx_user), (0x04, rwx_group), (0x20, rwx_other))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, 0xFFFFFFFF)
                                           for tag, perm in entries)


def test_a_default_acl_on_the_target_decides_nothing(tmp_path: Path) -> None:
    entries = _entries()
    dest = tmp_path / "out"
    dest.mkdir()
    os.setxattr(dest, "system.posix_acl_default", _default_acl(7, 0, 0))  # as a umask of 077
    archive.extract(io.BytesIO(_tar(*entries)), str(dest))
    _check(dest, entries)


def test_a_path_that_occurs_again_is_replaced_whatever_was_there(tmp_path: Path) -> None:
    """Entries are created without a look first (EEXIST says when a path is taken): every
    kind over every kind ends as the last entry says, and nothing through a symlink."""
    kinds = {
        "file": lambda n: (_info(n, mode=0o640, uid=7), b"file " + n.encode()),
        "dir": lambda n: (_info(n, tarfile.DIRTYPE, 0o750, gid=7), b""),
        "symlink": lambda n: (_info(n, tarfile.SYMTYPE, linkname="/etc/passwd"), b""),
        "fifo": lambda n: (_info(n, tarfile.FIFOTYPE, 0o600), b""),
    }
    entries = []
    last = []
    for first in kinds:
        for second in kinds:
            name = f"{first}-{second}"
            entries += [kinds[first](name), kinds[second](name)]
            last.append(kinds[second](name))
    dest = tmp_path / "out"
    dest.mkdir()
    before = Path("/etc/passwd").read_bytes()
    archive.extract(io.BytesIO(_tar(*entries)), str(dest))
    assert Path("/etc/passwd").read_bytes() == before
    for info, data in last:
        st = os.lstat(dest / info.name)
        expected = {tarfile.REGTYPE: stat.S_ISREG, tarfile.DIRTYPE: stat.S_ISDIR,
                    tarfile.SYMTYPE: stat.S_ISLNK, tarfile.FIFOTYPE: stat.S_ISFIFO}[info.type]
        assert expected(st.st_mode), info.name
        assert (st.st_uid, st.st_gid) == (info.uid, info.gid)
        if info.type == tarfile.REGTYPE:
            assert (dest / info.name).read_bytes() == data
            assert stat.S_IMODE(st.st_mode) == info.mode
