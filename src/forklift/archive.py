"""Tar streams: safe layer extraction, deterministic creation, whiteouts, compression.

Layers on disk are overlayfs-native: a deleted path is a 0/0 character device and
an opaque directory carries ``trusted.overlay.opaque=y``. Layer tarballs use the
OCI form (``.wh.NAME`` and ``.wh..wh..opq``). This module converts between them.

Every tarball is hostile until proven otherwise: its headers are read by
``forklift.tarreader`` (bounded, never the interpreter's ``tarfile``); entries that
would land outside the target (``..``, absolute names, writing through a symlink,
hardlinks to outside) are refused; sparse files keep their holes; a size limit is
checked before a file is written. Device nodes and FIFOs are kept, as Docker keeps
them. ``tarfile`` is used only to write forklift's own headers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, TypeVar

from forklift.errors import BadArchive, ForkliftError, LimitExceeded, NoSpace
from forklift.fswalk import walk_sorted
from forklift.tarreader import Member, TarReader

if TYPE_CHECKING:
    from forklift.tarsplit import Recorder

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
COPY_CHUNK = 1 << 20
# xattrs a layer may carry; trusted.* could steer overlayfs and is never taken from a tarball.
_XATTR_ALLOWED_PREFIXES = ("security.capability", "user.")

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)


# --------------------------------------------------------------------------- compression

class _PeekStream:
    """A read-only stream that lets us look at its first bytes without losing them."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            chunk = self._raw.read(n - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._raw.read(n - len(data))
            return data
        return self._raw.read(n)

    def readable(self) -> bool:
        return True


def detect_compression(head: bytes) -> str:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def decompressed(raw: IO[bytes]) -> tuple[IO[bytes], str]:
    """Wrap ``raw`` so it reads uncompressed bytes; returns (stream, compression)."""
    peek = _PeekStream(raw)
    kind = detect_compression(peek.peek(6))
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=peek, mode="rb"), kind  # type: ignore[call-overload]
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(peek, mode="rb"), kind  # type: ignore[arg-type]
    if kind == "bzip2":
        import bz2

        return bz2.BZ2File(peek, mode="rb"), kind  # type: ignore[call-overload]
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(peek, read_across_frames=True), kind  # type: ignore[arg-type,return-value]
    return peek, kind  # type: ignore[return-value]


class GunzipReader:
    """gzip members (one or several, zero padding between them allowed) decompressed
    straight from whatever pieces ``raw.read(n)`` hands out.

    ``gzip.GzipFile`` pulls its input 8 KiB at a time through every wrapper above it;
    this asks ``raw`` for 1 MiB and lets zlib check each member's CRC and length. A
    stream cut short raises EOFError, bad data ``zlib.error`` (as ``GzipFile`` does).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        import zlib

        self._zlib = zlib
        self._raw = raw
        self._inflate = zlib.decompressobj(31)
        self._pending = b""
        self._member = True    # inside a member (its end not seen yet)
        self._eof = False
        self._out = b""        # inflated, not yet read from ``_pos`` on
        self._pos = 0

    def _feed(self) -> None:
        chunk = self._raw.read(COPY_CHUNK)
        if not chunk:
            if self._member:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            self._eof = True
        self._pending = chunk

    def _next_member(self) -> None:
        rest = self._inflate.unused_data.lstrip(b"\x00")
        self._inflate = self._zlib.decompressobj(31)
        self._pending = rest
        self._member = bool(rest)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            return b"".join(iter(lambda: self.read(COPY_CHUNK), b""))
        if self._pos < len(self._out):
            # small reads (tar headers) come from what was inflated: asking zlib for
            # 512 bytes would copy the whole unconsumed input each time
            out = self._out if self._pos == 0 and n >= len(self._out) else \
                self._out[self._pos:self._pos + n]
            self._pos += len(out)
            return out
        out = self._inflated(COPY_CHUNK)
        if len(out) > n:
            self._out, self._pos = out, n
            return out[:n]
        return out

    def _inflated(self, n: int) -> bytes:
        """Up to ``n`` more bytes out of zlib (b"" at the end)."""
        while not self._eof:
            if self._member:
                # called with no new input too: zlib may still owe output of this member
                out = self._inflate.decompress(self._pending, n)
                self._pending = self._inflate.unconsumed_tail
                if self._inflate.eof:
                    self._next_member()
                if out:
                    return out
            elif self._pending:  # only zero padding so far: look for another member
                self._pending = self._pending.lstrip(b"\x00")
                self._member = bool(self._pending)
            if not self._pending:
                self._feed()
        return b""

    def readable(self) -> bool:
        return True


def decompressed_fast(raw: IO[bytes]) -> tuple[IO[bytes], str]:
    """``decompressed``, with gzip through ``GunzipReader`` (a stream read in big pieces)."""
    peek = _PeekStream(raw)
    if detect_compression(peek.peek(6)) == "gzip":
        return GunzipReader(peek), "gzip"  # type: ignore[arg-type,return-value]
    return decompressed(peek)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- limits

class LimitedReader:
    """Counts the bytes read through it; one more than ``limit`` raises LimitExceeded.

    Sits right after the decompressor, so a decompression bomb stops at the limit
    instead of at the disk; callers replace the message with one naming their limit.
    """

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self.limit = limit
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            return b"".join(iter(lambda: self.read(COPY_CHUNK), b""))
        data = self._raw.read(n)
        self.count += len(data)
        if self.count > self.limit:
            raise LimitExceeded("layer is larger than its size limit")
        return data

    def readable(self) -> bool:
        return True


# --------------------------------------------------------------------------- extraction

@dataclass
class ExtractStats:
    size: int = 0          # Docker's layer size: regular-file bytes (hardlinks counted once)
    #                        and each symlink's target length (its st_size)
    entries: int = 0


def _clean_name(name: str) -> list[str]:
    """Split a member name into safe components, or refuse it."""
    if "\x00" in name:
        raise BadArchive(f"tar entry {name!r} has a NUL byte in its name")
    if name.startswith("/"):
        raise BadArchive(f"tar entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadArchive(f"tar entry {name!r} escapes the target with '..'")
    return parts


def _write_all(fd: int, data: bytes | memoryview) -> None:
    done = os.write(fd, data)
    while done < len(data):
        done += os.write(fd, memoryview(data)[done:])


class _Extractor:
    def __init__(self, dest: str, whiteouts: bool, max_size: int | None,
                 max_file_size: int | None) -> None:
        self.dest = dest
        self.whiteouts = whiteouts
        self.max_size = max_size
        self.max_file_size = max_file_size
        self.safe_dirs: set[str] = {""}
        self.dir_times: list[tuple[str, int]] = []
        self.stats = ExtractStats()
        self.split: Recorder | None = None  # records the tar-split of what is extracted
        self.creation = _Creation(dest)
        self._base = os.path.join(dest, "")  # dest/: a path in it is _base + relative path

    # -- path safety
    def _ensure_parent(self, parts: list[str], entry: str) -> str:
        """Create missing parents as real directories; refuse to pass a symlink."""
        rel = ""
        for part in parts[:-1]:
            rel = f"{rel}/{part}" if rel else part
            if rel in self.safe_dirs:
                continue
            path = os.path.join(self.dest, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise BadArchive(f"tar entry {entry!r} would be written through a symlink")
                if not stat.S_ISDIR(st.st_mode):
                    raise BadArchive(f"tar entry {entry!r}: parent {rel!r} is not a directory")
            self.safe_dirs.add(rel)
        return self._base + "/".join(parts)  # parts: clean, none empty (_clean_name)

    def _clear(self, path: str, keep_dir: bool) -> None:
        """Remove what is at ``path`` (never following a symlink) unless it is a dir we keep."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode) and keep_dir:
            return
        if self.split is not None:
            self.split.give_up()  # a file recorded by reference may be about to go
        if stat.S_ISDIR(st.st_mode):
            import shutil

            shutil.rmtree(path)
            rel = os.path.relpath(path, self.dest)
            self.safe_dirs = {d for d in self.safe_dirs if d != rel and not d.startswith(rel + "/")}
        else:
            os.unlink(path)

    # -- members
    def add(self, reader: TarReader, member: Member) -> None:
        parts = _clean_name(member.name)
        if not parts:
            return  # the archive's own root entry ("./")
        self.stats.entries += 1
        _check_owner(member)
        base = parts[-1]
        if self.whiteouts and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, member)
            return
        path = self._ensure_parent(parts, member.name)
        if member.isdir():
            self._make_dir(path)
            self.safe_dirs.add("/".join(parts))
        elif member.isreg():
            self._write_file(reader, member, path)  # its metadata too, through its descriptor
            return
        elif member.islnk():
            self._clear(path, keep_dir=False)
            self._create(reader, member, path)
        else:
            self._new(path, lambda: self._create(reader, member, path))
        self._apply_meta(member, path)

    def _new(self, path: str, create: Callable[[], _T]) -> _T:
        """``create()`` at ``path``, which is usually free: the creation itself says when
        it is not (EEXIST: a path that occurs twice), and only then is the old entry
        removed (``_clear``, which tells the tar-split first) and the creation repeated.
        Saves an lstat per entry."""
        try:
            return create()
        except FileExistsError:
            self._clear(path, keep_dir=False)
            return create()

    def _make_dir(self, path: str) -> None:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            self._clear(path, keep_dir=True)
            if not os.path.isdir(path) or os.path.islink(path):
                os.mkdir(path, 0o700)

    def _whiteout(self, parts: list[str], member: Member) -> None:
        entry = member.name
        base = parts[-1]
        if base == OPAQUE_MARKER:
            parent = self._ensure_parent(parts, entry)
            target = os.path.dirname(parent)
            if target != self.dest:
                os.setxattr(target, OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other AUFS metadata, meaningless here
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise BadArchive(f"tar entry {entry!r} is a malformed whiteout")
        path = self._ensure_parent(parts[:-1] + [name], entry)
        self._clear(path, keep_dir=False)
        os.mknod(path, stat.S_IFCHR | 0o000, 0)
        # keep the entry's owner, mode and time: re-tarring the layer gives the same bytes
        os.lchown(path, member.uid, member.gid)
        os.chmod(path, member.mode & 0o777)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _create(self, reader: TarReader, member: Member, path: str) -> None:
        if member.isreg():
            self._write_file(reader, member, path)
        elif member.issym():
            os.symlink(member.linkname, path)
            self.stats.size += len(os.fsencode(member.linkname))  # its st_size, as Docker counts
        elif member.islnk():
            self._hardlink(member, path)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        elif member.ischr() and member.devmajor == 0 and member.devminor == 0 and self.whiteouts:
            os.mknod(path, stat.S_IFCHR, 0)  # overlay-style whiteout
        elif member.ischr() or member.isblk():
            # Real root filesystems carry /dev nodes; a container reaches a device only
            # through the runtime's device cgroup rules, never through the node alone.
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        else:
            raise BadArchive(f"tar entry {member.name!r} has an unsupported type {member.type!r}")

    def _claim(self, member: Member) -> None:
        """Refuse a file the layer may not hold before writing a byte of it (a sparse
        file declares its real size up front; so does every other file)."""
        size = member.realsize
        if self.max_file_size is not None and size > self.max_file_size:
            raise LimitExceeded(f"tar entry {member.name!r} ({size} bytes) is over the size limit")
        if self.max_size is not None and self.stats.size + size > self.max_size:
            raise LimitExceeded(f"tar entry {member.name!r} ({size} bytes) is over the size limit")

    def _write_file(self, reader: TarReader, member: Member, path: str) -> None:
        self._claim(member)
        # created with its final permission bits where the umask keeps them (no chmod)
        fd = self._new(path, lambda: os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            self.creation.open_mode(member.mode)))
        if self.split is not None:  # after the open: a path there before is cleared first
            if member.sparse is None:
                self.split.payload(path[len(self._base):], member.size)
            else:
                self.split.give_up()  # its data is not one run of bytes on disk
        try:
            if member.sparse is None:
                self._copy(reader, member, fd, member.size)
            else:
                # holes stay holes: seek over them, then set the real length
                for offset, length in member.sparse:
                    os.lseek(fd, offset, os.SEEK_SET)
                    self._copy(reader, member, fd, length)
                os.ftruncate(fd, member.realsize)
            self._file_meta(fd, member)
        finally:
            os.close(fd)
        self.stats.size += member.realsize

    def _file_meta(self, fd: int, member: Member) -> None:
        """``_apply_meta`` of a new regular file, through its descriptor (no path lookups),
        leaving out the owner and mode its creation already gave it; the same order
        (owner, xattrs, mode, time: a chown clears set-id bits, writes change mtime)."""
        if self.creation.needs_chown(member):
            os.fchown(fd, member.uid, member.gid)
        for name, raw in _member_xattrs(member):
            os.setxattr(fd, name, raw)
        if self.creation.needs_chmod(member.mode):
            os.fchmod(fd, member.mode & 0o7777)
        os.utime(fd, (member.mtime, member.mtime))

    @staticmethod
    def _copy(reader: TarReader, member: Member, fd: int, size: int) -> None:
        remaining = size
        while remaining > 0:
            chunk = reader.read(min(COPY_CHUNK, remaining))
            if not chunk:
                raise BadArchive(f"tar entry {member.name!r} is truncated")
            _write_all(fd, chunk)
            remaining -= len(chunk)

    def _hardlink(self, member: Member, path: str) -> None:
        parts = _clean_name(member.linkname)
        if not parts:
            raise BadArchive(f"tar entry {member.name!r} links to the archive root")
        target = self._ensure_parent(parts, member.name)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise BadArchive(
                f"tar entry {member.name!r} links to {member.linkname!r}, which is not in the archive"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise BadArchive(f"tar entry {member.name!r} is a hardlink to a directory")
        os.link(target, path, follow_symlinks=False)

    def _apply_meta(self, member: Member, path: str) -> None:
        if member.islnk():
            return  # shares the target's inode and metadata
        if self.creation.needs_chown(member):
            os.lchown(path, member.uid, member.gid)
        for name, raw in _member_xattrs(member):
            os.setxattr(path, name, raw, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)
        if member.isdir():
            self.creation.saw_dir(member.mode)
            self.dir_times.append((path, member.mtime))
        else:
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def finish(self) -> None:
        for path, mtime in reversed(self.dir_times):
            if os.path.isdir(path):
                os.utime(path, (mtime, mtime), follow_symlinks=False)


_MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "leave unchanged" to chown
_T = TypeVar("_T")


def _member_xattrs(member: Member) -> Iterator[tuple[str, bytes]]:
    """The xattrs of a member that a layer may carry (``_XATTR_ALLOWED_PREFIXES``)."""
    for key, value in member.pax.items():
        if key.startswith("SCHILY.xattr."):
            name = key[len("SCHILY.xattr."):]
            if name.startswith(_XATTR_ALLOWED_PREFIXES):
                yield name, value.encode("utf-8", "surrogateescape")


class _Creation:
    """What a new entry's creation already gives it, so that its chown and chmod can be
    left out: the process's owner (unless a set-group-ID directory may hand its group
    down) and the open mode less the umask (unless a default ACL decides instead)."""

    def __init__(self, dest: str) -> None:
        self.ids = (os.geteuid(), os.getegid())
        self.inherits_group, self.umask = True, None  # unknown: chown and chmod everything
        with contextlib.suppress(OSError):
            self.inherits_group = bool(os.stat(dest).st_mode & stat.S_ISGID)
            if "system.posix_acl_default" not in os.listxattr(dest):
                self.umask = _umask()

    def saw_dir(self, mode: int) -> None:
        if mode & stat.S_ISGID:  # what is created below it from now on takes its group
            self.inherits_group = True

    def needs_chown(self, member: Member) -> bool:
        return self.inherits_group or (member.uid, member.gid) != self.ids

    def open_mode(self, mode: int) -> int:
        return mode & 0o777

    def needs_chmod(self, mode: int) -> bool:
        return self.umask is None or bool(mode & (0o7000 | self.umask))


def _umask() -> int | None:
    """The process's umask, read without changing it (another thread may create files
    meanwhile); None where the kernel does not say (Linux < 4.7)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_owner(member: Member) -> None:
    if member.uid > _MAX_ID or member.gid > _MAX_ID:
        raise BadArchive(f"tar entry {member.name!r} has an invalid owner"
                         f" {member.uid}:{member.gid}")


def extract(stream: IO[bytes], dest: str, *, whiteouts: bool = True,
            max_size: int | None = None, max_file_size: int | None = None,
            split: Recorder | None = None) -> ExtractStats:
    """Extract an (uncompressed) tar stream into the existing directory ``dest``.

    Reads up to the end-of-archive marker and no further (what follows is the
    caller's to read or leave). With ``whiteouts`` OCI whiteout entries become
    overlayfs whiteouts. ``max_size`` bounds the content written (sparse files at
    their real size), ``max_file_size`` each file: LimitExceeded before the file
    is written. Raises BadArchive for anything malformed or hostile; the caller
    discards ``dest``. ``split``: the recorder that ``stream`` writes its bytes to
    (``tarsplit.Recorder``), told which bytes are file payloads and when to give up.
    """
    extractor = _Extractor(dest, whiteouts, max_size, max_file_size)
    extractor.split = split
    reader = TarReader(stream)
    try:
        for member in reader:
            extractor.add(reader, member)
        extractor.finish()
    except ForkliftError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace("no space left on device while extracting a layer") from None
        raise BadArchive(f"cannot extract archive: {exc.strerror or exc}") from None
    except (ValueError, UnicodeError, OverflowError) as exc:
        raise BadArchive(f"invalid tar archive: {exc}") from None
    except Exception as exc:  # zlib/lzma/zstd decoder errors surface as assorted types
        raise BadArchive(f"invalid or corrupt archive: {exc}") from None
    return extractor.stats


# --------------------------------------------------------------------------- creation

def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in sorted(names):
        if name.startswith(_XATTR_ALLOWED_PREFIXES):
            try:
                value = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                continue
            out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _header(rel: str, st: os.stat_result, kind: bytes, size: int = 0, link: str = "",
            clamp: int | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime) if clamp is None else min(int(st.st_mtime), clamp)
    info.size = size
    info.linkname = link
    return info


class _WriteBehind:
    """Writes full buffers to ``out`` from a thread of its own while the caller fills the
    next one: reading files and writing (or hashing) the tar overlap, as both release
    the GIL. Buffers go round: the caller hands a full one over and gets a free one."""

    def __init__(self, out: IO[bytes], size: int, count: int = 4) -> None:
        import queue
        import threading

        self._out = out
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        for _ in range(count - 1):
            self._free.put(bytearray(size))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="forklift-tar-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    self._out.write(memoryview(buf)[:n])  # type: ignore[arg-type]
                except BaseException as exc:  # noqa: BLE001 - raised again in the caller
                    self._error = exc
            self._free.put(buf)

    def swap(self, buf: bytearray, n: int) -> bytearray:
        """Queue ``n`` bytes of ``buf`` for writing; a free buffer back. Raises the error of
        an earlier write."""
        if self._error is not None:
            raise self._error
        self._full.put((buf, n))
        return self._free.get()

    def close(self) -> None:
        """Wait for every queued write; raise the first one's error. Idempotent."""
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


class TarWriter:
    """Writes deterministic tar entries: sorted walk, PAX headers, no user names.

    ``write_behind``: ``out.write`` runs in a thread of its own (``close`` waits for it;
    ``stop`` ends it after a failure)."""

    def __init__(self, out: IO[bytes], clamp_mtime: int | None = None,
                 write_behind: bool = False) -> None:
        self.out = out
        self.clamp = clamp_mtime  # SOURCE_DATE_EPOCH: later mtimes written as this one
        self.size = 0  # the layer's size as Docker counts it: content bytes and symlinks
        self._links: dict[tuple[int, int], str] = {}
        self._buf = bytearray(COPY_CHUNK)
        self._view = memoryview(self._buf)
        self._fill = 0  # bytes of ``_buf`` not yet written to ``out``
        self._behind = _WriteBehind(out, COPY_CHUNK) if write_behind else None

    def _emit(self, info: tarfile.TarInfo) -> None:
        block = _ustar_block(info)
        self._put(block if block is not None
                  else info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _put(self, data: bytes | bytearray) -> None:
        """Headers and small files gather in one buffer: one write per MiB, not two per file."""
        end = self._fill + len(data)
        if end <= len(self._buf):
            self._buf[self._fill:end] = data
            self._fill = end
            return
        rest = memoryview(data)
        while rest:
            if self._fill == len(self._buf):
                self._flush()
            n = min(len(rest), len(self._buf) - self._fill)
            self._buf[self._fill:self._fill + n] = rest[:n]
            self._fill += n
            rest = rest[n:]

    def _flush(self) -> None:
        if not self._fill:
            return
        if self._behind is None:
            self.out.write(self._view[:self._fill])
        else:
            self._buf = self._behind.swap(self._buf, self._fill)
            self._view = memoryview(self._buf)
        self._fill = 0

    def add(self, rel: str, path: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                self._emit(_header(rel, st, tarfile.LNKTYPE, link=self._links[key], clamp=self.clamp))
                return
            if st.st_nlink > 1:
                self._links[key] = rel
            info = _header(rel, st, tarfile.REGTYPE, size=st.st_size, clamp=self.clamp)
            info.pax_headers = _xattrs(path)
            self._emit(info)
            self._copy(path, st.st_size, rel)
        elif stat.S_ISDIR(mode):
            info = _header(rel, st, tarfile.DIRTYPE, clamp=self.clamp)
            info.pax_headers = _xattrs(path)
            self._emit(info)
        elif stat.S_ISLNK(mode):
            self._emit(_header(rel, st, tarfile.SYMTYPE, link=os.readlink(path), clamp=self.clamp))
            self.size += st.st_size  # the target's length: Docker counts it in a layer's size
        elif stat.S_ISFIFO(mode):
            self._emit(_header(rel, st, tarfile.FIFOTYPE, clamp=self.clamp))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info = _header(rel, st, kind, clamp=self.clamp)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._emit(info)
        # sockets are skipped, as Docker does

    def add_whiteout(self, rel_dir: str, name: str, st: os.stat_result) -> None:
        info = _header(f"{rel_dir}/{name}" if rel_dir else name, st, tarfile.REGTYPE, clamp=self.clamp)
        info.mode &= 0o777
        self._emit(info)

    def _copy(self, path: str, size: int, rel: str) -> None:
        remaining = size
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while remaining > 0:
                if self._fill == len(self._buf):
                    self._flush()
                end = self._fill + min(len(self._buf) - self._fill, remaining)
                n = os.readv(fd, [self._view[self._fill:end]])
                if not n:
                    raise ForkliftError(f"file {rel!r} shrank while it was being archived")
                self._fill += n
                remaining -= n
        finally:
            os.close(fd)
        self.size += size
        pad = -size % tarfile.BLOCKSIZE
        if pad:
            self._put(_ZEROS[:pad])

    def close(self) -> None:
        self._put(_ZEROS[:tarfile.BLOCKSIZE * 2])
        self._flush()
        self.stop()

    def stop(self) -> None:
        """End the write-behind thread (after ``close``, or instead of it on a failure)."""
        if self._behind is not None:
            self._behind.close()


_ZEROS = bytes(tarfile.BLOCKSIZE * 2)
_USTAR_ID_LIMIT = 8 ** 7     # uid, gid, device numbers: 7 octal digits
_USTAR_NUM_LIMIT = 8 ** 11   # size, mtime: 11 octal digits


def _ustar_block(info: tarfile.TarInfo) -> bytearray | None:
    """The header ``info.tobuf(PAX_FORMAT, "utf-8", …)`` gives for an entry that needs no
    extended header (no xattrs; ASCII names of at most 100 characters, no user names;
    numbers that fit their octal fields), built directly: tarfile's general path costs
    ~30 µs an entry. None for any other entry, which tarfile then encodes."""
    name = info.name + "/" if info.type == tarfile.DIRTYPE and not info.name.endswith("/") \
        else info.name
    link = info.linkname
    if info.pax_headers or info.uname or info.gname or not (
            len(name) <= 100 and len(link) <= 100 and name.isascii() and link.isascii()):
        return None
    if not (0 <= info.uid < _USTAR_ID_LIMIT and 0 <= info.gid < _USTAR_ID_LIMIT
            and 0 <= info.size < _USTAR_NUM_LIMIT and 0 <= info.mtime < _USTAR_NUM_LIMIT
            and type(info.mtime) is int):
        return None
    block = bytearray(tarfile.BLOCKSIZE)
    block[:len(name)] = name.encode("ascii")
    block[100:156] = b"%07o\0%07o\0%07o\0%011o\0%011o\0        " % (
        info.mode & 0o7777, info.uid, info.gid, info.size, info.mtime)
    block[156:157] = info.type
    block[157:157 + len(link)] = link.encode("ascii")
    block[257:265] = tarfile.POSIX_MAGIC
    if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        if not (0 <= info.devmajor < _USTAR_ID_LIMIT and 0 <= info.devminor < _USTAR_ID_LIMIT):
            return None
        block[329:345] = b"%07o\0%07o\0" % (info.devmajor, info.devminor)
    block[148:156] = b"%06o\0 " % sum(block)
    return block


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def write_layer(upper: str, out: IO[bytes], clamp_mtime: int | None = None,
                write_behind: bool = False) -> int:
    """Tar an overlay upper directory as an OCI layer; returns the content size.
    ``clamp_mtime``: no entry's mtime later than this (reproducible builds).
    ``write_behind``: ``out`` is written from a thread of its own (see ``TarWriter``)."""
    writer = TarWriter(out, clamp_mtime, write_behind)

    def fill() -> None:
        for rel, path, st in walk_sorted(upper):
            parent, _, name = rel.rpartition("/")
            if _is_whiteout(st):
                writer.add_whiteout(parent, WHITEOUT_PREFIX + name, st)
                continue
            writer.add(rel, path, st)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(path):
                writer.add_whiteout(rel, OPAQUE_MARKER, st)

    return _written(writer, fill)


def _written(writer: TarWriter, fill: Callable[[], None]) -> int:
    """Run ``fill`` (which adds the entries) and close ``writer``; the content size. On a
    failure the writer is stopped and that failure, not a write's after it, is raised."""
    try:
        fill()
        writer.close()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.stop()  # this failure is the one to report, not a write's after it
        raise
    return writer.size


def settle_in_place(upper: str, clamp_mtime: int | None = None) -> None:
    """Make ``upper`` exactly what extracting its own layer tar would give, in place, so
    that it can become the layer directory without being copied: sockets removed (a tar
    has none), xattrs a layer cannot carry removed (overlayfs' own bookkeeping, ACLs,
    security labels; ``trusted.overlay.opaque`` kept on directories), mtimes later than
    ``clamp_mtime`` set to it, the top directory as ``extract`` makes it (0755, root,
    no xattrs). Raises OSError when something cannot be settled: the caller copies."""
    entries = list(walk_sorted(upper))
    touched = set()  # directories whose mtime an unlink changed
    for _rel, path, st in entries:
        if stat.S_ISSOCK(st.st_mode):
            os.unlink(path)
            touched.add(os.path.dirname(path))
    for _rel, path, st in entries:
        if not stat.S_ISSOCK(st.st_mode):
            _strip_xattrs(path, keep_opaque=stat.S_ISDIR(st.st_mode))
    _strip_xattrs(upper, keep_opaque=False)
    os.chown(upper, 0, 0)
    os.chmod(upper, 0o755)
    clamp_ns = None if clamp_mtime is None else clamp_mtime * 10**9
    for _rel, path, st in reversed(entries):  # children first: a parent's time is set last
        if stat.S_ISSOCK(st.st_mode):
            continue
        wanted = st.st_mtime_ns if clamp_ns is None else min(st.st_mtime_ns, clamp_ns)
        if wanted != st.st_mtime_ns or path in touched:
            os.utime(path, ns=(st.st_atime_ns, wanted), follow_symlinks=False)


def _strip_xattrs(path: str, keep_opaque: bool) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return  # a filesystem or file type without xattrs has none to strip
        raise
    for name in names:
        if name.startswith(_XATTR_ALLOWED_PREFIXES) or (keep_opaque and name == OPAQUE_XATTR
                                                        and _is_opaque(path)):
            continue
        os.removexattr(path, name, follow_symlinks=False)


def hash_layer(upper: str, clamp_mtime: int | None = None) -> tuple[str, int]:
    """The diffID and content size of the layer tar of ``upper``, nothing written."""
    from forklift.digest import HashingWriter

    with open(os.devnull, "wb") as sink:
        hasher = HashingWriter(sink)
        size = write_layer(upper, hasher, clamp_mtime)  # type: ignore[arg-type]
    return hasher.digest, size


def copy_layer(upper: str, target: str, clamp_mtime: int | None = None) -> tuple[str, ExtractStats]:
    """Tar ``upper`` as a layer and extract it into ``target`` in one pass, no file between.

    Returns the tar's digest (the diffID) and what was extracted. The tar goes
    through a pipe from a writer thread to the extractor; whichever side fails
    first stops the other.
    """
    import fcntl
    import threading

    from forklift.digest import HashingWriter

    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_fd, 1031, COPY_CHUNK)  # F_SETPIPE_SZ: fewer context switches
    sink = os.fdopen(write_fd, "wb", buffering=COPY_CHUNK)
    hasher = HashingWriter(sink)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            write_layer(upper, hasher, clamp_mtime)  # type: ignore[arg-type]
            sink.flush()
        except BrokenPipeError:
            pass  # the extractor stopped first; its error is the one to report
        except BaseException as exc:
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sink.close()

    thread = threading.Thread(target=produce, name="forklift-layer-tar", daemon=True)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb") as source:
            try:
                stats = extract(source, target)
                while source.read(COPY_CHUNK):
                    pass
            except ForkliftError:
                source.close()
                thread.join()
                if failure:
                    raise failure[0] from None
                raise
    finally:
        thread.join()
    if failure:
        raise failure[0]
    return hasher.digest, stats


def write_tree(root: str, out: IO[bytes], skip: Callable[[str], bool] | None = None,
               write_behind: bool = False) -> int:
    """Tar a plain directory tree (a merged root filesystem) deterministically.
    ``write_behind``: ``out`` is written from a thread of its own (see ``TarWriter``)."""
    writer = TarWriter(out, write_behind=write_behind)

    def fill() -> None:
        for rel, path, st in walk_sorted(root):
            if skip and skip(rel):
                continue
            writer.add(rel, path, st)

    return _written(writer, fill)

