"""Where an image archive is written: a tar stream or a directory.

Both take the same calls (``add_dir``, ``add_bytes``, ``add_stream``) so the
docker-archive and OCI-layout writers do not care which one they fill. Names
already written are skipped: a blob shared by two images goes out once.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tarfile
from typing import IO, Protocol

from forklift.errors import ForkliftError, NoSpace, StoreCorrupt

CHUNK = 1 << 20


class Sink(Protocol):
    """Where a writer puts named entries; a name already written is skipped."""

    def has(self, name: str) -> bool: ...
    def add_dir(self, name: str) -> None: ...
    def add_bytes(self, name: str, data: bytes) -> None: ...
    def add_stream(self, name: str, size: int, src: IO[bytes]) -> None: ...


def copy_exact(src: IO[bytes], out: IO[bytes], size: int, name: str) -> None:
    """Copy exactly ``size`` bytes; in-kernel (sendfile) when both ends are plain files."""
    if _sendfile_ok(src, out):
        _sendfile(src, out, size, name)
        return
    remaining = size
    while remaining > 0:
        chunk = src.read(min(CHUNK, remaining))
        if not chunk:
            raise StoreCorrupt(f"{name} is shorter than recorded ({size - remaining} of {size} bytes)")
        out.write(chunk)
        remaining -= len(chunk)


def _sendfile_ok(src: IO[bytes], out: IO[bytes]) -> bool:
    # exact type: a reader of one archive member may subclass BufferedReader but is not the file
    if type(src) is not io.BufferedReader:
        return False
    try:
        out.fileno()
        return stat.S_ISREG(os.fstat(src.fileno()).st_mode)
    except (OSError, AttributeError, io.UnsupportedOperation):
        return False


def _sendfile(src: IO[bytes], out: IO[bytes], size: int, name: str) -> None:
    out.flush()
    offset = src.tell()
    in_fd, out_fd = src.fileno(), out.fileno()
    remaining = size
    while remaining > 0:
        sent = os.sendfile(out_fd, in_fd, offset, min(remaining, 1 << 30))
        if sent == 0:
            raise StoreCorrupt(f"{name} is shorter than recorded ({size - remaining} of {size} bytes)")
        offset += sent
        remaining -= sent
    src.seek(offset)


def _header(name: str, kind: bytes, size: int = 0, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


class TarSink:
    """Writes a deterministic tar stream (mtime 0, root-owned, PAX when needed).

    ``close`` writes the end-of-archive marker; the caller owns ``out``. A short
    source is StoreCorrupt (the stream is then unusable).
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.names: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.names

    def add_dir(self, name: str) -> None:
        if name not in self.names:
            self.names.add(name)
            self.out.write(_header(name.rstrip("/") + "/", tarfile.DIRTYPE, mode=0o755))

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, len(data), io.BytesIO(data))

    def add_stream(self, name: str, size: int, src: IO[bytes]) -> None:
        if name in self.names:
            return
        self.names.add(name)
        self.out.write(_header(name, tarfile.REGTYPE, size))
        copy_exact(src, self.out, size, name)
        pad = -size % tarfile.BLOCKSIZE
        if pad:
            self.out.write(b"\0" * pad)

    def close(self) -> None:
        self.out.write(b"\0" * (tarfile.BLOCKSIZE * 2))
        self.out.flush()


class DirSink:
    """Writes files under a directory, each through a temporary name and a rename.

    Every path component below ``root`` is opened relative to its parent with
    O_NOFOLLOW: a symlink inside the directory (``blobs`` pointing elsewhere,
    swapped in at any moment) is an error, never written through. Each file appears
    whole or not at all; a blob already there with the right size is kept (its name
    is its digest). NoSpace when the disk fills, ForkliftError for other I/O errors.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.names: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.names

    def _open_dir(self, parts: list[str], name: str, create: bool = False) -> int:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                try:
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                    | os.O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise ForkliftError(f"write {name}: {part!r} in {self.root} is a symlink"
                                            " or not a directory; refusing to write through it"
                                            ) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def add_dir(self, name: str) -> None:
        self.names.add(name)
        _io(lambda: os.close(self._open_dir(name.split("/"), name, create=True)), name)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, len(data), io.BytesIO(data), replace=True)

    def add_stream(self, name: str, size: int, src: IO[bytes], replace: bool = False) -> None:
        if name in self.names:
            return
        self.names.add(name)
        *parents, base = name.split("/")
        try:
            dir_fd = self._open_dir(parents, name)
        except OSError as exc:
            raise _os_error(exc, name) from None
        try:
            if not replace and _same_size(base, dir_fd, size):
                return  # content-addressed: an existing blob of that name is that blob
            _write_at(dir_fd, base, name, size, src)
        finally:
            os.close(dir_fd)


def _write_at(dir_fd: int, base: str, name: str, size: int, src: IO[bytes]) -> None:
    tmp = f"{base}.forklift-{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as out:
            copy_exact(src, out, size, name)
        os.rename(tmp, base, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        raise _os_error(exc, name) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)


def _same_size(base: str, dir_fd: int, size: int) -> bool:
    try:
        st = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


def _os_error(exc: OSError, name: str) -> ForkliftError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(f"no space left on device writing {name}")
    return ForkliftError(f"write {name}: {exc.strerror or exc}")


def _io(fn: object, name: str) -> None:
    try:
        fn()  # type: ignore[operator]
    except OSError as exc:
        raise _os_error(exc, name) from None
