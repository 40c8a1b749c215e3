"""A container's inspect document in Docker 20.10's complete shape: every HostConfig key
(65, and the four Docker prints only when set) in Docker's order with its zero value, the
NetworkSettings and endpoint keys Docker prints, and nothing forklift keeps for itself.

The record's HostConfig holds what was given (and forklift's own keys: `INTERNAL`); what
was not given is what the container runs with, which is Docker's default. Docker's
engine, not its CLI, fills some of them in at create time, and so does this:
``MemorySwap`` twice ``Memory``, ``label=disable`` for privileged or host PID/IPC
containers, no masked paths for privileged ones.
"""

from __future__ import annotations

from typing import Any

from forklift.runtime.spec import MASKED_PATHS, READONLY_PATHS

# keys of the record's HostConfig that are forklift's, never Docker's: the networks
# `network connect` added to a stopped container (engine/network) and their aliases,
# --network-alias names
# (shown in NetworkSettings as Docker shows them), the anonymous volume list of old records,
# --link-local-ip and --ip addresses (shown under the endpoint's IPAMConfig), connect's links
INTERNAL = ("ExtraNetworks", "ExtraAliases", "NetworkAliases", "AnonymousVolumes", "LinkLocalIPs",
            "IPv4Address", "ExtraIPs", "ExtraLinks")
_OMITTED = object()  # Go's omitempty: printed only when set
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# Go's HostConfig field order (api/types/container/host_config.go), Resources embedded
HOST_CONFIG: tuple[tuple[str, Any], ...] = (
    ("Binds", None), ("ContainerIDFile", ""),
    ("LogConfig", {"Type": "json-file", "Config": {}}), ("NetworkMode", "default"),
    ("PortBindings", {}), ("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0}),
    ("AutoRemove", False), ("VolumeDriver", ""), ("VolumesFrom", None),
    ("CapAdd", None), ("CapDrop", None), ("CgroupnsMode", "host"),
    ("Dns", []), ("DnsOptions", []), ("DnsSearch", []), ("ExtraHosts", None),
    ("GroupAdd", None), ("IpcMode", "private"), ("Cgroup", ""), ("Links", None),
    ("OomScoreAdj", 0), ("PidMode", ""), ("Privileged", False), ("PublishAllPorts", False),
    ("ReadonlyRootfs", False), ("SecurityOpt", None), ("StorageOpt", _OMITTED),
    ("Tmpfs", _OMITTED), ("UTSMode", ""), ("UsernsMode", ""), ("ShmSize", DEFAULT_SHM_SIZE),
    ("Sysctls", _OMITTED), ("Runtime", "runc"), ("ConsoleSize", [0, 0]), ("Isolation", ""),
    # Resources
    ("CpuShares", 0), ("Memory", 0), ("NanoCpus", 0), ("CgroupParent", ""),
    ("BlkioWeight", 0), ("BlkioWeightDevice", []), ("BlkioDeviceReadBps", None),
    ("BlkioDeviceWriteBps", None), ("BlkioDeviceReadIOps", None),
    ("BlkioDeviceWriteIOps", None), ("CpuPeriod", 0), ("CpuQuota", 0),
    ("CpuRealtimePeriod", 0), ("CpuRealtimeRuntime", 0), ("CpusetCpus", ""),
    ("CpusetMems", ""), ("Devices", []), ("DeviceCgroupRules", None),
    ("DeviceRequests", None), ("KernelMemory", 0), ("KernelMemoryTCP", 0),
    ("MemoryReservation", 0), ("MemorySwap", 0), ("MemorySwappiness", None),
    ("OomKillDisable", False), ("PidsLimit", None), ("Ulimits", None), ("CpuCount", 0),
    ("CpuPercent", 0), ("IOMaximumIOps", 0), ("IOMaximumBandwidth", 0),
    # after Resources
    ("Mounts", _OMITTED), ("MaskedPaths", None), ("ReadonlyPaths", None), ("Init", _OMITTED),
)

NETWORK_SETTINGS: tuple[tuple[str, Any], ...] = (
    ("Bridge", ""), ("SandboxID", ""), ("HairpinMode", False), ("LinkLocalIPv6Address", ""),
    ("LinkLocalIPv6PrefixLen", 0), ("Ports", {}), ("SandboxKey", ""),
    ("SecondaryIPAddresses", None), ("SecondaryIPv6Addresses", None), ("EndpointID", ""),
    ("Gateway", ""), ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0),
    ("IPAddress", ""), ("IPPrefixLen", 0), ("IPv6Gateway", ""), ("MacAddress", ""),
    ("Networks", {}),
)
ENDPOINT: tuple[tuple[str, Any], ...] = (
    ("IPAMConfig", None), ("Links", None), ("Aliases", None), ("NetworkID", ""),
    ("EndpointID", ""), ("Gateway", ""), ("IPAddress", ""), ("IPPrefixLen", 0),
    ("IPv6Gateway", ""), ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0),
    ("MacAddress", ""), ("DriverOpts", None),
)


def _ordered(table: tuple[tuple[str, Any], ...], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` over the table's defaults, in the table's order (copies of the mutable
    defaults, so no caller shares one); keys not in the table follow."""
    out: dict[str, Any] = {}
    for key, default in table:
        if key in given:
            out[key] = given[key]
        elif default is not _OMITTED:
            out[key] = _copy(default) if isinstance(default, (dict, list)) else default
    for key, value in given.items():
        out.setdefault(key, value)
    return out


def host_config(stored: dict[str, Any]) -> dict[str, Any]:
    """Docker's complete HostConfig for a record's ``host_config``."""
    given = {k: v for k, v in stored.items() if k not in INTERNAL}
    if not given.get("Binds"):
        given["Binds"] = None  # Go's nil slice: no -v binds
    if given.get("Memory") and not given.get("MemorySwap"):
        given["MemorySwap"] = 2 * given["Memory"]  # what runs (engine/hostconfig.resources)
    if not given.get("PidsLimit") or given["PidsLimit"] <= 0:
        given["PidsLimit"] = None
    privileged = bool(given.get("Privileged"))
    if privileged or "host" in (given.get("PidMode"), given.get("IpcMode")):
        given["SecurityOpt"] = [*(given.get("SecurityOpt") or []), "label=disable"]
    if given.get("Mounts"):  # Go's mount.Mount leaves its zero values out
        given["Mounts"] = [{k: v for k, v in m.items() if v not in ("", False, None)}
                           for m in given["Mounts"]]
    if given.get("Ulimits"):  # go-units' Ulimit field order
        given["Ulimits"] = [{"Name": u["Name"], "Hard": u["Hard"], "Soft": u["Soft"]}
                            for u in given["Ulimits"]]
    if not privileged:
        given.setdefault("MaskedPaths", list(MASKED_PATHS))
        given.setdefault("ReadonlyPaths", list(READONLY_PATHS))
    return _ordered(HOST_CONFIG, given)


def _copy(value: Any) -> Any:
    """A deep copy of a default (dicts and lists of plain values: no `copy` module)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def network_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Docker's complete NetworkSettings, each of its Networks a complete endpoint."""
    out = _ordered(NETWORK_SETTINGS, settings)
    out["Networks"] = networks(out.get("Networks") or {})
    return out


def networks(given: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings.Networks: each endpoint complete (the API's container listing
    shows these alone)."""
    out = {name: _ordered(ENDPOINT, endpoint or {}) for name, endpoint in given.items()}
    if "bridge" in out:  # names resolve on the default network (/etc/hosts), but
        out["bridge"]["Aliases"] = None  # Docker has aliases on user networks only
    return out
