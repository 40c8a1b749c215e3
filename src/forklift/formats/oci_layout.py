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
from forklift.store import blobs
from forklift.store.db import Store
from forklift.store.layers import Layer

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
CONTAINERD_NAME = "io.containerd.image.name"
_LAYER_TYPES = oci.LAYER_TYPES_PLAIN | oci.LAYER_TYPES_GZIP | oci.LAYER_TYPES_ZSTD
_MAX_DEPTH = 4


# ----------------------------------------------------------------------------- platforms

Platform = oci.Platform


def _platform_of(desc: dict[str, Any]) -> Platform | None:
    p = desc.get("platform")
    if not isinstance(p, dict) or not isinstance(p.get("architecture"), str):
        return None
    return Platform(str(p.get("os", "")), p["architecture"], p.get("variant") or None)


# ----------------------------------------------------------------------------- reading

def blob_name(digest: str) -> str:
    return f"blobs/sha256/{dg.hex_of(digest)}"


def _descriptor(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadArchive(f"{what} is not a descriptor object")
    digest = value.get("digest")
    if not isinstance(digest, str) or not dg.is_digest(digest):
        raise BadArchive(f"{what} has an unsupported or invalid digest {digest!r}")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadArchive(f"{what} has an invalid size {size!r}")
    if not isinstance(value.get("mediaType", ""), str):
        raise BadArchive(f"{what} has an invalid mediaType")
    return value


def _read_blob(source: Source, desc: dict[str, Any], what: str) -> bytes:
    name = blob_name(desc["digest"])
    data = read_small(source, name, what)
    if len(data) != desc["size"]:
        raise BadArchive(f"{what} {desc['digest']} has {len(data)} bytes, expected {desc['size']}")
    dg.verify(desc["digest"], dg.of_bytes(data), f"{what} {dg.short_id(desc['digest'])}")
    return data


def _descriptors(doc: dict[str, Any], what: str) -> list[dict[str, Any]]:
    items = doc.get("manifests")
    if not isinstance(items, list):
        raise BadArchive(f"{what} has no manifests list")
    return [_descriptor(d, f"{what} entry") for d in items]


def _tag_of(desc: dict[str, Any]) -> str | None:
    """The image name an index entry carries, normalized; a bare tag names nothing."""
    ann = desc.get("annotations")
    if not isinstance(ann, dict):
        return None
    for key in (CONTAINERD_NAME, oci.REF_NAME_ANNOTATION):
        text = ann.get(key)
        if not isinstance(text, str) or (key != CONTAINERD_NAME and not any(c in text for c in "/:")):
            continue
        try:
            ref = reference.parse(text)
        except InvalidArgument:
            continue
        if ref.tag:
            return str(ref.with_tag(ref.tag))
    return None


def read_plans(source: Source, platform: Platform | None = None) -> list[ImagePlan]:
    """One plan per distinct image manifest the layout's index.json leads to."""
    _check_layout(source)
    index = oci.loads_object(read_small(source, "index.json", "index.json"), "index.json")
    top = _descriptors(index, "index.json")
    chosen = _select_top(top, platform)
    plans: dict[str, ImagePlan] = {}
    for desc in chosen:
        manifest_desc = _to_manifest(source, desc, platform or oci.local_platform(), 0)
        plan = plans.get(manifest_desc["digest"])
        if plan is None:
            plan = plans[manifest_desc["digest"]] = _manifest_plan(source, manifest_desc)
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


def _select_top(top: list[dict[str, Any]], platform: Platform | None) -> list[dict[str, Any]]:
    """Pick, among top-level entries sharing a name, the one for ``platform``.

    Entries with different names are different images and all load, whatever
    platform they are for (as Docker loads a foreign image). Several platforms
    under one name and none of them ours is an error; so is any mismatch when
    ``--platform`` was given.
    """
    want = platform or oci.local_platform()
    groups: dict[object, list[dict[str, Any]]] = {}
    for i, desc in enumerate(top):
        groups.setdefault(_tag_of(desc) or i, []).append(desc)
    chosen = []
    for group in groups.values():
        if len(group) == 1 and platform is None:
            chosen.extend(group)
            continue
        fits = [d for d in group if d.get("mediaType") in oci.INDEX_TYPES
                or (p := _platform_of(d)) is None or want.matches(p)]
        if not fits:
            named = {p for d in group if (p := _platform_of(d)) is not None}
            raise BadArchive(_no_platform(want, sorted(named, key=str)))
        chosen.append(fits[0])
    return chosen


def _no_platform(want: Platform, available: list[Platform]) -> str:
    names = ", ".join(str(p) for p in available) or "none"
    return f"no image for platform {want} in the archive (available: {names})"


def _to_manifest(source: Source, desc: dict[str, Any], want: Platform, depth: int) -> dict[str, Any]:
    """Follow nested indexes / manifest lists down to one image manifest for ``want``."""
    media_type = desc.get("mediaType")
    if media_type in oci.MANIFEST_TYPES:
        return desc
    if media_type not in oci.INDEX_TYPES:
        raise BadArchive(f"index.json entry has an unsupported media type {media_type!r}")
    if depth >= _MAX_DEPTH:
        raise BadArchive("image indexes are nested too deeply")
    nested = oci.loads_object(_read_blob(source, desc, "image index"), "image index")
    children = [d for d in _descriptors(nested, "image index")
                if d.get("mediaType") in oci.MANIFEST_TYPES | oci.INDEX_TYPES]
    matching = [d for d in children if (p := _platform_of(d)) is not None and want.matches(p)]
    if not matching:
        available = sorted({p for d in children if (p := _platform_of(d)) and p.os != "unknown"}, key=str)
        raise BadArchive(_no_platform(want, available))
    matching.sort(key=lambda d: _platform_of(d).variant != oci.go_variant())  # type: ignore[union-attr]
    return _to_manifest(source, matching[0], want, depth + 1)


def _manifest_plan(source: Source, desc: dict[str, Any]) -> ImagePlan:
    manifest = oci.loads_object(_read_blob(source, desc, "image manifest"), "image manifest")
    config = _descriptor(manifest.get("config"), "image manifest config")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise BadArchive("image manifest has no layers list")
    plans = []
    for item in layers:
        layer = _descriptor(item, "image manifest layer")
        if layer.get("mediaType") not in _LAYER_TYPES:
            raise BadArchive(f"unsupported layer media type {layer.get('mediaType')!r}")
        plans.append(LayerPlan(blob_name(layer["digest"]), layer["digest"], layer["mediaType"],
                               layer["size"]))
    return ImagePlan(blob_name(config["digest"]), config["digest"], plans)


# ----------------------------------------------------------------------------- writing

def _layer_descriptors(store: Store, image: SavedImage, compression: str) -> list[layerblobs.LayerBlob]:
    return [layerblobs.blob_for(store, layer, compression) for layer in image.layers]


def _manifest(image: SavedImage, layer_blobs: list[layerblobs.LayerBlob]) -> bytes:
    return oci.canonical_json({
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": oci.OCI_CONFIG, "digest": image.id, "size": len(image.config)},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size}
                   for b in layer_blobs],
    })


def _index_entries(image: SavedImage, manifest: bytes) -> list[dict[str, Any]]:
    cfg = json.loads(image.config)
    base: dict[str, Any] = {"mediaType": oci.OCI_MANIFEST, "digest": dg.of_bytes(manifest),
                            "size": len(manifest)}
    if isinstance(cfg.get("architecture"), str) and isinstance(cfg.get("os"), str):
        base["platform"] = {"architecture": cfg["architecture"], "os": cfg["os"],
                            **({"variant": cfg["variant"]} if cfg.get("variant") else {})}
    if not image.tags:
        return [base]
    return [{**base, "annotations": {CONTAINERD_NAME: tag,
                                     oci.REF_NAME_ANNOTATION: reference.parse(tag).tag or "latest"}}
            for tag in image.tags]


def index_bytes(entries: list[dict[str, Any]]) -> bytes:
    return oci.canonical_json({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": entries})


def write(store: Store, sink: Sink, images: list[SavedImage], compression: str = "gzip",
          index_first: bool = True, keep: list[dict[str, Any]] | None = None) -> None:
    """Write the layout. ``keep``: entries of an existing index.json to carry over."""
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
    """The entries of an existing layout's index.json (to add images to it)."""
    try:
        with open(path, "rb") as f:
            doc = oci.loads_object(f.read(), "existing index.json")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ForkliftError(f"read {path}: {exc.strerror or exc}") from None
    return [d for d in doc.get("manifests") or [] if isinstance(d, dict)]
