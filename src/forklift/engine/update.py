"""``update``: change a container's resource limits and restart policy, as Docker's
``update`` does: a running (or paused) container's cgroup is changed live through the
runtime (``runc update``), and every change is stored in its HostConfig, so a stopped
container gets it at its next start (the bundle is written from HostConfig then)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from forklift import runtime
from forklift.engine import events, hostconfig
from forklift.errors import Conflict, InvalidArgument
from forklift.store import containers as container_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

MIN_MEMORY = 6 * 1024 * 1024
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


@dataclass
class UpdateOptions:
    """The flags of ``update``; None: not given (left as it is)."""

    cpus: float | None = None
    cpu_shares: int | None = None
    memory: str | None = None
    memory_swap: str | None = None
    pids_limit: int | None = None
    restart: str | None = None

    def empty(self) -> bool:
        return all(v is None for v in vars(self).values())


def parse_restart(text: str) -> dict[str, Any]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]`` → Docker's RestartPolicy."""
    name, sep, count = text.partition(":")
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if not sep:
        return {"Name": name, "MaximumRetryCount": 0}
    if name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if not re.fullmatch(r"-?\d+", count):
        raise InvalidArgument(f"invalid restart policy format: maximum retry count must be an"
                              f" integer: '{count}'")
    if int(count) < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    return {"Name": name, "MaximumRetryCount": int(count)}


def _memory(hc: dict[str, Any], opts: UpdateOptions) -> None:
    memory = hostconfig.parse_bytes(opts.memory) if opts.memory is not None else None
    if memory is not None and 0 < memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = None
    if opts.memory_swap is not None:
        swap = -1 if opts.memory_swap.strip() == "-1" else hostconfig.parse_bytes(opts.memory_swap)
    limit = memory or hc.get("Memory") or 0
    if swap and not limit:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
    if swap and swap != -1 and swap < limit:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit,"
                              " see usage")
    # Docker's rule: the swap limit in force (twice the memory limit unless set; 0, and so
    # any new memory limit too large, for a container without one) must stay above it
    current_swap = hc.get("MemorySwap") or 2 * (hc.get("Memory") or 0)
    if memory and swap is None:
        if memory > current_swap:
            raise Conflict("Memory limit should be smaller than already set memoryswap limit,"
                           " update the memoryswap at the same time")
        hc["MemorySwap"] = current_swap  # kept, as Docker keeps it
    if memory:
        hc["Memory"] = memory
    if swap:
        hc["MemorySwap"] = swap


def _cpu_and_pids(hc: dict[str, Any], opts: UpdateOptions) -> None:
    if opts.cpus is not None:
        ncpu = os.cpu_count() or 1
        if not 0.01 <= opts.cpus <= ncpu:  # also refuses NaN
            raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only"
                                  f" {ncpu} CPUs available")
        hc["NanoCpus"] = int(opts.cpus * 1e9)
    if opts.cpu_shares is not None and opts.cpu_shares != 0:
        if not hostconfig.MIN_CPU_SHARES <= opts.cpu_shares <= hostconfig.MAX_CPU_SHARES:
            raise InvalidArgument(f"invalid CPU shares {opts.cpu_shares}: must be between"
                                  f" {hostconfig.MIN_CPU_SHARES} and {hostconfig.MAX_CPU_SHARES}")
        hc["CpuShares"] = opts.cpu_shares
    if opts.pids_limit is not None:
        if opts.pids_limit > 0:
            hc["PidsLimit"] = opts.pids_limit
        else:  # zero or negative: unlimited, as in Docker
            hc.pop("PidsLimit", None)


def new_host_config(rec: ContainerRecord, opts: UpdateOptions) -> dict[str, Any]:
    """The container's HostConfig with ``opts`` applied. Raises InvalidArgument (a value
    Docker refuses, no flag at all) or Conflict (with what is set already)."""
    if opts.empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    hc = dict(rec.host_config)
    if opts.restart is not None:
        policy = parse_restart(opts.restart)
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for"
                           " the container")
        hc["RestartPolicy"] = policy
    _memory(hc, opts)
    _cpu_and_pids(hc, opts)
    return hc


def live_resources(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The spec's linux.resources the runtime applies to a running container: the new
    limits, and "unlimited" for a pids limit that was removed."""
    res = hostconfig.resources(new)
    if old.get("PidsLimit") and not new.get("PidsLimit"):
        res["pids"] = {"limit": -1}
    return res


def update(store: Store, name: str, opts: UpdateOptions) -> ContainerRecord:
    """``update`` of one container: validated, applied live if it runs, then stored.
    NotFound, InvalidArgument, Conflict change nothing; a runtime failure (RuntimeFailure)
    leaves the stored HostConfig as it was."""
    rec = container_store.resolve(store, name)
    hc = new_host_config(rec, opts)
    if rec.effective_state().up:
        live = live_resources(rec.host_config, hc)
        if live != hostconfig.resources(rec.host_config):
            runtime.for_container(store.runc_dir, rec.host_config).update(rec.id, live)
    container_store.set_host_config(store, rec.id, hc)
    rec.host_config = hc
    events.container_event(store.root, "update", rec)
    return rec
