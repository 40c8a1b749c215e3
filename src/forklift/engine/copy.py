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
import sys
from collections.abc import Iterator
from typing import IO, Any

from forklift.engine import mounts, rootfs
from forklift.errors import ForkliftError, InvalidArgument, NoSpace, NotFound
from forklift.runtime import overlay
from forklift.runtime.fsutil import secure_join
from forklift.store import containers as container_store
from forklift.store.db import Store, remove_path

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
        if cur is None or not cur.effective_state().up:
            rootfs.unmount(store, rec.id)


def _sources(store: Store, rec: Any) -> list[tuple[str, str]]:
    return mounts.host_sources(store, rec, rootfs.paths(store, rec.id))


def _locate(store: Store, rec: Any, root: str, path: str) -> tuple[str, str]:
    """(directory acting as root, path below it) for a container path."""
    norm = os.path.normpath("/" + path.lstrip("/"))
    for dest, source in _sources(store, rec):
        if norm == dest and not os.path.isdir(source):
            return os.path.dirname(source), "/" + os.path.basename(source)  # a file mount
        if norm == dest or norm.startswith(dest.rstrip("/") + "/"):
            return source, norm[len(dest):] or "/"
    return root, norm


class _Mounts:
    """What the container sees at paths below the one being copied: the mounts' sources
    replace what the root filesystem holds under them."""

    def __init__(self, points: list[tuple[str, str]]) -> None:
        self.points = dict(points)

    def lookup(self, cpath: str) -> tuple[int, str, os.stat_result] | None:
        """For a mount point: (fd of the source's parent, source name, its stat)."""
        source = self.points.get(cpath)
        if source is None:
            return None
        source = os.path.realpath(source)
        parent = os.open(os.path.dirname(source), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            st = os.stat(os.path.basename(source), dir_fd=parent, follow_symlinks=False)
        except OSError:
            os.close(parent)
            raise
        return parent, os.path.basename(source), st


# ----------------------------------------------------------------------------- copying

def _children(fd: int) -> Iterator[tuple[str, os.stat_result]]:
    """The entries of directory ``fd`` with their lstat; an entry renamed or removed
    while we list it is skipped, as tar skips a file that vanished."""
    for entry in os.scandir(fd):
        try:
            yield entry.name, entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue


def _copy_out_entry(dir_fd: int, name: str, st: os.stat_result, dest: str, preserve: bool,
                    cpath: str, mounts: _Mounts) -> None:
    mounted = mounts.lookup(cpath)
    if mounted is not None:
        parent, source_name, source_st = mounted
        try:
            _copy_out_entry(parent, source_name, source_st, dest, preserve, "", _Mounts([]))
        finally:
            os.close(parent)
        return
    if stat.S_ISLNK(st.st_mode):
        target = _readlink_child(name, dir_fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
        os.symlink(target, dest)
    elif stat.S_ISDIR(st.st_mode):
        fd = _open_child(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd)
        try:
            os.makedirs(dest, exist_ok=True)
            for child, child_st in _children(fd):
                with contextlib.suppress(_Vanished):
                    _copy_out_entry(fd, child, child_st, os.path.join(dest, child), preserve,
                                    os.path.join(cpath, child), mounts)
        finally:
            os.close(fd)
    elif stat.S_ISREG(st.st_mode):
        fd = _open_child(name, os.O_RDONLY, dir_fd)
        try:
            _copy_file_fd(fd, dest, st.st_mode)
        finally:
            os.close(fd)
    else:
        return  # devices, fifos, sockets: not copied out
    _meta(dest, st, preserve)


class _Vanished(Exception):
    """An entry inside the container disappeared (renamed, removed) while we copied it."""


def _open_child(name: str, flags: int, dir_fd: int) -> int:
    """Open entry ``name`` of a container directory, never following a symlink."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _Vanished(name) from None


def _readlink_child(name: str, dir_fd: int) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _Vanished(name) from None


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


def cp(store: Store, src: str, dest: str, *, archive: bool = False, follow_link: bool = False,
       stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
    """``cp``: ``-`` as the source reads a tar from ``stdin`` and extracts it into a
    container directory; ``-`` as the destination writes a tar of the path to ``stdout``."""
    s_name, s_path = _split(src)
    d_name, d_path = _split(dest)
    if (s_name is None) == (d_name is None):
        raise InvalidArgument("copying between containers is not supported" if s_name
                              else "must specify at least one container source")
    try:
        if s_name is not None:
            _cp_out(store, s_name, s_path, d_path, follow_link, stdout)
        else:
            assert d_name is not None
            _cp_in(store, s_path, d_name, d_path, archive, stdin)
    except (ForkliftError, BrokenPipeError):
        raise
    except _Vanished as exc:
        raise ForkliftError(f"{exc.args[0]} was removed from the container while being copied;"
                            " try again") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace("no space left on device") from None
        what = f": {exc.filename}" if exc.filename else ""
        raise ForkliftError(f"cannot copy {src} to {dest}{what}: {exc.strerror or exc}") from None


def _cp_out(store: Store, name: str, path: str, dest: str, follow_link: bool,
            stdout: IO[bytes] | None) -> None:
    rec = container_store.resolve(store, name)
    contents_only = path.endswith("/.")
    with _container_root(store, rec, write=False) as root:
        if follow_link:
            path = _follow(store, rec, root, path)
        norm = os.path.normpath("/" + path.lstrip("/"))
        base, rel = _locate(store, rec, root, path)
        inner = _Mounts([(d, src) for d, src in _sources(store, rec)
                         if d.startswith(norm.rstrip("/") + "/")])
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            parent_rel, leaf = os.path.split(rel.rstrip("/") or "/")
            try:
                if leaf:
                    parent_fd = open_in_root(root_fd, parent_rel, os.O_RDONLY | os.O_DIRECTORY)
                else:  # the root of the container or of a volume
                    parent_fd, leaf = os.dup(root_fd), "."
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"No such container:path: {name}:{path}") from None
            try:
                try:
                    st = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    raise NotFound(f"No such container:path: {name}:{path}") from None
                arcname = "." if contents_only else (os.path.basename(norm) or ".")
                if dest == "-":
                    _TarOut(stdout or sys.stdout.buffer).write(parent_fd, leaf, st, arcname,
                                                               norm, inner)
                    return
                target = _out_target(dest, norm, st, contents_only)
                _copy_out_entry(parent_fd, leaf, st, target, True, norm, inner)
            finally:
                os.close(parent_fd)
        finally:
            os.close(root_fd)


def _out_target(dest: str, norm: str, st: os.stat_result, contents_only: bool) -> str:
    """Where on the host the copy lands (Docker's rules for an existing directory)."""
    if os.path.isdir(dest) and not contents_only:
        return os.path.join(dest, os.path.basename(norm) or "root")
    if dest.endswith("/") and not os.path.isdir(dest) and not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"destination directory {dest} does not exist")
    return dest


class _TarOut:
    """A tar stream of a container path, read through directory fds as the copy does."""

    def __init__(self, out: IO[bytes]) -> None:
        import tarfile  # only `cp CONTAINER:PATH -` writes a tar: keep it off plain cp

        self.tarfile = tarfile
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)

    def write(self, dir_fd: int, name: str, st: os.stat_result, arcname: str, cpath: str,
              mounts: _Mounts) -> None:
        self._entry(dir_fd, name, st, arcname, cpath, mounts)
        self.tf.close()

    def _entry(self, dir_fd: int, name: str, st: os.stat_result, arcname: str, cpath: str,
               mounts: _Mounts) -> None:
        mounted = mounts.lookup(cpath)
        if mounted is not None:
            parent, source_name, source_st = mounted
            try:
                self._entry(parent, source_name, source_st, arcname, "", _Mounts([]))
            finally:
                os.close(parent)
            return
        t = self.tarfile
        info = t.TarInfo(arcname)
        info.mode, info.uid, info.gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        info.mtime = int(st.st_mtime)
        if stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = t.SYMTYPE, _readlink_child(name, dir_fd)
            self.tf.addfile(info)
        elif stat.S_ISDIR(st.st_mode):
            fd = _open_child(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd)
            try:
                info.type = t.DIRTYPE
                self.tf.addfile(info)
                for child, child_st in sorted(_children(fd)):
                    with contextlib.suppress(_Vanished):
                        self._entry(fd, child, child_st, f"{arcname}/{child}",
                                    os.path.join(cpath, child), mounts)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            fd = _open_child(name, os.O_RDONLY, dir_fd)
            try:
                info.size = os.fstat(fd).st_size
                self.tf.addfile(info, _Exactly(fd, info.size))
            finally:
                os.close(fd)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            info.type = (t.CHRTYPE if stat.S_ISCHR(st.st_mode) else
                         t.BLKTYPE if stat.S_ISBLK(st.st_mode) else t.FIFOTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tf.addfile(info)
        # sockets have no tar form


class _Exactly:
    """``size`` bytes of an open file: a file the container truncates while we read it is
    padded with zeros, one that grows is cut, so the tar stays well-formed."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.fd, n) if n else b""
        if len(data) < n:
            data += bytes(n - len(data))
        self.left -= len(data)
        return data


def _follow(store: Store, rec: Any, root: str, path: str) -> str:
    """Resolve a trailing symlink the way the container would (volumes included).
    A dangling link resolves to its target, which the caller reports missing."""
    for _ in range(40):
        base, rel = _locate(store, rec, root, path)
        parent_rel, leaf = os.path.split(rel.rstrip("/"))
        if not leaf:
            return path
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                parent_fd = open_in_root(root_fd, parent_rel or "/", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return path  # its directory is missing: nothing to follow
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


def _cp_in(store: Store, src: str, name: str, path: str, archive: bool,
           stdin: IO[bytes] | None) -> None:
    rec = container_store.resolve(store, name)
    if src == "-":
        _cp_in_tar(store, rec, stdin or sys.stdin.buffer, name, path, archive)
        return
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
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"No such container:path: {name}:{os.path.dirname(path)}") from None
            try:
                _copy_in(src, parent_fd, leaf, archive)
            finally:
                os.close(parent_fd)
        finally:
            os.close(root_fd)


def _cp_in_tar(store: Store, rec: Any, stream: IO[bytes], name: str, path: str,
               archive_mode: bool) -> None:
    """``cp - CONTAINER:DIR``: the tar is extracted by the hostile-input-safe extractor into
    scratch space first, then copied in entry by entry through directory fds, so neither
    the archive nor the running container can steer a write outside the directory."""
    from forklift import archive  # tarfile & co.: only `cp - CONTAINER:DIR` needs it

    with _container_root(store, rec, write=True) as root:
        base, rel = _locate(store, rec, root, path)
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                dest_fd = open_in_root(root_fd, rel, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                raise InvalidArgument(f'destination "{name}:{path}" must be a directory') from None
        finally:
            os.close(root_fd)
        scratch = store.make_tmp("cp")
        try:
            unpacked = os.path.join(scratch, "in")
            os.mkdir(unpacked, 0o700)
            stream, _ = archive.decompressed(stream)
            archive.extract(stream, unpacked, whiteouts=False)
            for entry in sorted(os.listdir(unpacked)):
                _copy_in(os.path.join(unpacked, entry), dest_fd, entry, archive_mode)
        finally:
            os.close(dest_fd)
            remove_path(scratch)


_GO_TYPE_BITS = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISBLK, 1 << 26),
                 (stat.S_ISFIFO, 1 << 25), (stat.S_ISSOCK, 1 << 24),
                 (stat.S_ISCHR, (1 << 26) | (1 << 21)))


def go_file_mode(mode: int) -> int:
    """A stat mode as Go's os.FileMode (what Docker's path stat carries)."""
    out = stat.S_IMODE(mode) & 0o777
    for test, bit in _GO_TYPE_BITS:
        if test(mode):
            out |= bit
    for flag, bit in ((stat.S_ISUID, 1 << 23), (stat.S_ISGID, 1 << 22), (stat.S_ISVTX, 1 << 20)):
        if mode & flag:
            out |= bit
    return out


def stat_path(store: Store, name: str, path: str) -> dict[str, Any]:
    """Docker's stat of a container path (name, size, Go mode, mtime, linkTarget: the path
    a symlink resolves to inside the container); NotFound when it is missing."""
    from forklift.engine.logfile import rfc3339nano

    rec = container_store.resolve(store, name)
    with _container_root(store, rec, write=False) as root:
        base, rel = _locate(store, rec, root, path)
        root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            parent_rel, leaf = os.path.split(rel.rstrip("/") or "/")
            try:
                parent_fd = (open_in_root(root_fd, parent_rel, os.O_RDONLY | os.O_DIRECTORY)
                             if leaf else os.dup(root_fd))
                try:
                    st = os.stat(leaf or ".", dir_fd=parent_fd, follow_symlinks=False)
                finally:
                    os.close(parent_fd)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"Could not find the file {path} in container {name}") from None
        finally:
            os.close(root_fd)
        norm = os.path.normpath("/" + path.lstrip("/"))
        target = _follow(store, rec, root, path) if stat.S_ISLNK(st.st_mode) else ""
    return {"name": os.path.basename(norm) or "/", "size": st.st_size,
            "mode": go_file_mode(st.st_mode), "mtime": rfc3339nano(st.st_mtime_ns),
            "linkTarget": target}


__all__ = ["cp", "open_in_root", "stat_path", "ForkliftError"]
