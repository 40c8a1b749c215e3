"""The gzip blob of a layer made here (committed: UNSTORED; imported or loaded: TARSPLIT) is
compressed straight from its directory, the tar never written: it decompresses to exactly
the tar its diffID names, it is the same bytes every time, and a directory changed behind
forklift's back is never compressed into a blob."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from forklift import digest as dg
from forklift.errors import StoreCorrupt
from forklift.formats import layerblobs, pgzip
from forklift.store import layers
from forklift.store.db import Store

pytestmark = pytest.mark.root


def _tar() -> bytes:
    """Files around the compressor's piece size, and a hard link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, size in (("a", 5), ("big", 2 * pgzip.PIECE + 3), ("text", pgzip.PIECE)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = size, 1_700_000_000
            body = os.urandom(size) if name == "big" else (b"layer text\n" * size)[:size]
            tf.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("a-link")
        link.type, link.linkname = tarfile.LNKTYPE, "a"
        tf.addfile(link)
    return buf.getvalue()


def _register(store: Store, prepared: layers.PreparedLayer) -> layers.Layer:
    try:
        with store.transaction():
            return prepared.register()
    finally:
        prepared.cleanup()


def _imported(store: Store, data: bytes) -> layers.Layer:
    layer = _register(store, layers.ingest(store, io.BytesIO(data)))
    assert layer.blob_media_type == layers.TARSPLIT
    return layer


def _committed(store: Store, tmp_path: Path, data: bytes) -> layers.Layer:
    upper = tmp_path / "upper"
    upper.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        tf.extractall(upper, filter="fully_trusted")
    layer = _register(store, layers.from_directory(store, str(upper)))
    assert layer.blob_media_type == layers.UNSTORED
    return layer


def _forget(store: Store, lb: layerblobs.LayerBlob) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM compressed_blobs WHERE digest=?", (lb.digest,))
        conn.execute("DELETE FROM blobs WHERE digest=?", (lb.digest,))
    os.unlink(store.blob_path(lb.digest))


@pytest.mark.parametrize("made", ["imported", "committed"])
def test_gzip_blob_is_made_from_the_directory_exactly_and_deterministically(
        store: Store, tmp_path: Path, made: str) -> None:
    data = _tar()
    layer = _imported(store, data) if made == "imported" else _committed(store, tmp_path, data)
    first = layerblobs.blob_for(store, layer, "gzip", docker=True)
    packed = Path(store.blob_path(first.digest)).read_bytes()
    assert dg.of_bytes(packed) == first.digest and len(packed) == first.size
    assert dg.of_bytes(gzip.decompress(packed)) == layer.diff_id
    if made == "imported":
        assert gzip.decompress(packed) == data
    # the tar itself was never written: the layer still has no blob of its own
    after = layers.get(store, layer.diff_id)
    assert after is not None and after.blob_media_type == layer.blob_media_type
    assert not os.path.exists(store.blob_path(layer.diff_id))
    assert layerblobs.blob_for(store, layer, "gzip", docker=True) == first  # cached
    _forget(store, first)
    assert layerblobs.blob_for(store, layer, "gzip", docker=True) == first  # made again: same


@pytest.mark.parametrize("made", ["imported", "committed"])
def test_a_changed_directory_is_never_compressed(store: Store, tmp_path: Path, made: str) -> None:
    data = _tar()
    layer = _imported(store, data) if made == "imported" else _committed(store, tmp_path, data)
    Path(layer.path(store), "a").write_bytes(b"AAAAA")  # same size, other bytes
    blobs_before = sorted(os.listdir(os.path.join(store.root, "blobs", "sha256")))
    with pytest.raises(StoreCorrupt, match="no longer matches its diffID"):
        layerblobs.blob_for(store, layer, "gzip")
    assert store.conn.execute("SELECT COUNT(*) FROM compressed_blobs").fetchone()[0] == 0
    assert sorted(os.listdir(os.path.join(store.root, "blobs", "sha256"))) == blobs_before
