"""Images (identified by config digest), their layer lists and tags.

Reads run inside or outside a transaction; a caller that acts on what it read
(delete if unused, say) reads inside the write transaction that acts.
"""

from __future__ import annotations

import os
import time

from forklift import digest as dg
from forklift import faults, oci, reference
from forklift.errors import Conflict, InvalidArgument, NotFound, StoreCorrupt
from forklift.records import SlotRecord
from forklift.store import blobs, build_cache
from forklift.store.db import Store
from forklift.store.layers import Layer, PreparedLayer

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any


class ImageRecord(SlotRecord):
    """An image row: ID (config digest), parent image, config time, summed layer size.
    (A slotted record, not a dataclass: this module is on the `run` hot path.)"""

    id: str
    parent: str | None
    created: float
    size: int
    added: float
    __slots__ = ("id", "parent", "created", "size", "added")

    def __init__(self, id: str, parent: str | None, created: float, size: int,
                 added: float) -> None:
        self.id, self.parent, self.created, self.size, self.added = (
            id, parent, created, size, added)


def _record(row: Any) -> ImageRecord:
    return ImageRecord(row[0], row[1], row[2], row[3], row[4])


def get(store: Store, image_id: str) -> ImageRecord | None:
    """The image with this full ID, or None."""
    row = store.conn.execute(
        "SELECT id, parent, created, size, added FROM images WHERE id=?", (image_id,)
    ).fetchone()
    return _record(row) if row else None


def all_images(store: Store) -> list[ImageRecord]:
    """Every image, in no particular order."""
    rows = store.conn.execute("SELECT id, parent, created, size, added FROM images").fetchall()
    return [_record(r) for r in rows]


def config(store: Store, image_id: str) -> dict[str, Any]:
    """The image's config, parsed (not re-hashed: ``system check`` verifies blobs).
    NotFound if its blob is missing, BadArchive if it is not a JSON object."""
    data = blobs.read_bytes(store, image_id, verify=False)
    return oci.loads_object(data, f"image config {dg.short_id(image_id)}")


def layers(store: Store, image_id: str) -> list[Layer]:
    """The image's layers, bottom first (empty for an unknown ID); StoreCorrupt if
    one of its layer rows is missing."""
    rows = store.conn.execute(
        "SELECT l.diff_id, l.dir, l.size, l.blob, l.blob_media_type FROM image_layers il"
        " JOIN layers l ON l.diff_id = il.diff_id WHERE il.image_id=? ORDER BY il.position",
        (image_id,),
    ).fetchall()
    expected = store.conn.execute(
        "SELECT COUNT(*) FROM image_layers WHERE image_id=?", (image_id,)
    ).fetchone()[0]
    if len(rows) != expected:
        raise StoreCorrupt(f"image {dg.short_id(image_id)} refers to a missing layer")
    return [Layer(*r) for r in rows]


def add(store: Store, config_bytes: bytes, prepared: list[PreparedLayer],
        parent: str | None = None, tags: list[str] | None = None) -> str:
    """Record an image: its config blob, its layers (registered now) and tags; returns
    the image ID.

    All in one transaction (its own, or the caller's it joins), so the image appears
    whole or not at all. Idempotent: an image already there keeps its row and gains
    the tags. InvalidArgument if the config's diff_ids are not ``prepared``'s;
    what ``PreparedLayer.register`` raises; NoSpace on a full disk. The caller still
    owns ``prepared`` (``cleanup`` after).
    """
    cfg = oci.loads_object(config_bytes, "image config")
    diff_ids = oci.image_diff_ids(cfg)
    if [p.diff_id for p in prepared] != diff_ids:
        raise InvalidArgument("image config diff_ids do not match its layers")
    image_id = dg.of_bytes(config_bytes)
    # Always staged: a config blob seen outside the transaction may be collected
    # (by a concurrent rmi) before the transaction starts.
    config_writer = blobs.BlobWriter(store)
    config_writer.write(config_bytes)
    config_writer.finish()
    try:
        with store.transaction() as conn:
            registered = [p.register() for p in prepared]
            if not (blobs.exists(store, image_id) and os.path.exists(store.blob_path(image_id))):
                config_writer.commit(oci.OCI_CONFIG)
            if get(store, image_id) is None:
                size = sum(layer.size for layer in registered)
                conn.execute(
                    "INSERT INTO images(id, parent, created, size, added) VALUES(?,?,?,?,?)",
                    (image_id, parent, oci.parse_time(cfg.get("created")), size, time.time()),
                )
                conn.executemany(
                    "INSERT INTO image_layers(image_id, position, diff_id) VALUES(?,?,?)",
                    [(image_id, i, d) for i, d in enumerate(diff_ids)],
                )
            for tag in tags or []:
                set_tag(store, tag, image_id)
            faults.checkpoint("image-before-commit")
        faults.checkpoint("image-after-commit")
    finally:
        config_writer.discard()
    return image_id


# ----------------------------------------------------------------------------- tags

def set_tag(store: Store, name: str, image_id: str) -> None:
    """Point normalized ``name`` at ``image_id``, moving it from any other image
    (inside or outside a transaction). Idempotent; does not check the image exists."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO tags(name, image_id, added) VALUES(?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id, added=excluded.added",
            (name, image_id, time.time()),
        )
        faults.checkpoint("tag-before-commit")


def tags_of(store: Store, image_id: str) -> list[str]:
    """The image's normalized tags, oldest first."""
    rows = store.conn.execute(
        "SELECT name FROM tags WHERE image_id=? ORDER BY added, name", (image_id,)
    ).fetchall()
    return [r[0] for r in rows]


def digests_of(store: Store, image_id: str) -> list[str]:
    """The image's ``repository@digest`` references (pulled or pushed manifests)."""
    rows = store.conn.execute(
        "SELECT repository, digest FROM repo_digests WHERE image_id=? ORDER BY repository",
        (image_id,),
    ).fetchall()
    return [f"{r[0]}@{r[1]}" for r in rows]


def all_tags(store: Store) -> list[tuple[str, str]]:
    """Every (normalized tag, image ID)."""
    return [(r[0], r[1]) for r in store.conn.execute("SELECT name, image_id FROM tags")]


def lookup_tag(store: Store, name: str) -> str | None:
    """The image ID a normalized tag points at, or None."""
    row = store.conn.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
    return row[0] if row else None


def remove_tag(store: Store, name: str) -> bool:
    """Remove a normalized tag (its own transaction, or the caller's); False if there
    was none. The image stays, even if now untagged."""
    with store.transaction() as conn:
        return conn.execute("DELETE FROM tags WHERE name=?", (name,)).rowcount > 0


# ----------------------------------------------------------------------------- lookup

def resolve(store: Store, text: str) -> str:
    """Find an image by reference, digest reference, full ID or unique ID prefix;
    returns its ID. NotFound if nothing matches, Conflict for an ambiguous prefix,
    InvalidArgument for text that is neither a reference nor an ID prefix."""
    if text.startswith("sha256:") and dg.is_digest(text) and get(store, text):
        return text
    ref_error: InvalidArgument | None = None
    try:
        ref = reference.parse(text)
    except InvalidArgument as exc:
        ref = None
        ref_error = exc
    if ref is not None:
        if ref.digest:
            row = store.conn.execute(
                "SELECT image_id FROM repo_digests WHERE repository=? AND digest=?",
                (ref.repository, ref.digest),
            ).fetchone()
            if row:
                return str(row[0])
        elif ref.tag:
            found = lookup_tag(store, str(ref))
            if found:
                return found
    if reference.looks_like_id_prefix(text):
        body = text[7:] if text.startswith("sha256:") else text
        rows = store.conn.execute(
            "SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
            (f"sha256:{body}", f"sha256:{body}\x7f"),
        ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise Conflict(f"image ID prefix {text!r} is ambiguous")
    if ref_error is not None and not reference.looks_like_id_prefix(text):
        raise ref_error
    raise NotFound(f"No such image: {ref.familiar() if ref else text}")


def children(store: Store, image_id: str) -> list[str]:
    """IDs of the images whose parent is ``image_id``."""
    rows = store.conn.execute("SELECT id FROM images WHERE parent=?", (image_id,)).fetchall()
    return [r[0] for r in rows]


def delete_record(store: Store, image_id: str) -> None:
    """Remove the image row, its layer list, tags and digest references, and make its
    children parentless. Must run inside the caller's transaction (asserted), which
    also checks that nothing uses the image; its layers and blobs are left to
    ``layers.collect_garbage`` after the commit."""
    assert store.conn.in_transaction, "delete_record outside a transaction"
    conn = store.conn
    conn.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
    conn.execute("DELETE FROM repo_digests WHERE image_id=?", (image_id,))
    conn.execute("DELETE FROM image_layers WHERE image_id=?", (image_id,))
    conn.execute("DELETE FROM images WHERE id=?", (image_id,))
    conn.execute("UPDATE images SET parent=NULL WHERE parent=?", (image_id,))
    build_cache.forget_image(store, image_id)
