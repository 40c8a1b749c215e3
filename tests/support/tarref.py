"""The tar forklift's writer must give, encoded the plain way: every header through
tarfile's ``TarInfo.tobuf(PAX_FORMAT)``, every file read whole. The writer's own fast paths
(``archive.TarWriter``) are checked against it, byte for byte."""

from __future__ import annotations

import io
import os
import stat
import tarfile

from forklift import archive
from forklift.fswalk import walk_sorted


def _info(rel: str, st: os.stat_result, kind: bytes, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.type, info.mode = kind, stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, "", ""
    info.mtime, info.size, info.linkname = int(st.st_mtime), size, link
    return info


def reference_tar(root: str, layer: bool) -> bytes:
    """The tar of ``root`` as the writer made it with tarfile encoding every header."""
    out = io.BytesIO()
    links: dict[tuple[int, int], str] = {}

    def emit(info: tarfile.TarInfo) -> None:
        out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    for rel, path, st in walk_sorted(root):
        mode = st.st_mode
        parent, _, name = rel.rpartition("/")
        if layer and stat.S_ISCHR(mode) and st.st_rdev == 0:
            info = _info(f"{parent}/.wh.{name}" if parent else f".wh.{name}", st, tarfile.REGTYPE)
            info.mode &= 0o777
            emit(info)
        elif stat.S_ISREG(mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
            emit(_info(rel, st, tarfile.LNKTYPE, link=links[(st.st_dev, st.st_ino)]))
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                links[(st.st_dev, st.st_ino)] = rel
            info = _info(rel, st, tarfile.REGTYPE, size=st.st_size)
            info.pax_headers = archive._xattrs(path)
            emit(info)
            with open(path, "rb") as f:
                out.write(f.read())
            out.write(b"\0" * (-st.st_size % 512))
        elif stat.S_ISDIR(mode):
            info = _info(rel, st, tarfile.DIRTYPE)
            info.pax_headers = archive._xattrs(path)
            emit(info)
            if layer and archive._is_opaque(path):
                info = _info(f"{rel}/{archive.OPAQUE_MARKER}", st, tarfile.REGTYPE)
                info.mode &= 0o777
                emit(info)
        elif stat.S_ISLNK(mode):
            emit(_info(rel, st, tarfile.SYMTYPE, link=os.readlink(path)))
        elif stat.S_ISFIFO(mode):
            emit(_info(rel, st, tarfile.FIFOTYPE))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info = _info(rel, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            emit(info)
    out.write(b"\0" * 1024)
    return out.getvalue()
