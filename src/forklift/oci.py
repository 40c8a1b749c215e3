"""Media types, canonical JSON and image-config helpers (OCI image spec / Docker v2.2)."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from forklift.errors import BadArchive, InvalidArgument

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
MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {OCI_INDEX, DOCKER_MANIFEST_LIST}

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# Empty tar: two 512-byte zero blocks. A commit whose diff is this is "empty_layer".
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
    base = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def parse_time(text: str | None) -> float:
    """RFC 3339 (any fraction length) to epoch seconds; 0 when absent or unreadable."""
    if not text or not isinstance(text, str):
        return 0.0
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
    machine = platform.machine().lower()
    return {
        "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
        "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    }.get(machine, machine)


def go_variant() -> str | None:
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
    from forklift import digest

    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise BadArchive("image config has no rootfs of type 'layers'")
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise BadArchive("image config rootfs.diff_ids is not a list")
    for diff_id in diff_ids:
        if not isinstance(diff_id, str) or not digest.is_digest(diff_id):
            raise BadArchive(f"image config has an invalid diff_id {diff_id!r}")
    return list(diff_ids)


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]``, as image indexes name them."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, other: Platform) -> bool:
        """Whether ``other`` (an index entry) serves this wanted platform."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or other.variant in (None, self.variant)


def local_platform() -> Platform:
    arch = go_arch()
    return Platform("linux", arch, go_variant() if arch in ("arm", "arm64") else None)


def parse_platform(text: str) -> Platform:
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)
