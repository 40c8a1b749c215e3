"""``image save`` and ``image load``: images to and from archives.

Save writes docker-archive (default), an OCI archive or an OCI layout directory,
streaming layers straight from the store's blob files. Load detects the format,
verifies every blob against its digest, stages all layers in scratch space and
records every image in one transaction: a bad archive leaves the store as it was.
Layers the store already has are only verified, never copied again.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from forklift import digest as dg
from forklift import limits as limits_mod
from forklift import oci, reference
from forklift.engine import events
from forklift.errors import BadArchive, InvalidArgument, LimitExceeded
from forklift.formats import detect, docker_archive, layerblobs, oci_layout
from forklift.formats.output import atomic_output
from forklift.formats.plan import ImagePlan, LayerPlan, SavedImage
from forklift.formats.sinks import DirSink, TarSink
from forklift.limits import Limits
from forklift.store import blobs
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store, remove_path
from forklift.store.layers import PreparedLayer

DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"
OCI_DIR = "oci-dir"
FORMATS = (DOCKER_ARCHIVE, OCI_ARCHIVE, OCI_DIR)
_COMPRESSED = oci.LAYER_TYPES_GZIP | oci.LAYER_TYPES_ZSTD


# ============================================================================= save

def save(store: Store, names: list[str], output: str | None = None,
         fmt: str = DOCKER_ARCHIVE, compression: str | None = None) -> None:
    """Write the named images (with the tags they were named by) to ``output``."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    if compression is not None and fmt == DOCKER_ARCHIVE and compression != "none":
        raise InvalidArgument("--compress applies to oci-archive and oci-dir only")
    if compression is not None and compression not in layerblobs.COMPRESSIONS:
        raise InvalidArgument(f"unsupported compression {compression!r} (use gzip, zstd or none)")
    if not names:
        raise InvalidArgument("save needs at least one image")
    images = collect(store, names)
    if fmt == OCI_DIR:
        if not output or output == "-":
            raise InvalidArgument("oci-dir needs a target directory: -o DIR")
        save_layout(store, images, output, compression or "gzip")
        _saved(store, images)
        return
    if (output is None or output == "-") and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    with atomic_output(output) as out:
        sink = TarSink(out)
        if fmt == DOCKER_ARCHIVE:
            docker_archive.write(store, sink, images)
        else:
            oci_layout.write(store, sink, images, compression or "gzip")
        sink.close()
    _saved(store, images)


def _saved(store: Store, images: list[SavedImage]) -> None:
    for image in images:
        events.emit(store.root, "image", "save", image.id, {"name": image.id})


def collect(store: Store, names: list[str]) -> list[SavedImage]:
    """Resolve names to images, in order; each keeps every tag it was named by."""
    chosen: dict[str, list[str]] = {}
    for text in names:
        for image_id, tags in _select(store, text):
            have = chosen.setdefault(image_id, [])
            have.extend(t for t in tags if t not in have)
    return [SavedImage(image_id, blobs.read_bytes(store, image_id),
                       image_store.layers(store, image_id), tags)
            for image_id, tags in chosen.items()]


def _select(store: Store, text: str) -> list[tuple[str, list[str]]]:
    """``name:tag`` → that tag; bare ``name`` → every tag of it (as Docker does); ID → no tag."""
    try:
        ref: reference.Reference | None = reference.parse(text, default_tag=False)
    except InvalidArgument:
        ref = None
    if ref is not None and not ref.tag and not ref.digest:
        found: dict[str, list[str]] = {}
        for name, image_id in sorted(image_store.all_tags(store)):
            if reference.parse(name).repository == ref.repository:
                found.setdefault(image_id, []).append(name)
        if found:
            return list(found.items())
    image_id = image_store.resolve(store, text)
    if ref is not None and ref.tag and not ref.digest:
        return [(image_id, [str(ref)])]
    return [(image_id, [])]


def save_layout(store: Store, images: list[SavedImage], path: str, compression: str) -> None:
    """An OCI layout directory: new, empty, or an existing layout to add to."""
    created = not os.path.exists(path)
    keep = _existing_layout(path)
    try:
        os.makedirs(path, 0o755, exist_ok=True)
        oci_layout.write(store, DirSink(path), images, compression, index_first=False, keep=keep)
    except BaseException:
        if created:
            remove_path(path)
        raise


def _existing_layout(path: str) -> list[dict] | None:
    if not os.path.exists(path):
        return None
    if not os.path.isdir(path):
        raise InvalidArgument(f"{path} exists and is not a directory")
    _refuse_symlinks(path)
    if os.path.exists(os.path.join(path, "oci-layout")):
        return oci_layout.existing_index(os.path.join(path, "index.json"))
    if os.listdir(path):
        raise InvalidArgument(f"{path} is not empty and not an OCI image layout")
    return None


def _refuse_symlinks(path: str) -> None:
    """An existing layout must hold no symlink: writing into it could land anywhere
    (DirSink also refuses one appearing later, component by component)."""
    for dirpath, dirnames, filenames in os.walk(path):
        for entry in dirnames + filenames:
            if os.path.islink(os.path.join(dirpath, entry)):
                rel = os.path.relpath(os.path.join(dirpath, entry), path)
                raise InvalidArgument(f"{path} contains a symlink ({rel}); refusing to write"
                                      " an image layout into it")


# ============================================================================= load

@dataclass
class StagedImage:
    image_id: str
    config: bytes
    layers: list[PreparedLayer]
    tags: list[str]


def load(store: Store, source: str | None = None, platform: str | None = None, *,
         max_size: str | int | None = None) -> list[str]:
    """Load every image of an archive; returns Docker's ``Loaded image…`` lines.

    ``max_size`` (``--max-size``) overrides the store's layer size limit; an image
    of more layers than the limit is refused before any layer is read.
    """
    want = oci.parse_platform(platform) if platform else None
    limits = limits_mod.for_store(store.root, max_size)
    with detect.open_source(store, source, limits) as src:
        if detect.detect(src) == detect.DOCKER_ARCHIVE:
            plans = docker_archive.read_plans(src)
        else:
            plans = oci_layout.read_plans(src, want)
        for plan in plans:
            limits.check_layers(len(plan.layers), f"image {plan.config_name}")
        with staging_area() as cache:
            staged = [stage_image(store, src, plan, cache, limits) for plan in plans]
            loaded: list[str] = []
            with store.transaction():
                lines = [line for item in staged for line in _record(store, item, loaded)]
            for image_id in loaded:
                events.emit(store.root, "image", "load", image_id, {"name": image_id})
            return lines


@contextlib.contextmanager
def staging_area() -> Iterator[dict[str, PreparedLayer]]:
    """Layers prepared for ``stage_image``, by diffID; whatever is not recorded is cleaned up."""
    cache: dict[str, PreparedLayer] = {}
    try:
        yield cache
    finally:
        for prepared in cache.values():
            prepared.cleanup()


def stage_image(store: Store, src: detect.Source, plan: ImagePlan,
                cache: dict[str, PreparedLayer], limits: Limits) -> StagedImage:
    """One image of a loaded archive or layout checked and its layers prepared (not recorded)."""
    config = detect.read_small(src, plan.config_name, "image config")
    image_id = dg.of_bytes(config)
    if plan.config_digest is not None:
        dg.verify(plan.config_digest, image_id, f"image config {plan.config_name}")
    cfg = oci.loads_object(config, f"image config {plan.config_name}")
    diff_ids = oci.image_diff_ids(cfg)
    if len(diff_ids) != len(plan.layers):
        raise BadArchive(f"image {dg.short_id(image_id)} lists {len(plan.layers)} layers"
                         f" but its config has {len(diff_ids)} diff_ids")
    layers = [_layer(store, src, lp, diff_id, cache, limits)
              for lp, diff_id in zip(plan.layers, diff_ids, strict=True)]
    return StagedImage(image_id, config, layers, plan.tags)


def _layer(store: Store, src: detect.Source, lp: LayerPlan, diff_id: str,
           cache: dict[str, PreparedLayer], limits: Limits) -> PreparedLayer:
    if diff_id in cache:
        return cache[diff_id]
    if not src.exists(lp.name):
        raise BadArchive(f"layer {lp.name} is missing from the archive")
    if lp.size is not None and src.size(lp.name) != lp.size:
        raise BadArchive(f"layer {lp.name} has {src.size(lp.name)} bytes, expected {lp.size}")
    try:
        if layer_store.get(store, diff_id) is not None:
            _check_claim(lp, diff_id)
            prepared = layer_store.reuse(store, diff_id)
        else:
            prepared = _ingest(store, src, lp, diff_id, limits)
    except (BadArchive, LimitExceeded) as exc:
        raise type(exc)(f"layer {lp.name}: {exc}") from None
    assert prepared is not None
    cache[diff_id] = prepared
    return prepared


def _ingest(store: Store, src: detect.Source, lp: LayerPlan, diff_id: str,
            limits: Limits) -> PreparedLayer:
    with src.open(lp.name) as f:
        if lp.media_type in _COMPRESSED:
            return layer_store.ingest(store, f, expected_diff_id=diff_id,
                                      compressed_digest=lp.digest, media_type=lp.media_type,
                                      limits=limits)
        if lp.digest is not None:
            dg.verify(lp.digest, diff_id, "uncompressed layer")
        return layer_store.ingest(store, f, expected_diff_id=diff_id, limits=limits)


def _check_claim(lp: LayerPlan, diff_id: str) -> None:
    """A layer the store already has is not read again (Docker's "already exists"): the
    image is registered on the stored layer, whose content is its diffID's, whatever
    bytes the archive holds under that name. Only what costs nothing is checked: an
    uncompressed OCI descriptor must name the diffID itself."""
    if lp.digest is not None and lp.media_type not in _COMPRESSED:
        dg.verify(lp.digest, diff_id, "uncompressed layer")


def _record(store: Store, item: StagedImage, loaded: list[str]) -> list[str]:
    """Add one staged image and its tags (inside the load's transaction); its ID is
    appended to ``loaded``."""
    image_id = image_store.add(store, item.config, item.layers)
    loaded.append(image_id)
    lines = []
    for tag in item.tags:
        familiar = reference.parse(tag).familiar()
        old = image_store.lookup_tag(store, tag)
        if old and old != image_id:
            lines.append(f"The image {familiar} already exists, renaming the old one with ID"
                         f" {old} to empty string")
        if old != image_id:
            image_store.set_tag(store, tag, image_id)
        lines.append(f"Loaded image: {familiar}")
    if not item.tags:
        lines.append(f"Loaded image ID: {image_id}")
    return lines
