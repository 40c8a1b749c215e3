"""A container's OCI runtime spec, from its Config and HostConfig: its process (see
`forklift.engine.process`), mounts, resources, namespaces and security settings."""

from __future__ import annotations

import os

from forklift.engine import hostconfig, mounts, security
from forklift.engine.process import process_env, ulimits
from forklift.runtime import spec as spec_mod
from forklift.runtime.fsutil import secure_join
from forklift.runtime.user import resolve_user
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

# Docker's path for the init of ``--init``, bound read-only from the host
INIT_PATH = "/sbin/docker-init"
# HostConfig entries of forklift.engine.runflags (applied to the spec by it)
runflags_keys = ("ShmSize", "Sysctls", "GroupAdd", "OomKillDisable", "OomScoreAdj",
                 "MemoryReservation", "MemorySwappiness", "CpuPeriod", "CpuQuota", "CpusetMems",
                 "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                 "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "Devices", "DeviceCgroupRules",
                 "PidMode", "IpcMode", "UTSMode", "CgroupnsMode", "CpuRealtimePeriod",
                 "CpuRealtimeRuntime")
_RESOURCE_KEYS = ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
                  "Ulimits")


def spec(store: Store, rec: ContainerRecord, merged: str, paths: dict[str, str],
         netns_path: str | None = None) -> dict[str, Any]:
    """The container's OCI runtime spec, its root filesystem mounted at ``merged``.
    Prepares its mounts (`mounts.specs`: volumes are created and attached)."""
    cfg = rec.config
    hc = rec.host_config
    uid, gid, groups, home = resolve_user(merged, cfg.get("User") or "")
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if hc.get("Init"):
        args = [INIT_PATH, "--", *args]
    process = spec_mod.ProcessConfig(
        args=args, env=process_env(cfg, home), cwd=cfg.get("WorkingDir") or "/",
        uid=uid, gid=gid, additional_gids=groups, terminal=bool(cfg.get("Tty")),
        no_new_privileges=security.no_new_privileges(hc),
        capabilities=security.capabilities(hc))
    resources: dict[str, Any] | None = None
    rlimits: dict[str, tuple[int, int]] | None = None
    if any(hc.get(k) for k in _RESOURCE_KEYS):
        resources, rlimits = hostconfig.resources(hc), ulimits(hc)
    network = hc.get("NetworkMode", "bridge")
    out = spec_mod.build_spec(
        rootfs=merged, process=process, hostname=cfg.get("Hostname") or rec.id[:12],
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        mounts=mounts.specs(store, rec, merged, paths) + _init_mount(hc),
        network="none" if network != "host" else "host",
        cgroups_path=f"/forklift/{rec.id}", resources=resources, rlimits=rlimits,
        netns_path=netns_path, privileged=bool(hc.get("Privileged")),
        seccomp=security.seccomp_profile(hc))
    if cfg.get("Domainname") or any(k in hc for k in runflags_keys):
        from forklift.engine import runflags  # the rarer flags: off the hot path

        runflags.apply(store, out, cfg, hc, merged)
    return out


def _init_mount(hc: dict[str, Any]) -> list[spec_mod.MountSpec]:
    """``--init``: the host's static tini (it must run in any image, with or without a
    libc) at Docker's path."""
    if not hc.get("Init"):
        return []
    from forklift import programs

    return [spec_mod.MountSpec(INIT_PATH, programs.find("tini-static"), "bind",
                               ["rbind", "rprivate", "ro"])]


def ensure_workdir(merged: str, workdir: str | None) -> None:
    """Docker creates a missing working directory; do it inside the rootfs, safely."""
    if not workdir or workdir == "/":
        return
    os.makedirs(secure_join(merged, workdir), mode=0o755, exist_ok=True)
