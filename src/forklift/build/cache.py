"""The build cache: step keys and ``builder prune``.

A step's key is the sha256 of its parent image ID, the instruction after expansion
(with the build args it sees), and for COPY/ADD the checksum of its sources. The same
parent and the same inputs give the same image, so the cached image is used instead."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from forklift.store import build_cache
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store


def step_key(parent: str | None, instruction: list[str], args: dict[str, str],
             sources: str = "") -> str:
    material = json.dumps({"parent": parent or "scratch", "instruction": instruction,
                           "args": sorted(args.items()), "sources": sources})
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class PruneResult:
    entries: list[str] = field(default_factory=list)    # keys dropped
    images: list[str] = field(default_factory=list)     # image IDs deleted
    reclaimed: int = 0


def prune(store: Store, all_entries: bool = False, until: float | None = None) -> PruneResult:
    """``builder prune``: drop the cache entries (only those of untagged images unless
    ``all_entries``) and delete the untagged images only they kept: no container uses
    them, no image is built on them. Then free the layers nothing uses any more.
    ``until`` (epoch seconds): only the entries recorded before it."""
    result = PruneResult()
    before = {r[0]: r[1] for r in store.conn.execute("SELECT diff_id, size FROM layers")}
    candidates: set[str] = set()
    with store.transaction():
        recent = build_cache.keys_since(store, until) if until is not None else set()
        for key, image_id in build_cache.entries(store):
            if key in recent:
                continue
            if all_entries or not image_store.tags_of(store, image_id):
                build_cache.delete(store, key)
                result.entries.append(key)
                candidates.add(image_id)
    progress = True
    while progress:  # deleting a step's image may free its parent step's
        progress = False
        for image_id in sorted(candidates):
            if _delete_if_unused(store, image_id):
                candidates.discard(image_id)
                result.images.append(image_id)
                progress = True
    if result.images:
        layer_store.collect_garbage(store)
    after = {r[0] for r in store.conn.execute("SELECT diff_id FROM layers")}
    result.reclaimed = sum(size for d, size in before.items() if d not in after)
    result.reclaimed += _clear_run_mounts(store)
    return result


def _delete_if_unused(store: Store, image_id: str) -> bool:
    with store.transaction():
        if (image_store.get(store, image_id) is None or image_store.tags_of(store, image_id)
                or image_store.digests_of(store, image_id)
                or image_store.children(store, image_id)
                or container_store.users_of_image(store, image_id)
                or store.conn.execute("SELECT 1 FROM build_cache WHERE image_id=?",
                                      (image_id,)).fetchone()):
            return False
        image_store.delete_record(store, image_id)
        return True


def _clear_run_mounts(store: Store) -> int:
    """The ``RUN --mount=type=cache`` directories are build cache too: emptied by prune."""
    from forklift.build import runmounts

    return runmounts.clear_cache_mounts(store)
