"""A stored layer as the bytes a format or registry needs: plain, gzip or zstd.

Each layer keeps one blob that reproduces its tar exactly (``layers.blob``): the
uncompressed tar for layers made or loaded here, the original compressed bytes
for pulled ones. Other encodings are made on demand, deterministically (gzip
with mtime 0 and no name; zstd level 3 without a checksum frame), and cached in
``compressed_blobs`` so the same layer always gets the same compressed digest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from forklift import archive, oci, tarsplit
from forklift import digest as dg
from forklift.errors import InvalidArgument, StoreCorrupt
from forklift.formats import pgzip
from forklift.store import blobs
from forklift.store import layers as layer_store
from forklift.store.db import Store
from forklift.store.layers import Layer

COMPRESSIONS = ("none", "gzip", "zstd")
_CHUNK = 1 << 20


@dataclass
class LayerBlob:
    digest: str
    size: int
    media_type: str


def stored_compression(layer: Layer) -> str:
    """``none``, ``gzip`` or ``zstd``: how the layer's own blob is encoded."""
    if layer.blob_media_type in oci.LAYER_TYPES_GZIP:
        return "gzip"
    if layer.blob_media_type in oci.LAYER_TYPES_ZSTD:
        return "zstd"
    return "none"


def media_type_for(compression: str, docker: bool = False) -> str:
    """The layer media type for ``compression`` (Docker's names with ``docker``);
    InvalidArgument for an unknown compression or zstd in Docker's types."""
    if docker:
        return {"none": oci.DOCKER_LAYER, "gzip": oci.DOCKER_LAYER_GZIP}.get(compression) or _bad(compression)
    return {"none": oci.OCI_LAYER, "gzip": oci.OCI_LAYER_GZIP, "zstd": oci.OCI_LAYER_ZSTD}.get(compression) or _bad(compression)


def _bad(compression: str) -> str:
    raise InvalidArgument(f"unsupported layer compression {compression!r} (use none, gzip or zstd)")


def materialize(store: Store, layer: Layer) -> Layer:
    """Give a layer committed here (``UNSTORED``) its tar blob, made from its directory,
    or one imported or loaded (``TARSPLIT``), played back from its directory and tar-split.

    The tar is checked against the diffID before it is recorded; a layer directory
    changed behind forklift's back is reported (StoreCorrupt), never saved or pushed.
    Idempotent (a layer that has its blob is returned as it is) and atomic: the blob
    and the row's new media type commit in one transaction of its own, which joins
    the caller's when there is one. Safe against a concurrent materialize of the
    same layer (same bytes, same digest; the UPDATE is conditional).
    """
    current = layer_store.get(store, layer.diff_id) or layer
    if current.blob_media_type not in (layer_store.UNSTORED, layer_store.TARSPLIT):
        return current
    with blobs.BlobWriter(store) as writer:
        why = None
        if current.blob_media_type == layer_store.TARSPLIT:
            try:
                _play_tar_split(store, current, writer)
            except StoreCorrupt as exc:
                why = str(exc)
        else:
            archive.write_layer(current.path(store), writer)  # type: ignore[arg-type]
        digest = writer.finish()
        if why is None and digest != current.diff_id:
            why = "its directory was changed"
        if why is not None:
            raise StoreCorrupt(f"layer {dg.short_id(current.diff_id)} no longer matches its diffID"
                               f" ({why}); run 'forklift system check --repair'")
        with store.transaction() as conn:
            writer.commit(oci.OCI_LAYER)
            conn.execute("UPDATE layers SET blob_media_type=? WHERE diff_id=? AND blob_media_type=?",
                         (oci.OCI_LAYER, current.diff_id, current.blob_media_type))
    return layer_store.get(store, layer.diff_id) or current


def _play_tar_split(store: Store, layer: Layer, writer: blobs.BlobWriter) -> None:
    with tarsplit.TarStream(layer.path(store), layer.split_path(store)) as src:
        while chunk := src.read(_CHUNK):
            writer.write(chunk)


@contextlib.contextmanager
def open_uncompressed(store: Store, layer: Layer) -> Iterator[IO[bytes]]:
    """The layer's tar, exactly the bytes its diffID names. A committed layer gets its
    blob first (``materialize``, StoreCorrupt as there); otherwise it only reads."""
    layer = materialize(store, layer)
    with blobs.open_blob(store, layer.blob) as raw:
        if stored_compression(layer) == "none":
            yield raw
        else:
            stream, _ = archive.decompressed(raw)
            yield stream


def _blob_size(store: Store, digest: str) -> int:
    row = store.conn.execute("SELECT size FROM blobs WHERE digest=?", (digest,)).fetchone()
    return int(row[0]) if row else os.path.getsize(store.blob_path(digest))


def blob_for(store: Store, layer: Layer, compression: str, docker: bool = False) -> LayerBlob:
    """The layer in ``compression``; made and cached on first use.

    For ``none`` of a layer stored compressed, the digest is the diffID and no blob
    of that name exists: read it through ``open_uncompressed``. Idempotent: the
    same layer always gives the same digest (deterministic compression); a made
    blob and its ``compressed_blobs`` row commit in one transaction. Raises
    InvalidArgument for an unknown compression, StoreCorrupt as ``materialize``,
    NoSpace when the disk fills.
    """
    media_type = media_type_for(compression, docker)
    # a compressed blob is made straight from the layer's directory (``_compress``): its
    # tar need not be written first
    layer = materialize(store, layer) if compression == "none" else \
        layer_store.get(store, layer.diff_id) or layer
    if stored_compression(layer) == compression:
        return LayerBlob(layer.blob, _blob_size(store, layer.blob), media_type)
    if compression == "none":
        return LayerBlob(layer.diff_id, _uncompressed_size(store, layer), media_type)
    canonical = media_type_for(compression)
    row = store.conn.execute(
        "SELECT c.digest, b.size FROM compressed_blobs c JOIN blobs b ON b.digest = c.digest"
        " WHERE c.diff_id=? AND c.media_type=?", (layer.diff_id, canonical)).fetchone()
    if row and os.path.exists(store.blob_path(row[0])):
        return LayerBlob(row[0], int(row[1]), media_type)
    digest, size = _compress(store, layer, compression, canonical)
    return LayerBlob(digest, size, media_type)


def _uncompressed_size(store: Store, layer: Layer) -> int:
    if layer.blob == layer.diff_id:
        return _blob_size(store, layer.blob)
    size = 0
    with open_uncompressed(store, layer) as src:
        while chunk := src.read(_CHUNK):
            size += len(chunk)
    return size


def _compress(store: Store, layer: Layer, compression: str, media_type: str) -> tuple[str, int]:
    with blobs.BlobWriter(store) as writer:
        if compression == "gzip":
            # deterministic: no name, mtime 0, pieces cut at fixed offsets (formats/pgzip)
            with pgzip.GzipWriter(writer) as gz:  # type: ignore[arg-type]
                made = _send_tar(store, layer, gz)  # type: ignore[arg-type]
        else:
            # only zstd layers need it: a compiled extension the other formats never load
            import zstandard

            cctx = zstandard.ZstdCompressor(level=3, write_checksum=False, threads=0)
            with cctx.stream_writer(writer, closefd=False) as zw:  # type: ignore[arg-type]
                made = _send_tar(store, layer, zw)  # type: ignore[arg-type]
        if made is not None and made != layer.diff_id:
            raise _no_match(layer, "its directory was changed")
        digest = writer.finish()
        with store.transaction() as conn:
            writer.commit(media_type)
            conn.execute("INSERT OR REPLACE INTO compressed_blobs(diff_id, media_type, digest)"
                         " VALUES(?,?,?)", (layer.diff_id, media_type, digest))
        return digest, writer.size


def _send_tar(store: Store, layer: Layer, sink: IO[bytes]) -> str | None:
    """Write the layer's tar into ``sink``. A tar made again from the layer's directory
    (a layer committed, imported or loaded here that has no blob yet) is hashed on the
    way: its digest is returned for the caller to check against the diffID before the
    result is kept. None for a tar read from the layer's blob."""
    if layer.blob_media_type == layer_store.UNSTORED:
        hasher = dg.HashingWriter(sink)
        archive.write_layer(layer.path(store), hasher, write_behind=True)  # type: ignore[arg-type]
        return hasher.digest
    if layer.blob_media_type == layer_store.TARSPLIT:
        hasher = dg.HashingWriter(sink)
        try:
            with tarsplit.TarStream(layer.path(store), layer.split_path(store)) as src:
                while chunk := src.read(_CHUNK):
                    hasher.write(chunk)
        except StoreCorrupt as exc:
            raise _no_match(layer, str(exc)) from None
        return hasher.digest
    with open_uncompressed(store, layer) as src:
        while chunk := src.read(_CHUNK):
            sink.write(chunk)
    return None


def _no_match(layer: Layer, why: str) -> StoreCorrupt:
    return StoreCorrupt(f"layer {dg.short_id(layer.diff_id)} no longer matches its diffID"
                        f" ({why}); run 'forklift system check --repair'")
