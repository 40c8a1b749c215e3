"""Manifest and index handling: parsing, platform choice, building for push.

Descriptors are parsed by ``oci.Descriptor`` and platforms chosen by
``oci.best_match``, the same code the OCI-layout reader uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from forklift import digest as dg
from forklift import oci
from forklift.errors import BadArchive, InvalidArgument, RegistryError
from forklift.formats import layerblobs
from forklift.oci import Descriptor, Platform
from forklift.store import blobs
from forklift.store import images as image_store
from forklift.store.db import Store
from forklift.store.layers import Layer

SCHEMA1_TYPES = {"application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws"}


def media_type_of(data: bytes, header_type: str, what: str) -> tuple[str, dict[str, Any]]:
    """A manifest's media type (its own ``mediaType``, else the response's Content-Type,
    else guessed from its shape) and its parsed object.

    Raises BadArchive for bytes that are not a JSON object, RegistryError for Docker
    schema 1 and for types that are neither an image manifest nor an index.
    """
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


def choose_platform(index: dict[str, Any], want: Platform, what: str) -> Descriptor:
    """The index entry that serves ``want`` best (``Platform.score``).

    Raises BadArchive for a malformed entry, RegistryError when no entry fits (the
    message lists the platforms the index offers).
    """
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError(f"{what}: index has no manifest list")
    descs = [Descriptor.parse(raw, what) for raw in entries]
    chosen = oci.best_match(want, descs)
    if chosen is None:
        available = [str(d.platform) for d in descs
                     if d.platform is not None and "unknown" not in str(d.platform)]
        listed = ", ".join(available) or "none"
        raise RegistryError(f"no matching manifest for {want} in the manifest list entries"
                            f" (available: {listed})")
    return chosen


# ----------------------------------------------------------------------------- push

@dataclass
class PushBlob:
    """One blob a push sends: a layer (with its diffID, to find mount sources) or the config."""

    digest: str
    size: int
    path: str | None  # None: a pulled layer's blob, not kept here; see ``origins``
    diff_id: str | None  # None for the config
    # repositories (``host/path``) the blob was pulled from (``layer_sources``): a push
    # mounts it from one of them on the same registry or fetches it again from one
    origins: list[str] = field(default_factory=list)


@dataclass
class PushManifest:
    """A manifest ready to PUT and the blobs it names, layers in order, config first."""

    data: bytes
    media_type: str
    blobs: list[PushBlob]

    @property
    def digest(self) -> str:
        return dg.of_bytes(self.data)


def for_push(store: Store, image_id: str) -> PushManifest:
    """The manifest to push: the pulled one again when all its blobs are here, else
    a new one (``build``). Idempotent: an image always gets the same manifest bytes.
    May write compressed layer blobs (``layerblobs.blob_for``); StoreCorrupt for a
    layer whose directory no longer matches its diffID."""
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
    except Exception:  # noqa: BLE001 - a damaged blob only means "build a new manifest"
        return None
    return data


def _reuse(store: Store, image_id: str, data: bytes) -> PushManifest | None:
    try:
        media_type, obj = media_type_of(data, "", "stored manifest")
        if media_type not in oci.MANIFEST_TYPES:
            return None
        config, layer_descs = oci.image_parts(obj, "stored manifest")
    except (RegistryError, BadArchive, InvalidArgument):
        return None  # not a manifest this image can reuse: build a new one
    layer_list = image_store.layers(store, image_id)
    if config.digest != image_id or len(layer_descs) != len(layer_list):
        return None
    out = [PushBlob(config.digest, config.size, store.blob_path(config.digest), None)]
    for desc, layer in zip(layer_descs, layer_list, strict=True):
        blob = _layer_push_blob(store, desc, layer)
        if blob is None:
            return None
        out.append(blob)
    return PushManifest(data, media_type, out)


def _layer_push_blob(store: Store, desc: Descriptor, layer: Layer) -> PushBlob | None:
    """The blob ``desc`` names for ``layer``: kept here (an older store keeps the
    pulled bytes), the layer's own tar (an uncompressed descriptor), or a pulled blob
    known only by where it came from; None when it is none of these."""
    diff_id = layer.diff_id
    if blobs.exists(store, desc.digest):
        return PushBlob(desc.digest, desc.size, store.blob_path(desc.digest), diff_id)
    if desc.digest == diff_id:
        lb = layerblobs.blob_for(store, layer, "none")
        if lb.digest == desc.digest and blobs.exists(store, lb.digest):
            return PushBlob(desc.digest, desc.size, store.blob_path(desc.digest), diff_id)
        return None
    rows = store.query("SELECT repository FROM layer_sources WHERE diff_id=? AND digest=?"
                       " AND size=? ORDER BY repository", (diff_id, desc.digest, desc.size))
    if not rows:
        return None
    return PushBlob(desc.digest, desc.size, None, diff_id, [r[0] for r in rows])


def build(store: Store, image_id: str) -> PushManifest:
    """A new manifest: Docker schema 2 with gzip layers, OCI when a layer is zstd.

    Deterministic (same image, same bytes); descriptors keep Docker's key order and
    3-space indent. Writes what ``layerblobs.blob_for`` writes.
    """
    layer_list = image_store.layers(store, image_id)
    use_oci = any(layerblobs.stored_compression(lay) == "zstd" for lay in layer_list)
    config_size = len(blobs.read_bytes(store, image_id))
    out = [PushBlob(image_id, config_size, store.blob_path(image_id), None)]
    layer_descs = []
    for layer in layer_list:
        compression = layerblobs.stored_compression(layer)
        lb = layerblobs.blob_for(store, layer, "gzip" if compression == "none" else compression,
                                 docker=not use_oci)
        layer_descs.append(Descriptor(lb.media_type, lb.digest, lb.size).to_json())
        out.append(PushBlob(lb.digest, lb.size, store.blob_path(lb.digest), layer.diff_id))
    media_type = oci.OCI_MANIFEST if use_oci else oci.DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": Descriptor(oci.OCI_CONFIG if use_oci else oci.DOCKER_CONFIG, image_id,
                             config_size).to_json(),
        "layers": layer_descs,
    }
    return PushManifest(json.dumps(manifest, indent=3).encode(), media_type, out)
