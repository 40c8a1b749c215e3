"""Everything mounted into a container besides its root filesystem.

``-v`` binds and named or anonymous volumes, the image's ``VOLUME``s, ``--mount``
(bind, volume, tmpfs), ``--tmpfs``, ``--volumes-from``, and the /etc files forklift
bind-mounts: parsed at create time into the container's HostConfig (`parse_volume`,
`host_config`), volumes made, attached and seeded with the image's content as Docker does
at ``create`` (`create_volumes`) or at the first start (`specs`, which a start runs to
prepare every mount), shown by ``inspect`` (`describe`) and read by ``cp``
(`host_sources`).
"""

from __future__ import annotations

import os

from forklift import programs
from forklift.engine.hostconfig import parse_bytes
from forklift.errors import InvalidArgument, NotFound
from forklift.runtime.fsutil import secure_join
from forklift.runtime.spec import MountSpec
from forklift.store import containers as container_store
from forklift.store import volumes as volume_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

ETC_FILES = ("resolv.conf", "hostname", "hosts")
_BIND = ["rbind", "rprivate"]


# ----------------------------------------------------------------------------- parsing

def parse_volume(spec: str) -> tuple[str | None, str, bool]:
    """``-v``: (source or None for anonymous, destination, read_only); InvalidArgument
    in Docker's words for a malformed one."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dest, mode = None, parts[0], ""
    elif len(parts) == 2:
        if parts[1] in ("ro", "rw") or not parts[1].startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{spec}'")
        src, dest, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dest, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if len(parts) > 1 and not src:
        raise InvalidArgument(f"invalid volume specification: '{spec}': empty source")
    if not dest.startswith("/") or dest == "/":
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount path, must be absolute")
    opts = {o for o in mode.split(",") if o}
    if opts - {"ro", "rw", "z", "Z", "nocopy"}:
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mode: {mode}")
    return src or None, os.path.normpath(dest), "ro" in opts


def parse_mount(spec: str) -> dict[str, Any]:
    """``--mount type=…,source=…,target=…[,readonly]…`` as HostConfig.Mounts holds it."""
    out: dict[str, Any] = {"Type": "volume", "Source": "", "Target": "", "ReadOnly": False}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key == "type":
            if value not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(f"invalid mount type: {value!r}")
            out["Type"] = value
        elif key in ("source", "src"):
            out["Source"] = value
        elif key in ("target", "destination", "dst"):
            out["Target"] = value
        elif key in ("readonly", "ro"):
            out["ReadOnly"] = (not sep) or value.lower() in ("1", "true")
        elif key == "volume-nocopy":
            out["NoCopy"] = (not sep) or value.lower() in ("1", "true")
        elif key == "tmpfs-size":
            out["TmpfsSize"] = parse_bytes(value)
        elif key == "tmpfs-mode":
            out["TmpfsMode"] = _octal(key, value)
        elif key in ("bind-propagation", "consistency"):
            continue
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{spec}'")
    if not out["Target"].startswith("/"):
        raise InvalidArgument(f"invalid mount config: target must be an absolute path: '{spec}'")
    if out["Type"] == "bind" and not out["Source"].startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid source: '{spec}'")
    if out["Type"] == "tmpfs" and out["Source"]:
        raise InvalidArgument("invalid mount config for type \"tmpfs\": source must not be specified")
    out["Target"] = os.path.normpath(out["Target"])
    return out


def _octal(key: str, value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode < 2**32:
        raise InvalidArgument(f"invalid value for {key}: {value}")
    return mode


def host_config(store: Store, mounts: list[str], tmpfs: list[str],
                volumes_from: list[str]) -> dict[str, Any]:
    """HostConfig's Mounts, Tmpfs and VolumesFrom for ``--mount``, ``--tmpfs`` and
    ``--volumes-from``; InvalidArgument for a malformed one, NotFound for a container
    ``--volumes-from`` names that does not exist. Reads the store, changes nothing."""
    hc: dict[str, Any] = {}
    if mounts:
        hc["Mounts"] = [parse_mount(m) for m in mounts]
    if tmpfs:
        table = {}
        for item in tmpfs:
            dest, _, options = item.partition(":")
            if not dest.startswith("/"):
                raise InvalidArgument(f"invalid tmpfs mount: {item}")
            table[os.path.normpath(dest)] = options
        hc["Tmpfs"] = table
    if volumes_from:
        for item in volumes_from:
            container_store.resolve(store, item.split(":")[0])  # must exist
        hc["VolumesFrom"] = list(volumes_from)
    return hc


# ----------------------------------------------------------------------------- at start

def has_volumes(rec: ContainerRecord) -> bool:
    """Whether the container has volumes to make or attach (`create_volumes`)."""
    hc = rec.host_config
    return bool(rec.config.get("Volumes") or hc.get("VolumesFrom")
                or any(not (parse_volume(b)[0] or "/").startswith("/") for b in hc.get("Binds") or [])
                or any(m["Type"] == "volume" for m in hc.get("Mounts") or []))


def create_volumes(store: Store, rec: ContainerRecord) -> None:
    """At create, as Docker's: the named and anonymous volumes made and attached, the
    empty ones seeded with the image's content (from a read-only view of the new
    container's filesystem), ``--volumes-from``'s attached. The start finds them (and
    still seeds a named volume it finds empty, as ever); a ``-v`` bind's missing host
    directory waits for the start, as in Docker."""
    from forklift.engine import rootfs

    with rootfs.readonly_view(store, rec.id, rec.image_id) as view:
        specs(store, rec, view, rootfs.paths(store, rec.id), host_dirs=False)


def forget_volumes(store: Store, container_id: str) -> None:
    """Undo `create_volumes` for a create that fails after it: the attachments, and the
    anonymous volumes nothing else uses (the named ones stay, as Docker leaves them)."""
    attached = volume_store.of_container(store, container_id)
    volume_store.detach(store, container_id)
    volume_store.remove_unused_anonymous(store, [name for name, _ in attached])


def specs(store: Store, rec: ContainerRecord, merged: str, paths: dict[str, str],
          host_dirs: bool = True) -> list[MountSpec]:
    """The container's mounts for its runtime spec: the /etc files and ``-v``, then, first
    come first served per destination, ``--mount``, ``--tmpfs``, ``--volumes-from`` and
    the image's volumes. Creates and attaches the named and anonymous volumes (a restart
    reuses its anonymous ones) and seeds empty ones from the image at ``merged``; a
    missing host directory of a ``-v`` bind is created (``host_dirs``), as Docker does.
    Not atomic: each volume is its own transaction, and a failure leaves those made so
    far attached."""
    hc = rec.host_config
    out = [MountSpec(f"/etc/{name}", paths[name], "bind", list(_BIND)) for name in ETC_FILES]
    for src, dest, read_only in map(parse_volume, hc.get("Binds", [])):
        assert src is not None
        out.append(MountSpec(dest, _bind_source(store, rec, src, dest, merged, host_dirs),
                             "bind", _BIND + (["ro"] if read_only else [])))
    taken = {m.destination for m in out}

    def add(m: MountSpec) -> None:
        if m.destination not in taken:
            taken.add(m.destination)
            out.append(m)

    for m in hc.get("Mounts") or []:
        add(_mount_spec(store, rec, m, merged))
    for dest, options in (hc.get("Tmpfs") or {}).items():
        add(MountSpec(dest, "tmpfs", "tmpfs", _tmpfs_options(options)))
    for item in hc.get("VolumesFrom") or []:
        for spec in _volumes_from(store, rec, item, taken):
            add(spec)
    for dest in sorted((rec.config.get("Volumes") or {}).keys()):
        if dest not in taken:
            add(MountSpec(dest, _anonymous_volume(store, rec, dest, merged), "bind", list(_BIND)))
    return out


def _bind_source(store: Store, rec: ContainerRecord, src: str, dest: str, merged: str,
                 host_dirs: bool = True) -> str:
    if src.startswith("/"):
        if host_dirs and not os.path.lexists(src):  # Docker creates a missing host path as a directory
            os.makedirs(src)
        return src
    vol, _ = volume_store.ensure(store, src)
    volume_store.attach(store, rec.id, vol.name, dest)
    copy_up(merged, dest, vol.path(store))
    return vol.path(store)


def _mount_spec(store: Store, rec: ContainerRecord, m: dict[str, Any], merged: str) -> MountSpec:
    ro = ["ro"] if m.get("ReadOnly") else []
    if m["Type"] == "bind":
        if not os.path.exists(m["Source"]):
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {m['Source']}")
        return MountSpec(m["Target"], m["Source"], "bind", _BIND + ro)
    if m["Type"] == "volume":
        name = m["Source"] or _attached(store, rec.id, m["Target"]) or os.urandom(32).hex()
        made, _ = volume_store.ensure(store, name, anonymous=not m["Source"])
        volume_store.attach(store, rec.id, made.name, m["Target"])
        if not m.get("NoCopy"):
            copy_up(merged, m["Target"], made.path(store))
        return MountSpec(m["Target"], made.path(store), "bind", _BIND + ro)
    opts = ["nosuid", "nodev", "noexec"]
    if m.get("TmpfsSize"):
        opts.append(f"size={m['TmpfsSize']}")
    if m.get("TmpfsMode"):
        opts.append(f"mode={m['TmpfsMode']:o}")
    return MountSpec(m["Target"], "tmpfs", "tmpfs", opts + ro)


def _tmpfs_options(options: str) -> list[str]:
    base = ["nosuid", "nodev", "noexec"]
    for opt in (o for o in options.split(",") if o):
        if opt in ("exec", "dev", "suid"):
            base = [b for b in base if b != "no" + opt]
        elif opt not in base:
            base.append(opt)
    return base


def _volumes_from(store: Store, rec: ContainerRecord, item: str,
                  taken: set[str]) -> list[MountSpec]:
    """The volumes and binds of another container (gone since create: nothing)."""
    name, _, mode = item.partition(":")
    try:
        other = container_store.resolve(store, name)
    except NotFound:
        return []
    ro = ["ro"] if mode == "ro" else []
    out = []
    for vol_name, dest in volume_store.of_container(store, other.id):
        vol = volume_store.get(store, vol_name)
        if vol is None or dest in taken:
            continue
        volume_store.attach(store, rec.id, vol_name, dest)
        out.append(MountSpec(dest, vol.path(store), "bind", _BIND + ro))
    for src, dest, read_only in map(parse_volume, other.host_config.get("Binds", [])):
        if src and src.startswith("/"):
            out.append(MountSpec(dest, src, "bind", _BIND + (["ro"] if read_only or ro else [])))
    for m in other.host_config.get("Mounts") or []:
        if m["Type"] == "bind":
            out.append(MountSpec(m["Target"], m["Source"], "bind", _BIND + ro))
    return out


def _anonymous_volume(store: Store, rec: ContainerRecord, dest: str, merged: str) -> str:
    name = _attached(store, rec.id, dest)
    vol = volume_store.get(store, name) if name else None
    if vol is not None:
        return vol.path(store)
    vol, _ = volume_store.ensure(store, os.urandom(32).hex(), anonymous=True)
    volume_store.attach(store, rec.id, vol.name, dest)
    copy_up(merged, dest, vol.path(store))
    return vol.path(store)


def _attached(store: Store, container_id: str, dest: str) -> str | None:
    """The name of the volume attached to the container at ``dest``, if any."""
    for name, destination in volume_store.of_container(store, container_id):
        if destination == dest:
            return name
    return None


def copy_up(merged: str, dest: str, volume_dir: str) -> None:
    """Seed an empty volume with the image's content at ``dest``, as Docker does
    (``cp -a``: owners, modes, links kept; MissingProgram without coreutils)."""
    if os.listdir(volume_dir):
        return
    source = secure_join(merged, dest)
    if not os.path.isdir(source) or os.path.islink(source):
        return
    import subprocess  # only seeding a volume runs a program: keep inspect and cp light

    subprocess.run([programs.find("cp"), "-a", "--no-dereference", "--", source + "/.", volume_dir],
                   check=False)


# ----------------------------------------------------------------------------- reading

def describe(store: Store, rec: ContainerRecord,
             attached: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """``inspect``'s Mounts: volumes, binds and ``--mount`` tmpfs mounts, in Docker's fields
    (``attached``: the container's volumes when the caller read them already, as a
    listing reads every container's in one query)."""
    out = []
    if attached is None:
        attached = volume_store.of_container(store, rec.id)
    for name, dest in attached:
        vol = volume_store.get(store, name)
        out.append({"Type": "volume", "Name": name, "Source": vol.path(store) if vol else "",
                    "Destination": dest, "Driver": "local", "Mode": "", "RW": True,
                    "Propagation": ""})
    for spec in rec.host_config.get("Binds") or []:
        src, dest, ro = parse_volume(spec)
        if src and src.startswith("/"):
            mode = spec.split(":")[2] if spec.count(":") == 2 else ""  # as given, like Docker
            out.append({"Type": "bind", "Source": src, "Destination": dest, "Mode": mode,
                        "RW": not ro, "Propagation": "rprivate"})
    for m in rec.host_config.get("Mounts") or []:
        if m["Type"] == "bind":
            out.append({"Type": "bind", "Source": m["Source"], "Destination": m["Target"],
                        "Mode": "", "RW": not m.get("ReadOnly"), "Propagation": "rprivate"})
        elif m["Type"] == "tmpfs":
            out.append({"Type": "tmpfs", "Source": "", "Destination": m["Target"], "Mode": "",
                        "RW": not m.get("ReadOnly"), "Propagation": ""})
    return out  # --tmpfs mounts are not listed, as in Docker's (HostConfig.Tmpfs has them)


def host_sources(store: Store, rec: ContainerRecord, paths: dict[str, str]) -> list[tuple[str, str]]:
    """(container path, host source) of everything bind-mounted into the container, the
    deepest first: volumes, binds and the /etc files (``paths``: the container's files)."""
    points = [(f"/etc/{name}", paths[name]) for name in ("hosts", "hostname", "resolv.conf")]
    for name, dest in volume_store.of_container(store, rec.id):
        vol = volume_store.get(store, name)
        if vol:
            points.append((dest, vol.path(store)))
    for src, dest, _ in map(parse_volume, rec.host_config.get("Binds", [])):
        if src and src.startswith("/"):
            points.append((dest, src))
    for m in rec.host_config.get("Mounts") or []:
        if m["Type"] == "bind":
            points.append((m["Target"], m["Source"]))
    return sorted(points, key=lambda p: len(p[0]), reverse=True)
