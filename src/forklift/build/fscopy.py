"""COPY and ADD into an image's mounted root filesystem, by Docker's destination rules.

The image's root is hostile: every path written is resolved with `secure_join`, so a
symlink in the image is followed as the container would follow it and never leads out
of the root. Sources are walked without following symlinks below the top level.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from forklift.errors import InvalidArgument
from forklift.runtime.fsutil import secure_join

_TAR_MAGIC = (b"ustar\x0000", b"ustar  \x00")


@dataclass(frozen=True)
class Owner:
    """What every copied entry gets: a fixed owner (None: keep the source's) and mode."""
    uid: int | None
    gid: int | None
    mode: Chmod | None    # --chmod


@dataclass(frozen=True)
class Source:
    path: str             # on the host (the context or a mounted source image)
    top: str              # the root the source lives in (its symlinks stay inside)
    excluded: Callable[[str], bool] | None = None   # .dockerignore, by path relative to top
    exclude: Callable[[str], bool] | None = None    # --exclude: its name, paths below it
    parents: str | None = None   # --parents: its path below the pivot, recreated under dest
    pivot: str = ""              # --parents: the pivot directory, relative to top


@dataclass(frozen=True)
class Chmod:
    """``--chmod``: an octal mode, or chmod(1)'s symbolic clauses (``u+x,go-w``, ``a=rX``),
    which BuildKit accepts and apply to each copied entry's own mode."""
    text: str
    octal: int | None                                  # the mode itself, when octal
    clauses: tuple[tuple[str, str, str], ...] = ()     # (who, op, perms) when symbolic

    @property
    def relative(self) -> bool:
        """True when the result depends on the source's mode (it then enters the cache key)."""
        return self.octal is None

    def apply(self, mode: int, is_dir: bool) -> int:
        if self.octal is not None:
            return self.octal
        for who, op, perms in self.clauses:
            mode = _apply_clause(mode, is_dir, who or "a", op, perms)
        return mode


_WHO_BITS = {"u": 0o4700, "g": 0o2070, "o": 0o0007}   # the rwx and set-id bits of each class
_SYMBOLIC = re.compile(r"([ugoa]*)([-+=])([rwxXst]*)")


def _apply_clause(mode: int, is_dir: bool, who: str, op: str, perms: str) -> int:
    classes = "ugo" if "a" in who else who
    mask = 0o1000 if "o" in classes else 0   # the sticky bit goes with "other", as in chmod(1)
    for c in classes:
        mask |= _WHO_BITS[c]
    bits = 0
    for p in perms:
        if p == "r":
            bits |= 0o444
        elif p == "w":
            bits |= 0o222
        elif p == "x" or (p == "X" and (is_dir or mode & 0o111)):
            bits |= 0o111
        elif p == "s":
            bits |= 0o6000
        elif p == "t":
            bits |= 0o1000
    bits &= mask
    if op == "+":
        return mode | bits
    if op == "-":
        return mode & ~bits
    return (mode & ~mask) | bits


def parse_chmod(text: str) -> Chmod:
    """``--chmod``: octal (Docker's classic builder and BuildKit) or symbolic (BuildKit)."""
    if text and all(c in "01234567" for c in text):
        mode = int(text, 8)
        if mode > 0o7777:
            raise InvalidArgument(f"invalid chmod parameter: {text!r}")
        return Chmod(text, mode)
    clauses = []
    for part in text.split(","):
        match = _SYMBOLIC.fullmatch(part)
        if match is None:
            raise InvalidArgument(f"invalid chmod parameter: {text!r}: an octal mode or"
                                  " symbolic clauses such as u+x,go-w")
        clauses.append((match.group(1), match.group(2), match.group(3)))
    return Chmod(text, None, tuple(clauses))


def resolve_owner(root: str, chown: str) -> tuple[int, int]:
    """``--chown user[:group]``: names from the image's /etc/passwd and /etc/group, or
    numbers; a missing group is the user's name or number again (Docker's rule)."""
    user, _, group = chown.partition(":")
    group = group or user
    uid = _id_of(root, user, "/etc/passwd", "user")
    gid = _id_of(root, group, "/etc/group", "group")
    return uid, gid


def _id_of(root: str, name: str, table: str, what: str) -> int:
    if name.isascii() and name.isdigit():
        return int(name)
    try:
        with open(secure_join(root, table), encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                    return int(fields[2])
    except OSError:
        pass
    raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: can't find {what} {name}")


def follow_top(src: Source) -> str:
    """A source named through a symlink is the link's target, resolved inside its root."""
    rel = os.path.relpath(src.path, src.top)
    return secure_join(src.top, rel) if os.path.islink(src.path) else src.path


def copy(root: str, sources: list[Source], dest: str, owner: Owner) -> None:
    """Copy ``sources`` to ``dest`` (absolute, inside the image ``root``)."""
    to_dir = dest.endswith("/") or _is_dir(root, dest)
    if len(sources) > 1 and not dest.endswith("/"):
        raise InvalidArgument("When using COPY with more than one source file, the destination"
                              " must be a directory and end with a /")
    for src in sources:
        path = follow_top(src)
        if not os.path.lexists(path):
            raise InvalidArgument(f"COPY failed: {os.path.relpath(src.path, src.top)}: not found in the"
                                  " build context (a symlink is resolved inside it)")
        if src.exclude is not None and src.path.rstrip("/") != src.top.rstrip("/") \
                and src.exclude(os.path.basename(src.path.rstrip("/"))):
            continue   # a root (the context, a repository) has no name of its own
        if src.parents is not None:
            _copy_with_parents(root, src, path, dest, owner)
        elif os.path.isdir(path) and not os.path.islink(path):
            make_dirs(root, dest, owner)
            _copy_tree(root, path, dest, owner, _skip(src, path))
        else:
            name = os.path.basename(src.path.rstrip("/"))
            where = os.path.join(dest, name) if to_dir else dest
            make_dirs(root, os.path.dirname(where.rstrip("/")) or "/", None)
            _copy_entry(root, path, where, os.lstat(path), owner)


def glob_in(root: str, pattern: str) -> list[str]:
    """COPY --from sources: ``pattern`` inside an image's ``root`` (its last component may
    hold wildcards), symlinks resolved inside the root."""
    import fnmatch

    rel = os.path.normpath("/" + pattern)
    parent, name = os.path.split(rel)
    if not any(c in name for c in "*?["):
        # the parent resolved, the name itself kept: COPY names the result after it
        path = os.path.join(secure_join(root, parent), name) if name else root
        if not os.path.lexists(path):
            raise InvalidArgument(f'failed to compute cache key: "{rel}": not found')
        return [path]
    where = secure_join(root, parent)
    found = sorted(os.path.join(where, n) for n in (os.listdir(where) if os.path.isdir(where) else [])
                   if fnmatch.fnmatchcase(n, name))
    if not found:
        raise InvalidArgument(f'failed to compute cache key: "{rel}": not found')
    return found


def is_archive(path: str) -> bool:
    """Whether ADD extracts this local file: a tar, plain or in a compression forklift reads."""
    from forklift import archive

    try:
        with open(path, "rb") as f:
            stream, _kind = archive.decompressed(f)
            head = stream.read(512)
    except (OSError, EOFError, ValueError, Exception):  # decoder errors come in many types
        return False
    if len(head) < 512:
        return False
    return head[257:265] in _TAR_MAGIC or _v7_checksum_ok(head)


def _v7_checksum_ok(head: bytes) -> bool:
    try:
        recorded = int(head[148:156].split(b"\0")[0].strip() or b"-1", 8)
    except ValueError:
        return False
    total = sum(head[:148]) + 8 * 32 + sum(head[156:])
    return head[0] != 0 and recorded == total


def extract(root: str, path: str, dest: str, max_size: int | None) -> None:
    """ADD of a local archive: extracted into ``dest`` with ``import``'s confinement."""
    from forklift import archive

    target = make_dirs(root, dest, None)
    with open(path, "rb") as f:
        stream, _kind = archive.decompressed(f)
        archive.extract(stream, target, whiteouts=False, max_size=max_size)


def _is_dir(root: str, path: str) -> bool:
    return os.path.isdir(secure_join(root, path))


def make_dirs(root: str, path: str, owner: Owner | None = None) -> str:
    """Create ``path``'s missing directories (0755 root; the last one owned as ``owner``
    says) and return its resolved location."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        here = secure_join(root, "/" + "/".join(parts[:i]))
        if os.path.lexists(here) and not os.path.isdir(here):
            raise InvalidArgument(f"cannot copy to {path}: /{'/'.join(parts[:i])} is not a directory")
        if not os.path.lexists(here):
            # missing components of a resolved path are plain names (no symlink to follow)
            os.makedirs(here, 0o755)
            os.chmod(here, 0o755)
            last = i == len(parts)
            uid = owner.uid if last and owner and owner.uid is not None else 0
            gid = owner.gid if last and owner and owner.gid is not None else 0
            os.lchown(here, uid, gid)
    return secure_join(root, path)


def _walk(top: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below ``top`` (relative path, lstat), parents first, sorted."""
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        st = os.lstat(path)
        yield name, st
        if stat.S_ISDIR(st.st_mode):
            for rel, sub in _walk(path):
                yield os.path.join(name, rel), sub


def _skip(src: Source, path: str) -> Callable[[str], bool]:
    """Whether an entry below the directory source ``path`` (relative to it) is ignored:
    by .dockerignore (relative to the top) or by --exclude (relative to the source)."""
    excluded, exclude = src.excluded, src.exclude
    if excluded is None:
        return exclude if exclude is not None else (lambda rel: False)
    base = os.path.relpath(path, src.top)
    if exclude is None:
        return lambda rel: excluded(os.path.normpath(os.path.join(base, rel)))
    return lambda rel: exclude(rel) or excluded(os.path.normpath(os.path.join(base, rel)))


def _copy_with_parents(root: str, src: Source, path: str, dest: str, owner: Owner) -> None:
    """COPY --parents: ``src.parents`` (``x/y/a.txt``) written as ``dest/x/y/a.txt``, each
    directory on the way copied from the source's own (mode, owner, mtime), as the copy of
    the pivot directory limited to this path that BuildKit makes."""
    assert src.parents is not None
    rel = src.parents.strip("/")
    make_dirs(root, dest, None)
    ancestors = {a: _dir_stat(src, a) for a in _ancestors(rel)}
    for ancestor, st in ancestors.items():
        _copy_entry(root, "", os.path.join(dest, ancestor), st, owner)
    where = os.path.join(dest, rel)
    st = os.lstat(path)
    _copy_entry(root, path, where, st, owner)
    if stat.S_ISDIR(st.st_mode):
        _copy_tree(root, path, where, owner, _skip(src, path))
        os.utime(secure_join(root, where), ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    for ancestor, st in reversed(ancestors.items()):   # times after the contents
        os.utime(secure_join(root, os.path.join(dest, ancestor)), ns=(st.st_atime_ns, st.st_mtime_ns),
                 follow_symlinks=False)


def _dir_stat(src: Source, ancestor: str) -> os.stat_result:
    """A directory above a --parents source, resolved inside the source's root."""
    st = os.lstat(secure_join(src.top, os.path.join(src.pivot, ancestor)))
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"COPY --parents: {ancestor} is not a directory")
    return st


def _ancestors(rel: str) -> list[str]:
    """``x/y/a.txt`` → ``["x", "x/y"]``."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _copy_tree(root: str, src_dir: str, dest: str, owner: Owner,
               skip: Callable[[str], bool]) -> None:
    dirs: dict[str, os.stat_result] = {}     # copied, by relative path
    pending: dict[str, os.stat_result] = {}  # ignored directories, made if a child is not
    # where each copied directory really is: a directory this copy made or kept is a real
    # one, so its children need no symlink resolution (an lstat per component) again
    real = {"": secure_join(root, dest)}
    made: set[str] = set()                   # directories this copy created: nothing in them yet
    for rel, st in _walk(src_dir):
        is_dir = stat.S_ISDIR(st.st_mode)
        if skip(rel):
            if is_dir:
                pending[rel] = st
            continue
        parent = os.path.dirname(rel)
        missing = []
        while parent and parent not in dirs:
            missing.append(parent)
            parent = os.path.dirname(parent)
        for ancestor in reversed(missing):  # an ignored directory holding an exception
            _copy_tree_entry(real, made, os.path.join(src_dir, ancestor), ancestor,
                             pending[ancestor], owner)
            dirs[ancestor] = pending[ancestor]
        _copy_tree_entry(real, made, os.path.join(src_dir, rel), rel, st, owner)
        if is_dir:
            dirs[rel] = st
    for rel, st in sorted(dirs.items(), reverse=True):  # times after the contents
        os.utime(real[rel], ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_tree_entry(real: dict[str, str], made: set[str], src: str, rel: str,
                     st: os.stat_result, owner: Owner) -> None:
    parent = os.path.dirname(rel)
    target = os.path.join(real[parent], os.path.basename(rel))
    created = _place(src, target, st, owner, fresh=parent in made)
    if stat.S_ISDIR(st.st_mode):
        real[rel] = target
        if created:
            made.add(rel)


def _copy_entry(root: str, src: str, where: str, st: os.stat_result, owner: Owner) -> None:
    parent = secure_join(root, os.path.dirname(where.rstrip("/")) or "/")
    _place(src, os.path.join(parent, os.path.basename(where.rstrip("/"))), st, owner)


def _place(src: str, target: str, st: os.stat_result, owner: Owner, fresh: bool = False) -> bool:
    """Copy one entry to ``target`` (whose directory is resolved), replacing what is there
    unless both are directories; ``fresh``: the directory was just made, nothing to
    replace. Returns whether a directory was created."""
    kind = stat.S_IFMT(st.st_mode)
    existing = None if fresh else _lstat(target)
    if existing is not None and not (kind == stat.S_IFDIR and stat.S_ISDIR(existing.st_mode)):
        if stat.S_ISDIR(existing.st_mode):
            shutil.rmtree(target)
        else:
            os.unlink(target)
        existing = None
    created = kind == stat.S_IFDIR and existing is None
    if created:
        os.mkdir(target, 0o700)
    elif kind == stat.S_IFLNK:
        os.symlink(os.readlink(src), target)
    elif kind == stat.S_IFREG:
        _copy_file(src, target)
    elif kind != stat.S_IFDIR:
        os.mknod(target, st.st_mode, st.st_rdev)
    uid = st.st_uid if owner.uid is None else owner.uid
    gid = st.st_gid if owner.gid is None else owner.gid
    os.lchown(target, uid, gid)
    if kind != stat.S_IFLNK:
        own = stat.S_IMODE(st.st_mode)
        os.chmod(target, own if owner.mode is None else owner.mode.apply(own, kind == stat.S_IFDIR))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    return created


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _copy_file(src: str, target: str) -> None:
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fd_out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            while os.sendfile(fd_out, fd_in, None, 1 << 30):
                pass
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
