"""A container's root filesystem: init layer, writable layer and overlay mounts.

    containers/<id>/init     Docker's "-init" layer: mount points and empty
                             /etc/hosts, /etc/hostname, /etc/resolv.conf, so the
                             bind mounts over them never show up in diff or commit
    containers/<id>/upper    the container's own layer (what diff/commit read)
    containers/<id>/work     overlayfs work directory
    containers/<id>/merged   the mounted root filesystem while it runs
    containers/<id>/hosts, hostname, resolv.conf   the files bind-mounted in
    containers/<id>/exit.json   what the last run recorded beside its exit code
"""

from __future__ import annotations

import contextlib
import json
import os

from forklift.store import containers as container_store
from forklift.store.db import Store, remove_path

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

_INIT_DIRS = ("dev", "dev/pts", "dev/shm", "proc", "sys", "etc")
_INIT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console")
_DEFAULT_RESOLV = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def paths(store: Store, container_id: str) -> dict[str, str]:
    """The container's directories and files by name (see the module's docstring)."""
    base = store.container_path(container_id)
    return {name: os.path.join(base, name) for name in
            ("init", "upper", "work", "merged", "hosts", "hostname", "resolv.conf")}


def create(store: Store, container_id: str, hostname: str, network: str,
           dns: list[str] | None = None, extra_hosts: list[str] | None = None) -> None:
    """Lay out a new container's directories and its init layer."""
    p = paths(store, container_id)
    os.mkdir(store.container_path(container_id), 0o700)
    for key in ("init", "upper", "work", "merged"):
        os.mkdir(p[key], 0o755)
    for rel in _INIT_DIRS:
        os.makedirs(os.path.join(p["init"], rel), 0o755, exist_ok=True)
    for rel in _INIT_FILES:
        with open(os.path.join(p["init"], rel), "wb"):
            pass
        os.chmod(os.path.join(p["init"], rel), 0o755 if rel == "dev/console" else 0o644)
    os.symlink("/proc/mounts", os.path.join(p["init"], "etc/mtab"))
    _write(p["hostname"], f"{hostname}\n")
    hosts = _hosts(hostname, network)
    for entry in extra_hosts or []:
        host, _, ip = entry.partition("=" if "=" in entry else ":")
        hosts += f"{ip}\t{host}\n"
    _write(p["hosts"], hosts)
    resolv = _resolv(network)
    if dns:
        kept = [ln for ln in resolv.splitlines() if not ln.startswith("nameserver")]
        resolv = "".join(f"nameserver {d}\n" for d in dns) + "".join(ln + "\n" for ln in kept)
    _write(p["resolv.conf"], resolv)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def _hosts(hostname: str, network: str) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    if network == "host":
        with contextlib.suppress(OSError), open("/etc/hosts") as f:
            return f.read()
    else:
        lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def _resolv(network: str) -> str:
    try:
        with open("/etc/resolv.conf") as f:
            text = f.read()
    except OSError:
        return _DEFAULT_RESOLV
    if network != "host":
        # A loopback resolver of the host is unreachable from a private network namespace.
        kept = [ln for ln in text.splitlines()
                if not (ln.startswith("nameserver") and ln.split()[1:2]
                        and ln.split()[1].startswith(("127.", "::1")))]
        if not any(ln.startswith("nameserver") for ln in kept):
            kept.append(_DEFAULT_RESOLV.strip())
        text = "\n".join(kept) + "\n"
    return text


def lowerdirs(store: Store, container_id: str, image_id: str) -> list[str]:
    """Overlay lower directories, top first: the container's own layers (what earlier
    commits moved out of its upper directory), the init layer, then the image's layers
    (the container's own list if its image record was deleted by ``rmi -f``)."""
    own, image_view = layer_dirs(store, container_id, image_id)
    return [*own, *image_view]


def layer_dirs(store: Store, container_id: str, image_id: str) -> tuple[list[str], list[str]]:
    """(the container's own layers, the image's view: init layer and image layers), each
    top first. The own layers sit above the init layer, where the upper directory they
    came from sat."""
    rec = container_store.ContainerRecord(container_id, "", image_id, "", 0.0)
    image_layers, own = container_store.stack(store, rec)
    return ([layer.path(store) for layer in reversed(own)],
            [paths(store, container_id)["init"], *(la.path(store) for la in reversed(image_layers))])


def mount(store: Store, container_id: str, image_id: str, volatile: bool = False) -> str:
    """Mount the container's root filesystem.

    ``volatile`` (for ``--rm`` containers) skips overlayfs' sync on unmount, which
    otherwise flushes the whole host filesystem; such a layer never outlives a crash.
    """
    from forklift.runtime import overlay  # ctypes: not for exec, which only reads paths

    p = paths(store, container_id)
    if not overlay.is_mounted(p["merged"]):
        overlay.mount_overlay(lowerdirs(store, container_id, image_id), p["upper"], p["work"],
                              p["merged"], volatile=volatile)
    return p["merged"]


def unmount(store: Store, container_id: str) -> None:
    """Unmount the container's root filesystem (lazily), and the /dev/shm it shares
    (``--ipc shareable``); idempotent."""
    from forklift.runtime import overlay

    # No look in mountinfo first (a read of every mount on the host, twice per `run
    # --rm`): unmounting what is not mounted is already a quiet no-op.
    overlay.unmount(paths(store, container_id)["merged"], lazy=True)
    shm = shm_dir(store, container_id)
    if os.path.isdir(shm):
        overlay.unmount(shm, lazy=True)


def shm_dir(store: Store, container_id: str) -> str:
    """Where a ``--ipc shareable`` container's /dev/shm is mounted on the host while it
    runs, for ``--ipc container:`` joiners to bind (as Docker's ``mounts/shm``)."""
    return os.path.join(store.container_path(container_id), "shm")


@contextlib.contextmanager
def readonly_view(store: Store, container_id: str, image_id: str) -> Iterator[str]:
    """The container's merged filesystem, read-only, without touching its own mount."""
    from forklift.runtime import overlay

    p = paths(store, container_id)
    scratch = store.make_tmp("view")
    target = os.path.join(scratch, "root")
    os.mkdir(target)
    overlay.mount_overlay([p["upper"], *lowerdirs(store, container_id, image_id)], None, None,
                          target, readonly=True)
    try:
        yield target
    finally:
        overlay.unmount(target, lazy=True)
        remove_path(scratch)


def destroy(store: Store, container_id: str) -> None:
    """Unmount and delete the container's directory; idempotent."""
    unmount(store, container_id)
    remove_path(store.container_path(container_id))


def _exit_info_path(store: Store, container_id: str) -> str:
    return os.path.join(store.container_path(container_id), "exit.json")


def write_exit_info(store: Store, container_id: str, info: dict[str, Any]) -> None:
    """Keep ``info`` (``{"OOMKilled": true}``) until the container's next start."""
    with contextlib.suppress(OSError), open(_exit_info_path(store, container_id), "w") as f:
        json.dump(info, f)


def clear_exit_info(store: Store, container_id: str) -> None:
    """Forget the last run's details (a new run starts); idempotent."""
    with contextlib.suppress(OSError):
        os.unlink(_exit_info_path(store, container_id))


def exit_info(store: Store, container_id: str) -> dict[str, Any]:
    """What the last run recorded beside the exit code (empty if nothing)."""
    try:
        with open(_exit_info_path(store, container_id)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}
