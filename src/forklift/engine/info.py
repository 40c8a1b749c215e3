"""``info``: Docker's ``SystemInfo`` (Engine API 1.41) for this host and this store.

Every value is read when asked (the store's counts, /proc, /sys/fs/cgroup, the mount table,
the registries config); nothing is cached in the store. The only program run is runc
(``--version``, as ``version`` runs it). forklift has no daemon: the "server" is the
process answering, so per-daemon figures (file descriptors, goroutines as threads) are its
own."""

from __future__ import annotations

import ctypes
import os
import platform
import threading
import time
from typing import Any

from forklift import programs, runtime
from forklift.engine import version as version_mod
from forklift.engine.hostconfig import CGROUP_V1, cgroup_v2, read_setting
from forklift.errors import ForkliftError, MissingProgram
from forklift.store import containers as container_store
from forklift.store.db import Store

INDEX_SERVER = "https://index.docker.io/v1/"
NETWORK_DRIVERS = ["bridge", "host", "null"]
LOG_DRIVERS = ["json-file", "local"]
# Docker's names of backing filesystems, by the mount table's type
_FS_NAMES = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}


def info(store: Store) -> dict[str, Any]:
    """Docker's ``info`` document, its keys in Docker's order (with the CLI's
    ``ClientInfo``). Reads only."""
    counts = _container_counts(store)
    cgroup = _cgroup_features()
    os_name, os_version = _os_release()
    runc = version_mod.runc_version()
    doc: dict[str, Any] = {
        "ID": _engine_id(store.root), **counts, "Images": _count(store, "images"),
        "Driver": "overlay2", "DriverStatus": _driver_status(store),
        "Plugins": {"Volume": ["local"], "Network": NETWORK_DRIVERS, "Authorization": None,
                    "Log": LOG_DRIVERS},
        **{k: v for k, v in cgroup.items() if k not in ("CgroupVersion", "OomKillDisable")},
        "IPv4Forwarding": read_setting("/proc/sys/net/ipv4/ip_forward") == "1",
        "BridgeNfIptables": read_setting("/proc/sys/net/bridge/bridge-nf-call-iptables") == "1",
        "BridgeNfIp6tables": read_setting("/proc/sys/net/bridge/bridge-nf-call-ip6tables") == "1",
        "Debug": False, "NFd": _open_fds(), "OomKillDisable": cgroup["OomKillDisable"],
        "NGoroutines": threading.active_count(), "SystemTime": _now(),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup["CgroupVersion"], "NEventsListener": 0,
        "KernelVersion": os.uname().release, "OperatingSystem": os_name,
        "OSVersion": os_version, "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": INDEX_SERVER, "RegistryConfig": _registry_config(),
        "NCPU": len(os.sched_getaffinity(0)), "MemTotal": _mem_total(),
        "GenericResources": None, "DockerRootDir": store.root,
        **_proxies(), "Name": os.uname().nodename, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": version_mod.own_version(),
        "Runtimes": _runtimes(), "DefaultRuntime": runtime.DEFAULT,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        # containers outlive every forklift process: nothing to restore them from
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": _init_binary(),
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": _commit(runc["GitCommit"] if runc else ""),
        "InitCommit": _commit(_tini_version()),
        "SecurityOptions": _security_options(cgroup["CgroupVersion"]),
    }
    doc["Warnings"] = _warnings(doc) or None
    doc["ClientInfo"] = {"Debug": False, "Context": "default", "Plugins": [], "Warnings": None}
    return doc


def _count(store: Store, table: str) -> int:
    return int(store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _container_counts(store: Store) -> dict[str, int]:
    """Docker's split: running, paused, and every other state as stopped."""
    states = [rec.effective_state() for rec in container_store.all_containers(store)]
    running = sum(1 for s in states if s == "running")
    paused = sum(1 for s in states if s == "paused")
    return {"Containers": len(states), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": len(states) - running - paused}


def _engine_id(root: str) -> str:
    """A stable ID in Docker's form (12 groups of 4 base32 characters) for this machine's
    store at ``root``; nothing is stored for it."""
    import base64
    import hashlib

    seed = f"{read_setting('/etc/machine-id')}\0{os.path.realpath(root)}".encode()
    text = base64.b32encode(hashlib.sha256(seed).digest()).decode()[:48]
    return ":".join(text[i:i + 4] for i in range(0, 48, 4))


# ----------------------------------------------------------------------------- storage

def _driver_status(store: Store) -> list[list[str]]:
    """overlay2's details for the store's filesystem, and forklift's own layer count."""
    redirect = read_setting("/sys/module/overlay/parameters/redirect_dir")
    return [["Backing Filesystem", _backing_fs(store.root)],
            ["Supports d_type", str(_supports_d_type(store.root)).lower()],
            ["Native Overlay Diff", str(redirect not in ("Y", "y", "on")).lower()],
            ["userxattr", "false"],
            ["Layers", str(_count(store, "layers"))]]


def _backing_fs(path: str) -> str:
    """The type of the mount holding ``path`` (by device number, from the mount table)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    best, fstype = "", "unknown"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                sep = fields.index("-")
                point = fields[4]
                if fields[2] == dev and len(point) >= len(best):
                    best, fstype = point, fields[sep + 1]
    except (OSError, ValueError, IndexError):
        pass
    return _FS_NAMES.get(fstype, fstype)


class _Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


def _supports_d_type(path: str) -> bool:
    """Whether the filesystem fills in directory entries' types (overlayfs needs them):
    no entry of ``path`` may come back as DT_UNKNOWN."""
    libc = ctypes.CDLL(None, use_errno=True)   # find_library would run ldconfig
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.POINTER(_Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    handle = libc.opendir(os.fsencode(path))
    if not handle:
        return False
    try:
        while entry := libc.readdir(handle):
            if entry.contents.d_type == 0:
                return False
        return True
    finally:
        libc.closedir(handle)


# ----------------------------------------------------------------------------- cgroups

def _cgroup_features() -> dict[str, Any]:
    """What the cgroup hierarchy lets ``run`` limit, as Docker's sysinfo probes it."""
    if cgroup_v2():
        return _cgroup_v2_features()
    def has(controller: str, name: str) -> bool:
        return os.path.exists(os.path.join(CGROUP_V1, controller, name))
    return {"MemoryLimit": has("memory", "memory.limit_in_bytes"),
            "SwapLimit": has("memory", "memory.memsw.limit_in_bytes"),
            "KernelMemory": has("memory", "memory.kmem.limit_in_bytes"),
            "KernelMemoryTCP": has("memory", "memory.kmem.tcp.limit_in_bytes"),
            "CpuCfsPeriod": has("cpu", "cpu.cfs_period_us"),
            "CpuCfsQuota": has("cpu", "cpu.cfs_quota_us"),
            "CPUShares": has("cpu", "cpu.shares"), "CPUSet": has("cpuset", "cpuset.cpus"),
            "PidsLimit": has("pids", ""),
            "OomKillDisable": has("memory", "memory.oom_control"), "CgroupVersion": "1"}


def _cgroup_v2_features() -> dict[str, Any]:
    controllers = set(read_setting(os.path.join(CGROUP_V1, "cgroup.subtree_control")).split()
                      or read_setting(os.path.join(CGROUP_V1, "cgroup.controllers")).split())
    memory, cpu = "memory" in controllers, "cpu" in controllers
    return {"MemoryLimit": memory, "SwapLimit": memory, "KernelMemory": False,
            "KernelMemoryTCP": False, "CpuCfsPeriod": cpu, "CpuCfsQuota": cpu,
            "CPUShares": cpu, "CPUSet": "cpuset" in controllers,
            "PidsLimit": "pids" in controllers, "OomKillDisable": False, "CgroupVersion": "2"}


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _now() -> str:
    """Now in RFC 3339 with nanoseconds, as Go marshals a time."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) \
        + f".{ns % 10**9:09d}".rstrip("0").rstrip(".") + "Z"


def _os_release() -> tuple[str, str]:
    values: dict[str, str] = {}
    for line in (read_setting("/etc/os-release") or read_setting("/usr/lib/os-release")).splitlines():
        key, _, value = line.partition("=")
        values[key] = value.strip().strip('"')
    return values.get("PRETTY_NAME", "Linux"), values.get("VERSION_ID", "")


def _mem_total() -> int:
    for line in read_setting("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# ----------------------------------------------------------------------------- the rest

def _registry_config() -> dict[str, Any]:
    """Docker's RegistryConfig from forklift's insecure-registries setting (loopback is
    always plain-HTTP, as Docker's 127.0.0.0/8)."""
    from forklift.registry import config

    try:
        insecure = sorted(config.insecure_registries())
    except ForkliftError:
        insecure = []
    cidrs = ["127.0.0.0/8", *[n for n in insecure if "/" in n]]
    index = {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True}}
    for name in insecure:
        if "/" not in name:
            index[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [], "InsecureRegistryCIDRs": cidrs,
            "IndexConfigs": index, "Mirrors": []}


def _proxies() -> dict[str, str]:
    """The proxies registry requests go through (httpx reads the same variables)."""
    def env(name: str) -> str:
        return os.environ.get(name) or os.environ.get(name.lower()) or ""
    return {"HttpProxy": env("HTTP_PROXY"), "HttpsProxy": env("HTTPS_PROXY"),
            "NoProxy": env("NO_PROXY")}


def _program(name: str) -> str:
    try:
        return programs.find(name)
    except MissingProgram:
        return ""


def _runtimes() -> dict[str, dict[str, str]]:
    return {name: {"path": _program(name) or name} for name in sorted(runtime.RUNTIMES)}


def _init_binary() -> str:
    return _program("tini-static") or "docker-init"


def _tini_version() -> str:
    """tini's version, read from its binary (no fork): ``tini version 0.19.0`` inside."""
    path = _program("tini-static")
    if not path:
        return ""
    marker = b"tini version "
    try:
        with open(path, "rb") as f:
            data = f.read(8 << 20)
    except OSError:
        return ""
    at = data.find(marker)
    if at < 0:
        return ""
    end = at + len(marker)
    while end < len(data) and data[end:end + 1] not in (b"\0", b" ", b"\n", b"-"):
        end += 1
    return data[at + len(marker):end].decode(errors="replace")


def _commit(found: str) -> dict[str, str]:
    """Docker's ``Commit``: what runs, and what was expected (the same: no daemon to
    have been built against another)."""
    return {"ID": found, "Expected": found}


def _security_options(cgroup_version: str) -> list[str]:
    options = ["name=seccomp,profile=default"]
    if cgroup_version == "2":
        options.append("name=cgroupns")
    return options


def _warnings(doc: dict[str, Any]) -> list[str]:
    """Docker's warnings about limits this host cannot enforce."""
    checks = [("MemoryLimit", "No memory limit support"), ("SwapLimit", "No swap limit support"),
              ("CpuCfsQuota", "No cpu cfs quota support"),
              ("CpuCfsPeriod", "No cpu cfs period support"),
              ("CPUShares", "No cpu shares support"), ("CPUSet", "No cpuset support")]
    warnings = [f"WARNING: {text}" for key, text in checks if not doc[key]]
    if not doc["IPv4Forwarding"]:
        warnings.append("WARNING: IPv4 forwarding is disabled")
    return warnings
