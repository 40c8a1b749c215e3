"""Content-addressed blobs: written to scratch, verified, fsynced, renamed into place."""

from __future__ import annotations

import errno
import os
import time

from forklift import digest as dg
from forklift import faults
from forklift.errors import NoSpace, NotFound
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import is on the hot paths
if TYPE_CHECKING:
    from typing import IO


class BlobWriter:
    """Stream bytes into a scratch file while hashing them.

    ``finish`` makes the file durable (and checks an expected digest), ``commit``
    (inside a store transaction) renames it into ``blobs/`` and records it;
    ``discard`` drops it. Used as a context manager it discards unless committed.
    Writes raise NoSpace on a full disk.
    """

    def __init__(self, store: Store, scratch_dir: str | None = None) -> None:
        self.store = store
        base = scratch_dir or store.tmp_dir
        self.path = os.path.join(base, f"{os.getpid()}-blob-{os.urandom(6).hex()}")
        self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115
        self._hasher = dg.HashingWriter(self._file)
        self.committed = False

    def write(self, data: bytes) -> int:
        """Append and hash ``data``; NoSpace on a full disk."""
        try:
            return self._hasher.write(data)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpace("no space left on device while writing a blob") from None
            raise

    def flush(self) -> None:
        self._file.flush()

    @property
    def digest(self) -> str:
        return self._hasher.digest

    @property
    def size(self) -> int:
        return self._hasher.size

    def finish(self, expected: str | None = None) -> str:
        """Close and fsync (once; later calls only verify); returns the digest.
        DigestMismatch if it is not ``expected``, NoSpace on a full disk. Takes no lock."""
        if not self._file.closed:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise NoSpace("no space left on device while writing a blob") from None
                raise
            finally:
                self._file.close()
        if expected is not None:
            dg.verify(expected, self.digest, "blob")
        return self.digest

    def commit(self, media_type: str | None = None) -> str:
        """Finish, then move into the store and record (``record_file``); returns the
        digest. Must run inside ``store.transaction()`` (asserted): the rename and the
        row commit together. A digest the store already has is kept as it is (the
        scratch file is dropped)."""
        assert self.store.conn.in_transaction, "BlobWriter.commit outside a transaction"
        digest = self.finish()
        record_file(self.store, self.path, digest, self.size, media_type)
        self.committed = True
        return digest

    def discard(self) -> None:
        """Close and remove the scratch file unless committed; idempotent, never raises
        for a file already gone."""
        if not self._file.closed:
            self._file.close()
        if not self.committed:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def record_file(store: Store, path: str, digest: str, size: int, media_type: str | None) -> None:
    """Rename a verified file into blobs/ and record its row.

    Must run inside ``store.transaction()`` (asserted): a concurrent garbage collection
    or orphan sweep, which hold the same lock, then never sees the file without its row.
    If the store already has the digest, ``path`` is removed instead.
    Marks the process dirty first, so a crash between rename and commit is swept."""
    assert store.conn.in_transaction, "record_file outside a transaction"
    final = store.blob_path(digest)
    if exists(store, digest) and os.path.exists(final):
        os.unlink(path)
        return
    store.mark_dirty()
    faults.checkpoint("blob-before-rename")
    os.rename(path, final)
    faults.checkpoint("blob-after-rename")
    store.conn.execute(
        "INSERT OR REPLACE INTO blobs(digest, size, media_type, created) VALUES(?,?,?,?)",
        (digest, size, media_type, time.time()),
    )


def put_bytes(store: Store, data: bytes, media_type: str | None = None) -> str:
    """Store a small blob (config, manifest) and return its digest; inside or outside a
    transaction (it opens its own or joins the caller's). Atomic and idempotent: the
    blob is whole or absent. NoSpace on a full disk."""
    digest = dg.of_bytes(data)
    if exists(store, digest) and os.path.exists(store.blob_path(digest)):
        return digest
    writer = BlobWriter(store)
    try:
        writer.write(data)
        writer.finish()
        with store.transaction():
            writer.commit(media_type)
    finally:
        writer.discard()
    return digest


def exists(store: Store, digest: str) -> bool:
    """Whether the store has a row for ``digest`` (its file is not checked)."""
    return store.conn.execute("SELECT 1 FROM blobs WHERE digest=?", (digest,)).fetchone() is not None


def open_blob(store: Store, digest: str) -> IO[bytes]:
    """The blob's file, open for reading (unverified); NotFound if it is missing."""
    try:
        return open(store.blob_path(digest), "rb")
    except FileNotFoundError:
        raise NotFound(f"blob {digest} is missing from the store") from None


def read_bytes(store: Store, digest: str, verify: bool = True) -> bytes:
    """A whole (small) blob; NotFound if missing, DigestMismatch if ``verify`` and its
    content does not hash to ``digest``."""
    with open_blob(store, digest) as f:
        data = f.read()
    if verify:
        dg.verify(digest, dg.of_bytes(data), f"blob {dg.short_id(digest)}")
    return data
