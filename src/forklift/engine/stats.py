"""``stats``: a container's resource usage from its cgroup, computed as Docker's CLI does.

Counters are read from cgroup v1 (one hierarchy per controller: cpuacct, memory, blkio,
pids, as on this hybrid host) or, where ``cgroup.controllers`` is at the top of the
cgroup root, from the unified v2 hierarchy (cpu.stat, memory.current/max/stat, io.stat,
pids.current). Network counters come from ``/proc/<init pid>/net/dev`` (the container's
own namespace; ``lo`` excluded, as Docker counts the container's interfaces). Two samples
make one reading: CPU % is the container's share of all CPU time between them, times the
number of CPUs (Docker's ``calculateCPUPercentUnix``); memory usage leaves out the
inactive page cache (Docker 20.10's ``calculateMemUsageUnixNoCache``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from forklift.store import containers as container_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PARENT = "forklift"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """Raw counters of one container at one moment (zero when it does not run)."""

    cpu_ns: int = 0
    system_ns: int = 0
    online_cpus: int = 0
    memory: int = 0
    memory_limit: int = 0
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0
    pids: int = 0


@dataclass
class Usage:
    """One row of ``stats``: a container's usage between two samples."""

    id: str
    name: str
    running: bool
    cpu_percent: float
    memory: int
    memory_limit: int
    memory_percent: float
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _int(path: str, default: int = 0) -> int:
    try:
        text = _read(path).strip()
    except OSError:
        return default
    return default if text == "max" else int(text)


def _keyed(path: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat)."""
    out = {}
    with contextlib.suppress(OSError):
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


def is_v2(root: str = CGROUP_ROOT) -> bool:
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def system_cpu_ns() -> int:
    """All CPU time the host has spent (the first line of /proc/stat), in nanoseconds."""
    fields = _read("/proc/stat").splitlines()[0].split()[1:8]
    return sum(int(f) for f in fields) * 1_000_000_000 // _CLK_TCK


def read_cgroup(container_id: str, root: str = CGROUP_ROOT) -> Sample:
    """The cgroup counters of a container (network and system CPU left at zero)."""
    s = Sample()
    host = host_memory()
    if is_v2(root):
        d = os.path.join(root, CGROUP_PARENT, container_id)
        s.cpu_ns = _keyed(os.path.join(d, "cpu.stat")).get("usage_usec", 0) * 1000
        stat = _keyed(os.path.join(d, "memory.stat"))
        s.memory = max(_int(os.path.join(d, "memory.current")) - stat.get("inactive_file", 0), 0)
        s.memory_limit = _int(os.path.join(d, "memory.max"), host)
        s.block_read, s.block_write = _io_stat(os.path.join(d, "io.stat"))
        s.pids = _int(os.path.join(d, "pids.current"))
    else:
        def v1(controller: str, name: str) -> str:
            return os.path.join(root, controller, CGROUP_PARENT, container_id, name)

        s.cpu_ns = _int(v1("cpuacct", "cpuacct.usage"))
        stat = _keyed(v1("memory", "memory.stat"))
        s.memory = max(_int(v1("memory", "memory.usage_in_bytes"))
                       - stat.get("total_inactive_file", 0), 0)
        s.memory_limit = _int(v1("memory", "memory.limit_in_bytes"), host)
        s.block_read, s.block_write = _blkio(v1("blkio", "blkio.throttle.io_service_bytes_recursive"))
        s.pids = _int(v1("pids", "pids.current"))
    if host and (s.memory_limit <= 0 or s.memory_limit > host):
        s.memory_limit = host  # "no limit": the host's memory, as Docker reports it
    return s


def _blkio(path: str) -> tuple[int, int]:
    read = write = 0
    with contextlib.suppress(OSError):
        for line in _read(path).splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in ("Read", "Write"):
                if parts[1] == "Read":
                    read += int(parts[2])
                else:
                    write += int(parts[2])
    return read, write


def _io_stat(path: str) -> tuple[int, int]:
    read = write = 0
    with contextlib.suppress(OSError):
        for line in _read(path).splitlines():
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    write += int(value)
    return read, write


def net_dev(pid: int) -> tuple[int, int]:
    """Bytes received and sent by the interfaces of ``pid``'s network namespace but lo."""
    rx = tx = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in _read(f"/proc/{pid}/net/dev").splitlines()[2:]:
            name, _, counters = line.partition(":")
            if name.strip() == "lo":
                continue
            values = counters.split()
            rx += int(values[0])
            tx += int(values[8])
    return rx, tx


def _init_pid(store: Store, rec: ContainerRecord) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(_read(os.path.join(store.container_path(rec.id), "init.pid")).strip())
    return None


def sample(store: Store, rec: ContainerRecord) -> Sample:
    """The container's counters now; zeros for one that does not run."""
    if not rec.effective_state().up:
        return Sample()
    s = read_cgroup(rec.id)
    pid = _init_pid(store, rec)
    if pid and rec.host_config.get("NetworkMode") != "host":
        s.net_rx, s.net_tx = net_dev(pid)
    s.system_ns = system_cpu_ns()
    s.online_cpus = len(os.sched_getaffinity(0)) or os.cpu_count() or 1
    return s


def usage(rec: ContainerRecord, before: Sample, now: Sample) -> Usage:
    """One row from two samples, by Docker's CLI formulas."""
    cpu = 0.0
    cpu_delta, system_delta = now.cpu_ns - before.cpu_ns, now.system_ns - before.system_ns
    if cpu_delta > 0 and system_delta > 0:
        cpu = cpu_delta / system_delta * now.online_cpus * 100.0
    mem_pct = now.memory / now.memory_limit * 100.0 if now.memory_limit else 0.0
    return Usage(rec.id, rec.name, now.system_ns > 0, cpu, now.memory, now.memory_limit,
                 mem_pct, now.net_rx, now.net_tx, now.block_read, now.block_write, now.pids)


def containers(store: Store, names: list[str], show_all: bool) -> list[ContainerRecord]:
    """What ``stats`` shows: the named containers (NotFound for an unknown one), else the
    running ones (every one with ``show_all``), oldest first as Docker lists them."""
    if names:
        return [container_store.resolve(store, n) for n in names]
    recs = [r for r in container_store.all_containers(store)
            if show_all or r.effective_state().up]
    return sorted(recs, key=lambda r: r.created)


def readings(store: Store, names: list[str], show_all: bool = False,
             interval: float = 1.0) -> Iterator[list[Usage]]:
    """Rows every ``interval`` seconds, forever (the caller stops): each from the sample
    before and the one now. The first is ready after one interval, as Docker's is. Without
    names, containers that start or stop meanwhile come and go."""
    recs = containers(store, names, show_all)
    before = {r.id: sample(store, r) for r in recs}
    while True:
        time.sleep(interval)
        if not names:
            recs = containers(store, names, show_all)
        else:
            recs = [container_store.get(store, r.id) or r for r in recs]
        rows = []
        for rec in recs:
            now = sample(store, rec)
            rows.append(usage(rec, before.get(rec.id, now), now))
            before[rec.id] = now
        yield rows
