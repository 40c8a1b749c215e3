"""The one sorted walk of a directory tree.

Layer tars must be byte-identical for the same content (their digest is the
diffID), so every walk that produces or compares them visits names in one order:
the bytes of each name as the filesystem holds them (``surrogateescape`` gives
back names that are not UTF-8), depth first, a directory before what it holds.
Imports nothing of forklift: ``archive`` writes layer tars with it, ``store.check``
compares a layer directory with its re-extracted blob.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator


def name_key(name: str) -> bytes:
    """Sort key of one name: its bytes on disk (Go's and tar's order, not str order)."""
    return name.encode("utf-8", "surrogateescape")


def walk_sorted(root: str, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to ``root``, path, lstat) of everything under ``root`` (not
    ``root`` itself), depth first, names in ``name_key`` order. Follows no symlink;
    raises the ``OSError`` of a directory it cannot read."""
    base = os.path.join(root, rel) if rel else root
    with os.scandir(base) as it:
        entries = sorted(it, key=lambda e: name_key(e.name))
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        yield child, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk_sorted(root, child)
