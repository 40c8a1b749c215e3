"""The OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``), as a
directory or a tarball.

Each tag gets its own ``index.json`` entry with two annotations, as Docker >= 25
writes them: ``org.opencontainers.image.ref.name`` holds the tag alone (what
``umoci --image dir:TAG`` and ``skopeo oci:dir:TAG`` look up) and
``io.containerd.image.name`` the full name (what loaders use to name the image).
Reading follows nested indexes and manifest lists down to this machine's platform.
"""

from __future__ import annotations

import json
from typing import Any

from forklift import digest as dg
from forklift import oci, reference
from forklift.errors import BadArchive, ForkliftError, InvalidArgument
from forklift.formats import layerblobs
from forklift.formats.detect import Source, read_small
from forklift.formats.plan import ImagePlan, LayerPlan, SavedImage
from forklift.formats.sinks import Sink
from forklift.oci import Descriptor, Platform
from forklift.store import blobs
from forklift.store.db import Store
from forklift.store.layers import Layer

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
CONTAINERD_NAME = "io.containerd.image.name"
_MAX_DEPTH = 4


# ----------------------------------------------------------------------------- reading

def blob_name(digest: str) -> str:
    """``blobs/sha256/<hex>``; InvalidArgument for anything but a sha256 digest."""
    return f"blobs/sha256/{dg.hex_of(digest)}"


def _read_blob(source: Source, desc: Descriptor, what: str) -> bytes:
    data = read_small(source, blob_name(desc.digest), what)
    if len(data) != desc.size:
        raise BadArchive(f"{what} {desc.digest} has {len(data)} bytes, expected {desc.size}")
    dg.verify(desc.digest, dg.of_bytes(data), f"{what} {dg.short_id(desc.digest)}")
    return data


def _descriptors(doc: dict[str, Any], what: str) -> list[Descriptor]:
    items = doc.get("manifests")
    if not isinstance(items, list):
        raise BadArchive(f"{what} has no manifests list")
    return [Descriptor.parse(d, f"{what} entry") for d in items]


def _tag_of(desc: Descriptor) -> str | None:
    """The image name an index entry carries, normalized; a bare tag names nothing."""
    for key in (CONTAINERD_NAME, oci.REF_NAME_ANNOTATION):
        text = desc.annotations.get(key)
        if text is None or (key != CONTAINERD_NAME and not any(c in text for c in "/:")):
            continue
        try:
            ref = reference.parse(text)
        except InvalidArgument:
            continue
        if ref.tag:
            return str(ref.with_tag(ref.tag))
    return None


def read_plans(source: Source, platform: Platform | None = None) -> list[ImagePlan]:
    """One plan per distinct image manifest the layout's index.json leads to.

    Reads only index.json, indexes and manifests (each verified against its
    descriptor); layers and configs are left to the caller. ``platform`` (default:
    this machine) picks among entries for several platforms (``Platform.score``).
    Raises BadArchive for anything malformed or when no entry fits the platform.
    """
    _check_layout(source)
    index = oci.loads_object(read_small(source, "index.json", "index.json"), "index.json")
    top = _descriptors(index, "index.json")
    chosen = _select_top(top, platform)
    plans: dict[str, ImagePlan] = {}
    for desc in chosen:
        manifest_desc = _to_manifest(source, desc, platform or oci.local_platform(), 0)
        plan = plans.get(manifest_desc.digest)
        if plan is None:
            plan = plans[manifest_desc.digest] = _manifest_plan(source, manifest_desc)
        tag = _tag_of(desc)
        if tag and tag not in plan.tags:
            plan.tags.append(tag)
    if not plans:
        raise BadArchive("index.json lists no images")
    return list(plans.values())


def _check_layout(source: Source) -> None:
    if not source.exists("oci-layout"):
        return
    layout = oci.loads_object(read_small(source, "oci-layout", "oci-layout", 1 << 16), "oci-layout")
    if not isinstance(layout.get("imageLayoutVersion"), str):
        raise BadArchive("oci-layout has no imageLayoutVersion")


def _select_top(top: list[Descriptor], platform: Platform | None) -> list[Descriptor]:
    """Pick, among top-level entries sharing a name, the one for ``platform``.

    Entries with different names are different images and all load, whatever
    platform they are for (as Docker loads a foreign image). Several platforms
    under one name and none of them ours is an error; so is any mismatch when
    ``--platform`` was given.
    """
    want = platform or oci.local_platform()
    groups: dict[object, list[Descriptor]] = {}
    for i, desc in enumerate(top):
        groups.setdefault(_tag_of(desc) or i, []).append(desc)
    chosen = []
    for group in groups.values():
        if len(group) == 1 and platform is None:
            chosen.extend(group)
            continue
        best = max(group, key=lambda d: _top_score(want, d))  # the first of equals
        if not _top_score(want, best):
            named = {d.platform for d in group if d.platform is not None}
            raise BadArchive(_no_platform(want, sorted(named, key=str)))
        chosen.append(best)
    return chosen


def _top_score(want: Platform, desc: Descriptor) -> int:
    """A top-level index (chosen from when followed) or an entry naming no platform
    fits as a variant-less match would."""
    if desc.media_type in oci.INDEX_TYPES or desc.platform is None:
        return 1
    return want.score(desc.platform)


def _no_platform(want: Platform, available: list[Platform]) -> str:
    names = ", ".join(str(p) for p in available) or "none"
    return f"no image for platform {want} in the archive (available: {names})"


def _to_manifest(source: Source, desc: Descriptor, want: Platform, depth: int) -> Descriptor:
    """Follow nested indexes / manifest lists down to one image manifest for ``want``."""
    if desc.media_type in oci.MANIFEST_TYPES:
        return desc
    if desc.media_type not in oci.INDEX_TYPES:
        raise BadArchive(f"index.json entry has an unsupported media type {desc.media_type!r}")
    if depth >= _MAX_DEPTH:
        raise BadArchive("image indexes are nested too deeply")
    nested = oci.loads_object(_read_blob(source, desc, "image index"), "image index")
    children = [d for d in _descriptors(nested, "image index")
                if d.media_type in oci.MANIFEST_TYPES | oci.INDEX_TYPES]
    chosen = oci.best_match(want, children)
    if chosen is None:
        available = sorted({d.platform for d in children
                            if d.platform is not None and d.platform.os != "unknown"}, key=str)
        raise BadArchive(_no_platform(want, available))
    return _to_manifest(source, chosen, want, depth + 1)


def _manifest_plan(source: Source, desc: Descriptor) -> ImagePlan:
    manifest = oci.loads_object(_read_blob(source, desc, "image manifest"), "image manifest")
    config, layers = oci.image_parts(manifest, "image manifest")
    plans = [LayerPlan(blob_name(layer.digest), layer.digest, layer.media_type, layer.size)
             for layer in layers]
    return ImagePlan(blob_name(config.digest), config.digest, plans)


# ----------------------------------------------------------------------------- writing

def _layer_descriptors(store: Store, image: SavedImage, compression: str) -> list[layerblobs.LayerBlob]:
    return [layerblobs.blob_for(store, layer, compression) for layer in image.layers]


def _manifest(image: SavedImage, layer_blobs: list[layerblobs.LayerBlob]) -> bytes:
    return oci.canonical_json({
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": Descriptor(oci.OCI_CONFIG, image.id, len(image.config)).to_json(),
        "layers": [Descriptor(b.media_type, b.digest, b.size).to_json() for b in layer_blobs],
    })


def _index_entries(image: SavedImage, manifest: bytes) -> list[dict[str, Any]]:
    cfg = json.loads(image.config)
    os_, arch, variant = cfg.get("os"), cfg.get("architecture"), cfg.get("variant")
    platform = None
    if isinstance(arch, str) and isinstance(os_, str):
        platform = Platform(os_, arch, variant if isinstance(variant, str) and variant else None)
    names = [{CONTAINERD_NAME: tag, oci.REF_NAME_ANNOTATION: reference.parse(tag).tag or "latest"}
             for tag in image.tags] or [{}]
    return [Descriptor(oci.OCI_MANIFEST, dg.of_bytes(manifest), len(manifest),
                       annotations=ann, platform=platform).to_json() for ann in names]


def index_bytes(entries: list[dict[str, Any]]) -> bytes:
    """``index.json`` for ``entries``, canonical JSON."""
    return oci.canonical_json({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": entries})


def write(store: Store, sink: Sink, images: list[SavedImage], compression: str = "gzip",
          index_first: bool = True, keep: list[dict[str, Any]] | None = None) -> None:
    """Write the layout of ``images`` into ``sink``, layers in ``compression``.

    ``keep``: entries of an existing index.json to carry over (an entry with the
    same ref name, or the same digest and no name, is replaced). ``index_first``
    False writes index.json last, so a directory shows no index for blobs that are
    not there yet. May make and cache compressed layer blobs in the store (see
    ``layerblobs.blob_for``); raises what the sink raises (NoSpace, ForkliftError).
    """
    prepared = []
    entries: list[dict[str, Any]] = []
    for image in images:
        layer_blobs = _layer_descriptors(store, image, compression)
        manifest = _manifest(image, layer_blobs)
        prepared.append((image, layer_blobs, manifest))
        entries.extend(_index_entries(image, manifest))
    index = index_bytes(_merge(keep or [], entries))
    sink.add_bytes("oci-layout", LAYOUT_FILE)
    if index_first:
        sink.add_bytes("index.json", index)
    sink.add_dir("blobs")
    sink.add_dir("blobs/sha256")
    for image, layer_blobs, manifest in prepared:
        sink.add_bytes(blob_name(dg.of_bytes(manifest)), manifest)
        sink.add_bytes(blob_name(image.id), image.config)
        for layer, lb in zip(image.layers, layer_blobs, strict=True):
            with _open_layer_blob(store, layer, lb) as src:
                sink.add_stream(blob_name(lb.digest), lb.size, src)
    if not index_first:
        sink.add_bytes("index.json", index)


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """New entries replace old ones with the same ref name (adding to an existing layout)."""
    names = {_ref_name(e) for e in new} - {None}
    digests = {e["digest"] for e in new if _ref_name(e) is None}
    kept = [e for e in old if _ref_name(e) not in names
            and not (_ref_name(e) is None and e.get("digest") in digests)]
    return kept + new


def _ref_name(entry: dict[str, Any]) -> str | None:
    ann = entry.get("annotations")
    value = ann.get(oci.REF_NAME_ANNOTATION) if isinstance(ann, dict) else None
    return value if isinstance(value, str) else None


def _open_layer_blob(store: Store, layer: Layer, lb: layerblobs.LayerBlob) -> Any:
    """The blob's bytes: a stored file, or the stored layer decompressed on the fly."""
    if lb.digest != layer.blob and lb.digest == layer.diff_id and not blobs.exists(store, lb.digest):
        return layerblobs.open_uncompressed(store, layer)
    return blobs.open_blob(store, lb.digest)  # a file is its own context manager


def existing_index(path: str) -> list[dict[str, Any]]:
    """The entries of an existing layout's index.json (to add images to it); [] when
    there is none, BadArchive when it is not a JSON object, ForkliftError when it
    cannot be read. Entries are kept as they are, unparsed: they are written back
    verbatim."""
    try:
        with open(path, "rb") as f:
            doc = oci.loads_object(f.read(), "existing index.json")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ForkliftError(f"read {path}: {exc.strerror or exc}") from None
    return [d for d in doc.get("manifests") or [] if isinstance(d, dict)]
