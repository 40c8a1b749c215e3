"""Layers: each diffID extracted once under ``layers/<dir>/diff`` and shared.

Making a layer is two-phase so that a layer and the image that uses it appear in
the same transaction (a concurrent garbage collection can never see the layer
unreferenced): ``ingest`` extracts into scratch space outside any lock, then
``PreparedLayer.register`` moves it into place inside the caller's transaction.
"""

from __future__ import annotations

import os
import time

from forklift import digest as dg
from forklift import faults, oci
from forklift import limits as limits_mod
from forklift.errors import BadArchive, Conflict, ForkliftError, LimitExceeded, StoreCorrupt
from forklift.limits import Limits
from forklift.records import SlotRecord
from forklift.store import blobs
from forklift.store.db import Store, remove_path

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable
    from typing import IO

    from forklift.archive import ExtractStats

# A layer made here from a container's changes keeps no tar: write_layer of its
# directory gives the same bytes again. layerblobs.materialize makes the blob the
# first time something needs it (save, push) and then records it as usual.
UNSTORED = "application/vnd.forklift.layer.v1.tar+unstored"
# A layer imported or loaded uncompressed keeps no tar either: its directory and the
# tar-split recorded while it was extracted (``layers/<dir>/tar-split``, see
# ``forklift.tarsplit``) give the same bytes again; materialize makes the blob as above.
TARSPLIT = "application/vnd.forklift.layer.v1.tar+tarsplit"
TAR_SPLIT = "tar-split"


class Layer(SlotRecord):
    """A layer row: its directory under ``layers/`` and the blob that reproduces its tar.
    (Slotted records here, not dataclasses: this module is on the `run` hot path.)"""

    diff_id: str
    dir: str
    size: int
    blob: str
    blob_media_type: str
    __slots__ = ("diff_id", "dir", "size", "blob", "blob_media_type")

    def __init__(self, diff_id: str, dir: str, size: int, blob: str,
                 blob_media_type: str) -> None:
        self.diff_id, self.dir, self.size = diff_id, dir, size
        self.blob, self.blob_media_type = blob, blob_media_type

    def path(self, store: Store) -> str:
        return store.layer_path(self.dir)

    def split_path(self, store: Store) -> str:
        """Where a TARSPLIT layer keeps its tar-split, next to its directory."""
        return os.path.join(store.layers_dir, self.dir, TAR_SPLIT)


class PreparedLayer(SlotRecord):
    """A layer extracted into scratch space, not yet part of the store."""

    store: Store
    diff_id: str
    size: int
    scratch: str | None
    blob: blobs.BlobWriter | None
    blob_media_type: str
    existing: bool
    __slots__ = ("store", "diff_id", "size", "scratch", "blob", "blob_media_type", "existing")

    def __init__(self, store: Store, diff_id: str, size: int, scratch: str | None = None,
                 blob: blobs.BlobWriter | None = None, blob_media_type: str = oci.OCI_LAYER,
                 existing: bool = False) -> None:
        self.store, self.diff_id, self.size, self.scratch = store, diff_id, size, scratch
        self.blob, self.blob_media_type, self.existing = blob, blob_media_type, existing

    def register(self) -> Layer:
        """Make the layer part of the store and return its row.

        Must run inside ``store.transaction()`` (asserted), with the rows that use the
        layer, so a concurrent garbage collection never sees it unreferenced. A layer
        the store already has is returned as it is (the scratch copy stays for
        ``cleanup``). Conflict if a layer this was prepared to reuse was removed
        meanwhile (try again); StoreCorrupt if its row has no directory."""
        assert self.store.conn.in_transaction, "PreparedLayer.register outside a transaction"
        found = get(self.store, self.diff_id)
        if found is not None:
            if not os.path.isdir(found.path(self.store)):
                raise StoreCorrupt(f"layer {self.diff_id} is recorded but its directory is missing")
            return found
        unstored = self.blob_media_type in (UNSTORED, TARSPLIT)
        if self.existing or self.scratch is None or (self.blob is None and not unstored):
            raise Conflict(f"layer {dg.short_id(self.diff_id)} was removed while in use; try again")
        self.store.mark_dirty()
        blob_digest = self.diff_id if self.blob is None else self.blob.commit(self.blob_media_type)
        name = os.urandom(6).hex()
        os.mkdir(os.path.join(self.store.layers_dir, name), 0o700)
        if self.blob_media_type == TARSPLIT:
            os.rename(os.path.join(self.scratch, TAR_SPLIT),
                      os.path.join(self.store.layers_dir, name, TAR_SPLIT))
        faults.checkpoint("layer-before-rename")
        os.rename(os.path.join(self.scratch, "diff"), self.store.layer_path(name))
        faults.checkpoint("layer-after-rename")
        self.store.conn.execute(
            "INSERT INTO layers(diff_id, dir, size, blob, blob_media_type, created) VALUES(?,?,?,?,?,?)",
            (self.diff_id, name, self.size, blob_digest, self.blob_media_type, time.time()),
        )
        return Layer(self.diff_id, name, self.size, blob_digest, self.blob_media_type)

    def cleanup(self) -> None:
        """Drop the scratch copy and blob (those not registered); idempotent."""
        if self.blob is not None:
            self.blob.discard()
        if self.scratch is not None:
            remove_path(self.scratch)


def get(store: Store, diff_id: str) -> Layer | None:
    """The layer row for ``diff_id``, or None."""
    row = store.conn.execute(
        "SELECT diff_id, dir, size, blob, blob_media_type FROM layers WHERE diff_id=?", (diff_id,)
    ).fetchone()
    return Layer(*row) if row else None


def reuse(store: Store, diff_id: str) -> PreparedLayer | None:
    """A PreparedLayer for a layer the store already has (nothing to copy), or None.
    Its ``register`` raises Conflict if the layer is collected before it runs."""
    found = get(store, diff_id)
    if found is None:
        return None
    return PreparedLayer(store, diff_id, found.size, existing=True)


# An import stores its input as the layer blob. GNU tar pads an archive to whole
# records (10 KiB by default) after the end-of-archive marker and Docker hashes that
# padding into the diffID; so a small tail is kept (same diffID as Docker's). A
# larger one is never read: the blob and diffID cover the archive up to its marker.
TRAILER_KEEP = 1 << 20


def _decoder_errors(action: Callable[[], object]) -> object:
    """Run ``action``; a decoder error past the tar's end (bad CRC, junk) is bad input."""
    try:
        return action()
    except (ForkliftError, KeyboardInterrupt):
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise BadArchive(f"layer data is corrupt: {exc}") from None
    except Exception as exc:
        raise BadArchive(f"layer data is corrupt: {exc}") from None


def _drain(reader: dg.HashingReader) -> None:
    """Read past the tar's end to EOF: the digest covers what the producer hashed."""
    _decoder_errors(reader.drain)


def _keep_small_trailer(source: IO[bytes], hasher: dg.HashingReader) -> None:
    """Hash and store what follows the end-of-archive marker only if it is small."""
    def read_tail() -> bytes:
        parts: list[bytes] = []
        got = 0
        while got <= TRAILER_KEEP:
            chunk = source.read(TRAILER_KEEP + 1 - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    tail = _decoder_errors(read_tail)
    assert isinstance(tail, bytes)
    if len(tail) <= TRAILER_KEEP:
        hasher.absorb(tail)


def ingest(store: Store, raw: IO[bytes], *, expected_diff_id: str | None = None,
           compressed_digest: str | None = None, media_type: str | None = None,
           limits: Limits | None = None, blob: blobs.BlobWriter | None = None,
           raw_digest: Callable[[], str] | None = None) -> PreparedLayer:
    """Extract a layer tar (compressed or not) into scratch space.

    Without ``compressed_digest`` the stored blob is the uncompressed tar (its digest
    is the diffID). With it, the original compressed bytes are kept under that digest
    so a later push re-sends exactly what was pulled. Without ``expected_diff_id``
    (import: the input is the layer) what follows the tar's end is kept only while
    small (TRAILER_KEEP); with it (load, pull) every decompressed byte is hashed,
    as the producer did. Decompressed bytes count against ``limits.max_layer_size``
    (the store's limits by default): LimitExceeded, nothing kept.

    ``blob`` (pull, with ``compressed_digest``): a writer in ``store.tmp_dir`` that
    ``raw`` itself copies every byte it reads into (hashing them there, once); the
    layer owns it from the call on, whatever happens.

    ``raw_digest`` (pull, with ``compressed_digest``, no ``blob``): ``raw`` hashes what it
    reads itself and this gives its digest once it is read to the end. The compressed
    bytes are then not kept: the layer is its directory plus a tar-split (``TARSPLIT``,
    as an import's), so each byte is written once; the caller records where the blob
    came from (``layer_sources``) for a later push.

    Runs outside any transaction (it takes no lock; the result is registered by the
    caller's). Raises BadArchive for a malformed or hostile tar, DigestMismatch when
    ``expected_diff_id`` or ``compressed_digest`` do not match, NoSpace on a full disk;
    on any error the scratch space is removed.
    """
    prepared = PreparedLayer(store, "", 0, blob=blob)
    try:
        limits = limits or limits_mod.load(store.root)
        prepared.scratch = scratch = store.make_tmp("layer")
        target = os.path.join(scratch, "diff")
        os.mkdir(target, 0o755)
        if blob is not None and compressed_digest is not None:
            inner, stats = _extract_pulled(raw, target, blob, compressed_digest,
                                           limits.max_layer_size)
            prepared.blob_media_type = media_type or oci.OCI_LAYER_GZIP
        elif raw_digest is not None and compressed_digest is not None:
            writer = prepared.blob = blobs.BlobWriter(store, scratch)
            inner, stats, split = _extract_pulled_split(raw, target, writer, raw_digest,
                                                        compressed_digest, limits.max_layer_size)
            prepared.blob_media_type = oci.OCI_LAYER
            if split:  # the directory and its tar-split give the tar: no blob written
                writer.discard()
                prepared.blob, prepared.blob_media_type = None, TARSPLIT
        elif compressed_digest is not None:
            writer = prepared.blob = blobs.BlobWriter(store, scratch)
            inner, stats = _extract_compressed(raw, target, writer, compressed_digest,
                                               limits.max_layer_size)
            prepared.blob_media_type = media_type or oci.OCI_LAYER_GZIP
        else:
            writer = prepared.blob = blobs.BlobWriter(store, scratch)
            inner, stats, split = _extract_plain(raw, target, writer, limits.max_layer_size,
                                                 keep_all=expected_diff_id is not None)
            prepared.blob_media_type = media_type or oci.OCI_LAYER
            if split:  # the directory and its tar-split give the tar: no blob written
                writer.discard()
                prepared.blob, prepared.blob_media_type = None, TARSPLIT
        if expected_diff_id is not None:
            dg.verify(expected_diff_id, inner.digest, "layer")
        prepared.diff_id = inner.digest
        prepared.size = stats.size
        faults.checkpoint("layer-extracted")
        return prepared
    except LimitExceeded:
        prepared.cleanup()
        raise (limits or limits_mod.load(store.root)).size_exceeded() from None
    except BaseException:
        prepared.cleanup()
        raise


def _extract_compressed(raw: IO[bytes], target: str, writer: blobs.BlobWriter, digest: str,
                        cap: int) -> tuple[dg.HashingReader, ExtractStats]:
    """The blob keeps the compressed bytes (checked against ``digest``); the diffID is
    the digest of everything they decompress to."""
    from forklift import archive  # imports tarfile: kept off the run hot path

    outer = dg.HashingReader(raw, sink=writer)
    stream, _ = archive.decompressed(outer)  # type: ignore[arg-type]
    inner = dg.HashingReader(archive.LimitedReader(stream, cap))  # type: ignore[arg-type]
    try:
        stats = archive.extract(inner, target, max_size=cap)  # type: ignore[arg-type]
        _drain(inner)
    except BadArchive:
        # Undecodable bytes under a known digest: say whether the bytes were wrong.
        _drain(outer)
        writer.finish(expected=digest)
        raise
    _drain(outer)
    writer.finish(expected=digest)
    return inner, stats


def _extract_pulled(raw: IO[bytes], target: str, writer: blobs.BlobWriter, digest: str,
                    cap: int) -> tuple[dg.HashingReader, ExtractStats]:
    """``_extract_compressed`` for a stream that writes its bytes into ``writer`` itself
    (the compressed bytes are hashed once, by the writer), as a two-stage pipeline: this
    thread downloads, a helper thread decompresses, hashes the diffID and extracts, so
    both halves of the work run at once (hashing, zlib and file writes release the GIL)."""
    handoff = _two_stage(raw, lambda h: h.consume(target, cap))
    failure = handoff.failure
    # Undecodable bytes under a known digest: say whether the bytes were wrong first.
    writer.finish(expected=digest)
    if failure is not None:
        raise failure
    assert handoff.result is not None
    return handoff.result


def _extract_pulled_split(raw: IO[bytes], target: str, writer: blobs.BlobWriter,
                          raw_digest: Callable[[], str], digest: str,
                          cap: int) -> tuple[dg.HashingReader, ExtractStats, bool]:
    """``_extract_pulled`` keeping a tar-split instead of the compressed bytes: True when
    the tar-split (next to ``target``) gives the tar back, False when the extractor could
    not keep every payload and the uncompressed tar went into ``writer``."""
    handoff = _two_stage(raw, lambda h: h.consume_split(target, cap, writer))
    failure = handoff.failure
    # Undecodable bytes under a known digest: say whether the bytes were wrong first.
    dg.verify(digest, raw_digest(), f"blob {dg.short_id(digest)}")
    if failure is not None:
        raise failure
    assert handoff.result is not None
    return (*handoff.result, handoff.split)


def _two_stage(raw: IO[bytes], consume: Callable[[_Handoff], None]) -> _Handoff:
    """Run ``consume`` on a helper thread while this one pumps ``raw`` into it; raise the
    extracting side's failure unless it is a `BadArchive` (the caller first checks the
    blob's digest, then raises it)."""
    import threading  # only a pull's download handoff starts a thread

    handoff = _Handoff()
    worker = threading.Thread(target=consume, args=(handoff,),
                              name="forklift-layer-extract", daemon=True)
    worker.start()
    try:
        _pump(raw, handoff)
    finally:
        handoff.end(worker)
    failure = handoff.failure
    if failure is not None and not isinstance(failure, BadArchive):
        raise failure
    return handoff


_PIECE = 256 << 10


def _pump(raw: IO[bytes], handoff: _Handoff) -> None:
    """Read ``raw`` to its end, handing it over in pieces of about 256 KiB. Once the
    extracting side has failed nothing more is handed over: the rest is only read
    (so the blob's digest can be checked), unless the failure makes that pointless."""
    parts: list[bytes] = []
    held = 0
    while True:
        failure = handoff.failure
        if failure is not None and not isinstance(failure, BadArchive):
            return
        chunk = raw.read(_PIECE)
        parts.append(chunk)
        held += len(chunk)
        if held and (held >= _PIECE or not chunk):
            if failure is None:
                handoff.put(b"".join(parts))
            parts, held = [], 0
        if not chunk:
            return


class _Handoff:
    """The compressed stream passed from the downloading thread to the extracting one
    through a short queue (a few pieces: memory stays flat)."""

    def __init__(self) -> None:
        import queue  # heapq & co.: only a pull hands pieces over, not a `run`

        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._full, self._empty = queue.Full, queue.Empty
        self._piece = b""
        self._ended = False
        self.failure: BaseException | None = None
        self.result: tuple[dg.HashingReader, ExtractStats] | None = None
        self.split = False

    # -- the downloading side
    def put(self, piece: bytes | None) -> None:
        """Queue ``piece`` (None: no more) unless the extracting side has stopped."""
        while self.failure is None and self.result is None:
            try:
                self._queue.put(piece, timeout=0.5)
                return
            except self._full:
                continue

    def end(self, worker: threading.Thread) -> None:
        """No more pieces (a download that failed ends the stream short, an error for
        the extracting side); wait for that side to finish."""
        self.put(None)
        worker.join()

    # -- the extracting side
    def read(self, n: int = -1) -> bytes:
        if not self._piece:
            piece = self._queue.get() if not self._ended else None
            if piece is None:
                self._ended = True
                return b""
            self._piece = piece
        if 0 <= n < len(self._piece):
            out, self._piece = self._piece[:n], self._piece[n:]
            return out
        out, self._piece = self._piece, b""
        return out

    def consume(self, target: str, cap: int) -> None:
        from forklift import archive  # imports tarfile: kept off the run hot path

        try:
            stream, _ = archive.decompressed_fast(self)  # type: ignore[arg-type]
            inner = dg.HashingReader(archive.LimitedReader(stream, cap))  # type: ignore[arg-type]
            stats = archive.extract(inner, target, max_size=cap)  # type: ignore[arg-type]
            _drain(inner)
            self.result = inner, stats
        except BaseException as exc:  # noqa: BLE001 - handed to the downloading thread
            self.failure = exc
        finally:
            self._drop_queued()

    def consume_split(self, target: str, cap: int, writer: blobs.BlobWriter) -> None:
        """``consume``, recording the tar-split (``_extract_plain``'s way) as it extracts."""
        from forklift import archive, tarsplit  # archive imports tarfile: off the run hot path

        try:
            stream, _ = archive.decompressed_fast(self)  # type: ignore[arg-type]
            recorder = tarsplit.Recorder(os.path.join(os.path.dirname(target), TAR_SPLIT),
                                         target, writer)
            try:
                inner = dg.HashingReader(archive.LimitedReader(stream, cap), sink=recorder)  # type: ignore[arg-type]
                stats = archive.extract(inner, target, max_size=cap, split=recorder)  # type: ignore[arg-type]
                _drain(inner)
                self.split = recorder.finish()
            except BaseException:
                recorder.discard()
                raise
            writer.finish()
            self.result = inner, stats
        except BaseException as exc:  # noqa: BLE001 - handed to the downloading thread
            self.failure = exc
        finally:
            self._drop_queued()

    def _drop_queued(self) -> None:
        """Whatever is still queued is not needed: let a blocked ``put`` through."""
        while True:
            try:
                self._queue.get_nowait()
            except self._empty:
                return


def _drain_raw(raw: IO[bytes]) -> None:
    """Read the compressed stream to its end (its reader copies it into the blob)."""
    def drain() -> None:
        while raw.read(1 << 20):
            pass

    _decoder_errors(drain)


def _extract_plain(raw: IO[bytes], target: str, writer: blobs.BlobWriter, cap: int,
                   keep_all: bool) -> tuple[dg.HashingReader, ExtractStats, bool]:
    """The tar is the layer; past its end, all of it (``keep_all``) or a small tail only.
    It is recorded as a tar-split next to ``target`` (True), or, when the extractor
    cannot keep every payload on disk as it was, written whole into ``writer`` (False)."""
    from forklift import archive, tarsplit  # archive imports tarfile: off the run hot path

    stream, _ = archive.decompressed(raw)
    recorder = tarsplit.Recorder(os.path.join(os.path.dirname(target), TAR_SPLIT), target, writer)
    try:
        inner = dg.HashingReader(archive.LimitedReader(stream, cap), sink=recorder)  # type: ignore[arg-type]
        stats = archive.extract(inner, target, max_size=cap, split=recorder)  # type: ignore[arg-type]
        if keep_all:
            _drain(inner)
        else:
            _keep_small_trailer(stream, inner)  # at most 1 MiB, not held to the limit
        split = recorder.finish()
    except BaseException:
        recorder.discard()
        raise
    writer.finish()
    return inner, stats, split


def from_directory(store: Store, upper: str, clamp_mtime: int | None = None) -> PreparedLayer:
    """Make a layer from an overlay upper directory (a container's changes).

    The deterministic tar of ``upper`` is hashed (its digest is the diffID) and
    extracted on the fly into scratch space; no tar file is written, so a commit
    writes its data once, as Docker's does. See UNSTORED. Takes no lock; on any
    error the scratch space is removed. ``clamp_mtime`` (SOURCE_DATE_EPOCH): no entry's
    mtime later than this, in the tar and so in the extracted layer.
    """
    from forklift import archive  # imports tarfile: kept off the run hot path

    scratch = store.make_tmp("commit")
    prepared = PreparedLayer(store, "", 0, scratch=scratch, blob_media_type=UNSTORED)
    try:
        target = os.path.join(scratch, "diff")
        os.mkdir(target, 0o755)
        prepared.diff_id, stats = archive.copy_layer(upper, target, clamp_mtime)
        prepared.size = stats.size
        faults.checkpoint("layer-extracted")
        return prepared
    except BaseException:
        prepared.cleanup()
        raise


def from_upper(store: Store, upper: str, clamp_mtime: int | None = None) -> PreparedLayer:
    """Make a layer of an upper directory that nothing mounts or writes any more (a
    finished build step's) by moving it into the store: its data is written once.

    The directory is first settled (``archive.settle_in_place``) so that it is exactly
    what extracting its tar would give, then moved and hashed; on error the moved copy
    is removed. Where it cannot be settled or moved (another filesystem), it is copied
    as ``from_directory`` does and left where it is. The caller guarantees that no mount
    uses ``upper`` and no process can write to it: after this, it is a layer, which must
    never change.
    """
    from forklift import archive  # imports tarfile: kept off the run hot path

    scratch = store.make_tmp("commit")
    prepared = PreparedLayer(store, "", 0, scratch=scratch, blob_media_type=UNSTORED)
    target = os.path.join(scratch, "diff")
    try:
        archive.settle_in_place(upper, clamp_mtime)
        os.rename(upper, target)
    except OSError:
        prepared.cleanup()
        return from_directory(store, upper, clamp_mtime)
    try:
        prepared.diff_id, prepared.size = archive.hash_layer(target)
        faults.checkpoint("layer-extracted")
        return prepared
    except BaseException:
        prepared.cleanup()
        raise


def collect_garbage(store: Store) -> list[str]:
    """Drop layers no image (and no container that outlived its image) uses, and blobs
    nothing refers to.

    Rows go inside a transaction; files are removed after it commits (a crash in
    between leaves only orphans, which ``recovery.sweep_orphans`` removes). Blob files are
    unlinked in a second transaction after re-checking their rows: blob paths are
    content-addressed, so a concurrent writer may have re-added the same digest
    after the first commit, and its file must not be deleted.

    Must run outside any transaction (asserted): its files go only after its own
    commit. Returns the removed paths; idempotent.
    """
    assert not store.conn.in_transaction, "collect_garbage inside a transaction"
    doomed: list[str] = []
    doomed_blobs: list[str] = []
    store.mark_dirty()
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT diff_id, dir FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)"
            " AND diff_id NOT IN (SELECT diff_id FROM container_layers)"
        ).fetchall()
        for diff_id, name in rows:
            conn.execute("DELETE FROM layers WHERE diff_id=?", (diff_id,))
            doomed.append(os.path.join(store.layers_dir, name))
        blob_rows = conn.execute(
            "SELECT digest FROM blobs WHERE digest NOT IN (SELECT blob FROM layers)"
            " AND digest NOT IN (SELECT id FROM images)"
            " AND digest NOT IN (SELECT digest FROM repo_digests)"
            " AND digest NOT IN (SELECT c.digest FROM compressed_blobs c JOIN layers l"
            "                    ON l.diff_id = c.diff_id)"
        ).fetchall()
        conn.execute("DELETE FROM compressed_blobs WHERE diff_id NOT IN (SELECT diff_id FROM layers)")
        conn.execute("DELETE FROM layer_sources WHERE diff_id NOT IN (SELECT diff_id FROM layers)")
        for (digest,) in blob_rows:
            conn.execute("DELETE FROM blobs WHERE digest=?", (digest,))
            doomed_blobs.append(digest)
    faults.checkpoint("gc-after-commit")
    for i, path in enumerate(doomed):
        remove_path(path)
        if i == 0:
            faults.checkpoint("gc-mid-remove")
    if doomed_blobs:
        with store.transaction() as conn:
            for digest in doomed_blobs:
                if conn.execute("SELECT 1 FROM blobs WHERE digest=?", (digest,)).fetchone() is None:
                    remove_path(store.blob_path(digest))
                    doomed.append(store.blob_path(digest))
    return doomed


def clear_opaque(layer_dir: str, target: str) -> None:
    """An opaque directory in a later layer hides what earlier layers put in it: those
    entries go before the later layer is applied (a squash, a commit merging a container's
    own layer with its upper directory)."""
    from forklift.archive import OPAQUE_XATTR

    for dirpath, dirnames, _files in os.walk(layer_dir):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            try:
                opaque = os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
            except OSError:
                opaque = False
            rel = os.path.relpath(path, layer_dir)
            if opaque and _real_dir(target, rel):
                where = os.path.join(target, rel)
                for entry in os.listdir(where):
                    remove_path(os.path.join(where, entry))


def _real_dir(target: str, rel: str) -> bool:
    """Whether ``rel`` is a directory below ``target`` reached through no symlink (an
    earlier layer's link must never lead this clearing out of ``target``)."""
    import stat

    here = target
    for part in rel.split("/"):
        here = os.path.join(here, part)
        try:
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                return False
        except FileNotFoundError:
            return False
    return True
