"""What an image archive says it holds, before anything is read into the store.

The docker-archive and OCI-layout readers turn ``manifest.json``/``index.json``
into these plans; the engine then reads and verifies each entry. Also the
shape an image is handed to the writers in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forklift.store.layers import Layer


@dataclass
class LayerPlan:
    name: str                       # entry in the source
    digest: str | None = None       # blob digest to verify (OCI descriptors)
    media_type: str | None = None   # OCI descriptor media type; None: sniff (docker-archive)
    size: int | None = None         # descriptor size, checked before reading


@dataclass
class ImagePlan:
    config_name: str
    config_digest: str | None
    layers: list[LayerPlan]
    tags: list[str] = field(default_factory=list)   # normalized references


@dataclass
class SavedImage:
    """An image as the writers need it: ID, config bytes, layers, tags (normalized)."""

    id: str
    config: bytes
    layers: list[Layer]
    tags: list[str] = field(default_factory=list)
