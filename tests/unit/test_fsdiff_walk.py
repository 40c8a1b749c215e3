"""fsdiff's walk, through the library on directories made by hand: every change kind over
an upper directory and over the container's own layers, and the fast path that guards
its cost (an entry is stat'ed only where the image has something to compare it with or
its directory type may be a whiteout)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forklift.engine import fsdiff

pytestmark = pytest.mark.root  # whiteouts are character devices: mknod


def _file(path: Path, data: str = "x", mtime: int = 1_600_000_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    os.utime(path, (mtime, mtime))


def _whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, 0)


def _image(lower: Path) -> None:
    _file(lower / "etc/passwd", "root")
    _file(lower / "etc/group", "root")
    _file(lower / "etc/same", "same")
    _file(lower / "srv/old/x")
    _file(lower / "srv/keep")
    _file(lower / "usr/bin/tool")


def _changes(upper: Path) -> None:
    _file(upper / "etc/passwd", "root and more")               # changed
    _whiteout(upper / "etc/group")                             # deleted
    _file(upper / "etc/same", "same")                          # copied up, unchanged
    _file(upper / "etc/added")
    _whiteout(upper / "etc/never-was")                         # a whiteout of nothing
    (upper / "srv").mkdir()                                    # opaque: replaces the image's
    os.setxattr(upper / "srv", fsdiff.OPAQUE_XATTR, b"y")
    _file(upper / "srv/new")
    for i in range(50):                                        # an added tree
        _file(upper / f"data/d{i % 5}/f{i}")
    os.symlink("d0", upper / "data/link")
    os.mkfifo(upper / "data/fifo")
    os.mknod(upper / "data/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a device, kept
    _whiteout(upper / "data/gone")                             # whiteout in a new directory


def _expected() -> list[tuple[str, str]]:
    out = [("A", "/data")]
    for d in range(5):
        out.append(("A", f"/data/d{d}"))
        out += [("A", f"/data/d{d}/f{i}") for i in sorted(range(d, 50, 5), key=str)]
    out += [("A", "/data/fifo"), ("A", "/data/link"), ("A", "/data/null"),
            ("C", "/etc"), ("A", "/etc/added"), ("D", "/etc/group"), ("C", "/etc/passwd"),
            ("C", "/srv"), ("D", "/srv/keep"), ("A", "/srv/new"), ("D", "/srv/old")]
    return out


class _Counting:
    """os.scandir whose entries count their stat() calls by path."""

    def __init__(self, real: Any, seen: list[str]) -> None:
        self.real, self.seen = real, seen

    def __call__(self, path: str) -> Any:
        seen, it = self.seen, self.real(path)

        class Entry:
            def __init__(self, entry: os.DirEntry[str]) -> None:
                self._e = entry
                self.name, self.path = entry.name, entry.path

            def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
                seen.append(self.path)
                return self._e.stat(follow_symlinks=follow_symlinks)

            def is_dir(self, *, follow_symlinks: bool = True) -> bool:
                return self._e.is_dir(follow_symlinks=follow_symlinks)

            def is_file(self, *, follow_symlinks: bool = True) -> bool:
                return self._e.is_file(follow_symlinks=follow_symlinks)

            def is_symlink(self) -> bool:
                return self._e.is_symlink()

        class Iter:
            def __enter__(self) -> Iterator[Entry]:
                return (Entry(e) for e in it)

            def __exit__(self, *exc: object) -> None:
                it.close()

        return Iter()


def test_every_change_kind_and_only_the_stats_the_rules_need(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _image(lower)
    _changes(upper)
    seen: list[str] = []
    monkeypatch.setattr(fsdiff.os, "scandir", _Counting(os.scandir, seen))
    assert fsdiff.changes(str(upper), [str(lower)]) == _expected()
    stated = sorted(os.path.relpath(p, tmp_path) for p in seen)
    # compared with the image's: etc, etc/passwd, etc/same, srv; devices may be whiteouts:
    # the rest. Nothing of the added tree (50 files, their directories, the symlink) is.
    assert stated == ["upper/data/fifo", "upper/data/gone", "upper/data/null", "upper/etc",
                      "upper/etc/group", "upper/etc/never-was", "upper/etc/passwd",
                      "upper/etc/same", "upper/srv"]


def test_the_same_changes_through_the_containers_own_layers(tmp_path: Path) -> None:
    """After a commit moved the upper directory in (engine/commitlayer), the same changes
    live in an own layer under a fresh upper directory: diff says the same; a later
    change in the new upper directory is merged over it."""
    lower, own, upper = tmp_path / "lower", tmp_path / "own", tmp_path / "upper"
    _image(lower)
    _changes(own)
    upper.mkdir()
    assert fsdiff.changes(str(upper), [str(lower)], own=[str(own)]) == _expected()
    _whiteout(upper / "data/d1")                               # an added tree deleted again
    _file(upper / "usr/bin/tool", "rebuilt")
    expected = [c for c in _expected() if not c[1].startswith("/data/d1")]
    expected += [("C", "/usr"), ("C", "/usr/bin"), ("C", "/usr/bin/tool")]
    assert fsdiff.changes(str(upper), [str(lower)], own=[str(own)]) == sorted(
        expected, key=lambda c: c[1].split("/"))
