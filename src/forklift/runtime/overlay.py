"""overlayfs and bind mounts through mount(2)/umount2(2) called via ctypes.

No ``mount`` subprocess: forking /bin/mount costs milliseconds per container
start, a syscall costs microseconds.
"""

from __future__ import annotations

import _thread  # threading's lock without its import cost on the run hot path
import ctypes
import errno
import os

from forklift.errors import RuntimeFailure

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8

# mount(2) copies at most one page of option data; keep a margin for the NUL.
MAX_MOUNT_DATA = 4000
_CWD_LOCK = _thread.allocate_lock()

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc = lib
    return _libc


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """mount(2); raises OSError with errno on failure."""
    rc = _lib().mount(
        os.fsencode(source),
        os.fsencode(target),
        os.fsencode(fstype) if fstype else None,
        flags,
        os.fsencode(data) if data is not None else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _escape(path: str) -> str:
    # overlayfs splits options on ',' and lowerdir on ':'; both honour '\' escapes.
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _common_parent(paths: list[str]) -> str:
    parent = os.path.commonpath(paths)
    # With a single lower, commonpath is the lower itself; we want its parent
    # so the relative path is never "." (overlayfs accepts it, but it reads badly).
    if parent in paths:
        parent = os.path.dirname(parent)
    return parent


def _overlay_data(
    lowerdirs: list[str], upperdir: str | None, workdir: str | None, volatile: bool
) -> tuple[str, str]:
    """Build the option string with lowerdirs relative to their common parent.

    Returns (cwd to mount from, option string). Relative lowers are what lets
    120+ layers fit in one page: ``<12 chars>/diff`` is 18 bytes a layer.
    """
    lowers = [os.path.abspath(p) for p in lowerdirs]
    parent = _common_parent(lowers)
    rel = [os.path.relpath(p, parent) for p in lowers]
    data = "lowerdir=" + ":".join(_escape(p) for p in rel)
    if upperdir is not None:
        if workdir is None:
            raise RuntimeFailure("overlay mount failed: an upperdir needs a workdir")
        data += f",upperdir={_escape(os.path.abspath(upperdir))}"
        data += f",workdir={_escape(os.path.abspath(workdir))}"
        if volatile:
            data += ",volatile"
    if len(data) > MAX_MOUNT_DATA:
        raise RuntimeFailure(
            f"overlay mount failed: {len(lowers)} layers need {len(data)} bytes of mount "
            f"options, more than the kernel's limit of one page"
        )
    return parent, data


def mount_overlay(
    lowerdirs: list[str],
    upperdir: str | None,
    workdir: str | None,
    target: str,
    readonly: bool = False,
    *,
    volatile: bool = False,
) -> None:
    """Mount an overlay of ``lowerdirs`` (top layer FIRST) on ``target``.

    Without ``upperdir`` the result is a read-only view of the lowers (a read-only
    bind mount when there is a single lower, since overlayfs needs two lowers
    to mount without an upper).

    ``volatile`` skips syncing the upper filesystem, which otherwise makes
    umount flush the whole host filesystem (measured: up to ~175 ms). Use it
    for ``run --rm`` containers whose layer is thrown away, as Podman does;
    after a host crash the kernel refuses to remount a volatile upper.
    """
    if not lowerdirs:
        raise RuntimeFailure("overlay mount failed: no layers to mount")
    target = os.path.abspath(target)
    if upperdir is None and len(lowerdirs) == 1:
        bind_mount(lowerdirs[0], target, readonly=True)
        return
    parent, data = _overlay_data(lowerdirs, upperdir, workdir, volatile)
    flags = MS_RDONLY if (readonly or upperdir is None) else 0
    # The kernel resolves relative lowerdir paths against the cwd, which all threads
    # share: one mount at a time (an API server or a test may mount from threads).
    with _CWD_LOCK:
        saved = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(parent)
            _mount("overlay", target, "overlay", flags, data)
        except OSError as e:
            raise RuntimeFailure(f"overlay mount failed: {e.strerror}") from e
        finally:
            os.fchdir(saved)
            os.close(saved)


def bind_mount(src: str, target: str, readonly: bool = False) -> None:
    """Recursive bind mount; read-only needs a second remount call (kernel rule)."""
    try:
        _mount(src, target, None, MS_BIND | MS_REC, None)
        if readonly:
            _mount("none", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
    except OSError as e:
        raise RuntimeFailure(f"bind mount of {src} on {target} failed: {e.strerror}") from e


def mount_tmpfs(target: str, data: str) -> None:
    """A tmpfs (nosuid, nodev, noexec, as /dev/shm) on ``target`` with options ``data``."""
    try:
        _mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data)
    except OSError as e:
        raise RuntimeFailure(f"tmpfs mount on {target} failed: {e.strerror}") from e


def unmount(target: str, lazy: bool = False) -> None:
    """Unmount ``target``; a target that is not mounted (or gone) is not an error."""
    rc = _lib().umount2(os.fsencode(target), MNT_DETACH if lazy else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):  # not a mount point / no such path
            return
        raise RuntimeFailure(f"unmount of {target} failed: {os.strerror(err)}")


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out = bytearray()
    raw = field.encode()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 3 < len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def mounts_under(top: str) -> list[str]:
    """Mount points at or below ``top`` in our mount namespace, deepest first."""
    want = os.path.realpath(top)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4:
                point = _unescape_mountinfo(fields[4])
                if point == want or point.startswith(want + "/"):
                    found.append(point)
    return sorted(found, key=len, reverse=True)


def is_mounted(target: str) -> bool:
    """True if ``target`` is a mount point in our mount namespace."""
    want = os.path.realpath(target)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4 and _unescape_mountinfo(fields[4]) == want:
                return True
    return False
