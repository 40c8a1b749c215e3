"""The rarer ``run``/``create`` flags of Docker 20.10 (issue 13): ``--cidfile``,
``--label-file``, ``--stop-timeout``, ``--shm-size``, ``--sysctl``, ``--dns-search``,
``--dns-option``, ``--domainname``, ``--group-add``.

`validate` refuses a bad value in Docker's words before anything is created;
`host_config` gives their HostConfig entries (Docker's names and shapes); `apply` puts
them into the OCI spec at start. Kept apart from `forklift.engine.hostconfig` so a plain
``run --rm IMAGE true`` does not pay for them (nothing here runs unless a flag is set).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import Conflict, InvalidArgument

DEFAULT_SHM_SIZE = 64 * 1024 * 1024  # Docker's default /dev/shm

# Docker's opts.ValidateSysctl: only sysctls that live in a namespace of the container.
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
_DOMAIN = re.compile(r"^(:?(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$")


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

    def any(self) -> bool:
        return any(v not in (None, []) for v in vars(self).values())


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
    if len(domain) > 255 or not _DOMAIN.match(domain):
        raise InvalidArgument(f'invalid argument "{domain}" for "--dns-search" flag:'
                              f" {domain} is not a valid domain")
    return domain


def host_config(flags: RunFlags, network: str) -> dict[str, Any]:
    """The HostConfig entries of these flags; InvalidArgument in Docker's words."""
    from forklift.engine.hostconfig import parse_bytes

    hc: dict[str, Any] = {}
    if flags.shm_size:
        try:
            size = parse_bytes(flags.shm_size)
        except InvalidArgument as exc:
            raise InvalidArgument(f'invalid argument "{flags.shm_size}" for "--shm-size" flag:'
                                  f" {exc.message}") from None
        hc["ShmSize"] = size or DEFAULT_SHM_SIZE
    if flags.sysctls:
        hc["Sysctls"] = dict(_sysctl(s, network) for s in flags.sysctls)
    if flags.dns_search:
        hc["DnsSearch"] = [_dns_search(d) for d in flags.dns_search]
    if flags.dns_options:
        hc["DnsOptions"] = list(flags.dns_options)
    if flags.group_add:
        hc["GroupAdd"] = list(flags.group_add)
    return hc


def config(flags: RunFlags, cfg: dict[str, Any]) -> None:
    """Config entries of these flags (``Domainname``, ``StopTimeout``), set in ``cfg``."""
    if flags.domainname is not None:
        cfg["Domainname"] = flags.domainname
    if flags.stop_timeout is not None:
        cfg["StopTimeout"] = flags.stop_timeout


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


def apply(spec: dict[str, Any], cfg: dict[str, Any], hc: dict[str, Any], rootfs: str) -> None:
    """Put these flags' settings into the container's OCI ``spec`` (its root at ``rootfs``)."""
    if hc.get("ShmSize"):
        for m in spec["mounts"]:
            if m["destination"] == "/dev/shm" and m["type"] == "tmpfs":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")]
                m["options"].append(f"size={hc['ShmSize'] // 1024}k")
    sysctl = dict(hc.get("Sysctls") or {})
    if cfg.get("Domainname"):  # as Docker sets it: runc 1.1 ignores the spec's domainname
        sysctl["kernel.domainname"] = cfg["Domainname"]
    if sysctl:
        spec["linux"]["sysctl"] = sysctl
    if hc.get("GroupAdd"):
        from forklift.runtime.user import find_gid

        gids = spec["process"]["user"].setdefault("additionalGids", [])
        for group in hc["GroupAdd"]:
            gid = find_gid(rootfs, group)
            if gid not in gids:
                gids.append(gid)
