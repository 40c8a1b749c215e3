"""``archive.GunzipReader``, the gzip reader of pulled layers: the same bytes as ``gzip``
for any way the input arrives, the same refusals."""

from __future__ import annotations

import gzip
import io
import os
import random
import zlib

import pytest

from forklift import archive


class _Pieces:
    """A stream handing out pieces of random sizes up to ``most``, as a socket does."""

    def __init__(self, data: bytes, most: int, rnd: random.Random) -> None:
        self.data, self.most, self.rnd, self.pos = data, most, rnd, 0

    def read(self, n: int = -1) -> bytes:
        take = min(n if n >= 0 else len(self.data), self.rnd.randint(1, self.most))
        out = self.data[self.pos:self.pos + take]
        self.pos += len(out)
        return out


def _read_all(reader: archive.GunzipReader, rnd: random.Random) -> bytes:
    parts = []
    while chunk := reader.read(rnd.choice([1, 100, 1 << 16, 1 << 20])):
        parts.append(chunk)
    return b"".join(parts)


def test_same_bytes_as_gzip_for_members_padding_and_any_pieces() -> None:
    rnd = random.Random(14)
    for _ in range(150):
        members = []
        for _ in range(rnd.randint(1, 3)):
            size = rnd.randrange(0, 150_000)
            data = os.urandom(size) if rnd.random() < 0.5 else bytes(rnd.randrange(3) for _ in range(size))
            members.append(gzip.compress(data, compresslevel=rnd.choice([1, 6, 9]))
                           + b"\0" * rnd.choice([0, 0, 5, 700]))
        blob = b"".join(members)
        reader = archive.GunzipReader(_Pieces(blob, rnd.choice([1, 9, 5000, 1 << 20]), rnd))  # type: ignore[arg-type]
        assert _read_all(reader, rnd) == gzip.decompress(blob)


def test_highly_compressed_data_comes_out_in_bounded_pieces() -> None:
    blob = gzip.compress(b"\0" * (20 << 20))
    reader = archive.GunzipReader(io.BytesIO(blob))
    sizes = []
    while chunk := reader.read(1 << 20):
        sizes.append(len(chunk))
    assert sum(sizes) == 20 << 20 and max(sizes) <= 1 << 20


@pytest.mark.parametrize("cut", [3, 100, -8, -1])
def test_a_stream_cut_short_is_an_error(cut: int) -> None:
    blob = gzip.compress(os.urandom(50_000))
    with pytest.raises(EOFError):
        archive.GunzipReader(io.BytesIO(blob[:cut])).read()


def test_bad_checksum_and_trailing_junk_are_errors() -> None:
    blob = bytearray(gzip.compress(os.urandom(50_000)))
    blob[-6] ^= 1
    with pytest.raises(zlib.error):
        archive.GunzipReader(io.BytesIO(bytes(blob))).read()
    with pytest.raises(zlib.error):
        archive.GunzipReader(io.BytesIO(gzip.compress(b"data") + b"junk")).read()


def test_fast_path_only_for_gzip() -> None:
    assert isinstance(archive.decompressed_fast(io.BytesIO(gzip.compress(b"x")))[0],
                      archive.GunzipReader)
    stream, kind = archive.decompressed_fast(io.BytesIO(b"plain tar bytes"))
    assert kind == "none" and stream.read() == b"plain tar bytes"
