"""Parallel gzip (formats/pgzip): one valid gzip member that Python's gzip, GNU gzip and
zcat read back, the same bytes whatever the number of threads or the way the input
arrives, at and around piece boundaries, for an empty input too."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import zlib

import pytest

from forklift.formats import pgzip

P = pgzip.PIECE
SIZES = (0, 1, pgzip.WINDOW, P - 1, P, P + 1, 2 * P, 3 * P + 12345)


def _data(size: int) -> bytes:
    """Compressible and incompressible stretches, so matches cross the piece cuts."""
    text = (b"forklift layer text %d\n" * 40000)[: size // 2]
    return (text + os.urandom(size - len(text)))[:size]


def _gz(data: bytes, threads: int | None = None, level: int = pgzip.LEVEL, step: int = 0) -> bytes:
    out = io.BytesIO()
    with pgzip.GzipWriter(out, level=level, threads=threads) as gz:
        if step:
            for i in range(0, len(data), step):
                gz.write(data[i:i + step])
        else:
            gz.write(data)
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_through_python_gzip_and_zlib(size):
    data = _data(size)
    packed = _gz(data)
    assert gzip.decompress(packed) == data
    inflate = zlib.decompressobj(31)
    assert inflate.decompress(packed) == data and inflate.eof and not inflate.unused_data


@pytest.mark.parametrize("size", [0, P, 2 * P + 1])
def test_gnu_gzip_and_zcat_accept_it(tmp_path, size):
    data = _data(size)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(_gz(data))
    assert subprocess.run(["gzip", "-t", str(path)], capture_output=True).returncode == 0
    assert subprocess.run(["zcat", str(path)], capture_output=True, check=True).stdout == data


def test_same_bytes_whatever_the_threads_and_the_writes():
    data = _data(3 * P + 777)
    first = _gz(data, threads=1)
    assert _gz(data, threads=4) == first
    assert _gz(data, threads=2, step=4097) == first
    assert _gz(data, threads=3, step=P) == first
    assert _gz(data) == first
    assert _gz(data[:-1]) != first


def test_header_and_trailer():
    data = _data(P + 5)
    packed = _gz(data)
    # no name, mtime 0, OS unknown: nothing of the machine or the moment in the bytes
    assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert int.from_bytes(packed[-8:-4], "little") == zlib.crc32(data)
    assert int.from_bytes(packed[-4:], "little") == len(data)


def test_matches_reach_across_pieces():
    """The 32 KiB before a piece is its dictionary: repeated data across a cut still
    compresses (without it each piece would start cold)."""
    block = os.urandom(16 * 1024)
    data = block * (3 * P // len(block))
    assert len(_gz(data)) < 40 * 1024


def test_compress_reads_a_stream():
    data = _data(2 * P + 3)
    out = io.BytesIO()
    pgzip.compress(io.BytesIO(data), out)
    assert out.getvalue() == _gz(data)


def test_a_failure_stops_the_pool():
    class Broken(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:  # type: ignore[override]
            if len(data) > 10:
                raise OSError(28, "No space left on device")
            return len(data)

    gz = pgzip.GzipWriter(Broken(), threads=2)
    with pytest.raises(OSError):
        for _ in range(10):
            gz.write(_data(P))
        gz.close()
    gz.abort()
    assert gz._pool._shutdown


def test_incompressible_pieces_are_stored_and_others_deflated():
    noise = os.urandom(P)
    text = (b"a line of a config file, or of a shell script\n" * (P // 40))[:P]
    assert pgzip.incompressible(noise) and not pgzip.incompressible(text)
    # noise with text in one of the sampled stretches is deflated
    mixed = noise[: P // 2] + text[: P // 2]
    assert not pgzip.incompressible(mixed)
    assert not pgzip.incompressible(noise[: pgzip.SAMPLES * pgzip.SAMPLE - 1])  # too short
    # noise that repeats within deflate's window is compressible
    assert not pgzip.incompressible(os.urandom(16 * 1024) * (P // (16 * 1024)))
    for data in (noise + text + noise, noise * 2 + b"tail"):
        packed = _gz(data)
        assert gzip.decompress(packed) == data
    # stored: no bigger than the input plus a few bytes a 64 KiB block
    assert len(_gz(noise * 3)) < 3 * P + 3 * P // 65535 * 5 + 64
    assert len(_gz(text * 3)) < P // 10
