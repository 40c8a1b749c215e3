"""Opening an image archive for reading, whatever its shape, and telling its format.

A *source* gives named entries of an archive: a seekable tar file (read in
place), a directory (an OCI layout or an unpacked docker-archive), or a stream
(stdin, or anything compressed) spooled first into scratch space in the store.
Names are resolved safely: ``..``, absolute names and symlinks leading out of
the archive are refused, and only regular files are ever opened.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import sys
from collections.abc import Iterator
from typing import IO, Protocol

from forklift import archive
from forklift import limits as limits_mod
from forklift.errors import BadArchive, ForkliftError, InvalidArgument, LimitExceeded, NotFound
from forklift.limits import Limits
from forklift.store.db import Store, remove_path
from forklift.tarreader import Member, TarReader

DOCKER_ARCHIVE = "docker-archive"
OCI = "oci"
_MAX_LINKS = 16
SMALL_LIMIT = 64 << 20  # manifest.json, index.json, configs, manifests


class Source(Protocol):
    description: str

    def exists(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...


def clean_name(name: object, what: str) -> str:
    """A name from manifest.json/index.json, normalized, or BadArchive if it leaves the archive."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BadArchive(f"{what} has an invalid path {name!r}")
    if name.startswith("/"):
        raise BadArchive(f"{what} path {name!r} points outside the archive")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise BadArchive(f"{what} path {name!r} points outside the archive")
    return "/".join(parts)


def read_small(source: Source, name: str, what: str, limit: int = SMALL_LIMIT) -> bytes:
    """All of ``name`` (a manifest, an index, a config); BadArchive when it is
    missing, larger than ``limit`` or shorter than its recorded size."""
    if not source.exists(name):
        raise BadArchive(f"{what} {name} is missing from the archive")
    if source.size(name) > limit:
        raise BadArchive(f"{what} {name} is implausibly large ({source.size(name)} bytes)")
    with source.open(name) as f:
        data = f.read(limit + 1)
    if len(data) != source.size(name):
        raise BadArchive(f"{what} {name} is truncated")
    return data


# ----------------------------------------------------------------------------- tar in place

class _MemberReader:
    """One member's stored bytes, read by offset (pread): no shared file position."""

    def __init__(self, fd: int, start: int, size: int, what: str) -> None:
        self._fd = fd
        self._start = start
        self._size = size
        self._pos = 0
        self._what = what

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        if n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        try:
            data = os.pread(self._fd, n, self._start + self._pos)
        except OSError as exc:
            raise BadArchive(f"{self._what} is unreadable: {exc.strerror or exc}") from None
        if not data:
            raise BadArchive(f"{self._what} is truncated")
        self._pos += len(data)
        return data

    def readable(self) -> bool:
        return True


class _SparseReader:
    """A sparse member as the file it stands for: its fragments, zeros in the holes."""

    def __init__(self, data: _MemberReader, fragments: list[tuple[int, int]], size: int) -> None:
        self._data = data
        self._fragments = fragments
        self._index = 0
        self._size = size
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes, fewer only at the end (holes and data joined)."""
        parts = []
        left = self._size - self._pos
        n = left if n < 0 or n > left else n
        while n > 0:
            piece = self._piece(n)
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts)

    def _piece(self, n: int) -> bytes:
        while self._index < len(self._fragments):
            start, length = self._fragments[self._index]
            if self._pos < start:
                n = min(n, start - self._pos)
                break
            if self._pos < start + length:
                data = self._data.read(min(n, start + length - self._pos))
                self._pos += len(data)
                return data
            self._index += 1
        self._pos += n
        return bytes(n)

    def readable(self) -> bool:
        return True


class TarSource:
    """A seekable, uncompressed tar file read in place (no copy).

    One forward pass with forklift's own reader indexes the members (data is
    seeked over, never read); members are then read by offset. BadArchive for a
    malformed tar, a symlink leaving the archive or a symlink loop.
    """

    def __init__(self, fileobj: IO[bytes], description: str) -> None:
        self.description = description
        self._fd = fileobj.fileno()
        self._members: dict[str, Member] = {}
        try:
            for m in TarReader(fileobj, seekable=True):
                key = _member_key(m.name)
                if key:
                    self._members[key] = m  # a later entry of the same name wins, as in tar
        except BadArchive as exc:
            raise BadArchive(f"{description} is not a valid tar archive: {exc}") from None
        except OSError as exc:
            raise BadArchive(f"cannot read {description}: {exc.strerror or exc}") from None

    def _resolve(self, name: str) -> Member | None:
        for _ in range(_MAX_LINKS):
            member = self._members.get(name)
            if member is None or not member.issym():
                return member
            name = _follow(name, member.linkname, self.description)
        raise BadArchive(f"{self.description}: too many levels of symbolic links at {name}")

    def _data(self, name: str) -> Member | None:
        """The member holding ``name``'s bytes: itself, or a hardlink's target."""
        member = self._resolve(name)
        if member is not None and member.islnk():
            member = self._resolve(clean_name(member.linkname, "hardlink"))
        return member if member is not None and member.isreg() else None

    def exists(self, name: str) -> bool:
        return self._data(name) is not None

    def size(self, name: str) -> int:
        member = self._data(name)
        return member.realsize if member is not None else 0

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        member = self._data(name)
        if member is None:
            raise BadArchive(f"{name} is missing from {self.description}")
        what = f"archive entry {name}"
        raw = _MemberReader(self._fd, member.offset_data, member.size, what)
        if member.sparse is not None:
            yield _SparseReader(raw, member.sparse, member.realsize)  # type: ignore[misc]
        else:
            yield raw  # type: ignore[misc]


def _member_key(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _follow(name: str, linkname: str, description: str) -> str:
    """Resolve a symlink inside the archive namespace; refuse one that leaves it."""
    if linkname.startswith("/"):
        raise BadArchive(f"{description}: symlink {name} points outside the archive")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), linkname))
    if target == ".." or target.startswith("../") or target == ".":
        raise BadArchive(f"{description}: symlink {name} points outside the archive")
    return target


# ----------------------------------------------------------------------------- directory

class DirSource:
    """A directory: an OCI image layout, or a docker-archive spooled or unpacked there.

    Names resolving (through symlinks) outside ``root`` are BadArchive; only regular
    files exist for it.
    """

    def __init__(self, root: str, description: str) -> None:
        self.root = os.path.realpath(root)
        self.description = description

    def _path(self, name: str) -> str | None:
        path = os.path.realpath(os.path.join(self.root, *name.split("/")))
        if path != self.root and not path.startswith(self.root + os.sep):
            raise BadArchive(f"{self.description}: {name} points outside the archive")
        try:
            st = os.stat(path)
        except OSError:
            return None
        return path if stat.S_ISREG(st.st_mode) else None

    def exists(self, name: str) -> bool:
        return self._path(name) is not None

    def size(self, name: str) -> int:
        path = self._path(name)
        return os.path.getsize(path) if path else 0

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        path = self._path(name)
        if path is None:
            raise BadArchive(f"{name} is missing from {self.description}")
        with open(path, "rb") as f:
            yield f


# ----------------------------------------------------------------------------- opening

@contextlib.contextmanager
def open_source(store: Store, path: str | None, limits: Limits | None = None) -> Iterator[Source]:
    """Open ``path`` (None or ``-`` = stdin) as a source; scratch space is removed after.

    ``limits`` bound what a compressed or streamed archive may unpack to (see spool).
    Raises NotFound for a missing file, InvalidArgument for stdin on a terminal,
    BadArchive for an empty or malformed archive, LimitExceeded (spool). Writes only
    scratch space in the store, which is gone when the context ends.
    """
    if path in (None, "-"):
        with _stdin() as f:
            with _from_file(store, f, "standard input", limits) as src:
                yield src
        return
    assert path is not None
    if os.path.isdir(path):
        yield DirSource(path, path)
        return
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise NotFound(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise ForkliftError(f"open {path}: {exc.strerror}") from None
    with f, _from_file(store, f, path, limits) as src:
        yield src


@contextlib.contextmanager
def _stdin() -> Iterator[IO[bytes]]:
    if sys.stdin is None or sys.stdin.isatty():
        raise InvalidArgument("requested load from stdin, but stdin is empty")
    f = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    with f:
        yield f


@contextlib.contextmanager
def _from_file(store: Store, f: IO[bytes], description: str,
               limits: Limits | None) -> Iterator[Source]:
    """A seekable plain tar is read in place; anything else is spooled to scratch."""
    if _seekable_file(f):
        head = f.read(6)
        f.seek(0)
        if not head:
            raise BadArchive(f"{description} is empty")
        if archive.detect_compression(head) == "none":
            yield TarSource(f, description)
            return
    with spool(store, f, description, limits) as src:
        yield src


def _seekable_file(f: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(f.fileno()).st_mode) and f.seekable()
    except (OSError, AttributeError, ValueError):
        return False


@contextlib.contextmanager
def spool(store: Store, stream: IO[bytes], description: str,
          limits: Limits | None = None) -> Iterator[Source]:
    """Unpack a (possibly compressed) tar stream safely into scratch space in the store.

    Each file in it may be as large as one layer blob may be; all together as large
    as an image of the most layers allowed: beyond, LimitExceeded, before the disk
    fills. Nothing after the archive's end-of-archive marker is read.
    """
    limits = limits or limits_mod.load(store.root)
    total = limits.max_blob_size * limits.max_layers
    scratch = store.make_tmp("load")
    try:
        target = os.path.join(scratch, "archive")
        os.mkdir(target, 0o700)
        plain, _ = archive.decompressed(stream)
        limited = archive.LimitedReader(plain, total)
        try:
            stats = archive.extract(limited, target, whiteouts=False, max_size=total,  # type: ignore[arg-type]
                                    max_file_size=limits.max_blob_size)
        except BadArchive as exc:
            raise BadArchive(f"{description}: {exc}") from None
        except LimitExceeded:
            if limited.count > total:
                raise LimitExceeded(
                    f"{description}: the archive unpacks to more than max-layers"
                    f" ({limits.max_layers}) times the layer size limit") from None
            raise limits.size_exceeded(f"{description}: a file in the archive") from None
        if stats.entries == 0:
            raise BadArchive(f"{description} is empty or not a tar archive")
        yield DirSource(target, description)
    finally:
        remove_path(scratch)


def detect(source: Source) -> str:
    """``docker-archive`` when manifest.json is there (Docker >= 25 archives too), else ``oci``."""
    if source.exists("manifest.json"):
        return DOCKER_ARCHIVE
    if source.exists("index.json"):
        return OCI
    raise BadArchive(f"{source.description} is not an image archive (no manifest.json or index.json)")
