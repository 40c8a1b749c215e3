"""Path helpers for looking inside a container's root filesystem safely.

A container's rootfs is hostile: its symlinks may point anywhere, including
``/etc/shadow`` of the host. Every path we open inside one goes through
:func:`secure_join`, which resolves symlinks as the container itself would
(with the rootfs as ``/``) and never leaves it.
"""

from __future__ import annotations

import os
import stat

from forklift.errors import InvalidArgument

# Same limit as the kernel's MAXSYMLINKS (and Go's filepath-securejoin).
MAX_SYMLINK_HOPS = 40


def secure_join(root: str, path: str) -> str:
    """Resolve ``path`` inside ``root`` as if ``root`` were ``/``.

    Symlinks are followed, absolute link targets are re-rooted at ``root`` and
    ``..`` stops at ``root``, so the result is always ``root`` or below it.
    Components that do not exist are kept literally (the caller may be about to
    create them). This is a lexical walk with lstat: fine for reading files of
    a stopped container, not a defence against a rootfs changing underneath us.
    """
    root = os.path.abspath(root)
    pending = _components(path)
    pending.reverse()  # used as a stack: next component at the end
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        target = _readlink_or_none(candidate)
        if target is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path!r}")
        if target.startswith("/"):
            resolved = []
        link_parts = _components(target)
        link_parts.reverse()
        pending.extend(link_parts)
    return os.path.join(root, *resolved)


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _readlink_or_none(path: str) -> str | None:
    """The link target if ``path`` is a symlink, else None (missing counts as not a link)."""
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return None
        return os.readlink(path)
    except OSError:
        # ENOENT, ENOTDIR (a file used as a directory), EACCES: not a link we
        # can follow; keep the name literally, as the kernel lookup would fail later.
        return None


def exchange(a: str, b: str) -> None:
    """Swap two existing paths in one step (renameat2 RENAME_EXCHANGE): at no moment is
    either name missing. OSError where the kernel or filesystem cannot (ENOSYS, EINVAL)."""
    import ctypes  # kept off the run hot path

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)
