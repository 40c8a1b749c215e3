"""HostConfig details beyond the basics: ports, DNS, resource limits, --mount/--tmpfs/--volumes-from.

Imported only when a container uses one of these options, so the plain
``run --rm IMAGE true`` path never pays for it.
"""

from __future__ import annotations

import os
import re
from typing import Any

from forklift.errors import InvalidArgument, NotFound
from forklift.store import containers as container_store
from forklift.store import volumes as volume_store
from forklift.store.db import Store

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
CGROUP_V1 = "/sys/fs/cgroup"


def parse_bytes(text: str, what: str = "memory") -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*", text.lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_port_spec(spec: str) -> tuple[str, list[dict[str, str]]]:
    """``[ip:][hostPort:]containerPort[/proto]`` -> ("80/tcp", [{"HostIp", "HostPort"}])."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    parts = body.rsplit(":", 2)
    if len(parts) == 1:
        ip, host, ctr = "", "", parts[0]
    elif len(parts) == 2:
        ip, (host, ctr) = "", parts
    else:
        ip, host, ctr = parts
    if not ctr.isdigit() or not 0 < int(ctr) < 65536 or (host and not host.isdigit()):
        raise InvalidArgument(f"invalid port format: '{spec}'")
    return f"{int(ctr)}/{proto}", [{"HostIp": ip, "HostPort": host}]


def parse_mount(spec: str) -> dict[str, Any]:
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
            out["TmpfsMode"] = int(value, 8)
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


def extra(store: Store, opts: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """HostConfig entries for the less common ``create`` options (``cfg`` may gain ExposedPorts)."""
    hc: dict[str, Any] = {}
    if opts.publish or opts.publish_all:
        bindings: dict[str, list[dict[str, str]]] = {}
        for spec in opts.publish:
            port, binding = parse_port_spec(spec)
            bindings.setdefault(port, []).extend(binding)
        hc["PortBindings"] = bindings
        hc["PublishAllPorts"] = bool(opts.publish_all)
        exposed = dict(cfg.get("ExposedPorts") or {})
        exposed.update({p: {} for p in bindings})
        cfg["ExposedPorts"] = exposed
    if opts.dns:
        hc["Dns"] = list(opts.dns)
    if opts.add_hosts:
        for entry in opts.add_hosts:
            host, sep, ip = entry.partition("=" if "=" in entry else ":")
            if not sep or not host or not ip:
                raise InvalidArgument(f"invalid IP address in add-host: \"{entry}\"")
        hc["ExtraHosts"] = list(opts.add_hosts)
    if opts.memory:
        hc["Memory"] = parse_bytes(opts.memory)
        if hc["Memory"] < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if opts.memory_swap:
        hc["MemorySwap"] = -1 if opts.memory_swap.strip() == "-1" else parse_bytes(opts.memory_swap)
        if not hc.get("Memory"):
            raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
        if hc["MemorySwap"] != -1 and hc["MemorySwap"] < hc["Memory"]:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit")
    if opts.cpus:
        if opts.cpus > (os.cpu_count() or 1):
            raise InvalidArgument(f"range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only {os.cpu_count()} CPUs available")
        hc["NanoCpus"] = int(opts.cpus * 1e9)
    if opts.cpu_shares:
        hc["CpuShares"] = int(opts.cpu_shares)
    if opts.cpuset_cpus:
        if not re.fullmatch(r"[0-9,\-]+", opts.cpuset_cpus):
            raise InvalidArgument(f"invalid value {opts.cpuset_cpus} for cpuset cpus")
        hc["CpusetCpus"] = opts.cpuset_cpus
    if opts.pids_limit:
        hc["PidsLimit"] = int(opts.pids_limit)
    if opts.ulimits:
        from forklift.runtime.spec import _rlimit_name

        out = []
        for item in opts.ulimits:
            name, sep, values = item.partition("=")
            if not sep:
                raise InvalidArgument(f"invalid ulimit argument: {item}")
            _rlimit_name(name)
            soft, _, hard = values.partition(":")
            try:
                s, h = int(soft), int(hard or soft)
            except ValueError:
                raise InvalidArgument(f"invalid ulimit argument: {item}") from None
            out.append({"Name": name, "Soft": s, "Hard": h})
        hc["Ulimits"] = out
    if opts.mounts:
        hc["Mounts"] = [parse_mount(m) for m in opts.mounts]
    if opts.tmpfs:
        tmpfs = {}
        for item in opts.tmpfs:
            dest, _, options = item.partition(":")
            if not dest.startswith("/"):
                raise InvalidArgument(f"invalid tmpfs mount: {item}")
            tmpfs[os.path.normpath(dest)] = options
        hc["Tmpfs"] = tmpfs
    if opts.volumes_from:
        for item in opts.volumes_from:
            container_store.resolve(store, item.split(":")[0])  # must exist
        hc["VolumesFrom"] = list(opts.volumes_from)
    return hc


def _tmpfs_options(options: str) -> list[str]:
    base = ["nosuid", "nodev", "noexec"]
    for opt in (o for o in options.split(",") if o):
        if opt in ("exec", "dev", "suid"):
            base = [b for b in base if b != "no" + opt]
        elif opt not in base:
            base.append(opt)
    return base


def mounts(store: Store, rec: Any, merged: str, taken: set[str]) -> list[Any]:
    """MountSpecs for --mount, --tmpfs and --volumes-from."""
    from forklift.engine.containers import _copy_up, _parse_volume
    from forklift.runtime.spec import MountSpec

    hc = rec.host_config
    out: list[MountSpec] = []

    def add(m: MountSpec) -> None:
        if m.destination not in taken:
            taken.add(m.destination)
            out.append(m)

    for m in hc.get("Mounts") or []:
        ro = ["ro"] if m.get("ReadOnly") else []
        if m["Type"] == "bind":
            if not os.path.exists(m["Source"]):
                raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {m['Source']}")
            add(MountSpec(m["Target"], m["Source"], "bind", ["rbind", "rprivate"] + ro))
        elif m["Type"] == "volume":
            name = m["Source"] or _existing_anonymous(store, rec.id, m["Target"]) or os.urandom(32).hex()
            made, _ = volume_store.ensure(store, name, anonymous=not m["Source"])
            volume_store.attach(store, rec.id, made.name, m["Target"])
            if not m.get("NoCopy"):
                _copy_up(merged, m["Target"], made.path(store))
            add(MountSpec(m["Target"], made.path(store), "bind", ["rbind", "rprivate"] + ro))
        else:
            opts = ["nosuid", "nodev", "noexec"]
            if m.get("TmpfsSize"):
                opts.append(f"size={m['TmpfsSize']}")
            if m.get("TmpfsMode"):
                opts.append(f"mode={m['TmpfsMode']:o}")
            add(MountSpec(m["Target"], "tmpfs", "tmpfs", opts + ro))
    for dest, options in (hc.get("Tmpfs") or {}).items():
        add(MountSpec(dest, "tmpfs", "tmpfs", _tmpfs_options(options)))
    for item in hc.get("VolumesFrom") or []:
        name, _, mode = item.partition(":")
        try:
            other = container_store.resolve(store, name)
        except NotFound:
            continue
        ro = ["ro"] if mode == "ro" else []
        for vol_name, dest in volume_store.of_container(store, other.id):
            vol = volume_store.get(store, vol_name)
            if vol is None or dest in taken:
                continue
            volume_store.attach(store, rec.id, vol_name, dest)
            add(MountSpec(dest, vol.path(store), "bind", ["rbind", "rprivate"] + ro))
        for src, dest, read_only in map(_parse_volume, other.host_config.get("Binds", [])):
            if src and src.startswith("/"):
                add(MountSpec(dest, src, "bind", ["rbind", "rprivate"] + (["ro"] if read_only or ro else [])))
        for m in other.host_config.get("Mounts") or []:
            if m["Type"] == "bind":
                add(MountSpec(m["Target"], m["Source"], "bind", ["rbind", "rprivate"] + ro))
    return out


def _existing_anonymous(store: Store, container_id: str, dest: str) -> str | None:
    for name, destination in volume_store.of_container(store, container_id):
        if destination == dest:
            return name
    return None


def resources(hc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """linux.resources and rlimits for the spec (values as runc takes them on v1 and v2)."""
    res: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        memory["limit"] = hc["Memory"]
        swap = hc.get("MemorySwap") or 2 * hc["Memory"]
        if _swap_accounting():
            memory["swap"] = swap
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = hc["NanoCpus"] * 100000 // 1_000_000_000
    if hc.get("CpuShares"):
        cpu["shares"] = hc["CpuShares"]
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if cpu:
        res["cpu"] = cpu
    if hc.get("PidsLimit"):
        res["pids"] = {"limit": hc["PidsLimit"]}
    rlimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in hc.get("Ulimits") or []}
    return res, rlimits


def _swap_accounting() -> bool:
    if os.path.exists(os.path.join(CGROUP_V1, "cgroup.controllers")):
        return True  # cgroup v2: memory.swap.max is always there
    return os.path.exists(os.path.join(CGROUP_V1, "memory", "memory.memsw.limit_in_bytes"))


def cgroup_dir(container_id: str, controller: str = "memory") -> str:
    if os.path.exists(os.path.join(CGROUP_V1, "cgroup.controllers")):
        return os.path.join(CGROUP_V1, "forklift", container_id)
    return os.path.join(CGROUP_V1, controller, "forklift", container_id)


def oom_killed(container_id: str) -> bool:
    """Whether the kernel's OOM killer struck in the container's cgroup (read before it goes)."""
    base = cgroup_dir(container_id)
    for name in ("memory.oom_control", "memory.events"):
        try:
            with open(os.path.join(base, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False
