"""Removing a directory that may have something mounted under it (a store, a chroot, a
dockerd's data root): unmount first, deepest first, and never remove through a mount."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(path: Path | str) -> list[str]:
    """Mount points at or below ``path``, deepest first (from /proc/self/mountinfo)."""
    base = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    inside = {p for p in points if p == base or p.startswith(base.rstrip("/") + "/")}
    return sorted(inside, key=len, reverse=True)


def unmount_and_remove(path: Path | str) -> None:
    """Unmount everything at or below ``path``, check nothing is left mounted, then remove
    it as ``rm -rf --one-file-system`` does. Fails the caller rather than remove through a
    mount that would not go."""
    for point in mounts_under(path):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = mounts_under(path)
    assert not left, f"refusing to remove {path}: still mounted: {left}"
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=True)
