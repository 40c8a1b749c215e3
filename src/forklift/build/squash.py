"""``build --squash``: the built image as its base's layers plus ONE layer holding
everything the build added, as Docker's experimental squash makes it. The history is
kept, the build's entries marked ``empty_layer``, and a last entry carries the layer."""

from __future__ import annotations

import os
from typing import Any

from forklift import oci
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store, remove_path


def squash(store: Store, image_id: str, base_id: str | None,
           clamp_mtime: int | None = None) -> str:
    """A new image: ``base_id``'s layers + the layers ``image_id`` has on top of them
    merged into one. Returns its ID (``image_id`` itself when there is nothing to merge)."""
    cfg = image_store.config(store, image_id)
    base_layers = image_store.layers(store, base_id) if base_id else []
    ours = image_store.layers(store, image_id)[len(base_layers):]
    base_history = len(image_store.config(store, base_id).get("history") or []) if base_id else 0
    history: list[dict[str, Any]] = [dict(h) for h in cfg.get("history") or []]
    for entry in history[base_history:]:
        entry["empty_layer"] = True
    merged = _merge(store, ours, clamp_mtime) if ours else None
    try:
        kept = [layer_store.reuse(store, la.diff_id) for la in base_layers]
        prepared = [p for p in kept if p is not None]
        if len(prepared) != len(base_layers):
            from forklift.errors import NotFound
            raise NotFound(f"a layer of image {base_id} is missing")
        if merged is not None and merged.diff_id != oci.EMPTY_TAR_DIFF_ID:
            prepared.append(merged)
            history.append({"created": cfg.get("created", oci.now_rfc3339()),
                            "comment": f"merge {image_id} to {base_id or 'scratch'}"})
        new = dict(cfg)
        new["history"] = history
        new["rootfs"] = {"type": "layers", "diff_ids": [p.diff_id for p in prepared]}
        return image_store.add(store, oci.canonical_json(new), prepared, parent=base_id)
    finally:
        if merged is not None:
            merged.cleanup()


def _merge(store: Store, layers: list[layer_store.Layer],
           clamp_mtime: int | None) -> layer_store.PreparedLayer:
    """The layers applied in order onto one directory (whiteouts and opaque directories
    kept as overlayfs writes them), made a layer."""
    from forklift import archive

    scratch = store.make_tmp("squash")
    try:
        target = os.path.join(scratch, "merged")
        os.mkdir(target, 0o755)
        for layer in layers:
            layer_store.clear_opaque(layer.path(store), target)
            archive.copy_layer(layer.path(store), target)
        return layer_store.from_upper(store, target, clamp_mtime)
    finally:
        remove_path(scratch)
