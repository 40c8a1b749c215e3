"""HostConfig details beyond the basics: ports, DNS, extra hosts, resource limits and
ulimits (validated at create time as Docker validates them), and what they become at
start: the spec's ``linux.resources`` and rlimits, and the cgroup where OOM kills are
counted. Mounts are `forklift.engine.mounts`'.
"""

from __future__ import annotations

import os
import re

from forklift.errors import InvalidArgument
from forklift.runtime.spec import rlimit_name

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
CGROUP_V1 = "/sys/fs/cgroup"


def parse_bytes(text: str) -> int:
    """``512m``, ``1.5g``, ``100`` (bytes; binary units) as Docker's RAMInBytes reads them."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*", text.lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _port_range(text: str) -> tuple[int, int] | None:
    """Docker's nat.ParsePortRange: ``80`` or ``8000-8010``, each 0..65535."""
    low, sep, high = text.partition("-")
    if not low.isdigit() or (sep and not high.isdigit()):
        return None
    start, end = int(low), int(high) if sep else int(low)
    if start > 65535 or end > 65535 or start > end:
        return None
    return start, end


def _split_port_spec(body: str) -> tuple[str, str, str]:
    """``[ip:][hostPort:]containerPort`` -> (ip, host, container); an IPv6 address in []."""
    if body.startswith("["):
        close = body.find("]")
        if close > 0 and body[close + 1: close + 2] == ":":
            host, _, ctr = body[close + 2:].partition(":")
            return body[1:close], host, ctr
    parts = body.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_port_spec(spec: str) -> tuple[str, list[dict[str, str]]]:
    """``[ip:][hostPort:]containerPort[/proto]`` -> ("80/tcp", [{"HostIp", "HostPort"}]),
    refused as Docker's nat.ParsePortSpec refuses it (before anything is created)."""
    import ipaddress  # only -p needs it: off the path of a plain `run --network none`

    ip, host, ctr = _split_port_spec(spec)
    ctr, _, proto = ctr.partition("/")
    proto = proto or "tcp"
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"Invalid ip address: {ip}") from None
    if not ctr:
        raise InvalidArgument(f"No port specified: {spec}<empty>")
    ctr_range = _port_range(ctr)
    if ctr_range is None:
        raise InvalidArgument(f"Invalid containerPort: {ctr}")
    host_range = _port_range(host) if host else None
    if host and host_range is None:
        raise InvalidArgument(f"Invalid hostPort: {host}")
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"Invalid proto: {proto}")
    if ctr_range[0] != ctr_range[1] or (host_range and host_range[0] != host_range[1]):
        raise InvalidArgument(f"port ranges are not supported yet: '{spec}'")
    if ctr_range[0] == 0:
        raise InvalidArgument(f"Invalid containerPort: {ctr}")
    return f"{ctr_range[0]}/{proto.lower()}", [
        {"HostIp": ip, "HostPort": str(host_range[0]) if host_range else ""}]


def extra(opts: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """HostConfig entries for ports, DNS, hosts, limits and ulimits (``cfg`` may gain
    ExposedPorts); InvalidArgument in Docker's words for a value it would refuse."""
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
    _limits(hc, opts)
    if opts.ulimits:
        out = []
        for item in opts.ulimits:
            name, sep, values = item.partition("=")
            if not sep:
                raise InvalidArgument(f"invalid ulimit argument: {item}")
            rlimit_name(name)
            soft, _, hard = values.partition(":")
            try:
                s, h = int(soft), int(hard or soft)
            except ValueError:
                raise InvalidArgument(f"invalid ulimit argument: {item}") from None
            if min(s, h) < -1:  # -1 is "unlimited"
                raise InvalidArgument(f"invalid ulimit argument: {item}: a limit cannot be negative")
            if h != -1 and (s == -1 or s > h):
                raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {s} > {h}")
            out.append({"Name": name, "Soft": s, "Hard": h})
        hc["Ulimits"] = out
    return hc


MAX_CPU_SHARES = 262144  # the kernel's (and runc's) bounds on cpu.shares
MIN_CPU_SHARES = 2


def _limits(hc: dict[str, Any], opts: Any) -> None:
    """Memory, CPU and pids limits, refused up front where Docker or runc would refuse them
    (zero means "no limit", as in Docker)."""
    memory = parse_bytes(opts.memory) if opts.memory else 0
    if memory:
        if memory < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        hc["Memory"] = memory
    if opts.memory_swap:
        swap = -1 if opts.memory_swap.strip() == "-1" else parse_bytes(opts.memory_swap)
        if swap:
            if not memory:
                raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
            if swap != -1 and swap < memory:
                raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit")
            hc["MemorySwap"] = swap
    if opts.cpus:
        ncpu = os.cpu_count() or 1
        if not 0.01 <= opts.cpus <= ncpu:  # also refuses NaN
            raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only"
                                  f" {ncpu} CPUs available")
        hc["NanoCpus"] = int(opts.cpus * 1e9)
    if opts.cpu_shares:
        if opts.cpu_shares < 0:
            raise InvalidArgument(f"invalid CPU shares: {opts.cpu_shares}: must not be negative")
        if opts.cpu_shares < MIN_CPU_SHARES:
            raise InvalidArgument(f"the minimum allowed cpu-shares is {MIN_CPU_SHARES}")
        if opts.cpu_shares > MAX_CPU_SHARES:
            raise InvalidArgument(f"the maximum allowed cpu-shares is {MAX_CPU_SHARES}")
        hc["CpuShares"] = int(opts.cpu_shares)
    if opts.cpuset_cpus:
        if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", opts.cpuset_cpus):
            raise InvalidArgument(f"Invalid value {opts.cpuset_cpus} for cpuset cpus: invalid format:"
                                  f" {opts.cpuset_cpus}")
        hc["CpusetCpus"] = opts.cpuset_cpus
    if opts.pids_limit and opts.pids_limit > 0:  # zero or negative: unlimited, as in Docker
        hc["PidsLimit"] = int(opts.pids_limit)


def resources(hc: dict[str, Any]) -> dict[str, Any]:
    """The spec's linux.resources (values as runc takes them on cgroup v1 and v2)."""
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
    return res


def cgroup_v2() -> bool:
    """Whether the host mounts the unified (v2) hierarchy at the cgroup root."""
    return os.path.exists(os.path.join(CGROUP_V1, "cgroup.controllers"))


def read_setting(path: str) -> str:
    """A kernel setting or small host file, stripped; "" when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _swap_accounting() -> bool:
    if cgroup_v2():
        return True  # cgroup v2: memory.swap.max is always there
    return os.path.exists(os.path.join(CGROUP_V1, "memory", "memory.memsw.limit_in_bytes"))


def cgroup_dir(container_id: str, controller: str = "memory") -> str:
    """The container's cgroup directory (``controller``'s hierarchy on cgroup v1)."""
    if cgroup_v2():
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
