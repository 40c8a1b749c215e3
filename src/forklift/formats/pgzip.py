"""gzip on every core, the same bytes on any machine.

The input is cut into fixed 1 MiB pieces, each deflated by a thread of a pool (zlib
releases the GIL) with the 32 KiB before it as its preset dictionary, so matches reach
back across the cut as in one stream. Every piece but the last ends with a sync flush
(byte-aligned, no final block), the last one with the final block: their concatenation
is one valid deflate stream, inside one gzip member whose CRC-32 and length cover the
whole input (computed here, in order). The bytes depend only on the input and the level
(never on the number of threads or on how the input arrives), so a layer always gets the
same compressed digest; gzip, zcat, Go's and Python's readers take it as any other gzip.
A piece that samples show to be incompressible (``incompressible``) is stored: deflating
it would cost ~30 MB/s of CPU to gain nothing.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

PIECE = 1 << 20
WINDOW = 32 * 1024
# zlib's level 6 is Go's default (Docker's): the same ratio, at about its speed on two
# cores
LEVEL = 6
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown


SAMPLES = 2
SAMPLE = 40 * 1024  # longer than deflate's window: repeats within reach count


def incompressible(piece: bytes) -> bool:
    """Whether deflate would only spend time on ``piece`` to make it no smaller: 2 stretches
    of 40 KiB (its start and its middle), each deflated at level 1, both within 2 % of their
    size (data already compressed: gzip, zstd, jpeg, random). Such a piece is stored, not
    deflated; the choice depends on the bytes alone. Costs 8 % of deflating the piece when
    it is incompressible, 4 % when it is not (the first sample decides)."""
    if len(piece) < SAMPLES * SAMPLE:
        return False
    step = len(piece) // SAMPLES
    for start in range(0, SAMPLES * step, step):
        sample = piece[start:start + SAMPLE]
        if len(zlib.compress(sample, 1)) < SAMPLE * 0.98:
            return False
    return True


def _deflate(data: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    if incompressible(data):
        level = 0  # stored blocks: as small as deflate would make it, at copying speed
    comp = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY,
                            **({"zdict": dictionary} if dictionary else {}))
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class GzipWriter:
    """A writable stream whose bytes reach ``out`` gzip-compressed (``close`` ends the
    member). ``threads``: pieces deflated at once (default: the CPUs this process may use)."""

    def __init__(self, out: IO[bytes], level: int = LEVEL, threads: int | None = None) -> None:
        self._out = out
        self._level = level
        workers = threads or len(os.sched_getaffinity(0)) or 1
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forklift-gzip")
        # one more thread writes the pieces out in order: ``out`` (a blob file that hashes
        # what it is given) works while this thread hashes and reads the next input
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forklift-gzip-out")
        self._pending: deque[Future[None]] = deque()
        self._ahead = 2 * workers  # pieces in flight: bounds memory to a few MiB
        self._buf = bytearray()
        self._tail = b""  # the last WINDOW bytes handed to a piece: the next one's dictionary
        self._crc = 0
        self._size = 0
        self._closed = False
        out.write(_HEADER)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buf += data
        while len(self._buf) > PIECE:  # a full piece is cut only once more follows
            piece = bytes(self._buf[:PIECE])
            del self._buf[:PIECE]
            self._submit(piece, last=False)
        return len(data)

    def _submit(self, piece: bytes, last: bool) -> None:
        self._crc = zlib.crc32(piece, self._crc)
        self._size += len(piece)
        deflated = self._pool.submit(_deflate, piece, self._tail, self._level, last)
        self._pending.append(self._writer.submit(self._emit, deflated))
        self._tail = piece[-WINDOW:]  # every piece but the last is a whole PIECE
        while len(self._pending) > (0 if last else self._ahead):
            self._pending.popleft().result()  # raises a failed piece's or write's error

    def _emit(self, deflated: Future[bytes]) -> None:
        self._out.write(deflated.result())

    def close(self) -> None:
        """Write the last piece and the trailer; the pool ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._buf), last=True)
            self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop without finishing (after a failure): queued pieces are dropped."""
        self._closed = True
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._writer.shutdown(wait=True)
        self._pool.shutdown(wait=True)

    def flush(self) -> None:
        """Nothing to do: bytes go out as pieces are done (a sink's interface)."""

    def __enter__(self) -> GzipWriter:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def compress(src: IO[bytes], out: IO[bytes], level: int = LEVEL, threads: int | None = None) -> None:
    """Everything ``src`` reads, gzip-compressed into ``out``."""
    with GzipWriter(out, level, threads) as gz:
        while chunk := src.read(PIECE):
            gz.write(chunk)
