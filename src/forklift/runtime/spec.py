"""Generate the OCI runtime spec (config.json) with Docker's defaults.

The values mirror moby's ``oci/defaults.go`` and runc's ``runc spec`` so a
program sees the same environment under forklift as under ``docker run``:
same capabilities, same /dev, /proc and /sys, same masked paths.
"""

from __future__ import annotations

import os
import resource

from forklift.errors import InvalidArgument
from forklift.fastjson import dumps

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"

# a process's PATH when its image sets none (Docker's)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby oci/caps/defaults.go DefaultCapabilities().
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]

READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]

# Docker sets a high open-files limit; clamp_rlimits brings it down to what the host allows.
DEFAULT_RLIMITS: dict[str, tuple[int, int]] = {"RLIMIT_NOFILE": (1048576, 1048576)}

# OCI encodes "unlimited" as the largest uint64.
RLIM_INFINITY_OCI = 2**64 - 1


class ProcessConfig:
    """The container's process. (Plain slotted classes here, not dataclasses: each
    @dataclass costs ~1 ms of import time, and this module is on the `run` hot path.)"""

    __slots__ = ("args", "env", "cwd", "uid", "gid", "additional_gids", "terminal",
                 "no_new_privileges", "capabilities")

    def __init__(self, args: list[str], env: list[str], cwd: str, uid: int, gid: int,
                 additional_gids: list[int] | None = None, terminal: bool = False,
                 no_new_privileges: bool = False, capabilities: list[str] | None = None) -> None:
        self.args, self.env, self.cwd, self.uid, self.gid = args, env, cwd, uid, gid
        self.additional_gids = list(additional_gids or [])
        self.terminal = terminal
        self.no_new_privileges = no_new_privileges
        self.capabilities = capabilities  # None: Docker's default set


class MountSpec:
    """One mount of the spec besides the defaults (/proc, /dev, /sys…)."""

    __slots__ = ("destination", "source", "type", "options")

    def __init__(self, destination: str, source: str, type: str = "bind",
                 options: list[str] | None = None) -> None:
        self.destination, self.source, self.type = destination, source, type
        self.options = list(options or [])

    def __repr__(self) -> str:
        return f"MountSpec({self.destination!r}, {self.source!r}, {self.type!r}, {self.options!r})"


def _default_mounts() -> list[dict[str, Any]]:
    def m(dest: str, typ: str, src: str, opts: list[str]) -> dict[str, Any]:
        return {"destination": dest, "type": typ, "source": src, "options": opts}

    return [
        m("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        m("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        m("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        m("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        m("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        m("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]


def _with_defaults(extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The default mounts, less those a container's own mount replaces (a tmpfs of another
    size at /dev/shm), as Docker drops them: stacked, both would show in /proc/mounts."""
    taken = {m["destination"] for m in extra}
    return [m for m in _default_mounts() if m["destination"] not in taken] + extra


def _device_rules() -> list[dict[str, Any]]:
    def allow(typ: str, major: int | None, minor: int | None, access: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"allow": True, "type": typ, "access": access}
        if major is not None:  # omitted major/minor mean "any" (*)
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        return rule

    return [
        {"allow": False, "access": "rwm"},
        allow("c", None, None, "m"),
        allow("b", None, None, "m"),
        allow("c", 1, 3, "rwm"),  # null
        allow("c", 1, 5, "rwm"),  # zero
        allow("c", 1, 7, "rwm"),  # full
        allow("c", 1, 8, "rwm"),  # random
        allow("c", 1, 9, "rwm"),  # urandom
        allow("c", 5, 0, "rwm"),  # tty
        allow("c", 5, 2, "rwm"),  # ptmx
        allow("c", 136, None, "rwm"),  # pts/*
    ]


def rlimit_name(name: str) -> str:
    """``nofile`` or ``RLIMIT_NOFILE`` as the OCI name; InvalidArgument for an unknown one."""
    upper = name.upper()
    full = upper if upper.startswith("RLIMIT_") else "RLIMIT_" + upper
    if not hasattr(resource, full):
        raise InvalidArgument(f"invalid ulimit type: {name}")
    return full


def _host_hard_limit(name: str) -> int | None:
    """The host's hard limit for ``name``, None when unlimited."""
    _, hard = resource.getrlimit(getattr(resource, name))
    return None if hard == resource.RLIM_INFINITY else hard


def _as_oci(value: int) -> int:
    # -1 is how Python (and users) write "unlimited".
    return RLIM_INFINITY_OCI if value < 0 else value


def clamp_rlimits(rlimits: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Clamp each (soft, hard) to the host's hard limit, keeping soft <= hard.

    runc sets rlimits with setrlimit(2) inside the container; asking for more
    than the host grants fails the whole container with EPERM. Docker clamps
    too; Podman does not and fails. Names may be "nofile" or "RLIMIT_NOFILE";
    the result uses the OCI names, with -1 (unlimited) as the uint64 maximum.
    """
    out: dict[str, tuple[int, int]] = {}
    for name, (soft, hard) in rlimits.items():
        full = rlimit_name(name)
        soft, hard = _as_oci(soft), _as_oci(hard)
        host = _host_hard_limit(full)
        if host is not None:
            hard = min(hard, host)
        out[full] = (min(soft, hard), hard)
    return out


def _capabilities(process: ProcessConfig) -> dict[str, list[str]]:
    caps = list(DEFAULT_CAPABILITIES if process.capabilities is None else process.capabilities)
    # A non-root process loses effective/permitted caps at execve anyway; Docker
    # leaves them empty so the spec says what the process really gets.
    active = caps if process.uid == 0 else []
    return {
        "bounding": caps,
        "effective": list(active),
        "permitted": list(active),
        "inheritable": [],
        "ambient": [],
    }


def process_spec(process: ProcessConfig,
                 rlimits: dict[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    """The spec's ``process`` object (also runc exec's process.json): Docker's default
    rlimits overridden by ``rlimits``, all clamped to the host's hard limits."""
    wanted = dict(DEFAULT_RLIMITS)
    for name, value in (rlimits or {}).items():
        wanted[rlimit_name(name)] = value
    clamped = clamp_rlimits(wanted)
    return {
        "terminal": process.terminal,
        "user": {
            "uid": process.uid,
            "gid": process.gid,
            "additionalGids": list(process.additional_gids),
        },
        "args": list(process.args),
        "env": list(process.env),
        "cwd": process.cwd or "/",
        "capabilities": _capabilities(process),
        "rlimits": [{"type": k, "hard": h, "soft": s} for k, (s, h) in clamped.items()],
        "noNewPrivileges": process.no_new_privileges,
        "oomScoreAdj": 0,
    }


def _mount_entry(m: MountSpec) -> dict[str, Any]:
    options = list(m.options)
    # runc only bind-mounts when the options say so; a bare type "bind" would
    # be passed to mount(2) as a filesystem type and fail.
    if m.type == "bind" and "bind" not in options and "rbind" not in options:
        options.insert(0, "rbind")
    return {"destination": m.destination, "type": m.type, "source": m.source, "options": options}


def _namespaces(network: str, netns_path: str | None = None) -> list[dict[str, str]]:
    kinds = ["pid", "ipc", "uts", "mount"]
    out = [{"type": k} for k in kinds]
    if network != "host":
        # A fresh netns has only lo (--network none); a path joins one prepared
        # beforehand (bridge networks, set up through CNI).
        out.append({"type": "network", "path": netns_path} if netns_path else {"type": "network"})
    return out


def build_spec(
    *,
    rootfs: str,
    process: ProcessConfig,
    hostname: str,
    readonly_rootfs: bool,
    mounts: list[MountSpec],
    network: str,
    cgroups_path: str,
    rlimits: dict[str, tuple[int, int]] | None = None,
    annotations: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
    netns_path: str | None = None,
    privileged: bool = False,
    seccomp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the OCI runtime spec for one container, as a JSON-ready dict.

    ``privileged`` lifts the masked and read-only paths and the device
    restrictions, as ``docker run --privileged`` does; ``seccomp`` is the
    ``linux.seccomp`` object (None: no filter).
    """
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process_spec(process, rlimits),
        "root": {"path": rootfs, "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": _with_defaults([_mount_entry(m) for m in mounts]),
        "linux": {
            "resources": {"devices": _device_rules(), **(resources or {})},
            "cgroupsPath": cgroups_path,
            "namespaces": _namespaces(network, netns_path),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if seccomp:
        spec["linux"]["seccomp"] = seccomp
    if privileged:
        _privilege(spec)
    if annotations:
        spec["annotations"] = dict(annotations)
    return spec


def _privilege(spec: dict[str, Any]) -> None:
    linux = spec["linux"]
    linux["maskedPaths"], linux["readonlyPaths"] = [], []
    linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    for mount in spec["mounts"]:
        if mount["destination"] in ("/sys", "/sys/fs/cgroup"):
            mount["options"] = [o for o in mount["options"] if o != "ro"] + ["rw"]


def write_bundle(bundle_dir: str, spec: dict[str, Any]) -> str:
    """Write ``config.json`` into ``bundle_dir`` atomically; return its path."""
    os.makedirs(bundle_dir, exist_ok=True)
    path = os.path.join(bundle_dir, "config.json")
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        # dumps, not dump: dump always takes json's pure-Python encoder (~1 ms here)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(dumps(spec, separators=(",", ":")))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
