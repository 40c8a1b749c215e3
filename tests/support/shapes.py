"""Comparing forklift's JSON documents with Docker's for the same object: the same keys in
the same order and the same value types, where values themselves differ (ids, times,
paths)."""

from __future__ import annotations

from typing import Any

# Keys whose values are data, not fields (their keys are compared as a whole, in any order).
MAPS = frozenset({"Labels", "ExposedPorts", "Volumes", "PortBindings", "Tmpfs", "Sysctls",
                  "Networks", "Ports", "Options", "Containers", "Status"})


def shape_differences(theirs: Any, ours: Any, path: str = "$", *,
                      docker_only: dict[str, set[str]] | None = None) -> list[str]:
    """Where ``ours`` differs from ``theirs`` in keys, key order or value types; lists are
    compared by their first element. ``docker_only``: keys (by their parent's name) that
    only Docker's document has, for a reason the caller gives."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        name = path.rsplit(".", 1)[-1]
        keys = [k for k in theirs if k not in (docker_only or {}).get(name, set())]
        if name in MAPS:
            keys = sorted(keys)
            if sorted(ours) != keys:
                return [f"{path}: keys {keys} != {sorted(ours)}"]
        elif list(ours) != keys:
            return [f"{path}: keys {keys} != {list(ours)}"]
        return [d for k in keys
                for d in shape_differences(theirs[k], ours[k], f"{path}.{k}",
                                           docker_only=docker_only)]
    if isinstance(theirs, list) and isinstance(ours, list):
        if theirs and ours:
            return shape_differences(theirs[0], ours[0], f"{path}[0]", docker_only=docker_only)
        return []
    if type(theirs) is not type(ours):
        return [f"{path}: {theirs!r} ({type(theirs).__name__}) != {ours!r} ({type(ours).__name__})"]
    return []


