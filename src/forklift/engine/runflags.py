"""The rarer ``run``/``create`` flags of Docker 20.10 (issue 13): ``--cidfile``,
``--label-file``, ``--stop-timeout``, ``--shm-size``, ``--sysctl``, ``--dns-search``,
``--dns-option``, ``--domainname``, ``--group-add``.

`host_config` refuses a bad value in Docker's words before anything is created and gives
their HostConfig entries (Docker's names and shapes); `apply` puts them into the OCI spec
at start. Kept apart from `forklift.engine.hostconfig` so a plain
``run --rm IMAGE true`` does not pay for them (nothing here runs unless a flag is set).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forklift.engine.hostconfig import CGROUP_V1, cgroup_v2, read_setting
from forklift.errors import Conflict, ForkliftError, InvalidArgument

if TYPE_CHECKING:
    from forklift.store.db import Store

DEFAULT_SHM_SIZE = 64 * 1024 * 1024  # Docker's default /dev/shm

# Docker's opts.ValidateSysctl: only sysctls that live in a namespace of the container.
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
_DOMAIN = (r"^(:?(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$")


@dataclass
class RunFlags:
    """The values of these flags as the CLI parsed them (all empty: none given)."""
    cidfile: str | None = None
    label_files: list[str] = field(default_factory=list)
    stop_timeout: int | None = None
    shm_size: str | None = None
    sysctls: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    domainname: str | None = None
    group_add: list[str] = field(default_factory=list)
    # resources
    oom_kill_disable: bool | None = None
    oom_score_adj: int | None = None
    memory_reservation: str | None = None
    memory_swappiness: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_mems: str | None = None
    blkio_weight: int | None = None
    blkio_weight_device: list[str] = field(default_factory=list)
    device_read_bps: list[str] = field(default_factory=list)
    device_write_bps: list[str] = field(default_factory=list)
    device_read_iops: list[str] = field(default_factory=list)
    device_write_iops: list[str] = field(default_factory=list)
    # devices and namespaces
    devices: list[str] = field(default_factory=list)
    device_cgroup_rules: list[str] = field(default_factory=list)
    pid: str | None = None
    ipc: str | None = None
    uts: str | None = None
    cgroupns: str | None = None
    log_driver: str | None = None
    log_opts: list[str] = field(default_factory=list)
    attach: list[str] = field(default_factory=list)
    sig_proxy: bool | None = None
    detach_keys: str | None = None
    ip: str | None = None
    network_aliases: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    cgroup_parent: str | None = None
    # what this host has (forklift.engine.extraflags)
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    gpus: str | None = None
    isolation: str | None = None
    kernel_memory: str | None = None
    link_local_ips: list[str] = field(default_factory=list)
    mac_address: str | None = None
    storage_opts: list[str] = field(default_factory=list)
    userns: str | None = None
    volume_driver: str | None = None
    ip6: str | None = None

    def any(self) -> bool:
        given = (v is not None and v is not False and v != [] for v in vars(self).values())
        return self.sig_proxy is False or any(given)


def check_cidfile(path: str | None) -> None:
    """Docker refuses to overwrite a container ID file (another container may own it)."""
    if path and os.path.exists(path):
        raise Conflict(f"Container ID file found, make sure the other container isn't running"
                       f" or delete {path}")


def write_cidfile(path: str, container_id: str) -> None:
    try:
        with open(path, "x") as f:
            f.write(container_id)
    except OSError as exc:
        raise InvalidArgument(f"failed to create the container ID file: open {path}:"
                              f" {(exc.strerror or str(exc)).lower()}") from None


def read_label_files(paths: list[str]) -> list[str]:
    """``--label-file``: one ``key=value`` a line; blank lines and ``#`` comments skipped."""
    out = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
        out += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    return out


def _sysctl(item: str, network: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    namespaced = key in _IPC_SYSCTLS or key.startswith(("fs.mqueue.", "net."))
    if not sep or not namespaced:
        raise InvalidArgument(f'invalid argument "{item}" for "--sysctl" flag:'
                              f" sysctl '{item}' is not whitelisted")
    if key.startswith("net.") and network == "host":
        raise InvalidArgument(f"sysctl \"{key}\" not allowed in host network namespace")
    return key, value


def _dns_search(domain: str) -> str:
    if domain == ".":  # "no search domain", as in Docker
        return domain
    if len(domain) > 255 or not re.match(_DOMAIN, domain):
        raise InvalidArgument(f'invalid argument "{domain}" for "--dns-search" flag:'
                              f" {domain} is not a valid domain")
    return domain


def host_config(flags: RunFlags, base: dict[str, Any]) -> dict[str, Any]:
    """The HostConfig entries of these flags (``base``: the others' entries, which some
    of them are checked against); InvalidArgument in Docker's words."""
    from forklift.engine.hostconfig import parse_bytes

    hc: dict[str, Any] = {}
    if flags.cidfile:
        hc["ContainerIDFile"] = flags.cidfile  # as given, as Docker's inspect shows it
    if flags.shm_size:
        try:
            size = parse_bytes(flags.shm_size)
        except InvalidArgument as exc:
            raise InvalidArgument(f'invalid argument "{flags.shm_size}" for "--shm-size" flag:'
                                  f" {exc.message}") from None
        hc["ShmSize"] = size or DEFAULT_SHM_SIZE
    if flags.sysctls:
        hc["Sysctls"] = dict(_sysctl(s, base.get("NetworkMode", "")) for s in flags.sysctls)
    if flags.dns_search:
        hc["DnsSearch"] = [_dns_search(d) for d in flags.dns_search]
    if flags.dns_options:
        hc["DnsOptions"] = list(flags.dns_options)
    if flags.group_add:
        hc["GroupAdd"] = list(flags.group_add)
    _memory(hc, flags, base.get("Memory"))
    _cpu(hc, flags, base.get("NanoCpus"))
    _blkio(hc, flags)
    if flags.devices:
        hc["Devices"] = [_device(d) for d in flags.devices]
    if flags.device_cgroup_rules:
        hc["DeviceCgroupRules"] = [_cgroup_rule(r) for r in flags.device_cgroup_rules]
    if flags.log_driver or flags.log_opts:
        hc["LogConfig"] = log_config(flags.log_driver or "json-file", flags.log_opts)
    if _host_dependent(flags):
        from forklift.engine import extraflags

        hc.update(extraflags.host_config(flags, base.get("NetworkMode", "")))
    return hc


def _host_dependent(flags: RunFlags) -> bool:
    return any(v not in (None, "", []) for v in (
        flags.cpu_rt_period, flags.cpu_rt_runtime, flags.gpus, flags.isolation,
        flags.kernel_memory, flags.link_local_ips, flags.mac_address, flags.storage_opts,
        flags.userns, flags.volume_driver, flags.ip6))


_LOG_DRIVERS = ("json-file", "local", "none")
# Docker's other options of these drivers: accepted by Docker, not implemented here
_LOG_OPTS_UNSUPPORTED = ("labels", "labels-regex", "env", "env-regex", "tag", "compress")


def log_config(driver: str, opts: list[str]) -> dict[str, Any]:
    """``--log-driver``/``--log-opt`` as HostConfig.LogConfig."""
    from forklift.engine.hostconfig import parse_bytes

    if driver not in _LOG_DRIVERS:
        raise InvalidArgument(f"failed to initialize logging driver: logger: no log driver"
                              f" named '{driver}' is registered")
    config: dict[str, str] = {}
    for item in opts:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f'invalid argument "{item}" for "--log-opt" flag:'
                                  f" invalid key value pair format: {item}")
        if driver == "none" or key not in ("max-size", "max-file", *_LOG_OPTS_UNSUPPORTED):
            raise InvalidArgument(f"unknown log opt '{key}' for {driver} log driver")
        if key in _LOG_OPTS_UNSUPPORTED:
            raise InvalidArgument(f"log opt '{key}' is not supported by forklift")
        config[key] = value
    if "max-size" in config and parse_bytes(config["max-size"]) <= 0:
        raise InvalidArgument("max-size must be a positive number")
    if "max-file" in config:
        if not config["max-file"].isdigit() or int(config["max-file"]) < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        if int(config["max-file"]) > 1 and "max-size" not in config and driver == "json-file":
            raise InvalidArgument("max-file cannot be set without max-size")
    return {"Type": driver, "Config": config}


def namespaces(flags: RunFlags, store: Store, hostname_given: bool) -> dict[str, Any]:
    """``--pid``, ``--ipc``, ``--uts``, ``--cgroupns`` as HostConfig's modes; a container
    to join must exist (NotFound) and run when this one starts."""
    from forklift.store import containers as container_store

    hc: dict[str, Any] = {}
    for flag, key, value, extra in (("pid", "PidMode", flags.pid, ()),
                                    ("ipc", "IpcMode", flags.ipc, ("private", "shareable", "none")),
                                    ("uts", "UTSMode", flags.uts, ()),
                                    ("cgroupns", "CgroupnsMode", flags.cgroupns, ("private",))):
        if value is None or value == "":
            continue
        target = value.partition(":")[2] if value.startswith("container:") and flag in ("pid", "ipc") else None
        if not (value == "host" or value in extra or target):
            what = "CGROUP" if flag == "cgroupns" else flag.upper()
            raise InvalidArgument(f"--{flag}: invalid {what} mode")
        if target:  # kept by ID, as Docker keeps it
            value = f"container:{container_store.resolve(store, target).id}"
        hc[key] = value
    if hc.get("UTSMode") == "host" and hostname_given:
        raise InvalidArgument("Conflicting options: hostname and the UTS mode")
    return hc


_DEFAULT_NETWORKS = ("bridge", "default", "host", "none")


def networking(flags: RunFlags, store: Store, network: str) -> dict[str, Any]:
    """``--link``, ``--network-alias``, ``--ip``: refused as Docker refuses them on the
    default networks; links and aliases become /etc/hosts names (engine/network)."""
    from forklift.store import containers as container_store

    hc: dict[str, Any] = {}
    if flags.cgroup_parent:  # stats, update and OOM detection find a container under /forklift
        raise InvalidArgument("--cgroup-parent is not supported: forklift keeps every"
                              " container's cgroup under /forklift")
    if flags.ip:
        if network in _DEFAULT_NETWORKS:
            raise InvalidArgument("user specified IP address is supported on user defined"
                                  " networks only")
        hc["IPv4Address"] = flags.ip  # engine.containers checks it on the network
    if flags.network_aliases:
        if network in _DEFAULT_NETWORKS:
            raise InvalidArgument("network-scoped alias is supported only for containers in"
                                  " user defined networks")
        hc["NetworkAliases"] = list(flags.network_aliases)
    if flags.links:
        if network == "host":
            raise InvalidArgument("conflicting options: host type networking can't be used"
                                  " with links. This would result in undefined behavior")
        if network == "none":
            raise InvalidArgument("links are only supported for user-defined networks")
        for link in flags.links:
            target, _, alias = link.partition(":")
            target = target.lstrip("/")
            if not target or (":" in alias):
                raise InvalidArgument(f'invalid argument "{link}" for "--link" flag: bad'
                                      f" format for links: {link}")
            try:
                container_store.resolve(store, target)
            except ForkliftError:
                raise InvalidArgument(f"Could not get container for {target}") from None
        hc["Links"] = list(flags.links)
    return hc


def docker_links(store: Store, links: list[str], name: str) -> list[str]:
    """HostConfig.Links in Docker's form, ``/target:/name/alias`` (the alias is the
    target's name when none is given), for the container called ``name``."""
    from forklift.store import containers as container_store

    out = []
    for link in links:
        target, _, alias = link.partition(":")
        rec = container_store.resolve(store, target.lstrip("/"))
        out.append(f"/{rec.name}:/{name}/{alias.strip('/') or rec.name}")
    return out


def rename_in_links(links: list[str], old: str, new: str) -> list[str]:
    """``links`` (Docker's form) after the container ``old`` was renamed ``new``."""
    out = []
    for link in links:
        target, sep, rest = link.partition(":")
        owner, slash, alias = rest.lstrip("/").partition("/")
        if target == f"/{old}":
            target = f"/{new}"
        if sep and slash and owner == old:
            rest = f"/{new}/{alias}"
        out.append(target + sep + rest)
    return out


def parse_link(link: str) -> tuple[str, str]:
    """(target, alias) of a HostConfig.Links entry, Docker's form or the flag's."""
    target, _, alias = link.partition(":")
    target = target.lstrip("/")
    return target, alias.rpartition("/")[2] or target


def _device(spec: str) -> dict[str, str]:
    """``host[:container][:rwm]`` (Docker's parseLinuxDevice), the host's path a device."""
    parts = spec.split(":")
    if len(parts) > 3:
        raise InvalidArgument(f"invalid device specification: {spec}")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    bad = f'invalid argument "{spec}" for "--device" flag: '
    for path in (src, dst or src):
        if not path.startswith("/"):
            raise InvalidArgument(bad + f"{path} is not an absolute path")
    if not _device_mode(perms):
        raise InvalidArgument(bad + f"bad mode specified: {perms}")
    _char_or_block(src)
    return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms}


def _device_mode(mode: str) -> bool:
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def _char_or_block(path: str) -> tuple[str, int, int, int]:
    """(type, major, minor, mode) of a host device node."""
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"error gathering device information while adding custom device"
                              f" \"{path}\": {(exc.strerror or str(exc)).lower()}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"error gathering device information while adding custom device"
                              f" \"{path}\": not a device node")
    return kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode)


_RULE = r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})"  # compiled when used: off the hot path


def _cgroup_rule(rule: str) -> str:
    if not re.fullmatch(_RULE, rule):
        raise InvalidArgument(f'invalid argument "{rule}" for "--device-cgroup-rule" flag:'
                              f" invalid device cgroup format '{rule}'")
    return rule


def _devices(spec: dict[str, Any], hc: dict[str, Any]) -> None:
    rules = spec["linux"]["resources"].setdefault("devices", [])
    nodes = spec["linux"].setdefault("devices", [])
    for dev in hc.get("Devices") or []:
        kind, major, minor, mode = _char_or_block(dev["PathOnHost"])
        nodes.append({"path": dev["PathInContainer"], "type": kind, "major": major,
                      "minor": minor, "fileMode": mode, "uid": 0, "gid": 0})
        rules.append({"allow": True, "type": kind, "major": major, "minor": minor,
                      "access": dev["CgroupPermissions"]})
    for rule in hc.get("DeviceCgroupRules") or []:
        m = re.fullmatch(_RULE, rule)
        assert m is not None  # checked at create
        entry: dict[str, Any] = {"allow": True, "type": m.group(1), "access": m.group(4)}
        for key, value in (("major", m.group(2)), ("minor", m.group(3))):
            if value != "*":
                entry[key] = int(value)
        rules.append(entry)


def _join(store: Store, mode: str, kind: str) -> int:
    """The host pid of the running container a ``container:NAME`` mode names."""
    from forklift.store import containers as container_store

    target = container_store.resolve(store, mode.partition(":")[2])
    try:
        with open(os.path.join(store.container_path(target.id), "init.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pid = 0
    if not target.effective_state().up or not pid:
        raise Conflict(f"cannot join {kind} of a non running container: {target.id}")
    if kind == "IPC" and target.host_config.get("IpcMode") != "shareable":
        # Docker 20.10's default IPC mode is private: only a shareable donor is joined
        raise Conflict(f"can't join IPC of container {target.id}: non-shareable IPC (hint:"
                       " use IpcMode:shareable for the donor container)")
    return pid


def _namespaces(store: Store, spec: dict[str, Any], hc: dict[str, Any],
                container_id: str) -> None:
    ns = spec["linux"]["namespaces"]
    for key, kind, label in (("PidMode", "pid", "PID"), ("IpcMode", "ipc", "IPC"),
                             ("UTSMode", "uts", "UTS")):
        mode = hc.get(key) or ""
        if mode == "host":
            ns[:] = [n for n in ns if n["type"] != kind]
        elif mode.startswith("container:"):
            pid = _join(store, mode, label)
            ns[:] = [n if n["type"] != kind else {"type": kind, "path": f"/proc/{pid}/ns/{kind}"}
                     for n in ns]
            if kind == "ipc":  # POSIX shared memory: the donor's /dev/shm, as Docker binds it
                _shm_from(spec, _donor_shm(store, mode))
    if hc.get("IpcMode") == "host":  # POSIX shared memory lives in /dev/shm: the host's
        _shm_from(spec, "/dev/shm")
    if hc.get("IpcMode") == "shareable":
        _shm_from(spec, _shareable_shm(store, container_id, hc))
    if hc.get("UTSMode") == "host":
        spec.pop("hostname", None)  # runc refuses to set one without a UTS namespace
    if hc.get("CgroupnsMode") == "private":
        ns.append({"type": "cgroup"})


def _shareable_shm(store: Store, container_id: str, hc: dict[str, Any]) -> str:
    """A shareable container's /dev/shm: a tmpfs on the host (so that joiners can bind
    it: a mount of another mount namespace cannot be), unmounted by `rootfs.unmount`."""
    from forklift.engine import rootfs
    from forklift.runtime import overlay

    path = rootfs.shm_dir(store, container_id)
    os.makedirs(path, 0o700, exist_ok=True)
    if not overlay.is_mounted(path):
        overlay.mount_tmpfs(path, f"mode=1777,size={(hc.get('ShmSize') or DEFAULT_SHM_SIZE) // 1024}k")
    return path


def _donor_shm(store: Store, mode: str) -> str:
    from forklift.engine import rootfs
    from forklift.runtime import overlay
    from forklift.store import containers as container_store

    target = container_store.resolve(store, mode.partition(":")[2])
    path = rootfs.shm_dir(store, target.id)
    if not overlay.is_mounted(path):
        raise Conflict(f"can't join IPC of container {target.id}: its /dev/shm is not shared"
                       " (started before it could be): restart it")
    return path


def _shm_from(spec: dict[str, Any], source: str) -> None:
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/dev/shm"]
    spec["mounts"].append({"destination": "/dev/shm", "type": "bind", "source": source,
                           "options": ["rbind", "nosuid", "noexec", "nodev"]})


def _memory(hc: dict[str, Any], flags: RunFlags, limit: int | None) -> None:
    from forklift.engine.hostconfig import parse_bytes

    if flags.oom_kill_disable:
        if cgroup_v2():
            raise InvalidArgument("--oom-kill-disable cannot apply on cgroup v2 (no such"
                                  " setting in its memory controller)")
        hc["OomKillDisable"] = True
    if flags.oom_score_adj:
        if not -1000 <= flags.oom_score_adj <= 1000:
            raise InvalidArgument(f"Invalid value {flags.oom_score_adj}, range for oom score"
                                  " adj is [-1000, 1000]")
        hc["OomScoreAdj"] = flags.oom_score_adj
    if flags.memory_reservation:
        reservation = parse_bytes(flags.memory_reservation)
        if reservation and reservation < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory reservation allowed is 6MB")
        if reservation:
            if limit and limit < reservation:
                raise InvalidArgument("Minimum memory limit can not be less than memory"
                                      " reservation limit, see usage")
            hc["MemoryReservation"] = reservation
    if flags.memory_swappiness is not None and flags.memory_swappiness != -1:
        if not 0 <= flags.memory_swappiness <= 100:
            raise InvalidArgument(f"Invalid value: {flags.memory_swappiness}, valid memory"
                                  " swappiness range is 0-100")
        hc["MemorySwappiness"] = flags.memory_swappiness


def _cpu(hc: dict[str, Any], flags: RunFlags, nano_cpus: int | None) -> None:
    if flags.cpu_period:
        if nano_cpus:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if not 1000 <= flags.cpu_period <= 1000000:
            raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger"
                                  " than 1s (i.e. 1000000)")
        hc["CpuPeriod"] = flags.cpu_period
    if flags.cpu_quota:
        if nano_cpus:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        if 0 < flags.cpu_quota < 1000:
            raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
        hc["CpuQuota"] = flags.cpu_quota
    if flags.cpuset_mems:
        hc["CpusetMems"] = _cpuset_mems(flags.cpuset_mems)


def _cpuset_mems(text: str) -> str:
    """Docker checks the nodes asked for against those the host has."""
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise InvalidArgument(f"Invalid value {text} for cpuset mems")
    available = _node_list(read_setting(_cgroup_file("cpuset", "cpuset.mems",
                                              "cpuset.mems.effective")) or "0")
    if not _node_list(text) <= available:
        raise InvalidArgument(f"Requested memory nodes are not available - requested {text},"
                              f" available: {','.join(map(str, sorted(available)))}")
    return text


def _node_list(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.strip().split(","):
        if part:
            low, _, high = part.partition("-")
            out.update(range(int(low), int(high or low) + 1))
    return out


_THROTTLE = (("device_read_bps", "BlkioDeviceReadBps", "--device-read-bps"),
             ("device_write_bps", "BlkioDeviceWriteBps", "--device-write-bps"),
             ("device_read_iops", "BlkioDeviceReadIOps", "--device-read-iops"),
             ("device_write_iops", "BlkioDeviceWriteIOps", "--device-write-iops"))


def _blkio(hc: dict[str, Any], flags: RunFlags) -> None:
    if flags.blkio_weight:
        if not 10 <= flags.blkio_weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        _need_blkio_weight()
        hc["BlkioWeight"] = flags.blkio_weight
    if flags.blkio_weight_device:
        out = []
        for item in flags.blkio_weight_device:
            path, weight = _device_value(item, "--blkio-weight-device", iops=True)
            if not 10 <= weight <= 1000:
                raise InvalidArgument(f'invalid argument "{item}" for "--blkio-weight-device"'
                                      f" flag: invalid weight for device: {item}")
            _block_device(path)
            out.append({"Path": path, "Weight": weight})
        _need_blkio_weight()
        hc["BlkioWeightDevice"] = out
    for attr, key, flag in _THROTTLE:
        items = getattr(flags, attr)
        if items:
            pairs = [_device_value(i, flag, iops=attr.endswith("iops")) for i in items]
            for path, _ in pairs:
                _block_device(path)
            hc[key] = [{"Path": p, "Rate": r} for p, r in pairs]


def _device_value(item: str, flag: str, iops: bool) -> tuple[str, int]:
    """``/dev/sda:10mb`` (or a plain number for iops and weights), as Docker's CLI reads it."""
    from forklift.engine.hostconfig import parse_bytes

    path, sep, value = item.rpartition(":")
    bad = f'invalid argument "{item}" for "{flag}" flag: '
    if not sep:
        raise InvalidArgument(bad + f"bad format: {item}")
    if not path.startswith("/dev/"):
        raise InvalidArgument(bad + f"bad format for path: {path}")
    try:
        rate = int(value) if iops else parse_bytes(value)
    except (ValueError, InvalidArgument):
        rate = -1
    if rate < 0:
        unit = "" if iops else "[<unit>]"
        raise InvalidArgument(bad + f"invalid rate for device: {item}. The correct format is"
                              f" <device-path>:<number>{unit}. Number must be a positive integer.")
    return path, rate


def _need_blkio_weight() -> None:
    if cgroup_v2():
        return
    base = os.path.join(CGROUP_V1, "blkio")
    if not any(os.path.exists(os.path.join(base, n)) for n in ("blkio.weight", "blkio.bfq.weight")):
        raise InvalidArgument("Your kernel does not support Block I/O weight: the blkio cgroup"
                              " has no weight file on this host")


def _block_device(path: str) -> dict[str, int]:
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"error gathering device information while adding custom device"
                              f" \"{path}\": {(exc.strerror or str(exc)).lower()}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidArgument(f"{path} is not a block device")
    return {"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev)}


def _cgroup_file(controller: str, v1_name: str, v2_name: str) -> str:
    if cgroup_v2():
        return os.path.join(CGROUP_V1, v2_name)
    return os.path.join(CGROUP_V1, controller, v1_name)


def resources(res: dict[str, Any], hc: dict[str, Any]) -> None:
    """Add these flags' settings to the spec's ``linux.resources`` (runc's names)."""
    memory = {k: hc[h] for k, h in (("reservation", "MemoryReservation"),
                                    ("swappiness", "MemorySwappiness"),
                                    ("disableOOMKiller", "OomKillDisable")) if h in hc}
    if memory:
        res.setdefault("memory", {}).update(memory)
    cpu = {k: hc[h] for k, h in (("period", "CpuPeriod"), ("quota", "CpuQuota"),
                                 ("mems", "CpusetMems")) if h in hc}
    if cpu:
        res.setdefault("cpu", {}).update(cpu)
    if hc.get("CpuRealtimePeriod") or hc.get("CpuRealtimeRuntime"):
        from forklift.engine import extraflags

        extraflags.resources(res.setdefault("cpu", {}), hc)
    block: dict[str, Any] = {}
    if hc.get("BlkioWeight"):
        block["weight"] = hc["BlkioWeight"]
    if hc.get("BlkioWeightDevice"):
        block["weightDevice"] = [{**_block_device(d["Path"]), "weight": d["Weight"]}
                                 for d in hc["BlkioWeightDevice"]]
    for key, name in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                      ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                      ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                      ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        if hc.get(key):
            block[name] = [{**_block_device(d["Path"]), "rate": d["Rate"]} for d in hc[key]]
    if block:
        res["blockIO"] = block


def config(flags: RunFlags, cfg: dict[str, Any]) -> None:
    """Config entries of these flags (``Domainname``, ``StopTimeout``, the ``Attach*``
    of ``-a``), set in ``cfg``."""
    if flags.attach:
        streams = {a.lower() for a in flags.attach}
        if not streams <= {"stdin", "stdout", "stderr"}:
            bad = next(a for a in flags.attach if a.lower() not in ("stdin", "stdout", "stderr"))
            raise InvalidArgument(f'invalid argument "{bad}" for "-a, --attach" flag: valid'
                                  " streams are STDIN, STDOUT and STDERR")
        cfg.update(AttachStdin="stdin" in streams, AttachStdout="stdout" in streams,
                   AttachStderr="stderr" in streams)
    if flags.sig_proxy is False:
        raise InvalidArgument("--sig-proxy=false is not supported: a foreground container"
                              " lives as long as its forklift process")
    if flags.detach_keys is not None:
        _detach_keys(flags.detach_keys)
    if flags.domainname is not None:
        cfg["Domainname"] = flags.domainname
    if flags.stop_timeout is not None:
        cfg["StopTimeout"] = flags.stop_timeout
    if flags.mac_address:
        from forklift.engine import extraflags

        extraflags.config(flags, cfg)


def _detach_keys(text: str) -> None:
    """Docker's term.ToBytes format is checked; detaching itself is not implemented."""
    for key in text.split(","):
        ok = len(key) == 1 or (key.startswith("ctrl-") and len(key) == 6
                                and (key[5].isalpha() or key[5] in "@[\\]^_"))
        if not ok:
            raise InvalidArgument(f"Invalid detach keys ({text}) provided")
    raise InvalidArgument("--detach-keys is not supported: forklift cannot detach from a"
                          " container it runs in the foreground")


def resolv_conf(text: str, search: list[str] | None, options: list[str] | None) -> str:
    """resolv.conf with ``search``/``options`` lines replaced as Docker replaces them."""
    lines = text.splitlines()
    if search:
        lines = [ln for ln in lines if not ln.startswith(("search ", "domain "))]
        if search != ["."]:
            lines.append("search " + " ".join(d for d in search if d != "."))
    if options:
        lines = [ln for ln in lines if not ln.startswith("options ")]
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def apply(store: Store, spec: dict[str, Any], cfg: dict[str, Any], hc: dict[str, Any],
          rootfs: str) -> None:
    """Put these flags' settings into the container's OCI ``spec`` (its root at ``rootfs``)."""
    _devices(spec, hc)
    _namespaces(store, spec, hc, os.path.basename(os.path.dirname(rootfs)))
    if hc.get("ShmSize"):
        for m in spec["mounts"]:
            if m["destination"] == "/dev/shm" and m["type"] == "tmpfs":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")]
                m["options"].append(f"size={hc['ShmSize'] // 1024}k")
    sysctl = dict(hc.get("Sysctls") or {})
    if cfg.get("Domainname") and hc.get("UTSMode") != "host":  # as Docker sets it: runc 1.1 ignores the spec's domainname
        sysctl["kernel.domainname"] = cfg["Domainname"]
    if sysctl:
        spec["linux"]["sysctl"] = sysctl
    resources(spec["linux"]["resources"], hc)
    if hc.get("OomScoreAdj"):
        spec["process"]["oomScoreAdj"] = hc["OomScoreAdj"]
    if hc.get("GroupAdd"):
        from forklift.runtime.user import find_gid

        gids = spec["process"]["user"].setdefault("additionalGids", [])
        for group in hc["GroupAdd"]:
            gid = find_gid(rootfs, group)
            if gid not in gids:
                gids.append(gid)

