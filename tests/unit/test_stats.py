"""``stats`` (engine/stats): cgroup v1 and v2 counters and Docker's CPU and memory formulas,
on cgroup trees written here (the real v1 hierarchy is read in tests/containers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forklift.engine import stats

CID = "c" * 64


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def host_memory(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(stats, "host_memory", lambda: 8 << 30)
    return 8 << 30


def test_cgroup_v1_counters(tmp_path: Path, host_memory: int):
    base = f"forklift/{CID}"
    _write(tmp_path, {
        f"cpuacct/{base}/cpuacct.usage": "123456789\n",
        f"memory/{base}/memory.usage_in_bytes": "10485760\n",
        f"memory/{base}/memory.limit_in_bytes": "67108864\n",
        f"memory/{base}/memory.stat": "cache 4096\ntotal_inactive_file 2097152\n",
        f"blkio/{base}/blkio.throttle.io_service_bytes_recursive":
            "8:0 Read 4096\n8:0 Write 8192\n8:16 Read 1000\n8:0 Sync 5\nTotal 13288\n",
        f"pids/{base}/pids.current": "3\n",
    })
    s = stats.read_cgroup(CID, str(tmp_path))
    assert (s.cpu_ns, s.memory, s.memory_limit) == (123456789, 8 << 20, 64 << 20)
    assert (s.block_read, s.block_write, s.pids) == (5096, 8192, 3)


def test_cgroup_v2_counters(tmp_path: Path, host_memory: int):
    base = f"forklift/{CID}"
    _write(tmp_path, {
        "cgroup.controllers": "cpu io memory pids\n",
        f"{base}/cpu.stat": "usage_usec 2500\nuser_usec 2000\n",
        f"{base}/memory.current": "5242880\n",
        f"{base}/memory.max": "max\n",
        f"{base}/memory.stat": "anon 100\ninactive_file 1048576\n",
        f"{base}/io.stat": "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
        f"{base}/pids.current": "7\n",
    })
    s = stats.read_cgroup(CID, str(tmp_path))
    assert (s.cpu_ns, s.memory, s.pids) == (2_500_000, 4 << 20, 7)
    assert s.memory_limit == host_memory  # "max": the host's memory, as Docker shows it
    assert (s.block_read, s.block_write) == (101, 202)


def test_a_missing_cgroup_reads_as_zero(tmp_path: Path, host_memory: int):
    s = stats.read_cgroup(CID, str(tmp_path))
    assert (s.cpu_ns, s.memory, s.pids, s.block_read) == (0, 0, 0, 0)


class _Rec:
    id, name = CID, "web"


def test_usage_uses_dockers_formulas():
    before = stats.Sample(cpu_ns=1_000_000_000, system_ns=100_000_000_000, online_cpus=2)
    now = stats.Sample(cpu_ns=1_500_000_000, system_ns=102_000_000_000, online_cpus=2,
                       memory=32 << 20, memory_limit=128 << 20, net_rx=10, net_tx=20, pids=4)
    u = stats.usage(_Rec(), before, now)  # type: ignore[arg-type]
    assert u.cpu_percent == pytest.approx(50.0)  # 0.5 s of 2 s of host time, 2 CPUs
    assert u.memory_percent == pytest.approx(25.0)
    assert (u.net_rx, u.net_tx, u.pids, u.running) == (10, 20, 4, True)
    idle = stats.usage(_Rec(), stats.Sample(), stats.Sample())  # type: ignore[arg-type]
    assert (idle.cpu_percent, idle.memory_percent, idle.running) == (0.0, 0.0, False)
