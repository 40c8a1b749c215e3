"""The build context: ``.dockerignore``, COPY/ADD sources, content checksums, tar contexts.

The rules are Docker's (20.10: moby's ``pkg/fileutils`` PatternMatcher, the CLI's
``.dockerignore`` reading and its walk of the context; the classic builder's COPY source
rules; from Docker 23 and BuildKit the parent-directory rule of ``Ignore.matches`` and
``<Dockerfile>.dockerignore``), read from their behaviour and written here:

* ``.dockerignore``: one pattern a line, ``#`` comments (only at the very start of a
  line), whitespace trimmed, ``filepath.Clean`` applied, one leading ``/`` dropped, ``!``
  exceptions, the last matching pattern wins, Go ``filepath.Match`` syntax plus ``**``.
  A pattern matching a directory matches everything under it (``docs`` excludes
  ``docs/a/b``). A matched directory is skipped whole unless an exception pattern starts
  with its path (``!docs/README.md`` reaches into ``docs``), as Docker's walk does.
  The Dockerfile and ``.dockerignore`` are read whatever the patterns say, and are not
  visible to COPY when excluded (Docker sends them, then drops them).
* Sources: cleaned, confined to the context, globbed with ``filepath.Match`` (``*``
  never crosses ``/``), excluded files invisible, in the order Docker copies them.
* Checksums: content digests remembered by file identity and stat (see ``_remember``).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from forklift import archive
from forklift import limits as limits_mod
from forklift.errors import BadArchive, InvalidArgument, LimitExceeded
from forklift.store.db import remove_path

DOCKERIGNORE = ".dockerignore"
DEFAULT_DOCKERFILE = "Dockerfile"
CACHE_FILE = "context-digests.json"
CACHE_VERSION = 1
CACHE_MAX_ENTRIES = 200_000
# A Dockerfile is read into memory (from stdin, or a file): bounded like other small inputs.
DOCKERFILE_LIMIT = 64 << 20
# A file whose ctime is this close to the moment we start reading it is hashed but not
# remembered (git's "racily clean" rule): see _remember.
RACY_WINDOW_NS = 1_000_000_000
_CHUNK = 1 << 20


class ContextError(InvalidArgument):
    """The build context, a COPY source or a ``.dockerignore`` is unusable (one line)."""


# --------------------------------------------------------------------------- Go paths

def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` (Unix): the shortest equivalent path, "." for empty."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    text = "/".join(parts)
    if rooted:
        return "/" + text
    return text or "."


def _go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: everything up to the last ``/``, cleaned."""
    return go_clean(path[: path.rfind("/") + 1])


# --------------------------------------------------------------------------- patterns

class BadPattern(ValueError):
    """Go's ``filepath.ErrBadPattern``."""


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One character of a bracket expression (Go's getEsc): a '-' or ']' where a
    character belongs, a lone trailing backslash, or nothing after it is malformed."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern(pattern)
    char = pattern[i]
    if i + 1 >= len(pattern):
        raise BadPattern(pattern)  # the class is never closed
    return char, i + 1


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """A ``[...]`` expression starting after its '[' → (regex, index after ']')."""
    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    ranges: list[str] = []
    count = 0
    while not (i < len(pattern) and pattern[i] == "]" and count > 0):
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        count += 1
        if lo <= hi:  # Go accepts an empty range (z-a) and matches nothing with it
            ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
    if not ranges:
        return ("(?s:.)" if negate else "(?!)"), i + 1
    return f"[{'^' if negate else ''}{''.join(ranges)}]", i + 1


def _doublestar(pattern: str, i: int) -> tuple[str, int]:
    """``**`` at ``i`` (Docker's extension): any number of directories."""
    i += 2
    if i < len(pattern) and pattern[i] == "/":
        i += 1
    return (".*" if i == len(pattern) else "(?:.*/)?"), i


def translate(pattern: str, *, doublestar: bool = False) -> str:
    """A Go ``filepath.Match`` pattern as a Python regex for ``fullmatch``; ``doublestar``
    adds Docker's ``**``. Every other character is literal (Docker's older matcher let
    ``+``, ``(``, ``|`` … act as regex syntax; its current one does not). Raises
    BadPattern where Go's Match reports ErrBadPattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*" and doublestar and pattern.startswith("**", i):
            part, i = _doublestar(pattern, i)
        elif char == "*":
            part, i = "[^/]*", i + 1
        elif char == "?":
            part, i = "[^/]", i + 1
        elif char == "\\":
            if i + 1 >= len(pattern):
                raise BadPattern(pattern)
            part, i = re.escape(pattern[i + 1]), i + 2
        elif char == "[":
            part, i = _bracket(pattern, i + 1)
        else:
            part, i = re.escape(char), i + 1
        out.append(part)
    return "".join(out)


def has_wildcards(pattern: str) -> bool:
    """Docker's ``containsWildcards``: an unescaped ``*``, ``?`` or ``[``."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] in "*?[":
            return True
        i += 1
    return False


def read_dockerignore(lines: Iterable[str]) -> list[str]:
    """The CLI's reading of ``.dockerignore`` lines into patterns ("!" kept in front)."""
    out = []
    for number, raw in enumerate(lines):
        line = raw.rstrip("\n").removesuffix("\r")
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        out.append("!" + line if invert else line)
    return out


@dataclass(frozen=True)
class _Pattern:
    text: str                 # cleaned, without its "!"
    exclusion: bool
    regex: re.Pattern[str]


def _compile(line: str) -> _Pattern:
    text = go_clean(line.strip())
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise ContextError('error checking context: illegal exclusion pattern: "!"')
        text = text[1:]
    try:
        regex = re.compile(translate(text, doublestar=True))
    except BadPattern:
        raise ContextError(f"error checking context: syntax error in pattern {text!r}") from None
    return _Pattern(text, exclusion, regex)


class Ignore:
    """``.dockerignore`` rules, matched as Docker matches them."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.patterns = [_compile(p) for p in read_dockerignore(lines)]
        self.exclusions = any(p.exclusion for p in self.patterns)
        self._pruned: dict[str, bool] = {}
        self._dir_hits: dict[str, tuple[bool, ...]] = {}

    @classmethod
    def from_file(cls, path: Path) -> Ignore:
        """The rules in ``path``; a missing file holds none."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
                return cls(f.read(DOCKERFILE_LIMIT).split("\n"))
        except FileNotFoundError:
            return cls([])
        except OSError as exc:
            raise ContextError(f"error reading {path}: {exc.strerror}") from None

    @classmethod
    def for_dockerfile(cls, root: Path, dockerfile: Path | None) -> Ignore:
        """``<Dockerfile>.dockerignore`` beside the Dockerfile wins over the root's
        ``.dockerignore`` (BuildKit's rule); a Dockerfile from stdin has none of its own."""
        if dockerfile is not None:
            own = dockerfile.with_name(dockerfile.name + DOCKERIGNORE)
            if own.is_file():
                return cls.from_file(own)
        return cls.from_file(root / DOCKERIGNORE)

    def matches(self, path: str) -> bool:
        """Docker's ``MatchesOrParentMatches``: the last pattern matching the path or a
        directory above it decides. (20.10's ``Matches`` tried only the pattern's own
        number of leading directories, so ``**/foo`` let ``x/y/foo/bar`` through when an
        exception kept Docker walking into ``x/y/foo``; a pattern matching a directory
        excludes everything under it, as Docker 23 and BuildKit have it.)"""
        parent = _go_dir(path)
        prefixes = list(itertools.accumulate(parent.split("/"), lambda a, b: f"{a}/{b}"))
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # it could not change the answer
            hit = pattern.regex.fullmatch(path) is not None or (parent != "." and any(
                pattern.regex.fullmatch(prefix) is not None for prefix in prefixes))
            if hit:
                matched = not pattern.exclusion
        return matched

    def _reaches_into(self, directory: str) -> bool:
        """An exception pattern starts with the directory's path: Docker walks into it."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def _hits(self, directory: str) -> tuple[bool, ...]:
        """For each pattern: it matches the clean relative ``directory`` or one above it."""
        def step(d: str, above: tuple[bool, ...] | None) -> tuple[bool, ...]:
            return tuple((above is not None and above[i]) or p.regex.fullmatch(d) is not None
                         for i, p in enumerate(self.patterns))
        return _fill(self._dir_hits, directory, step)

    def _matches_clean(self, rel: str) -> bool:
        """``matches`` for a clean relative path, remembering what its directories matched
        (a deep tree costs linear time, not quadratic)."""
        parent = rel.rpartition("/")[0]
        above = self._hits(parent) if parent else None
        matched = False
        for i, pattern in enumerate(self.patterns):
            if pattern.exclusion != matched:
                continue
            if (above is not None and above[i]) or pattern.regex.fullmatch(rel) is not None:
                matched = not pattern.exclusion
        return matched

    def prunes(self, rel: str) -> bool:
        """Nothing at or under the directory ``rel`` is sent (Docker skips it whole)."""
        rel = _clean_rel(rel)
        if rel == ".":
            return False

        def step(d: str, above: bool | None) -> bool:
            return bool(above) or (self._matches_clean(d) and not (
                self.exclusions and self._reaches_into(d)))
        return _fill(self._pruned, rel, step)

    def excluded(self, rel: str) -> bool:
        """``rel`` (relative to the context root) is not sent: it matches, or a directory
        above it is skipped whole. An excluded directory may still hold files an
        exception brings back (see ``prunes``)."""
        rel = _clean_rel(rel)
        if rel == ".":
            return False
        parent = rel.rpartition("/")[0]
        return (bool(parent) and self.prunes(parent)) or self._matches_clean(rel)


_T = TypeVar("_T")


def _fill(memo: dict[str, _T], rel: str, step: Callable[[str, _T | None], _T]) -> _T:
    """``memo[rel]`` for a clean relative path, computing it and every directory above it
    that is not known yet, top down, from the value of the directory above."""
    pending = []
    known: str = rel
    while known and known not in memo:
        pending.append(known)
        known = known.rpartition("/")[0]
    value = memo[known] if known else None
    for directory in reversed(pending):
        value = step(directory, value)
        memo[directory] = value
    assert value is not None
    return value


def _clean_rel(rel: str) -> str:
    return go_clean(rel.lstrip("/")) if rel else "."


# --------------------------------------------------------------------------- the context

def _not_found(name: str) -> ContextError:
    return ContextError("file not found in build context or excluded by .dockerignore:"
                        f" stat {name}: file does not exist")


def _forbidden(name: str) -> ContextError:
    return ContextError(f"forbidden path outside the build context: {name}")


def _join(rel: str, name: str) -> str:
    return name if rel == "." else f"{rel}/{name}"


def _name_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def open_content(path: str) -> int:
    """Open a file's content for hashing: the one place file content is opened, so
    tests can count or forbid it. Never follows a symlink, never blocks on a FIFO."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)


@contextlib.contextmanager
def _walk_errors() -> Iterator[None]:
    """A directory or file of the context that cannot be read: one line, as Docker's CLI."""
    try:
        yield
    except OSError as exc:
        raise ContextError(f"error checking context: can't stat '{exc.filename}':"
                           f" {_why(exc)}") from None
    except RecursionError:
        raise ContextError("error checking context: directories nested too deeply") from None


@dataclass
class Context:
    root: Path          # a real directory (a tar context is extracted into a private temp dir)
    ignore: Ignore
    cache_dir: Path | None = None   # where file digests are remembered between runs
    files_read: int = field(default=0, init=False)   # files whose content was hashed
    _digests: dict[str, list[Any]] | None = field(default=None, init=False, repr=False)
    _dirty: bool = field(default=False, init=False, repr=False)
    _sends: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(os.path.realpath(self.root))

    # -- what Docker sends
    def _path(self, rel: str) -> str:
        return str(self.root) if rel == "." else os.path.join(self.root, rel)

    def _dir_sent(self, rel: str) -> bool:
        """A directory is there for COPY when it is sent, or holds something that is."""
        if not self.ignore.excluded(rel):
            return True
        if self.ignore.prunes(rel):
            return False
        known = self._sends.get(rel)
        if known is None:
            known = next(self.entries(rel), None) is not None
            self._sends[rel] = known
        return known

    def sent(self, rel: str, st: os.stat_result) -> bool:
        if stat.S_ISDIR(st.st_mode):
            return self._dir_sent(rel)
        return not self.ignore.excluded(rel)

    def entries(self, rel: str = ".", depth: int | None = None
                ) -> Iterator[tuple[str, str, os.stat_result]]:
        """(relative path, path, lstat) of what is sent under the directory ``rel``, in
        Go's Walk order (names by their bytes, a directory before its contents), at most
        ``depth`` levels down. Iterative: a hostile tar may nest thousands of levels."""
        stack = [self._children(rel)]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            yield item
            if stat.S_ISDIR(item[2].st_mode) and (depth is None or len(stack) < depth):
                stack.append(self._children(item[0]))

    def _children(self, rel: str) -> Iterator[tuple[str, str, os.stat_result]]:
        with os.scandir(self._path(rel)) as it:
            found = sorted(it, key=lambda e: _name_key(e.name))
        for entry in found:
            child = _join(rel, entry.name)
            st = entry.stat(follow_symlinks=False)
            if self.sent(child, st):
                yield child, entry.path, st

    # -- COPY sources
    def _confine(self, pattern: str) -> str:
        rel = go_clean(pattern.lstrip("/")) if pattern.lstrip("/") else "."
        if rel == ".." or rel.startswith("../"):
            raise _forbidden(pattern)
        return rel

    def _resolve(self, rel: str, name: str) -> tuple[str, os.stat_result] | None:
        """Follow symlinks in ``rel`` (the last one too: COPY copies what a link points
        to) → (relative real path, stat), None when missing or not sent; a link leading
        out of the context is refused."""
        real = os.path.realpath(self._path(rel))
        inside = os.path.relpath(real, self.root)
        if inside == ".." or inside.startswith("../"):
            raise _forbidden(name)
        try:
            named = os.lstat(self._path(rel))
            st = os.stat(real)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG):
                return None
            raise ContextError(f"stat {name}: {_why(exc)}") from None
        if not self.sent(rel, named) or not self.sent(inside, st):
            return None
        return inside, st

    def _glob(self, rel: str, name: str, doublestar: bool = False) -> list[str]:
        regex = re.compile(translate(rel, doublestar=doublestar))
        # without a bracket expression (or ``**``) a match has exactly the pattern's depth
        depth = None if "[" in rel or (doublestar and "**" in rel) else rel.count("/") + 1
        found = []
        for child, _, _st in self.entries(".", depth):
            if regex.fullmatch(child) and self._resolve(child, name) is not None:
                found.append(child)
        return found

    def sources(self, patterns: Sequence[str], *, doublestar: bool = False) -> list[Path]:
        """COPY/ADD sources: each pattern cleaned and confined to root ("../x" -> ContextError
        "forbidden path outside the build context: ../x"), globbed with Go's filepath.Match,
        minus excluded paths; a name matching nothing -> ContextError naming it, a wildcard
        matching nothing is left out (ContextError when nothing at all matched), as Docker's.

        Paths come in Docker's order: the patterns' order, a glob's matches in Walk order.
        A path may be a symlink: its target is inside the context (COPY copies the target).
        ``doublestar``: ``**`` matches any number of directories (``COPY --parents``)."""
        out: list[Path] = []
        for pattern in patterns:
            rel = self._confine(pattern)
            with _walk_errors():
                try:
                    if has_wildcards(rel):
                        found = self._glob(rel, pattern, doublestar)
                    else:
                        found = [rel] if self._resolve(rel, pattern) is not None else []
                except BadPattern:
                    raise ContextError(f"syntax error in pattern: {pattern}") from None
            if not found and not has_wildcards(rel):
                raise _not_found(rel)
            out.extend(self.root if r == "." else self.root / r for r in found)
        if not out:   # only wildcards, none matching (one that matches nothing is left out)
            raise ContextError("no source files were specified")
        return out

    # -- checksums
    def checksum(self, paths: Sequence[Path], *, with_mode: bool, with_owner: bool,
                 exclude: Callable[[str], bool] | None = None) -> str:
        """sha256 hex over (relative path, type, content, link target, [mode], [uid/gid]) of each
        path and everything under it, excluded paths left out; never mtime. Remembers file
        digests by (dev, ino, size, mtime_ns, ctime_ns) so a cached rebuild reads no content.

        A path that is a symlink stands for what it points to (as COPY copies it).
        ``exclude`` (COPY --exclude) leaves out a source by its name and what is under a
        directory source by its path relative to that source."""
        import hashlib

        total = hashlib.sha256()
        for path in paths:
            name = self._relative(path)
            with _walk_errors():
                self._sum_tree(total, name, with_mode, with_owner, exclude)
        self._save_digests()
        return total.hexdigest()

    def _sum_tree(self, total: Any, name: str, with_mode: bool, with_owner: bool,
                  exclude: Callable[[str], bool] | None = None) -> None:
        resolved = self._resolve(name, name)
        if resolved is None:
            raise _not_found(name)
        real, st = resolved
        if exclude is not None and exclude(os.path.basename(name)):
            return
        self._record(total, name, self._path(real), st, with_mode, with_owner)
        if stat.S_ISDIR(st.st_mode):
            for child, full, cst in self.entries(real):
                if exclude is not None and exclude(child[len(real) + 1:] if real != "." else child):
                    continue
                shown = name + child[len(real):] if real != "." else _join(name, child)
                self._record(total, shown, full, cst, with_mode, with_owner)

    def _relative(self, path: Path | str) -> str:
        text = str(path)
        if not os.path.isabs(text):
            return self._confine(text)
        rel = os.path.relpath(os.path.normpath(text), self.root)
        if rel == ".." or rel.startswith("../"):
            raise _forbidden(text)
        return rel

    def _record(self, total: Any, rel: str, path: str, st: os.stat_result,
                with_mode: bool, with_owner: bool) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            fields: list[Any] = [rel, "file", self._file_digest(path, st)]
        elif stat.S_ISDIR(mode):
            fields = [rel, "dir", ""]
        elif stat.S_ISLNK(mode):
            fields = [rel, "symlink", os.readlink(path)]
        elif stat.S_ISFIFO(mode):
            fields = [rel, "fifo", ""]
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "char" if stat.S_ISCHR(mode) else "block"
            fields = [rel, kind, f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"]
        else:
            return  # sockets are not sent, as Docker's tar leaves them out
        if with_mode:
            fields.append(stat.S_IMODE(mode))
        if with_owner:
            fields += [st.st_uid, st.st_gid]
        total.update(json.dumps(fields).encode() + b"\n")

    def _file_digest(self, path: str, st: os.stat_result) -> str:
        digests = self._load_digests()
        key = f"{st.st_dev}:{st.st_ino}"
        ident = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = digests.get(key)
        if known is not None and known[:3] == ident:
            return str(known[3])
        started = time.time_ns()
        digest, before, after = self._hash(path)
        self._remember(key, ident, st, before, after, started, digest)
        return digest

    def _remember(self, key: str, ident: list[int], st: os.stat_result, before: os.stat_result,
                  after: os.stat_result, started: int, digest: str) -> None:
        """Keep a digest only when nothing can change the content without changing the
        key: ctime is set by the kernel, from its own clock, on every write (no system
        call sets it back), so a later write changes (size, mtime, ctime) unless it falls
        in the same timestamp tick as the state we saw. A file changed less than
        RACY_WINDOW_NS before we began reading (far more than a tick: jiffies for local
        filesystems, 1 s at worst) is hashed every time instead; (dev, ino) keep a new
        file at a reused inode apart (its ctime is new too), and a file that changed
        while it was read is not kept."""
        same = all((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
                   == (st.st_dev, st.st_ino, *ident) for s in (before, after))
        if not same or st.st_ctime_ns > started - RACY_WINDOW_NS:
            return
        digests = self._load_digests()
        digests.pop(key, None)
        digests[key] = [*ident, digest]
        self._dirty = True

    def _hash(self, path: str) -> tuple[str, os.stat_result, os.stat_result]:
        import hashlib

        try:
            fd = open_content(path)
        except OSError as exc:
            raise ContextError(f"cannot read {os.path.relpath(path, self.root)}:"
                               f" {exc.strerror}") from None
        self.files_read += 1
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise ContextError(f"{os.path.relpath(path, self.root)} changed while it was read")
            digest = hashlib.sha256()
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while n := os.readv(fd, [buf]):
                digest.update(view[:n])
            return digest.hexdigest(), before, os.fstat(fd)
        finally:
            os.close(fd)

    # -- the digest file
    def _load_digests(self) -> dict[str, list[Any]]:
        if self._digests is None:
            self._digests = _read_cache(self.cache_dir / CACHE_FILE) if self.cache_dir else {}
        return self._digests

    def _save_digests(self) -> None:
        if not self._dirty or self.cache_dir is None or self._digests is None:
            return
        entries = self._digests
        if len(entries) > CACHE_MAX_ENTRIES:  # the oldest go first (dicts keep insertion order)
            entries = dict(list(entries.items())[-CACHE_MAX_ENTRIES:])
        _write_cache(self.cache_dir, {"version": CACHE_VERSION, "files": entries})
        self._dirty = False


def _valid_entry(value: object) -> bool:
    return (isinstance(value, list) and len(value) == 4
            and all(type(v) is int for v in value[:3]) and isinstance(value[3], str)
            and re.fullmatch("[0-9a-f]{64}", value[3]) is not None)


def _read_cache(path: Path) -> dict[str, list[Any]]:
    """The remembered digests; an unreadable or corrupt file counts as empty."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(256 << 20))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and _valid_entry(v)}


def _write_cache(directory: Path, data: dict[str, Any]) -> None:
    """Replace the digest file atomically; a cache that cannot be written is no error."""
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".context-digests-", dir=directory)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, directory / CACHE_FILE)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# --------------------------------------------------------------------------- opening

def _context_dir(path: str) -> Path:
    try:
        is_dir = os.path.isdir(path) and bool(path)
    except OSError:
        is_dir = False
    if not is_dir:
        raise ContextError(f'unable to prepare context: path "{path}" not found')
    return Path(os.path.realpath(path))


def _read_limited(f: IO[bytes], what: str) -> bytes:
    data = f.read(DOCKERFILE_LIMIT + 1)
    if len(data) > DOCKERFILE_LIMIT:
        raise ContextError(f"{what} is larger than {limits_mod.format_size(DOCKERFILE_LIMIT)}")
    return data


def _local_dockerfile(root: Path, dockerfile: str | None) -> Path:
    """The Dockerfile of a directory context: -f relative to the working directory,
    else ``Dockerfile`` (or ``dockerfile``) in the context, as Docker's CLI finds it."""
    if dockerfile:
        path = Path(os.path.abspath(dockerfile))
    else:
        path = root / DEFAULT_DOCKERFILE
        lower = root / DEFAULT_DOCKERFILE.lower()
        if not os.path.lexists(path) and os.path.lexists(lower):
            path = lower
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        raise ContextError("unable to prepare context: unable to evaluate symlinks in"
                           f" Dockerfile path: lstat {path}: {_why(exc)}") from None
    if not real.is_file():
        raise ContextError(f"unable to prepare context: the Dockerfile ({path}) must be a file")
    return path


def _why(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _read_file(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return _read_limited(f, what)
    except OSError as exc:
        raise ContextError(f"unable to read {what} {path}: {_why(exc)}") from None


def _stdin_stream(stdin: IO[bytes] | None) -> IO[bytes]:
    if stdin is not None:
        return stdin
    if sys.stdin is None or sys.stdin.isatty():
        raise ContextError("requested build context from stdin, but stdin is empty")
    return sys.stdin.buffer


class _Prefixed:
    """The bytes already read from a stream, then the rest of it."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._raw.read(n)
        if n < 0:
            data, self._head = self._head + self._raw.read(), b""
            return data
        data, self._head = self._head[:n], self._head[n:]
        return data

    def readable(self) -> bool:
        return True


def _read_head(raw: IO[bytes], n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = raw.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _is_tar_header(block: bytes) -> bool:
    """The first 512 bytes hold a tar header with a valid checksum (Docker's IsArchive)."""
    if len(block) < 512 or not block[:100].strip(b"\0"):
        return False
    field_ = block[148:156].replace(b"\0", b" ").strip()
    try:
        expected = int(field_, 8)
    except ValueError:
        return False
    return sum(block[:148]) + 8 * 32 + sum(block[156:512]) == expected


def is_archive(head: bytes) -> bool:
    """Whether bytes starting so are a tar, plain or compressed (what ``-`` unpacks as a
    context; anything else there is a Dockerfile)."""
    return archive.detect_compression(head) != "none" or _is_tar_header(head)


def _unpack_stdin(raw: IO[bytes], target: Path, max_size: int) -> bytes | None:
    """Extract a tar (plain or compressed) from ``raw`` into ``target``, confined as
    ``import`` confines layers; returns the bytes instead when they are a Dockerfile."""
    head = _read_head(raw, 512)
    if not is_archive(head):
        rest = raw.read(DOCKERFILE_LIMIT + 1 - len(head))
        if len(head) + len(rest) > DOCKERFILE_LIMIT:
            raise ContextError(f"Dockerfile from stdin is larger than"
                               f" {limits_mod.format_size(DOCKERFILE_LIMIT)}")
        return head + rest
    plain, _ = archive.decompressed(_Prefixed(head, raw))  # type: ignore[arg-type]
    limited = archive.LimitedReader(plain, max_size)
    try:
        archive.extract(limited, str(target), whiteouts=False, max_size=max_size)  # type: ignore[arg-type]
    except BadArchive as exc:
        raise BadArchive(f"build context from stdin: {exc}") from None
    except LimitExceeded:
        raise LimitExceeded("build context from stdin is larger than the limit of"
                            f" {limits_mod.format_size(max_size)}") from None
    return None


def _tar_dockerfile(ctx: Context, name: str | None) -> tuple[Path, bytes]:
    """The Dockerfile inside an extracted tar context, never through a link out of it."""
    given = name or DEFAULT_DOCKERFILE
    rel = ctx._confine(given)
    candidates = [rel] if name else [rel, DEFAULT_DOCKERFILE.lower()]
    for candidate in candidates:
        real = os.path.realpath(ctx._path(candidate))
        inside = os.path.relpath(real, ctx.root)
        if inside == ".." or inside.startswith("../"):
            raise _forbidden(given)
        if os.path.isfile(real):
            return Path(ctx._path(candidate)), _read_file(Path(real), "Dockerfile")
    raise ContextError(f"Cannot locate specified Dockerfile: {given}")


@contextlib.contextmanager
def open_context(path: str, stdin: IO[bytes] | None, scratch: Path,
                 dockerfile: str | None, *, cache_dir: Path | None = None,
                 max_size: int | None = None) -> Iterator[tuple[Context, bytes]]:
    """PATH (a directory) or "-" (a tar on stdin, plain or compressed, streamed and extracted
    safely into scratch, as `import` confines archives); returns the context and the
    Dockerfile's bytes (-f FILE relative to cwd, "-f -" from stdin when the context is a dir,
    default <context>/Dockerfile). Cleans scratch on exit.

    Stdin that is not an archive is the Dockerfile, with an empty context (``docker build -
    < Dockerfile``). A tar context is extracted into a new directory under ``scratch``,
    removed on exit; at most ``max_size`` bytes (default: the layer size limit) are
    unpacked. ``cache_dir`` keeps file digests between runs (directory contexts only).
    """
    if path == "-":
        if dockerfile == "-":
            raise ContextError("invalid argument: can't use stdin for both build context"
                               " and dockerfile")
        with _stdin_context(_stdin_stream(stdin), scratch, dockerfile,
                            max_size or limits_mod.DEFAULT_MAX_LAYER_SIZE) as opened:
            yield opened
        return
    root = _context_dir(path)
    if dockerfile == "-":
        data = _read_limited(_stdin_stream(stdin), "Dockerfile from stdin")
        ignore = Ignore.for_dockerfile(root, None)
    else:
        where = _local_dockerfile(root, dockerfile)
        data = _read_file(where, "Dockerfile")
        ignore = Ignore.for_dockerfile(root, where)
    yield Context(root, ignore, cache_dir=cache_dir), data


@contextlib.contextmanager
def _stdin_context(raw: IO[bytes], scratch: Path, dockerfile: str | None,
                   max_size: int) -> Iterator[tuple[Context, bytes]]:
    work = Path(tempfile.mkdtemp(prefix="context-", dir=scratch))
    try:
        root = work / "context"
        root.mkdir(mode=0o700)
        data = _unpack_stdin(raw, root, max_size)
        ctx = Context(root, Ignore([]))
        if data is not None:
            yield ctx, data
            return
        where, data = _tar_dockerfile(ctx, dockerfile)
        ctx.ignore = _tar_ignore(ctx, where)
        yield ctx, data
    finally:
        try:
            remove_tree(str(work))
        except OSError:
            remove_path(str(work))


def remove_tree(top: str) -> None:
    """Remove a directory tree however deep it is (``shutil.rmtree`` recurses once a level,
    and a hostile tar may nest thousands); never follows a symlink."""
    stack = [top]
    while stack:
        directory = stack[-1]
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)   # an extracted directory may be read-only
        subdirs = []
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                else:
                    os.unlink(entry.path)
        if subdirs:
            stack.extend(subdirs)   # this directory is looked at again once they are gone
        else:
            os.rmdir(directory)
            stack.pop()


def _tar_ignore(ctx: Context, dockerfile: Path) -> Ignore:
    """The ignore file of a tar context, read only from inside it."""
    for candidate in (dockerfile.with_name(dockerfile.name + DOCKERIGNORE),
                      ctx.root / DOCKERIGNORE):
        real = os.path.realpath(candidate)
        inside = os.path.relpath(real, ctx.root)
        if inside == ".." or inside.startswith("../"):
            raise _forbidden(os.path.relpath(candidate, ctx.root))
        if os.path.isfile(real):
            return Ignore.from_file(Path(real))
    return Ignore([])
