"""Media types, canonical JSON and image-config helpers (OCI image spec / Docker v2.2)."""

from __future__ import annotations

import json
import time

from forklift.digest import is_digest
from forklift.errors import BadArchive, InvalidArgument
from forklift.records import FrozenRecord

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

# OCI image spec
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Docker image manifest v2 schema 2
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

LAYER_TYPES_GZIP = {OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER}
LAYER_TYPES_ZSTD = {OCI_LAYER_ZSTD}
LAYER_TYPES_PLAIN = {OCI_LAYER, DOCKER_LAYER}
LAYER_TYPES = LAYER_TYPES_GZIP | LAYER_TYPES_ZSTD | LAYER_TYPES_PLAIN
MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {OCI_INDEX, DOCKER_MANIFEST_LIST}

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# Empty tar: two 512-byte zero blocks. A commit whose diff is this is "empty_layer".
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

# defined with the runtime spec, which exec loads without this module (dataclasses)
from forklift.runtime.spec import DEFAULT_PATH as DEFAULT_PATH  # noqa: E402

# Config fields carried from a container into the image it is committed to.
CONFIG_FIELDS = (
    "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes",
    "WorkingDir", "Labels", "StopSignal", "OnBuild", "Healthcheck", "Shell",
    "ArgsEscaped",
)


def canonical_json(obj: Any) -> bytes:
    """Compact, key-sorted JSON: the same object always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object or raise a one-line BadArchive."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadArchive(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadArchive(f"{what} is not a JSON object")
    return obj


def now_rfc3339() -> str:
    """UTC timestamp with nanosecond precision, as Docker writes ``created``."""
    ns = time.time_ns()
    # time's gmtime, not datetime (~2 ms of import on the run path): the same UTC fields
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}.{ns % 1_000_000_000:09d}Z"


_PARSED: dict[str, float] = {}  # parse_time's answers: a listing reads the same stamps again


def parse_time(text: str | None) -> float:
    """RFC 3339 (any fraction length) to epoch seconds; 0 when absent or unreadable."""
    if not text or not isinstance(text, str):
        return 0.0
    seconds = _PARSED.get(text)
    if seconds is None:
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        seconds = _PARSED[text] = _parse_time(text)
    return seconds


def _parse_time(text: str) -> float:
    from datetime import datetime

    try:
        main, _, rest = text.partition(".")
        frac = ""
        tz = "Z"
        if rest:
            digits = "".join(c for c in rest if c.isdigit())
            frac = digits
            tz = rest[len(digits):] or "Z"
        elif text.endswith("Z"):
            main = text[:-1]
        elif "+" in text[10:] or text[10:].count("-"):
            idx = max(text.rfind("+"), text.rfind("-"))
            main, tz = text[:idx], text[idx:]
        stamp = datetime.fromisoformat(main + ("+00:00" if tz == "Z" else tz))
        return stamp.timestamp() + (float("0." + frac) if frac else 0.0)
    except ValueError:
        return 0.0


def go_arch() -> str:
    import platform

    machine = platform.machine().lower()
    return {
        "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
        "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    }.get(machine, machine)


def go_variant() -> str | None:
    import platform

    machine = platform.machine().lower()
    return {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8", "arm64": "v8"}.get(machine)


def new_image_config(container_config: dict[str, Any], diff_ids: list[str],
                     history: list[dict[str, Any]], created: str,
                     author: str = "", comment: str = "") -> dict[str, Any]:
    """An image config in the shape Docker writes for commits and imports."""
    config: dict[str, Any] = {
        "architecture": go_arch(),
        "config": container_config,
        "created": created,
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if author:
        config["author"] = author
    if comment:
        config["comment"] = comment
    variant = go_variant()
    if variant and config["architecture"] == "arm":
        config["variant"] = variant
    return config


def image_diff_ids(config: dict[str, Any]) -> list[str]:
    """The layer diffIDs of an image config, validated."""
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise BadArchive("image config has no rootfs of type 'layers'")
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise BadArchive("image config rootfs.diff_ids is not a list")
    for diff_id in diff_ids:
        if not isinstance(diff_id, str) or not is_digest(diff_id):
            raise BadArchive(f"image config has an invalid diff_id {diff_id!r}")
    return list(diff_ids)


class Platform(FrozenRecord):
    """``os/architecture[/variant]``, as image indexes name them. (Frozen slotted records
    here, not dataclasses: this module is on the `run` hot path.)"""

    os: str
    architecture: str
    variant: str | None
    __slots__ = ("os", "architecture", "variant")

    def __init__(self, os: str, architecture: str, variant: str | None = None) -> None:
        self._set(os=os, architecture=architecture, variant=variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def score(self, offered: Platform | None) -> int:
        """How well an index entry for ``offered`` serves this wanted platform.

        0: it does not (another os or architecture, another named variant, or no
        platform at all); 1: os and architecture agree and one side names no variant;
        2: os, architecture and variant agree (both naming none counts as agreeing).
        """
        if offered is None or (self.os, self.architecture) != (offered.os, offered.architecture):
            return 0
        if self.variant == offered.variant:
            return 2
        return 1 if self.variant is None or offered.variant is None else 0


def local_platform() -> Platform:
    """This machine as Docker names it: ``linux/amd64``, ``linux/arm64/v8``, ``linux/arm/v7``."""
    arch = go_arch()
    return Platform("linux", arch, go_variant() if arch in ("arm", "arm64") else None)


def parse_platform(text: str) -> Platform:
    """``--platform`` text; InvalidArgument unless ``os/arch[/variant]``."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


# ----------------------------------------------------------------------------- descriptors

class Descriptor(FrozenRecord):
    """An OCI content descriptor: what a manifest or an index says about one blob."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...]
    annotations: dict[str, str]
    platform: Platform | None
    __slots__ = ("media_type", "digest", "size", "urls", "annotations", "platform")
    _unhashed = ("annotations",)

    def __init__(self, media_type: str, digest: str, size: int, urls: tuple[str, ...] = (),
                 annotations: dict[str, str] | None = None,
                 platform: Platform | None = None) -> None:
        self._set(media_type=media_type, digest=digest, size=size, urls=urls,
                  annotations={} if annotations is None else annotations, platform=platform)

    @classmethod
    def parse(cls, obj: object, what: str) -> Descriptor:
        """Validate untrusted JSON; BadArchive (one line naming ``what``) unless it is sound.

        The digest is checked before anything else uses it: a hostile one must never
        reach a URL or a path. A missing ``mediaType`` is "" (older Docker manifests
        omit it in places); a platform object without an architecture counts as none.
        """
        if not isinstance(obj, dict):
            raise BadArchive(f"{what}: malformed descriptor")
        media_type = obj.get("mediaType")
        if media_type is not None and not isinstance(media_type, str):
            raise BadArchive(f"{what}: invalid mediaType {_clip(media_type)}")
        found = obj.get("digest")
        if not isinstance(found, str) or not is_digest(found):
            raise BadArchive(f"{what}: invalid digest {_clip(found)}")
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadArchive(f"{what}: invalid size {_clip(size)}")
        return cls(media_type or "", found, size, _urls(obj.get("urls"), what),
                   _annotations(obj.get("annotations"), what),
                   _platform(obj.get("platform"), what))

    def to_json(self) -> dict[str, Any]:
        """The descriptor as JSON, keys in Docker's order (mediaType, size, digest, …):
        manifests built for a push are hashed as written, so the order is part of
        their digest."""
        out: dict[str, Any] = {"mediaType": self.media_type, "size": self.size,
                               "digest": self.digest}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            p = self.platform
            out["platform"] = {"architecture": p.architecture, "os": p.os,
                               **({"variant": p.variant} if p.variant else {})}
        return out


def image_parts(manifest: dict[str, Any], what: str) -> tuple[Descriptor, list[Descriptor]]:
    """An image manifest's config and layer descriptors, validated: BadArchive for a
    malformed descriptor, a missing layer list or a layer type forklift cannot unpack."""
    config = Descriptor.parse(manifest.get("config"), f"{what} config")
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise BadArchive(f"{what} has no layers list")
    layers = [Descriptor.parse(item, f"{what} layer") for item in raw_layers]
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise BadArchive(f"{what}: unsupported layer media type {layer.media_type!r}")
    return config, layers


def best_match(want: Platform, entries: list[Descriptor]) -> Descriptor | None:
    """The entry that serves ``want`` best (highest ``Platform.score``, the first of
    equals, as the index lists them); None when no entry serves it."""
    best: tuple[int, Descriptor] | None = None
    for entry in entries:
        score = want.score(entry.platform)
        if score and (best is None or score > best[0]):
            best = (score, entry)
    return best[1] if best else None


def _clip(value: object) -> str:
    return repr(value)[:80]


def _urls(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise BadArchive(f"{what}: invalid urls {_clip(value)}")
    return tuple(value)


def _annotations(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadArchive(f"{what}: invalid annotations {_clip(value)}")
    return dict(value)


def _platform(value: object, what: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadArchive(f"{what}: invalid platform {_clip(value)}")
    os_, arch, variant = (value.get(k) for k in ("os", "architecture", "variant"))
    if not all(v is None or isinstance(v, str) for v in (os_, arch, variant)):
        raise BadArchive(f"{what}: invalid platform {_clip(value)}")
    if not arch:
        return None
    return Platform(os_ or "", arch, variant or None)
