"""What an image may be: how many layers, how large each layer decompressed.

Built-in defaults, overridden by the store's ``config.toml`` (``[limits]``),
overridden for one command by ``--max-size``. The limits are enforced where
layers enter the store (``store.layers.ingest``, ``detect.spool``) and where an
image gains a layer (pull, load, commit), so a future ``build`` inherits them.
"""

from __future__ import annotations

import os
import re

from forklift.errors import InvalidArgument, LimitExceeded
from forklift.records import FrozenRecord

TYPE_CHECKING = False  # not typing's: its import is on the hot paths
if TYPE_CHECKING:
    from typing import Any

CONFIG_NAME = "config.toml"
# Far above the layers of common public images (a few GB decompressed), far below
# what a decompression bomb reaches before the disk is full.
DEFAULT_MAX_LAYER_SIZE = 32 << 30
# Docker's own depth limit (moby's maxLayerDepth): overlay2 mounts at most ~128 lower
# layers, and a container needs two more (init and upper).
DEFAULT_MAX_LAYERS = 125

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# compiled (and cached by re) when first used: only a size option or config.toml has one
_SIZE = r"([0-9]{1,20}(?:\.[0-9]{1,9})?) ?([kmgtp]?)i?b?"


def parse_size(value: str | int, what: str = "size") -> int:
    """Docker's size syntax: ``512m``, ``20g``, ``1.5GiB``, ``4096`` (bytes); binary units."""
    if isinstance(value, bool):
        raise InvalidArgument(f"invalid {what} {value!r}")
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(_SIZE, value.strip(), re.IGNORECASE)
        if match is None:
            raise InvalidArgument(f"invalid {what} {value!r} (use a size like 512m or 20g)")
        number = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if number <= 0:
        raise InvalidArgument(f"invalid {what} {value!r}: must be more than 0 bytes")
    return number


def format_size(n: int) -> str:
    for unit in ("PiB", "TiB", "GiB", "MiB", "KiB"):
        scale = _UNITS[unit[0].lower()]
        if n >= scale:
            text = f"{n / scale:.1f}".removesuffix(".0")
            return f"{text}{unit}"
    return f"{n}B"


class Limits(FrozenRecord):
    """The store's size and layer-count limits. (A frozen slotted record, not a dataclass:
    this module is on the `run` hot path.)"""

    max_layer_size: int
    max_layers: int
    config_path: str
    size_from_option: bool
    __slots__ = ("max_layer_size", "max_layers", "config_path", "size_from_option")

    def __init__(self, max_layer_size: int = DEFAULT_MAX_LAYER_SIZE,
                 max_layers: int = DEFAULT_MAX_LAYERS, config_path: str = CONFIG_NAME,
                 size_from_option: bool = False) -> None:
        self._set(max_layer_size=max_layer_size, max_layers=max_layers,
                  config_path=config_path, size_from_option=size_from_option)

    def size_exceeded(self, what: str = "layer") -> LimitExceeded:
        where = ("--max-size" if self.size_from_option
                 else f"--max-size, or max-layer-size in {self.config_path}")
        return LimitExceeded(f"{what} is larger than the size limit of"
                             f" {format_size(self.max_layer_size)} (raise it with {where})")

    @property
    def max_blob_size(self) -> int:
        """A compressed layer of incompressible data is a little larger than its content."""
        return self.max_layer_size + self.max_layer_size // 64 + (1 << 20)

    def check_layers(self, count: int, what: str) -> None:
        """Refuse an image of more layers than the limit, before anything is fetched."""
        if count > self.max_layers:
            raise LimitExceeded(f"{what} has {count} layers, more than the limit of"
                                f" {self.max_layers} (max-layers in {self.config_path})")


def load(root: str) -> Limits:
    """The limits of the store at ``root``: built-in defaults unless its config.toml says."""
    path = os.path.join(root, CONFIG_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        return Limits(config_path=path)
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None
    import tomllib

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path}: {exc}") from None
    return _from_doc(doc, path)


def _from_doc(doc: dict[str, Any], path: str) -> Limits:
    unknown = sorted(set(doc) - {"limits"})
    section = doc.get("limits", {})
    if not isinstance(section, dict):
        raise InvalidArgument(f"{path}: [limits] must be a table")
    unknown += [f"limits.{k}" for k in sorted(set(section) - {"max-layer-size", "max-layers"})]
    if unknown:
        raise InvalidArgument(f"{path}: unknown setting {', '.join(unknown)}")
    limits = Limits(config_path=path)
    if "max-layer-size" in section:
        size = section["max-layer-size"]
        if not isinstance(size, str | int):
            raise InvalidArgument(f"{path}: max-layer-size must be a size like \"20g\"")
        limits = limits.replace(max_layer_size=parse_size(size, f"max-layer-size in {path}"))
    if "max-layers" in section:
        count = section["max-layers"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidArgument(f"{path}: max-layers must be a whole number of at least 1")
        limits = limits.replace(max_layers=count)
    return limits


def for_store(root: str, max_size: str | int | None = None) -> Limits:
    """The store's limits, with a command's ``--max-size`` over the layer size limit."""
    limits = load(root)
    if max_size is not None:
        limits = limits.replace(max_layer_size=parse_size(max_size, "--max-size"),
                         size_from_option=True)
    return limits
