"""build_spec writes Docker's defaults; clamp_rlimits keeps runc away from EPERM."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import InvalidArgument
from forklift.runtime.spec import (
    DEFAULT_CAPABILITIES,
    RLIM_INFINITY_OCI,
    MountSpec,
    ProcessConfig,
    build_spec,
    clamp_rlimits,
    write_bundle,
)


def _spec(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "rootfs": "/x/rootfs",
        "process": ProcessConfig(args=["sh"], env=["PATH=/bin"], cwd="/", uid=0, gid=0),
        "hostname": "0123456789ab",
        "readonly_rootfs": False,
        "mounts": [],
        "network": "none",
        "cgroups_path": "/forklift/abc",
    }
    args.update(overrides)
    return build_spec(**args)


def _host_hard(name: str) -> int:
    hard = resource.getrlimit(getattr(resource, name))[1]
    return RLIM_INFINITY_OCI if hard == resource.RLIM_INFINITY else hard


def test_clamp_to_host_hard_limit() -> None:
    host = _host_hard("RLIMIT_NOFILE")
    out = clamp_rlimits({"nofile": (2**40, 2**40)})
    assert out == {"RLIMIT_NOFILE": (min(2**40, host), min(2**40, host))}


def test_clamp_keeps_soft_below_hard_and_small_values() -> None:
    assert clamp_rlimits({"RLIMIT_NOFILE": (100, 200)}) == {"RLIMIT_NOFILE": (100, 200)}
    assert clamp_rlimits({"nofile": (500, 100)}) == {"RLIMIT_NOFILE": (100, 100)}


def test_clamp_unlimited() -> None:
    host = _host_hard("RLIMIT_CORE")
    assert clamp_rlimits({"core": (-1, -1)}) == {"RLIMIT_CORE": (host, host)}


def test_clamp_rejects_unknown_names() -> None:
    with pytest.raises(InvalidArgument, match="bogus"):
        clamp_rlimits({"bogus": (1, 1)})


def test_default_rlimit_nofile_is_clamped() -> None:
    rl = {r["type"]: (r["soft"], r["hard"]) for r in _spec()["process"]["rlimits"]}
    want = min(1048576, _host_hard("RLIMIT_NOFILE"))
    assert rl["RLIMIT_NOFILE"] == (want, want)
    rl = {
        r["type"]: (r["soft"], r["hard"])
        for r in _spec(rlimits={"nproc": (10, 20)})["process"]["rlimits"]
    }
    assert rl["RLIMIT_NPROC"] == (min(10, _host_hard("RLIMIT_NPROC")), 20)


def test_root_gets_docker_caps() -> None:
    caps = _spec()["process"]["capabilities"]
    assert len(DEFAULT_CAPABILITIES) == 14
    for kind in ("bounding", "effective", "permitted"):
        assert caps[kind] == DEFAULT_CAPABILITIES
    assert caps["inheritable"] == [] and caps["ambient"] == []
    assert "CAP_SYS_ADMIN" not in caps["bounding"]


def test_non_root_caps_only_bounding() -> None:
    proc = ProcessConfig(args=["id"], env=[], cwd="/", uid=1000, gid=1000)
    caps = _spec(process=proc)["process"]["capabilities"]
    assert caps["bounding"] == DEFAULT_CAPABILITIES
    assert caps["effective"] == caps["permitted"] == caps["inheritable"] == []


def test_explicit_caps() -> None:
    proc = ProcessConfig(args=["x"], env=[], cwd="/", uid=0, gid=0, capabilities=["CAP_KILL"])
    assert _spec(process=proc)["process"]["capabilities"]["effective"] == ["CAP_KILL"]


def test_namespaces() -> None:
    def kinds(network: str) -> set[str]:
        return {n["type"] for n in _spec(network=network)["linux"]["namespaces"]}

    assert kinds("none") == {"pid", "ipc", "uts", "mount", "network"}
    assert kinds("bridge") == {"pid", "ipc", "uts", "mount", "network"}
    assert kinds("host") == {"pid", "ipc", "uts", "mount"}
    assert _spec(network="host")["hostname"] == "0123456789ab"


def test_masked_and_readonly_paths() -> None:
    linux = _spec()["linux"]
    for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/acpi"):
        assert p in linux["maskedPaths"]
    assert linux["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    assert linux["cgroupsPath"] == "/forklift/abc"
    devices = linux["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devices


def test_mounts_defaults_then_callers() -> None:
    extra = MountSpec("/etc/hosts", "/store/c/hosts", options=["ro"])
    spec = _spec(mounts=[extra], readonly_rootfs=True)
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/etc/hosts",
    ]
    assert spec["mounts"][-1] == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/store/c/hosts",
        "options": ["rbind", "ro"],
    }
    assert spec["root"] == {"path": "/x/rootfs", "readonly": True}
    shm = spec["mounts"][3]
    assert "size=65536k" in shm["options"] and "mode=1777" in shm["options"]


def test_process_fields() -> None:
    proc = ProcessConfig(
        args=["a", "b"],
        env=["A=1"],
        cwd="/w",
        uid=5,
        gid=6,
        additional_gids=[7],
        terminal=True,
        no_new_privileges=True,
    )
    spec = _spec(process=proc, annotations={"k": "v"})
    p = spec["process"]
    assert p["args"] == ["a", "b"] and p["env"] == ["A=1"] and p["cwd"] == "/w"
    assert p["user"] == {"uid": 5, "gid": 6, "additionalGids": [7]}
    assert p["terminal"] is True and p["noNewPrivileges"] is True
    assert spec["annotations"] == {"k": "v"}
    assert spec["ociVersion"].startswith("1.0")


def test_write_bundle_atomic(tmp_path: Path) -> None:
    spec = _spec()
    path = write_bundle(str(tmp_path / "b"), spec)
    assert path == str(tmp_path / "b" / "config.json")
    assert json.loads(Path(path).read_text()) == spec
    assert os.listdir(tmp_path / "b") == ["config.json"]


def test_a_callers_mount_replaces_the_default_at_its_destination() -> None:
    shm = MountSpec("/dev/shm", "tmpfs", "tmpfs", ["nosuid", "size=1048576"])
    mounts = _spec(mounts=[shm])["mounts"]
    at_shm = [m for m in mounts if m["destination"] == "/dev/shm"]
    assert at_shm == [{"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "size=1048576"]}]
    assert [m["destination"] for m in mounts][:3] == ["/proc", "/dev", "/dev/pts"]
