"""``diff``: what changed in a container, read from its own layer only.

Follows Docker's overlay algorithm (moby pkg/archive ``changes``): walk the
upper directory in lexical order; a 0/0 character device is a deletion; a path
present in a lower layer is a change unless it is a directory whose size, mode
and mtime are unchanged; a parent of an added or deleted path is reported as
changed. The cost grows with the size of the change, not of the image.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

OPAQUE_XATTR = "trusted.overlay.opaque"

ADD, CHANGE, DELETE = "A", "C", "D"


def walk_sorted(root: str, rel: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything under ``root``, depth first, names sorted."""
    base = os.path.join(root, rel) if rel else root
    with os.scandir(base) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk_sorted(root, child)


def _lower_stat(lowers: list[str], rel: str) -> os.stat_result | None:
    for layer in lowers:
        try:
            return os.lstat(os.path.join(layer, rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size == b.st_size and stat.S_IMODE(a.st_mode) == stat.S_IMODE(b.st_mode)
            and stat.S_IFMT(a.st_mode) == stat.S_IFMT(b.st_mode)
            and int(a.st_mtime) == int(b.st_mtime)
            and (a.st_mtime_ns % 1_000_000_000 == 0 or b.st_mtime_ns % 1_000_000_000 == 0
                 or a.st_mtime_ns == b.st_mtime_ns))


def changes(upper: str, lowers: list[str]) -> list[tuple[str, str]]:
    """List of (kind, path) for an overlay upper dir over ``lowers`` (top first)."""
    out: list[tuple[str, str]] = []
    changed_dirs: set[str] = set()
    for rel, st in walk_sorted(upper):
        path = "/" + rel
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            kind = DELETE
        else:
            lower = _lower_stat(lowers, rel)
            if lower is None:
                kind = ADD
            elif stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lower.st_mode) and _same_dir(st, lower):
                if not _opaque(os.path.join(upper, rel)):
                    continue
                kind = CHANGE
            else:
                kind = CHANGE
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(path)
        if kind in (ADD, DELETE):
            parent = os.path.dirname(path)
            if parent != "/" and parent not in changed_dirs:
                out.append((CHANGE, parent))
                changed_dirs.add(parent)
        out.append((kind, path))
    return out


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
