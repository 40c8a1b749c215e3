"""The build cache: a build step's key → the image that step made.

A row only points at an image; the image keeps its layers. ``images.delete_record``
drops the rows of an image it deletes, so a row whose image is missing is damage
(``system check`` reports it, ``--repair`` drops it); readers ignore such rows anyway.
"""

from __future__ import annotations

import time

from forklift.store.db import Store


def lookup(store: Store, key: str) -> str | None:
    """The image recorded for ``key`` if that image still exists, else None."""
    row = store.conn.execute(
        "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.key=?",
        (key,)).fetchone()
    return str(row[0]) if row else None


def record(store: Store, key: str, image_id: str) -> None:
    """Point ``key`` at ``image_id`` (replacing an older entry); own or caller's transaction."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO build_cache(key, image_id, created) VALUES(?,?,?)"
                     " ON CONFLICT(key) DO UPDATE SET image_id=excluded.image_id,"
                     " created=excluded.created", (key, image_id, time.time()))


def entries(store: Store) -> list[tuple[str, str]]:
    """Every (key, image ID)."""
    return [(r[0], r[1]) for r in store.conn.execute("SELECT key, image_id FROM build_cache")]


def forget_image(store: Store, image_id: str) -> None:
    """Drop the entries of an image being deleted (inside the caller's transaction)."""
    store.conn.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))


def delete(store: Store, key: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM build_cache WHERE key=?", (key,))


def keys_since(store: Store, since: float) -> set[str]:
    """The keys recorded at or after ``since`` (epoch seconds): what ``until=`` keeps."""
    return {r[0] for r in store.conn.execute("SELECT key FROM build_cache WHERE created >= ?",
                                             (since,))}
