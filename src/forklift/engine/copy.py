"""``cp``: copy files between a container and the host, never following a symlink out.

Paths inside the container are resolved with openat2(RESOLVE_IN_ROOT) relative to
the container's root (or a volume's directory when the path lies in a volume),
so ``..`` and absolute symlinks stay inside, exactly as the container sees them.
Below the resolved point every entry is opened relative to its parent's fd with
O_NOFOLLOW: a symlink swapped in during the copy is copied as a link, not followed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from typing import Any

from forklift.engine import containers, rootfs
from forklift.errors import ForkliftError, InvalidArgument, NotFound
from forklift.store import containers as container_store
from forklift.store import volumes as volume_store
from forklift.store.db import Store

SYS_OPENAT2 = 437  # x86_64 and aarch64 alike
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """openat2(root_fd, path, RESOLVE_IN_ROOT): ``path`` resolved with root_fd as ``/``."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    rel = path.lstrip("/") or "."
    fd = _libc.syscall(SYS_OPENAT2, root_fd, os.fsencode(rel), ctypes.byref(how),
                       ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return _open_fallback(root_fd, rel, flags, mode)
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def _open_fallback(root_fd: int, rel: str, flags: int, mode: int) -> int:
    from forklift.runtime.fsutil import secure_join

    root = os.readlink(f"/proc/self/fd/{root_fd}")
    return os.open(secure_join(root, rel), flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def _split(arg: str) -> tuple[str | None, str]:
    """``container:path`` or a local path (``./x:y`` and ``/x:y`` are local)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


@contextlib.contextmanager
def _container_root(store: Store, rec: Any, write: bool) -> Iterator[str]:
    merged = rootfs.paths(store, rec.id)["merged"]
    from forklift.runtime import overlay

    if overlay.is_mounted(merged):
        yield merged
        return
    if not write:
        with rootfs.readonly_view(store, rec.id, rec.image_id) as root:
            yield root
        return
    rootfs.mount(store, rec.id, rec.image_id)
    try:
        yield merged
    finally:
        cur = container_store.get(store, rec.id)
        if cur is None or containers.effective_state(cur) not in ("running", "paused"):
            rootfs.unmount(store, rec.id)


def _mount_points(store: Store, rec: Any) -> list[tuple[str, str]]:
    points = []
    for name, dest in volume_store.of_container(store, rec.id):
        vol = volume_store.get(store, name)
        if vol:
            points.append((dest, vol.path(store)))
    for src, dest, _ in map(containers._parse_volume, rec.host_config.get("Binds", [])):
        if src and src.startswith("/"):
            points.append((dest, src))
    for m in rec.host_config.get("Mounts") or []:
        if m["Type"] == "bind":
            points.append((m["Target"], m["Source"]))
    return sorted(points, key=lambda p: len(p[0]), reverse=True)


def _locate(store: Store, rec: Any, root: str, path: str) -> tuple[str, str]:
    """(directory acting as root, path below it) for a container path."""
    norm = os.path.normpath("/" + path.lstrip("/"))
    for dest, source in _mount_points(store, rec):
        if norm == dest or norm.startswith(dest.rstrip("/") + "/"):
            return source, norm[len(dest):] or "/"
    return root, norm


# ----------------------------------------------------------------------------- copying

def _copy_fd_tree_out(src_dir_fd: int, name: str, dest: str, preserve: bool) -> None:
    """Copy entry ``name`` of the directory ``src_dir_fd`` to host path ``dest``."""
    st = os.stat(name, dir_fd=src_dir_fd, follow_symlinks=False)
    _copy_out_entry(src_dir_fd, name, st, dest, preserve)


def _copy_out_entry(dir_fd: int, name: str, st: os.stat_result, dest: str, preserve: bool) -> None:
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=dir_fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
        os.symlink(target, dest)
    elif stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            _copy_dir_out(fd, dest, st, preserve)
        finally:
            os.close(fd)
        return
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            _copy_file_fd(fd, dest, st.st_mode)
        finally:
            os.close(fd)
    else:
        return  # devices, fifos, sockets: not copied out
    _meta(dest, st, preserve)


def _copy_dir_out(fd: int, dest: str, st: os.stat_result, preserve: bool) -> None:
    os.makedirs(dest, exist_ok=True)
    for entry in os.scandir(fd):
        _copy_out_entry(fd, entry.name, entry.stat(follow_symlinks=False),
                        os.path.join(dest, entry.name), preserve)
    _meta(dest, st, preserve)


def _copy_file_fd(src_fd: int, dest: str, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        if os.path.islink(dest):
            os.unlink(dest)
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, stat.S_IMODE(mode))
    try:
        while True:
            chunk = os.read(src_fd, 1 << 20)
            if not chunk:
                break
            os.write(out, chunk)
    finally:
        os.close(out)


def _meta(dest: str, st: os.stat_result, preserve: bool) -> None:
    with contextlib.suppress(OSError):
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(dest, stat.S_IMODE(st.st_mode))
        if preserve:
            os.chown(dest, st.st_uid, st.st_gid, follow_symlinks=False)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_in(src: str, dir_fd: int, name: str, preserve: bool) -> None:
    """Copy host path ``src`` to entry ``name`` of the container directory ``dir_fd``."""
    st = os.lstat(src)
    try:
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if stat.S_ISDIR(st.st_mode):
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=dir_fd)  # a symlink or file in the way is replaced, never followed
            existing = None
        if existing is None:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            for entry in os.scandir(src):
                _copy_in(entry.path, fd, entry.name, preserve)
            os.chmod(fd, stat.S_IMODE(st.st_mode))
            if preserve:
                os.fchown(fd, st.st_uid, st.st_gid)
        finally:
            os.close(fd)
        return
    if existing is not None and (stat.S_ISLNK(existing.st_mode) or stat.S_ISDIR(st.st_mode) != stat.S_ISDIR(existing.st_mode)):
        if stat.S_ISDIR(existing.st_mode):
            raise InvalidArgument(f"cannot overwrite directory {name!r} with non-directory")
        os.unlink(name, dir_fd=dir_fd)
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        os.symlink(os.readlink(src), name, dir_fd=dir_fd)
        if preserve:
            with contextlib.suppress(OSError):
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        return
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                  stat.S_IMODE(st.st_mode), dir_fd=dir_fd)
    try:
        with open(src, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                os.write(out, chunk)
        os.fchmod(out, stat.S_IMODE(st.st_mode))
        if preserve:
            os.fchown(out, st.st_uid, st.st_gid)
    finally:
        os.close(out)


def cp(store: Store, src: str, dest: str, *, archive: bool = False, follow_link: bool = False) -> None:
    s_name, s_path = _split(src)
    d_name, d_path = _split(dest)
    if (s_name is None) == (d_name is None):
        raise InvalidArgument("copying between containers is not supported" if s_name
                              else "must specify at least one container source")
    if s_name is not None:
        _cp_out(store, s_name, s_path, d_path, follow_link)
    else:
        assert d_name is not None
        _cp_in(store, s_path, d_name, d_path, archive)


def _cp_out(store: Store, name: str, path: str, dest: str, follow_link: bool) -> None:
    rec = container_store.resolve(store, name)
    contents_only = path.endswith("/.")
    with _container_root(store, rec, write=False) as root:
        if follow_link:
            path = _follow(store, rec, root, path)
            follow_link = False
        base, rel = _locate(store, rec, root, path)
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            parent_rel, leaf = os.path.split(rel.rstrip("/") or "/")
            try:
                if follow_link or not leaf:
                    fd = open_in_root(root_fd, rel, os.O_PATH)
                    parent_fd, leaf = fd, "."
                else:
                    parent_fd = open_in_root(root_fd, parent_rel, os.O_RDONLY | os.O_DIRECTORY)
                st = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                raise NotFound(f"Could not find the file {path} in container {name}") from None
            try:
                if follow_link or leaf == ".":
                    st = os.stat(leaf, dir_fd=parent_fd)
                if os.path.isdir(dest) and not contents_only:
                    target = os.path.join(dest, os.path.basename(os.path.normpath("/" + path.lstrip("/"))) or "root")
                elif dest.endswith("/") and not os.path.isdir(dest):
                    if not stat.S_ISDIR(st.st_mode):
                        raise InvalidArgument(f"destination directory {dest} does not exist")
                    target = dest
                else:
                    target = dest
                if stat.S_ISDIR(st.st_mode) and leaf == ".":
                    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent_fd)
                    try:
                        _copy_dir_out(fd, target, st, preserve=True)
                    finally:
                        os.close(fd)
                elif stat.S_ISREG(st.st_mode) and leaf == ".":
                    fd = open_in_root(root_fd, rel, os.O_RDONLY)
                    try:
                        _copy_file_fd(fd, target, st.st_mode)
                    finally:
                        os.close(fd)
                    _meta(target, st, True)
                else:
                    _copy_out_entry(parent_fd, leaf, st, target, preserve=True)
            finally:
                os.close(parent_fd)
        finally:
            os.close(root_fd)


def _follow(store: Store, rec: Any, root: str, path: str) -> str:
    """Resolve a trailing symlink the way the container would (volumes included)."""
    for _ in range(40):
        base, rel = _locate(store, rec, root, path)
        parent_rel, leaf = os.path.split(rel.rstrip("/"))
        if not leaf:
            return path
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            parent_fd = open_in_root(root_fd, parent_rel or "/", os.O_RDONLY | os.O_DIRECTORY)
            try:
                target = os.readlink(leaf, dir_fd=parent_fd)
            except OSError:
                return path  # not a link (or missing): nothing to follow
            finally:
                os.close(parent_fd)
        finally:
            os.close(root_fd)
        norm = os.path.normpath("/" + path.lstrip("/"))
        path = target if target.startswith("/") else os.path.join(os.path.dirname(norm), target)
        path = os.path.normpath("/" + path.lstrip("/"))
    raise InvalidArgument(f"too many levels of symbolic links: {path}")


def _cp_in(store: Store, src: str, name: str, path: str, archive: bool) -> None:
    rec = container_store.resolve(store, name)
    if not os.path.lexists(src):
        raise NotFound(f"stat {src}: no such file or directory")
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    contents_only = src.endswith("/.")
    with _container_root(store, rec, write=True) as root:
        base, rel = _locate(store, rec, root, path)
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # Is the destination an existing directory (resolved inside the container)?
            dest_dir_fd = None
            with contextlib.suppress(OSError):
                dest_dir_fd = open_in_root(root_fd, rel, os.O_RDONLY | os.O_DIRECTORY)
            if dest_dir_fd is not None:
                try:
                    if src_is_dir and contents_only:
                        for entry in os.scandir(src):
                            _copy_in(entry.path, dest_dir_fd, entry.name, archive)
                    else:
                        _copy_in(src, dest_dir_fd, os.path.basename(os.path.normpath(src)), archive)
                finally:
                    os.close(dest_dir_fd)
                return
            if path.endswith("/"):
                raise NotFound(f"no such directory {path} in container {name}")
            parent_rel, leaf = os.path.split(rel.rstrip("/"))
            try:
                parent_fd = open_in_root(root_fd, parent_rel or "/", os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                raise NotFound(f"Could not find the file {os.path.dirname(path)} in container {name}") from None
            try:
                _copy_in(src, parent_fd, leaf, archive)
            finally:
                os.close(parent_fd)
        finally:
            os.close(root_fd)


__all__ = ["cp", "open_in_root", "ForkliftError"]
