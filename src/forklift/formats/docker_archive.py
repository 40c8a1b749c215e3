"""docker-archive: the tarball ``docker save`` writes and ``docker load`` reads.

Written in the legacy layout every Docker since 1.10 loads::

    manifest.json                [{"Config": "<id>.json", "RepoTags": [...], "Layers": [...]}]
    repositories                 {"name": {"tag": "<top layer v1 id>"}}
    <id>.json                    the image config, byte for byte (its digest is the image ID)
    <v1id>/layer.tar             each layer uncompressed (its digest is the diffID)
    <v1id>/json, <v1id>/VERSION  legacy per-layer metadata

``<v1id>`` is the hex of the layer's chain ID, so a layer stack shared by two
images is written once. Reading accepts this layout, Docker >= 25's (layers and
config under ``blobs/sha256/``), skopeo's and Podman's.
"""

from __future__ import annotations

import json
import re
from typing import Any

from forklift import digest as dg
from forklift import reference
from forklift.errors import BadArchive, InvalidArgument
from forklift.formats import layerblobs
from forklift.formats.detect import Source, clean_name, read_small
from forklift.formats.plan import ImagePlan, LayerPlan, SavedImage
from forklift.formats.sinks import Sink
from forklift.store.db import Store

_CONFIG_NAME = re.compile(r"(?:^|/)(?:sha256[:/])?([a-f0-9]{64})(?:\.json)?$")
_LEGACY_CONTAINER_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


# ----------------------------------------------------------------------------- reading

def read_plans(source: Source) -> list[ImagePlan]:
    """One plan per ``manifest.json`` entry; reads nothing else. BadArchive for a
    malformed manifest.json, a path leaving the archive or an invalid tag."""
    data = read_small(source, "manifest.json", "manifest.json")
    try:
        items = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadArchive(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise BadArchive("manifest.json does not list any image")
    return [_plan(item) for item in items]


def _plan(item: object) -> ImagePlan:
    if not isinstance(item, dict):
        raise BadArchive("manifest.json has an entry that is not a JSON object")
    config = clean_name(item.get("Config"), "manifest.json Config")
    layers = item.get("Layers")
    if not isinstance(layers, list):
        raise BadArchive("manifest.json entry has no Layers list")
    plans = [LayerPlan(clean_name(name, "manifest.json layer")) for name in layers]
    return ImagePlan(config, _config_digest(config), plans, _tags(item.get("RepoTags")))


def _config_digest(name: str) -> str | None:
    """Docker names the config after its digest; when it does, hold it to that."""
    match = _CONFIG_NAME.search(name)
    return f"sha256:{match.group(1)}" if match else None


def _tags(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadArchive("manifest.json RepoTags is not a list")
    out = []
    for text in value:
        if not isinstance(text, str):
            raise BadArchive(f"manifest.json has an invalid tag {text!r}")
        try:
            ref = reference.parse(text)
        except InvalidArgument as exc:
            raise BadArchive(f"manifest.json has an invalid tag {text!r}: {exc}") from None
        if ref.digest:
            raise BadArchive(f"manifest.json RepoTags has a digest reference {text!r}")
        if str(ref) not in out:
            out.append(str(ref))
    return out


# ----------------------------------------------------------------------------- writing

def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else dg.of_bytes(f"{out[-1]} {diff_id}".encode()))
    return out


def _legacy_json(v1id: str, parent: str | None) -> bytes:
    meta: dict[str, Any] = {"id": v1id}
    if parent:
        meta["parent"] = parent
    meta["created"] = "1970-01-01T00:00:00Z"
    meta["container_config"] = _LEGACY_CONTAINER_CONFIG
    return json.dumps(meta, separators=(",", ":")).encode()


def _v1ids(image: SavedImage) -> list[str]:
    return [dg.hex_of(c) for c in chain_ids([layer.diff_id for layer in image.layers])]


def manifest(images: list[SavedImage]) -> tuple[bytes, bytes | None]:
    """manifest.json and (when anything is tagged) the legacy ``repositories`` file."""
    entries = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        v1ids = _v1ids(image)
        familiar = [reference.parse(t).familiar() for t in image.tags]
        entries.append({
            "Config": f"{dg.hex_of(image.id)}.json",
            "RepoTags": familiar or None,
            "Layers": [f"{v}/layer.tar" for v in v1ids],
        })
        for tag in image.tags:
            ref = reference.parse(tag)
            if v1ids and ref.tag:
                repositories.setdefault(ref.familiar_repository, {})[ref.tag] = v1ids[-1]
    repos = json.dumps(repositories, separators=(",", ":")).encode() + b"\n" if repositories else None
    return json.dumps(entries, separators=(",", ":")).encode() + b"\n", repos


def write(store: Store, sink: Sink, images: list[SavedImage]) -> None:
    """Write the archive: metadata first (so a streaming reader learns it early), then data.

    A layer stack shared by two images is written once. May give committed layers
    their tar blob (``layerblobs.materialize``); raises what the sink raises.
    """
    manifest_bytes, repos = manifest(images)
    sink.add_bytes("manifest.json", manifest_bytes)
    if repos is not None:
        sink.add_bytes("repositories", repos)
    for image in images:
        sink.add_bytes(f"{dg.hex_of(image.id)}.json", image.config)
    for image in images:
        _write_layers(store, sink, image)


def _write_layers(store: Store, sink: Sink, image: SavedImage) -> None:
    parent: str | None = None
    for layer, v1id in zip(image.layers, _v1ids(image), strict=True):
        if not sink.has(f"{v1id}/layer.tar"):
            sink.add_dir(v1id)
            sink.add_bytes(f"{v1id}/VERSION", b"1.0")
            sink.add_bytes(f"{v1id}/json", _legacy_json(v1id, parent))
            plain = layerblobs.blob_for(store, layer, "none", docker=True)
            with layerblobs.open_uncompressed(store, layer) as src:
                sink.add_stream(f"{v1id}/layer.tar", plain.size, src)
        parent = v1id
