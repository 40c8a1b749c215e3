"""Manifest and index handling: parsing, platform choice, building for push."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from forklift import digest as dg
from forklift import oci
from forklift.errors import BadArchive, InvalidArgument, RegistryError
from forklift.formats import layerblobs
from forklift.store import blobs
from forklift.store import images as image_store
from forklift.store.db import Store

SCHEMA1_TYPES = {"application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws"}
LAYER_TYPES = oci.LAYER_TYPES_GZIP | oci.LAYER_TYPES_ZSTD | oci.LAYER_TYPES_PLAIN


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None


Platform = oci.Platform
local_platform = oci.local_platform
parse_platform = oci.parse_platform


def descriptor(obj: Any, what: str) -> Descriptor:
    """A validated descriptor: a hostile digest must never reach a URL or a path."""
    if not isinstance(obj, dict):
        raise RegistryError(f"{what}: malformed descriptor")
    digest, size = obj.get("digest"), obj.get("size")
    if not isinstance(digest, str) or not dg.is_digest(digest):
        raise RegistryError(f"{what}: invalid digest {str(digest)[:80]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(f"{what}: invalid size {size!r}")
    platform = obj.get("platform")
    return Descriptor(str(obj.get("mediaType") or ""), digest, size,
                      platform if isinstance(platform, dict) else None)


def media_type_of(data: bytes, header_type: str, what: str) -> tuple[str, dict[str, Any]]:
    obj = oci.loads_object(data, what)
    media_type = obj.get("mediaType") or header_type
    if not isinstance(media_type, str):
        raise RegistryError(f"{what}: invalid mediaType {str(media_type)[:80]!r}")
    if obj.get("schemaVersion") == 1 or media_type in SCHEMA1_TYPES:
        raise RegistryError(f"{what}: Docker schema 1 manifests are not supported")
    if not media_type:
        media_type = oci.OCI_INDEX if "manifests" in obj else oci.OCI_MANIFEST
    if media_type not in oci.MANIFEST_TYPES | oci.INDEX_TYPES:
        raise RegistryError(f"{what}: unsupported manifest type {media_type!r}")
    return media_type, obj


def _platform_matches(p: dict[str, Any], want: Platform) -> int:
    """0 = no match, higher = better."""
    if p.get("os") != want.os or p.get("architecture") != want.architecture:
        return 0
    variant = p.get("variant")
    if want.variant is None or variant is None:
        return 1
    return 2 if variant == want.variant else 0


def choose_platform(index: dict[str, Any], want: Platform, what: str) -> Descriptor:
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError(f"{what}: index has no manifest list")
    best: tuple[int, Descriptor] | None = None
    available = []
    for raw in entries:
        desc = descriptor(raw, what)
        platform = desc.platform or {}
        label = "/".join(str(platform.get(k)) for k in ("os", "architecture", "variant")
                         if platform.get(k))
        if label and "unknown" not in label:
            available.append(label)
        score = _platform_matches(platform, want)
        if score and (best is None or score > best[0]):
            best = (score, desc)
    if best is None:
        listed = ", ".join(available) or "none"
        raise RegistryError(f"no matching manifest for {want} in the manifest list entries"
                            f" (available: {listed})")
    return best[1]


def image_parts(obj: dict[str, Any], what: str) -> tuple[Descriptor, list[Descriptor]]:
    config = descriptor(obj.get("config"), f"{what} config")
    raw_layers = obj.get("layers")
    if not isinstance(raw_layers, list):
        raise RegistryError(f"{what}: manifest has no layer list")
    layers = [descriptor(item, f"{what} layer") for item in raw_layers]
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise RegistryError(f"{what}: unsupported layer type {layer.media_type!r}")
    return config, layers


# ----------------------------------------------------------------------------- push

@dataclass
class PushBlob:
    digest: str
    size: int
    path: str
    diff_id: str | None  # None for the config


@dataclass
class PushManifest:
    data: bytes
    media_type: str
    blobs: list[PushBlob]

    @property
    def digest(self) -> str:
        return dg.of_bytes(self.data)


def for_push(store: Store, image_id: str) -> PushManifest:
    """The manifest to push: the pulled one again when all its blobs are here."""
    for candidate in _stored_manifests(store, image_id):
        reused = _reuse(store, image_id, candidate)
        if reused is not None:
            return reused
    return build(store, image_id)


def _stored_manifests(store: Store, image_id: str) -> list[bytes]:
    rows = store.query("SELECT digest FROM repo_digests WHERE image_id=? ORDER BY repository",
                       (image_id,))
    out: list[bytes] = []
    for row in rows:
        data = _local_json(store, row[0])
        if data is None:
            continue
        obj = json.loads(data)
        if isinstance(obj, dict) and "manifests" in obj:
            for child in obj.get("manifests") or []:
                child_digest = child.get("digest") if isinstance(child, dict) else None
                found = _local_json(store, child_digest) if isinstance(child_digest, str) else None
                if found is not None:
                    out.append(found)
        else:
            out.append(data)
    return out


def _local_json(store: Store, digest: str) -> bytes | None:
    if not dg.is_digest(digest) or not blobs.exists(store, digest):
        return None
    try:
        data = blobs.read_bytes(store, digest)
        json.loads(data)
    except (ValueError, OSError, RegistryError):
        return None
    except Exception:  # noqa: BLE001 - a damaged blob only means "build a new manifest"
        return None
    return data


def _reuse(store: Store, image_id: str, data: bytes) -> PushManifest | None:
    try:
        media_type, obj = media_type_of(data, "", "stored manifest")
        if media_type not in oci.MANIFEST_TYPES:
            return None
        config, layer_descs = image_parts(obj, "stored manifest")
    except (RegistryError, BadArchive, InvalidArgument):
        return None  # not a manifest this image can reuse: build a new one
    layer_list = image_store.layers(store, image_id)
    if config.digest != image_id or len(layer_descs) != len(layer_list):
        return None
    out = [PushBlob(config.digest, config.size, store.blob_path(config.digest), None)]
    for desc, layer in zip(layer_descs, layer_list, strict=True):
        if not blobs.exists(store, desc.digest):
            return None
        out.append(PushBlob(desc.digest, desc.size, store.blob_path(desc.digest), layer.diff_id))
    return PushManifest(data, media_type, out)


def build(store: Store, image_id: str) -> PushManifest:
    """A new manifest: Docker schema 2 with gzip layers, OCI when a layer is zstd."""
    layer_list = image_store.layers(store, image_id)
    use_oci = any(layerblobs.stored_compression(lay) == "zstd" for lay in layer_list)
    config_size = len(blobs.read_bytes(store, image_id))
    out = [PushBlob(image_id, config_size, store.blob_path(image_id), None)]
    layer_descs = []
    for layer in layer_list:
        compression = layerblobs.stored_compression(layer)
        lb = layerblobs.blob_for(store, layer, "gzip" if compression == "none" else compression,
                                 docker=not use_oci)
        layer_descs.append({"mediaType": lb.media_type, "size": lb.size, "digest": lb.digest})
        out.append(PushBlob(lb.digest, lb.size, store.blob_path(lb.digest), layer.diff_id))
    media_type = oci.OCI_MANIFEST if use_oci else oci.DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": oci.OCI_CONFIG if use_oci else oci.DOCKER_CONFIG,
                   "size": config_size, "digest": image_id},
        "layers": layer_descs,
    }
    return PushManifest(json.dumps(manifest, indent=3).encode(), media_type, out)
