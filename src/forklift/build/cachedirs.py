"""``build --cache-to type=local,dest=DIR`` / ``--cache-from type=local,src=DIR``.

The cache travels as an OCI image layout: every step image of a build, named
``forklift-buildcache:<step key>`` (an image made by several keys carries each name).
Importing records those images (untagged) and their keys in one transaction, after
every blob was verified, so a broken or hostile directory changes nothing."""

from __future__ import annotations

import os
import re

from forklift import reference
from forklift.errors import BadArchive, InvalidArgument
from forklift.store.db import Store

REPOSITORY = "forklift-buildcache"
_KEY = re.compile(r"[0-9a-f]{64}")


def parse(text: str, path_key: str) -> str:
    """The directory of ``type=local,<path_key>=DIR`` (``dest`` for --cache-to, ``src``
    for --cache-from)."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key in fields:
            raise InvalidArgument(f"invalid cache spec {text!r}: type=local,{path_key}=DIR")
        fields[key] = value
    if fields.get("type") != "local":
        raise InvalidArgument(f"unsupported cache type in {text!r}: only type=local")
    extra = set(fields) - {"type", path_key, "mode", "compression"}
    if extra or not fields.get(path_key):
        raise InvalidArgument(f"invalid cache spec {text!r}: type=local,{path_key}=DIR")
    return fields[path_key]


def check_dest(path: str) -> None:
    """Refused before the build runs: a --cache-to that is not a new directory, an empty
    one or an OCI layout (a symlink included), or whose parent is missing."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InvalidArgument(f"--cache-to {path}: {parent} is not a directory")
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path) or (
            os.listdir(path) and not os.path.isfile(os.path.join(path, "oci-layout"))):
        raise InvalidArgument(f"--cache-to {path}: not an empty directory or an OCI image layout")


def export(store: Store, entries: list[tuple[str, str]], path: str) -> None:
    """Write the (step key, image ID) ``entries`` to the layout ``path`` (new, empty or a
    layout to add to)."""
    from forklift.engine import transfer

    names: dict[str, list[str]] = {}
    for key, image_id in entries:
        names.setdefault(image_id, []).append(f"{REPOSITORY}:{key}")
    from forklift.formats.plan import SavedImage
    from forklift.store import blobs
    from forklift.store import images as image_store

    images = [SavedImage(image_id, blobs.read_bytes(store, image_id),
                         image_store.layers(store, image_id), tags)
              for image_id, tags in names.items()]
    transfer.save_layout(store, images, path, "gzip")


def import_dir(store: Store, path: str) -> int:
    """Record the step images of the layout ``path`` and their keys; returns how many keys."""
    from forklift import limits as limits_mod
    from forklift.engine import transfer
    from forklift.formats import detect, oci_layout
    from forklift.store import build_cache
    from forklift.store import images as image_store

    if not os.path.isdir(path) or os.path.islink(path):
        raise InvalidArgument(f"--cache-from {path}: not a directory")
    limits = limits_mod.for_store(store.root)
    with detect.open_source(store, path, limits) as src:
        if detect.detect(src) != detect.OCI:
            raise BadArchive(f"--cache-from {path}: not an OCI image layout")
        plans = oci_layout.read_plans(src)
        keys = [[_key(tag, path) for tag in plan.tags] for plan in plans]
        if not plans or not all(keys):
            raise BadArchive(f"--cache-from {path}: an image without a build cache key")
        with transfer.staging_area() as staging:
            staged = [transfer.stage_image(store, src, plan, staging, limits) for plan in plans]
            with store.transaction():
                for item, item_keys in zip(staged, keys, strict=True):
                    image_id = image_store.add(store, item.config, item.layers)
                    for key in item_keys:
                        build_cache.record(store, key, image_id)
    return sum(map(len, keys))


def _key(tag: str, path: str) -> str:
    ref = reference.parse(tag)
    if ref.repository != reference.parse(REPOSITORY).repository or not _KEY.fullmatch(ref.tag or ""):
        raise BadArchive(f"--cache-from {path}: {tag} is not a build cache entry")
    return ref.tag or ""
