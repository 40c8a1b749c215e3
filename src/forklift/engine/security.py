"""Security options: --privileged, --cap-add/--cap-drop, --security-opt.

Validated once at create time into the container's HostConfig (a custom seccomp
profile is read then, as Docker does, so a later change to the file does not
change the container); turned into runtime-spec values at start.
"""

from __future__ import annotations

import json

from forklift.errors import InvalidArgument
from forklift.runtime.seccomp import default_profile
from forklift.runtime.spec import DEFAULT_CAPABILITIES

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

# Every capability of current kernels in bit order, for --privileged and --cap-add ALL.
ALL_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def _cap_name(text: str) -> str:
    name = text.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in ALL_CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {text!r}")
    return name


def host_config(privileged: bool, cap_add: list[str], cap_drop: list[str],
                security_opt: list[str]) -> dict[str, Any]:
    """Validate the flags into Docker's HostConfig fields."""
    for cap in [*cap_add, *cap_drop]:
        _cap_name(cap)  # refused up front; kept as given, as Docker's inspect shows them
    out: dict[str, Any] = {
        "Privileged": privileged,
        "CapAdd": list(cap_add) or None,
        "CapDrop": list(cap_drop) or None,
        "SecurityOpt": None,
    }
    opts = []
    for item in security_opt:
        key, sep, value = item.partition("=") if "=" in item else item.partition(":")
        key = key.strip()
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt: {item!r}")
            opts.append(f"no-new-privileges={'false' if value == 'false' else 'true'}")
        elif key == "seccomp" and sep:
            opts.append(_seccomp_opt(value))
        elif key in ("apparmor", "label") and sep:
            opts.append(f"{key}={value}")  # accepted for compatibility; not applied here
        else:
            raise InvalidArgument(f"invalid --security-opt: {item!r}")
    out["SecurityOpt"] = opts or None
    return out


def _seccomp_opt(value: str) -> str:
    if value in ("unconfined", "builtin"):
        return f"seccomp={value}"
    try:
        with open(value, encoding="utf-8") as f:
            profile = json.load(f)
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({value}) failed: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidArgument(f"decoding seccomp profile ({value}) failed: {exc}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument(f"seccomp profile {value} has no defaultAction")
    return "seccomp=" + json.dumps(profile, separators=(",", ":"))


def _host_capabilities() -> list[str]:
    """The capabilities forklift itself may pass on (its bounding set): a sandboxed
    host can lack some, and asking runc for one of those fails the start."""
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("CapBnd:"))
        bits = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPABILITIES)
    return [cap for i, cap in enumerate(ALL_CAPABILITIES) if bits >> i & 1]


def capabilities(hc: dict[str, Any]) -> list[str] | None:
    """The bounding set for the container; None means Docker's default set."""
    if hc.get("Privileged"):
        return _host_capabilities()
    add = [_cap_name(c) for c in hc.get("CapAdd") or []]
    drop = [_cap_name(c) for c in hc.get("CapDrop") or []]
    if not add and not drop:
        return None
    caps = _host_capabilities() if "ALL" in add else list(DEFAULT_CAPABILITIES)
    caps += [c for c in add if c != "ALL" and c not in caps]
    if "ALL" in drop:
        caps = [c for c in caps if c in add]
    return [c for c in caps if c not in drop]


def _opt(hc: dict[str, Any], key: str) -> str | None:
    for item in hc.get("SecurityOpt") or []:
        k, _, value = item.partition("=")
        if k == key:
            return value
    return None


def no_new_privileges(hc: dict[str, Any]) -> bool:
    """Whether ``--security-opt no-new-privileges`` is set."""
    return _opt(hc, "no-new-privileges") == "true"


def seccomp_profile(hc: dict[str, Any]) -> dict[str, Any] | None:
    """The OCI seccomp object: forklift's default unless unconfined or privileged."""
    value = _opt(hc, "seccomp")
    if value == "unconfined" or (hc.get("Privileged") and value is None):
        return None
    if value and value != "builtin":
        return _to_oci(json.loads(value))
    return default_profile()


def _to_oci(profile: dict[str, Any]) -> dict[str, Any]:
    """Docker's profile format is the OCI one plus archMap/includes/excludes: keep the OCI part."""
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if profile.get("architectures"):
        out["architectures"] = profile["architectures"]
    rules = []
    for rule in profile.get("syscalls") or []:
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names:
            continue
        entry = {"names": names, "action": rule.get("action", "SCMP_ACT_ALLOW")}
        for key in ("args", "errnoRet"):
            if rule.get(key) is not None:
                entry[key] = rule[key]
        rules.append(entry)
    out["syscalls"] = rules
    return out
