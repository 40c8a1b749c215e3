"""``diff``: what changed in a container, read from its own layer only.

The rules are Docker's (moby's "naive" diff, which compares the container's
view with its image's view):

* a path present only in the container's view is ``A``, one present only in the
  image's is ``D`` (a whole deleted tree is one ``D`` for its top);
* a path in both is ``C`` when its type, mode, owner, group, device number or
  ``security.capability`` xattr differs, or, for a non-directory, its mtime or
  size: a file copied up but not changed (opened for writing, hardlinked) is
  not a change;
* a directory holding a reported change is itself ``C`` (``/`` never is).

Only paths in the upper directory can differ, so the walk covers the upper
directory and looks each path up in the lower layers with overlayfs' rules
(whiteouts, opaque directories): the cost grows with the change, not the image.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

OPAQUE_XATTR = "trusted.overlay.opaque"
CAPABILITY_XATTR = "security.capability"

ADD, CHANGE, DELETE = "A", "C", "D"


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _whiteout_entry(entry: os.DirEntry[str]) -> bool:
    """Whether a directory entry is an overlay whiteout. Its type from the directory
    read (d_type) rules out everything but a device, so only devices are stat'ed."""
    if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False) \
            or entry.is_symlink():
        return False
    return _is_whiteout(entry.stat(follow_symlinks=False))


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None


class LowerView:
    """The image's view of a path: the lower layers (top first) merged as overlayfs does."""

    def __init__(self, layers: list[str]) -> None:
        self.layers = layers
        # per directory, per layer: (it is a directory there, that layer hides the ones below)
        self._dirs: dict[str, list[tuple[bool, bool]]] = {"": [(True, False)] * len(layers)}

    def _dir_state(self, rel: str) -> list[tuple[bool, bool]]:
        state = self._dirs.get(rel)
        if state is None:
            parent = self._dir_state(rel.rpartition("/")[0])
            state = []
            for layer, (parent_is_dir, parent_hides) in zip(self.layers, parent, strict=True):
                st = _lstat(os.path.join(layer, rel)) if parent_is_dir else None
                is_dir = st is not None and stat.S_ISDIR(st.st_mode)
                # a whiteout, a file or an opaque directory hides everything below it
                hides = parent_hides or (st is not None and (not is_dir or _opaque(os.path.join(layer, rel))))
                state.append((is_dir, hides))
            self._dirs[rel] = state
        return state

    def find(self, rel: str) -> tuple[str, os.stat_result] | None:
        """(path in its layer, lstat) of what the image shows at ``rel``, or None."""
        parent = rel.rpartition("/")[0]
        for layer, (is_dir, hides) in zip(self.layers, self._dir_state(parent), strict=True):
            if is_dir:
                path = os.path.join(layer, rel)
                st = _lstat(path)
                if st is not None:
                    return None if _is_whiteout(st) else (path, st)
            if hides:
                return None
        return None

    def children(self, rel: str) -> list[str]:
        """Names the image shows inside directory ``rel``."""
        seen: dict[str, bool] = {}
        for layer, (is_dir, hides) in zip(self.layers, self._dir_state(rel), strict=True):
            if is_dir:
                with os.scandir(os.path.join(layer, rel)) as it:
                    for entry in it:
                        if entry.name not in seen:
                            seen[entry.name] = not _whiteout_entry(entry)
            if hides:
                break
        return sorted(name for name, visible in seen.items() if visible)


def _differs(new_path: str, new: os.stat_result, old_path: str, old: os.stat_result) -> bool:
    if (new.st_mode != old.st_mode or new.st_uid != old.st_uid or new.st_gid != old.st_gid
            or new.st_rdev != old.st_rdev):
        return True
    if not stat.S_ISDIR(new.st_mode) and (new.st_size != old.st_size
                                          or not _same_time(new, old)):
        return True
    return _capability(new_path) != _capability(old_path)


def _same_time(a: os.stat_result, b: os.stat_result) -> bool:
    # a zero nanosecond part means "not recorded" (e.g. from a tar): compare seconds only
    return (int(a.st_mtime) == int(b.st_mtime)
            and (a.st_mtime_ns == b.st_mtime_ns or a.st_mtime_ns % 1_000_000_000 == 0
                 or b.st_mtime_ns % 1_000_000_000 == 0))


def changes(upper: str, lowers: list[str], own: list[str] | None = None) -> list[tuple[str, str]]:
    """List of (kind, path) for an overlay upper dir over ``lowers`` (top first); ``own``:
    the container's own layers between the two (top first), whose changes are the
    container's too (see engine/commitlayer)."""
    if own:
        return _StackWalk([upper, *own], lowers).dir_changes("", MERGED)
    return _dir_changes(upper, "", LowerView(lowers), MERGED)


# How an upper directory relates to the image's directory at the same path.
MERGED = "merged"      # overlayfs merges the two: only upper entries can differ
REPLACES = "replaces"  # opaque, or below one: image entries missing here were deleted
NEW = "new"            # the image has nothing here: everything below is added


def _dir_changes(upper: str, rel: str, view: LowerView, relation: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    base = os.path.join(upper, rel) if rel else upper
    # entries are stat'ed only where the rules compare them with the image's (DirEntry
    # caches the one lstat): an added file or tree costs no stat at all
    with os.scandir(base) as it:
        entries = {e.name: e for e in it}
    names = set(entries)
    if relation == REPLACES:
        names.update(view.children(rel))
    for name in sorted(names):
        child = f"{rel}/{name}" if rel else name
        entry = entries.get(name)
        old = None if relation == NEW else view.find(child)
        if entry is None or _whiteout_entry(entry):
            if old is not None:
                out.append((DELETE, "/" + child))
            continue
        out.extend(_entry_changes(upper, child, entry, old, view, relation))
    return out


def _entry_changes(upper: str, rel: str, entry: os.DirEntry[str],
                   old: tuple[str, os.stat_result] | None,
                   view: LowerView, parent_relation: str) -> list[tuple[str, str]]:
    own = _own_change(rel, entry, old)
    if not entry.is_dir(follow_symlinks=False):
        return own
    relation = _relation(old, parent_relation, lambda: _opaque(entry.path))
    inner = _dir_changes(upper, rel, view, relation)
    if inner and not own:
        own = [(CHANGE, "/" + rel)]
    return own + inner


def _own_change(rel: str, entry: os.DirEntry[str],
                old: tuple[str, os.stat_result] | None) -> list[tuple[str, str]]:
    """The entry's own change: added, changed, or none."""
    if old is None:
        return [(ADD, "/" + rel)]
    if _differs(entry.path, entry.stat(follow_symlinks=False), *old):
        return [(CHANGE, "/" + rel)]
    return []


def _relation(old: tuple[str, os.stat_result] | None,
              parent_relation: str, hides: Callable[[], bool]) -> str:
    """How a directory relates to the image's at its path: NEW (none there), REPLACES
    (the image's is hidden: by an opaque parent or, asked last, ``hides``), else MERGED."""
    if old is None or not stat.S_ISDIR(old[1].st_mode):
        return NEW
    if parent_relation == REPLACES or hides():
        return REPLACES
    return MERGED


class _StackWalk:
    """The walk of ``changes`` over several layers of the container's own (top first):
    the container's view is all of them over the image's, merged as overlayfs does, and
    only paths present in one of its own layers can differ from the image's view."""

    def __init__(self, tops: list[str], lowers: list[str]) -> None:
        self.count = len(tops)
        self.view = LowerView([*tops, *lowers])
        self.image = LowerView(lowers)

    def entries(self, rel: str) -> dict[str, os.DirEntry[str] | None]:
        """What the container's own layers show inside ``rel``: per name, the entry of
        the topmost layer holding it, None for a whiteout."""
        out: dict[str, os.DirEntry[str] | None] = {}
        states = self.view._dir_state(rel)[:self.count]
        for layer, (is_dir, hides) in zip(self.view.layers, states, strict=False):
            if is_dir:
                with os.scandir(os.path.join(layer, rel)) as it:
                    for entry in it:
                        if entry.name not in out:
                            out[entry.name] = None if _whiteout_entry(entry) else entry
            if hides:
                break
        return out

    def dir_changes(self, rel: str, relation: str) -> list[tuple[str, str]]:
        entries = self.entries(rel)
        names = set(entries)
        if relation == REPLACES:
            names.update(self.image.children(rel))
        out: list[tuple[str, str]] = []
        for name in sorted(names):
            child = f"{rel}/{name}" if rel else name
            new = entries.get(name)
            old = None if relation == NEW else self.image.find(child)
            if new is None:
                if old is not None:
                    out.append((DELETE, "/" + child))
                continue
            out.extend(self.entry_changes(child, new, old, relation))
        return out

    def entry_changes(self, rel: str, new: os.DirEntry[str],
                      old: tuple[str, os.stat_result] | None,
                      parent_relation: str) -> list[tuple[str, str]]:
        own = _own_change(rel, new, old)
        if not new.is_dir(follow_symlinks=False):
            return own
        # REPLACES when one of the container's layers hides the image's directory
        relation = _relation(old, parent_relation,
                             lambda: self.view._dir_state(rel)[self.count - 1][1])
        inner = self.dir_changes(rel, relation)
        if inner and not own:
            own = [(CHANGE, "/" + rel)]
        return own + inner
