"""The last ``run``/``create`` flags of Docker 20.10 (issue 13), those that depend on what
this host has: real-time CPU scheduling (``--cpu-rt-period/--cpu-rt-runtime``), GPUs
(``--gpus``), isolation technologies (``--isolation``), kernel memory accounting
(``--kernel-memory``), quota-capable storage (``--storage-opt``), user namespace
remapping (``--userns``), volume plugins (``--volume-driver``), IPv6 networks
(``--ip6``), and the container's MAC and link-local addresses (``--mac-address``,
``--link-local-ip``).

Each is accepted where Docker 20.10 accepts it and stored where its inspect shows it, or
refused before anything is created with a line that says why it cannot work here.
Called by `forklift.engine.runflags` only when one of them is given.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any

from forklift.errors import InvalidArgument

# ``flags`` below is a forklift.engine.runflags.RunFlags, which imports this module: it is
# not imported here, not even for its type (the layering test forbids the cycle)
RunFlags = Any

CGROUP = "/sys/fs/cgroup"
# runc puts every container's cgroup under this parent (engine/bundle's cgroups_path)
PARENT = "forklift"
KERNEL_MEMORY_WARNING = ("WARNING: Specifying a kernel memory limit is deprecated and will be"
                         " removed in a future release.")
_MAC = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")
_DEFAULT_NETWORKS = ("bridge", "default", "host", "none")


def host_config(flags: RunFlags, network: str) -> dict[str, Any]:
    """The HostConfig entries of these flags, or InvalidArgument (Docker's words where it
    refuses them too, ours where only this host cannot)."""
    hc: dict[str, Any] = {}
    if flags.gpus:  # what dockerd says without the NVIDIA hook: no driver for them
        raise InvalidArgument('could not select device driver "" with capabilities: [[gpu]]')
    if flags.isolation is not None and flags.isolation not in ("", "default"):
        raise InvalidArgument(f'Invalid isolation: "{flags.isolation}" - linux only supports'
                              " 'default'")
    if flags.isolation:
        hc["Isolation"] = flags.isolation
    if flags.storage_opts:
        _storage_opts(flags.storage_opts)
    if flags.userns is not None and flags.userns not in ("", "host"):
        raise InvalidArgument("--userns: invalid USER mode")
    if flags.userns:
        hc["UsernsMode"] = flags.userns
    if flags.volume_driver and flags.volume_driver != "local":
        raise InvalidArgument(f"--volume-driver {flags.volume_driver}: forklift has no volume"
                              " plugins, only the local driver")
    if flags.volume_driver:
        hc["VolumeDriver"] = flags.volume_driver
    if flags.kernel_memory:
        hc["KernelMemory"] = kernel_memory(flags.kernel_memory)
    hc.update(_realtime(flags.cpu_rt_period or 0, flags.cpu_rt_runtime or 0))
    if flags.ip6:
        _ip6(flags.ip6, network)
    if flags.mac_address and network == "host":
        raise InvalidArgument("conflicting options: mac-address and the network mode")
    if flags.link_local_ips:
        hc["LinkLocalIPs"] = [_link_local(ip) for ip in flags.link_local_ips]
    return hc


def config(flags: RunFlags, cfg: dict[str, Any]) -> None:
    """``--mac-address``: Config.MacAddress, as Docker 20.10 keeps it."""
    if flags.mac_address:
        if not _MAC.fullmatch(flags.mac_address):
            raise InvalidArgument(f"{flags.mac_address} is not a valid mac address")
        cfg["MacAddress"] = flags.mac_address


def kernel_memory(text: str) -> int:
    """``--kernel-memory``: stored and ignored, as Docker 20.10 does on a kernel whose
    cgroup has no kmem limit any more (it warns: `KERNEL_MEMORY_WARNING`)."""
    from forklift.engine.hostconfig import parse_bytes

    value = parse_bytes(text)
    if value and value < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum kernel memory limit allowed is 6MB")
    return value


def warnings(flags: RunFlags | None) -> list[str]:
    """The warnings Docker prints for a create with these flags (after checking them)."""
    if flags is None or not flags.kernel_memory or not kernel_memory(flags.kernel_memory):
        return []
    return [KERNEL_MEMORY_WARNING]


def _storage_opts(opts: list[str]) -> None:
    for opt in opts:
        if "=" not in opt:
            raise InvalidArgument("invalid storage option")
    # forklift's overlay mounts have no project quota, like Docker's overlay2 off xfs
    raise InvalidArgument("--storage-opt is supported only for overlay over xfs with 'pquota'"
                          " mount option")


def _realtime(period: int, runtime: int) -> dict[str, int]:
    if not period and not runtime:
        return {}
    if not os.path.exists(_rt_file("")):
        raise InvalidArgument("Your kernel does not support CPU real-time scheduler")
    if period and runtime > period:
        raise InvalidArgument("cpu real-time runtime cannot be higher than cpu real-time period")
    if runtime:
        budget = _rt_budget()
        if runtime > budget:
            raise InvalidArgument(
                f"--cpu-rt-runtime {runtime}: the parent cgroup /{PARENT} has a real-time"
                f" budget of {budget} µs (cpu.rt_runtime_us) and forklift, having no daemon,"
                " does not raise it as dockerd's --cpu-rt-runtime does")
    hc = {}
    if period:
        hc["CpuRealtimePeriod"] = period
    if runtime:
        hc["CpuRealtimeRuntime"] = runtime
    return hc


def _rt_file(parent: str) -> str:
    """cgroup v1's cpu.rt_runtime_us (real-time group scheduling: absent on cgroup v2
    and on kernels built without CONFIG_RT_GROUP_SCHED)."""
    return os.path.join(CGROUP, "cpu", parent, "cpu.rt_runtime_us")


def _rt_budget() -> int:
    try:
        with open(_rt_file(PARENT)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 0  # a parent runc creates starts with no real-time budget


def _ip6(text: str, network: str) -> None:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv6 address: {text}") from None
    if network in _DEFAULT_NETWORKS:
        raise InvalidArgument("user specified IP address is supported on user defined networks"
                              " only")
    raise InvalidArgument("--ip6 is not supported: forklift's networks have no IPv6 subnet")


def _link_local(text: str) -> str:
    """An address added to the container's interface on a bridge network (kept, and with
    nothing to add it to, as Docker keeps it, on ``host`` and ``none``)."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid link-local IP address: {text}") from None
    if addr.version == 6:
        raise InvalidArgument(f"--link-local-ip {text}: forklift's networks have no IPv6")
    return str(addr)


def resources(cpu: dict[str, Any], hc: dict[str, Any]) -> None:
    """The real-time settings in the spec's ``linux.resources.cpu`` (runc's names)."""
    if hc.get("CpuRealtimePeriod"):
        cpu["realtimePeriod"] = hc["CpuRealtimePeriod"]
    if hc.get("CpuRealtimeRuntime"):
        cpu["realtimeRuntime"] = hc["CpuRealtimeRuntime"]
