"""Tar-split: a layer tar kept as its extracted directory plus the bytes that are not file data.

While a layer is extracted, ``Recorder`` (the sink of the stream the extractor reads)
writes every byte that is not a regular file's payload (headers, PAX and GNU records,
padding, the end-of-archive marker and what follows it) into a small zlib-compressed
file, and for each payload only a reference: the file's path in the layer directory
and its length. ``TarStream`` plays it back, reading the payloads from the directory,
and gives the exact bytes of the original tar: the layer's blob need not be written.

The extractor calls ``give_up`` before it would lose a payload (a path that occurs
twice, a sparse file whose data is not one run of bytes on disk); the recorder then
writes the tar read so far into the fallback blob (from its own record and the files
still on disk, never from the input) and passes every later byte there, as the plain
blob would have had them.

Record stream (inside zlib): ``R`` + 8-byte length + raw bytes; ``F`` + 8-byte size +
4-byte path length + path (bytes, relative to the layer directory). It starts with MAGIC.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from typing import IO, Protocol

from forklift.errors import NoSpace, StoreCorrupt

MAGIC = b"forklift-tar-split-1\n"
_RAW_FLUSH = 1 << 18
_CHUNK = 1 << 20
_LEN = struct.Struct(">Q")
_FILE = struct.Struct(">QI")


class Writable(Protocol):
    def write(self, data: bytes) -> int: ...


class Recorder:
    """The sink of a layer stream: records its tar-split at ``path`` until ``give_up``,
    then copies every byte into ``fallback`` (the layer blob)."""

    def __init__(self, path: str, root: str, fallback: Writable) -> None:
        self.path = path
        self.root = root
        self.fallback = fallback
        self.active = True
        self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115
        self._zip = zlib.compressobj(1)
        self._raw = bytearray()
        self._records = bytearray()  # records not yet compressed: zlib takes them in bulk
        self._payload_left = 0
        self._out(MAGIC)

    def _out(self, data: bytes | bytearray) -> None:
        self._records += data
        if len(self._records) >= _RAW_FLUSH:
            self._compress()

    def _compress(self) -> None:
        try:
            self._file.write(self._zip.compress(self._records))
            self._records.clear()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpace("no space left on device while writing a layer's tar-split") from None
            raise

    def _flush_raw(self) -> None:
        if self._raw:
            self._out(b"R" + _LEN.pack(len(self._raw)))
            self._out(self._raw)
            self._raw.clear()

    def write(self, data: bytes | memoryview) -> int:
        if not self.active:
            return self.fallback.write(data)  # type: ignore[arg-type]
        n = len(data)
        skip = min(self._payload_left, n)
        self._payload_left -= skip
        if skip < n:
            self._raw += data[skip:] if skip else data
            if len(self._raw) >= _RAW_FLUSH:
                self._flush_raw()
        return n

    def payload(self, rel: str, size: int) -> None:
        """The next ``size`` bytes are the content of ``rel``, extracted as they are."""
        if not self.active or size == 0:
            return
        self._flush_raw()
        name = os.fsencode(rel)
        self._out(b"F" + _FILE.pack(size, len(name)) + name)
        self._payload_left = size

    def give_up(self) -> None:
        """Write the tar so far into the fallback and send it everything from now on.
        Called before any recorded payload is lost (the extractor's files are intact)."""
        if not self.active:
            return
        self._flush_raw()
        self._close(sync=False)  # read back once, then removed
        with TarStream(self.root, self.path) as stream:
            while chunk := stream.read(_CHUNK):
                self.fallback.write(chunk)  # type: ignore[arg-type]
        self.active = False
        self.discard()

    def _close(self, sync: bool = True) -> None:
        if not self._file.closed:
            self._compress()
            try:
                self._file.write(self._zip.flush())
                self._file.flush()
                if sync:
                    os.fsync(self._file.fileno())
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise NoSpace("no space left on device while writing a layer's tar-split") \
                        from None
                raise
            finally:
                self._file.close()

    def finish(self) -> bool:
        """Make the record durable; True if the tar-split stands (no fallback)."""
        if not self.active:
            return False
        self._flush_raw()
        self._close()
        return True

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _Unzipped:
    """The decompressed bytes of a tar-split file, taken a record at a time (bounded:
    at most a chunk is decompressed ahead, however well the record compressed)."""

    def __init__(self, f: IO[bytes], split: str) -> None:
        self._f = f
        self._split = split
        self._unzip = zlib.decompressobj()
        self._pending = bytearray()

    def _fill(self) -> bool:
        """Decompress some more; False at the end of the zlib stream."""
        while not self._unzip.eof:
            data = self._unzip.unconsumed_tail or self._f.read(1 << 16)
            if not data:
                raise StoreCorrupt(f"tar-split {self._split} is truncated")
            more = self._unzip.decompress(data, _CHUNK)
            if more:
                self._pending += more
                return True
        return False

    def at_end(self) -> bool:
        return not self._pending and not self._fill()

    def take(self, n: int) -> bytes:
        while len(self._pending) < n:
            if not self._fill():
                raise StoreCorrupt(f"tar-split {self._split} is truncated")
        data = bytes(self._pending[:n])
        del self._pending[:n]
        return data


def _records(split: str) -> Iterator[tuple[bytes, int, bytes]]:
    """(kind, size, raw bytes or path) of each record of a tar-split file."""
    try:
        f = open(split, "rb")  # noqa: SIM115
    except OSError:
        raise StoreCorrupt(f"tar-split {split} is missing") from None
    with f:
        src = _Unzipped(f, split)
        try:
            if src.take(len(MAGIC)) != MAGIC:
                raise StoreCorrupt(f"{split} is not a tar-split file")
            while not src.at_end():
                kind = src.take(1)
                if kind == b"R":
                    size = _LEN.unpack(src.take(_LEN.size))[0]
                    yield kind, size, src.take(size)
                elif kind == b"F":
                    size, length = _FILE.unpack(src.take(_FILE.size))
                    yield kind, size, src.take(length)
                else:
                    raise StoreCorrupt(f"tar-split {split} has an unknown record")
        except zlib.error as exc:
            raise StoreCorrupt(f"tar-split {split} is corrupt: {exc}") from None


class TarStream:
    """The tar a layer directory and its tar-split reproduce, as a readable stream.

    A payload file that is missing, not a regular file or of another length is
    StoreCorrupt; whoever reads it checks the digest of the whole (a file changed in
    place is caught there)."""

    def __init__(self, root: str, split: str) -> None:
        self.root = root
        self._chunks = self._generate(split)
        self._buf = b""

    def _generate(self, split: str) -> Iterator[bytes]:
        for kind, size, data in _records(split):
            if kind == b"R":
                yield data
            else:
                yield from self._payload(os.fsdecode(data), size)

    def _payload(self, rel: str, size: int) -> Iterator[bytes]:
        path = os.path.join(self.root, rel)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            raise StoreCorrupt(f"layer file {rel!r} is missing") from None
        with os.fdopen(fd, "rb", buffering=0) as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise StoreCorrupt(f"layer file {rel!r} was changed (size {st.st_size},"
                                   f" recorded {size})")
            left = size
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    raise StoreCorrupt(f"layer file {rel!r} shrank while it was read")
                left -= len(chunk)
                yield chunk

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (fewer at a record's end; b"" at the end of the tar)."""
        if n < 0:
            data, self._buf = self._buf + b"".join(self._chunks), b""
            return data
        if not self._buf:
            self._buf = next(self._chunks, b"")
        if len(self._buf) <= n:
            data, self._buf = self._buf, b""
            return data
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]

    def __enter__(self) -> TarStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
