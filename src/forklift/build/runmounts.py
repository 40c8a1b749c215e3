"""RUN's ``--mount`` (cache, bind, tmpfs, secret) and ``--network``, and ``build --secret``.

Every mount is a bind (or a tmpfs) of the RUN container (`CreateOptions.mounts`), so
nothing under it enters the step's layer; the mount-point directories runc had to make
are removed from the container's upper directory before the commit (`MountPoints`), as
BuildKit leaves none. Cache mounts live in the store under ``build-mounts/`` (keyed by
id, the target by default) and persist until ``builder prune`` (`clear_cache_mounts`).
A secret is copied into scratch space for the step only: never in a layer, the history
or the cache key."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from forklift.errors import InvalidArgument
from forklift.store.db import Store, remove_path

CACHE_DIR = "build-mounts"
_NETWORKS = ("default", "none", "host")
_TYPES = ("bind", "cache", "tmpfs", "secret")
_KEYS = {"type", "target", "dst", "destination", "source", "src", "from", "id", "sharing",
         "mode", "uid", "gid", "ro", "readonly", "rw", "readwrite", "size", "required"}


@dataclass
class RunMount:
    type: str
    target: str
    source: str = ""
    from_: str = ""
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    readonly: bool = False
    size: str = ""
    required: bool = False

    def key(self) -> list[str]:
        """What the step's cache key sees (never a secret's content)."""
        return [self.type, self.target, self.source, self.from_, self.id, str(self.readonly)]


@dataclass
class Secrets:
    """``build --secret id=x,src=FILE|env=VAR``: id → the file or the variable's value."""
    files: dict[str, str] = field(default_factory=dict)
    values: dict[str, bytes] = field(default_factory=dict)


def parse_secret(spec: str) -> tuple[str, str | None, bytes | None]:
    """``id=x,src=FILE`` / ``id=x,env=VAR`` → (id, file, value); one of them is None."""
    fields = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in ("id", "src", "source", "env", "type"):
            raise InvalidArgument(f"invalid secret {spec!r}: expected id=ID,src=FILE or id=ID,env=VAR")
        fields["src" if key == "source" else key] = value
    ident = fields.get("id") or ""
    if not ident:
        raise InvalidArgument(f"invalid secret {spec!r}: no id")
    if "env" in fields:
        if fields["env"] not in os.environ:
            raise InvalidArgument(f"secret {ident}: environment variable {fields['env']} is not set")
        return ident, None, os.environ[fields["env"]].encode()
    src = fields.get("src") or ""
    if not src:
        if ident in os.environ:  # Docker's shorthand: the id names a variable
            return ident, None, os.environ[ident].encode()
        raise InvalidArgument(f"invalid secret {spec!r}: no src or env")
    if not os.path.isfile(src):
        raise InvalidArgument(f"secret {ident}: {src} is not a readable file")
    return ident, os.path.abspath(src), None


def secrets_from(specs: list[str]) -> Secrets:
    out = Secrets()
    for spec in specs:
        ident, path, value = parse_secret(spec)
        if path is not None:
            out.files[ident] = path
        elif value is not None:
            out.values[ident] = value
    return out


def parse_network(value: str, where: str) -> str:
    if value not in _NETWORKS:
        raise InvalidArgument(f"{where}: RUN --network={value}: expected default, none or host")
    return value


def parse_mount(text: str, where: str) -> RunMount:
    """One ``--mount=`` value (after the build's variables are expanded)."""
    items: dict[str, str] = {}
    flags: set[str] = set()
    for item in (i.strip() for i in text.split(",") if i.strip()):
        key, sep, value = item.partition("=")
        key = key.lower()
        if key not in _KEYS:
            raise InvalidArgument(f"{where}: RUN --mount: unexpected key {key!r} in {text!r}")
        if sep:
            items[key] = value
        else:
            flags.add(key)
    kind = items.get("type", "bind")
    if kind not in _TYPES:
        raise InvalidArgument(f"{where}: RUN --mount: unsupported mount type {kind!r}")
    target = items.get("target") or items.get("dst") or items.get("destination") or ""
    m = RunMount(kind, target, source=items.get("source", items.get("src", "")),
                 from_=items.get("from", ""), id=items.get("id", ""),
                 sharing=items.get("sharing", "shared"), size=items.get("size", ""))
    if kind == "secret":
        m.target = target or f"/run/secrets/{m.id}"
        if not m.id:
            raise InvalidArgument(f"{where}: RUN --mount=type=secret needs an id")
    elif not target:
        raise InvalidArgument(f"{where}: RUN --mount: a {kind} mount needs a target")
    if not m.target.startswith("/"):
        m.target = "/" + m.target
    m.target = os.path.normpath(m.target)
    if m.target == "/":
        raise InvalidArgument(f"{where}: RUN --mount: cannot mount over /")
    if m.sharing not in ("shared", "private", "locked"):
        raise InvalidArgument(f"{where}: RUN --mount: sharing must be shared, private or locked")
    m.readonly = _readonly(text, kind, where)
    m.required = "required" in flags or _true(items, "required")
    for name in ("uid", "gid"):
        if name in items:
            if not items[name].isdigit():
                raise InvalidArgument(f"{where}: RUN --mount: invalid {name} {items[name]!r}")
            setattr(m, name, int(items[name]))
    if "mode" in items:
        try:
            m.mode = int(items["mode"], 8)
        except ValueError:
            raise InvalidArgument(f"{where}: RUN --mount: invalid mode {items['mode']!r}") from None
    if m.type == "cache" and not m.id:
        m.id = m.target
    return m


def _readonly(text: str, kind: str, where: str) -> bool:
    """``ro``/``readonly`` and ``rw``/``readwrite`` as BuildKit reads them: a bare key is
    true, ``=false`` turns it around, the last one given wins; without any, only a bind
    is read-only."""
    readonly = kind == "bind"
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if key.lower() not in ("ro", "readonly", "rw", "readwrite"):
            continue
        flag = _BOOLS.get(value.lower()) if sep else True
        if flag is None:
            raise InvalidArgument(f"{where}: RUN --mount: invalid value {value!r} for {key}")
        readonly = flag if key.lower() in ("ro", "readonly") else not flag
    return readonly


_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def _true(items: dict[str, str], key: str) -> bool:
    return items.get(key, "").lower() in ("1", "true")


# ----------------------------------------------------------------------------- cache mounts

def cache_root(store: Store) -> str:
    return os.path.join(store.root, CACHE_DIR)


def clear_cache_mounts(store: Store) -> int:
    """``builder prune``: empty every cache mount; returns the bytes freed."""
    top = cache_root(store)
    if not os.path.isdir(top):
        return 0
    freed = 0
    for name in os.listdir(top):
        path = os.path.join(top, name)
        for base, _, files in os.walk(path):
            for f in files:
                with contextlib.suppress(OSError):
                    freed += os.lstat(os.path.join(base, f)).st_blocks * 512
        remove_path(path)
    return freed


@contextlib.contextmanager
def _cache_dir(store: Store, m: RunMount, seed: str | None) -> Iterator[str]:
    top = cache_root(store)
    os.makedirs(top, 0o700, exist_ok=True)
    name = hashlib.sha256(m.id.encode()).hexdigest()[:32]
    path = os.path.join(top, name)
    with open(os.path.join(top, name + ".lock"), "a") as lock:
        if m.sharing == "locked":
            fcntl.flock(lock, fcntl.LOCK_EX)
        elif m.sharing == "private":
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # taken by another build: this one gets its own
                scratch = store.make_tmp("cache-mount")
                try:
                    fresh = os.path.join(scratch, "d")
                    _make_cache(fresh, m, seed)
                    yield fresh
                finally:
                    remove_path(scratch)
                return
        if not os.path.isdir(path):   # made aside and renamed: builds may race to make it
            fresh = f"{path}.new-{os.getpid()}-{os.urandom(4).hex()}"   # stages race too
            _make_cache(fresh, m, seed)
            with contextlib.suppress(OSError):
                os.rename(fresh, path)
            remove_path(fresh)
        yield path


def _make_cache(path: str, m: RunMount, seed: str | None) -> None:
    remove_path(path)
    if seed is not None and os.path.isdir(seed):
        shutil.copytree(seed, path, symlinks=True)
    else:
        os.mkdir(path)
    os.chown(path, m.uid, m.gid)
    os.chmod(path, m.mode if m.mode is not None else 0o755)


# ----------------------------------------------------------------------------- preparing

@dataclass
class Prepared:
    mounts: list[str] = field(default_factory=list)     # CreateOptions.mounts
    targets: list[str] = field(default_factory=list)


def _spec(kind: str, source: str, target: str, readonly: bool) -> str:
    for path in (source, target):
        if "," in path:
            raise InvalidArgument(f"RUN --mount: a path with a comma is not supported: {path}")
    return f"type={kind},source={source},target={target}" + (",readonly" if readonly else "")


@contextlib.contextmanager
def prepare(store: Store, mounts: list[RunMount], secrets: Secrets,
            source_root: Callable[[str], contextlib.AbstractContextManager[str]],
            where: str) -> Iterator[Prepared]:
    """The container mounts of a RUN's ``--mount``s, for the time of the step.
    ``source_root(from_)`` gives the root directory of a stage or image (``""``: the
    build context)."""
    out = Prepared()
    with contextlib.ExitStack() as stack:
        for m in mounts:
            spec = _one(store, stack, m, secrets, source_root, where)
            if spec is not None:
                out.mounts.append(spec)
                out.targets.append(m.target)
        yield out


def _one(store: Store, stack: contextlib.ExitStack, m: RunMount, secrets: Secrets,
         source_root: Callable[[str], contextlib.AbstractContextManager[str]],
         where: str) -> str | None:
    if m.type == "tmpfs":
        return f"type=tmpfs,target={m.target}" + (f",tmpfs-size={m.size}" if m.size else "")
    if m.type == "secret":
        return _secret(store, stack, m, secrets, where)
    if m.type == "cache":
        seed = None
        if m.from_:
            root = stack.enter_context(source_root(m.from_))
            seed = _inside(root, m.source or "/", where)
        path = stack.enter_context(_cache_dir(store, m, seed))
        return _spec("bind", path, m.target, m.readonly)
    root = stack.enter_context(source_root(m.from_))
    src = _inside(root, m.source or "/", where)
    if not os.path.lexists(src):
        raise InvalidArgument(f"{where}: RUN --mount: source {m.source or '/'} not found")
    if not m.readonly:
        src = _writable_copy(store, stack, src)
    return _spec("bind", src, m.target, m.readonly)


def _inside(root: str, path: str, where: str) -> str:
    from forklift.runtime.fsutil import secure_join

    try:
        return str(secure_join(root, path))
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"{where}: RUN --mount: source {path}: {exc}") from None


def _writable_copy(store: Store, stack: contextlib.ExitStack, src: str) -> str:
    """A ``rw`` bind: its writes go to a copy made for the step, then discarded."""
    scratch = store.make_tmp("bind-mount")
    stack.callback(remove_path, scratch)
    copy = os.path.join(scratch, "d")
    if os.path.isdir(src):
        shutil.copytree(src, copy, symlinks=True)
    else:
        shutil.copy2(src, copy)
    return copy


def _secret(store: Store, stack: contextlib.ExitStack, m: RunMount, secrets: Secrets,
            where: str) -> str | None:
    if m.id in secrets.files:
        with open(secrets.files[m.id], "rb") as f:
            data = f.read()
    elif m.id in secrets.values:
        data = secrets.values[m.id]
    elif m.required:
        raise InvalidArgument(f"{where}: secret {m.id} is required but was not given (build --secret id={m.id},src=FILE)")
    else:
        return None
    scratch = store.make_tmp("secret")
    stack.callback(remove_path, scratch)
    path = os.path.join(scratch, "secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chown(path, m.uid, m.gid)
    os.chmod(path, m.mode if m.mode is not None else 0o400)
    return _spec("bind", path, m.target, True)


# ----------------------------------------------------------------------------- mount points

@dataclass
class MountPoints:
    """The path components of the mount targets that the parent image lacks (runc makes
    them), and the metadata of the ones it has, to undo runc's traces in the upper dir."""
    created: list[str] = field(default_factory=list)
    existing: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @classmethod
    def survey(cls, root: str | None, targets: list[str]) -> MountPoints:
        out = cls()
        for target in targets:
            parts = target.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                path = "/" + "/".join(parts[:i])
                st = _lstat(os.path.join(root, path.lstrip("/"))) if root else None
                if st is None or not stat.S_ISDIR(st.st_mode):
                    out.created += ["/" + "/".join(parts[:j]) for j in range(i, len(parts) + 1)]
                    break
                out.existing[path] = (st.st_mode, st.st_uid, st.st_gid)
        return out

    def clean(self, upper: str) -> None:
        for path in sorted(set(self.created), key=lambda p: -p.count("/")):
            full = os.path.join(upper, path.lstrip("/"))
            st = _lstat(full)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode) and not os.listdir(full):
                os.rmdir(full)
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(full)
        for path in sorted(self.existing, key=lambda p: -p.count("/")):
            full = os.path.join(upper, path.lstrip("/"))
            st = _lstat(full)
            if (st is not None and stat.S_ISDIR(st.st_mode) and not os.listdir(full)
                    and (st.st_mode, st.st_uid, st.st_gid) == self.existing[path]
                    and not _opaque(full)):
                os.rmdir(full)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False
