"""The last run/create flags of Docker 20.10 (issue 13, engine/extraflags): applied where
this host can (real-time period, MAC and link-local addresses), stored as Docker's inspect
shows them, refused in one line where they cannot work; compared with Docker's engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.root

KMEM_WARNING = ("WARNING: Specifying a kernel memory limit is deprecated and will be removed"
                " in a future release.")


def _refused(fl: Any, *args: str) -> str:
    before = fl.out("ps", "-a", "-q", "--no-trunc")
    res = fl("run", "--rm", "--network", "none", *args, "busybox", "true", check=False)
    assert res.code == 125, res
    assert fl.out("ps", "-a", "-q", "--no-trunc") == before
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
    return str(lines[0][len("Error: "):])


def test_applied_inside_the_container(fl: Any) -> None:
    out = fl.out("run", "--rm", "--network", "none", "--cpu-rt-period", "1000", "busybox",
                 "cat", "/sys/fs/cgroup/cpu/cpu.rt_period_us")
    assert out == "1000"
    out = fl.out("run", "--rm", "--mac-address", "02:42:ac:11:00:99", "--link-local-ip",
                 "169.254.7.7", "busybox", "ip", "addr", "show", "eth0")
    assert "link/ether 02:42:ac:11:00:99 " in out, out
    assert "inet 169.254.7.7/16 " in out, out


def test_stored_where_docker_keeps_them(fl: Any, name: str) -> None:
    res = fl("create", "--name", name, "--isolation", "default", "--kernel-memory", "10m",
             "--userns", "host", "--volume-driver", "local", "--cpu-rt-period", "1000",
             "--mac-address", "02:42:ac:11:00:98", "--link-local-ip", "169.254.1.1",
             "--disable-content-trust", "busybox", "true")
    assert res.err == KMEM_WARNING + "\n"
    ours = fl.inspect(name)
    hc = ours["HostConfig"]
    assert (hc["Isolation"], hc["KernelMemory"], hc["UsernsMode"], hc["VolumeDriver"],
            hc["CpuRealtimePeriod"]) == ("default", 10 * 1024**2, "host", "local", 1000)
    assert ours["Config"]["MacAddress"] == "02:42:ac:11:00:98"
    networks = ours["NetworkSettings"]["Networks"]
    assert networks["bridge"]["IPAMConfig"] == {"LinkLocalIPs": ["169.254.1.1"]}
    fl("rm", name)


REFUSED = [
    (("--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"),
     "cpu real-time runtime cannot be higher than cpu real-time period"),
    (("--gpus", "all"), 'could not select device driver "" with capabilities: [[gpu]]'),
    (("--isolation", "hyperv"), "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    (("--kernel-memory", "1m"), "Minimum kernel memory limit allowed is 6MB"),
    (("--mac-address", "zz"), "zz is not a valid mac address"),
    (("--storage-opt", "size=1G"),
     "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"),
    (("--storage-opt", "foo"), "invalid storage option"),
    (("--userns", "foo"), "--userns: invalid USER mode"),
    (("--ip6", "zz"), "invalid IPv6 address: zz"),
    (("--ip6", "fd00::5"), "user specified IP address is supported on user defined networks only"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[a[0] for a, _ in REFUSED])
def test_refused_in_dockers_words(fl: Any, args: tuple[str, ...], message: str) -> None:
    assert _refused(fl, *args) == message


def test_refused_where_this_host_cannot(fl: Any) -> None:
    assert _refused(fl, "--volume-driver", "flocker") == (
        "--volume-driver flocker: forklift has no volume plugins, only the local driver")
    assert _refused(fl, "--cpu-rt-runtime", "950").startswith(
        "--cpu-rt-runtime 950: the parent cgroup /forklift has a real-time budget of")
    res = fl("run", "--rm", "--network", "host", "--mac-address", "02:42:ac:11:00:99",
             "busybox", "true", check=False)
    assert (res.code, res.err) == (125, "Error: conflicting options: mac-address and the"
                                        " network mode\n")


def _their_message(res: Any) -> str:
    """Docker's error line without its prefixes and the CLI's final period."""
    line = res.err.strip().splitlines()[0]
    for prefix in ("docker: ", "Error response from daemon: "):
        line = line.removeprefix(prefix)
    return str(line.removesuffix("."))


DOCKER_REFUSES = [args for args, _ in REFUSED]


@pytest.mark.docker
def test_refusals_match_docker(fl: Any, docker20: Any, docker_busybox: str) -> None:
    for args in DOCKER_REFUSES:
        res = docker20("run", "--rm", "--network", "none", *args, docker_busybox, "true",
                     check=False)
        assert res.code != 0, args
        assert _their_message(res) == _refused(fl, *args), args


@pytest.mark.docker
def test_stored_as_docker_stores_them(fl: Any, name: str, docker20: Any,
                                      docker_busybox: str) -> None:
    args = ["--network", "none", "--isolation", "default", "--kernel-memory", "10m",
            "--userns", "host", "--volume-driver", "local", "--cpu-rt-period", "1000",
            "--mac-address", "02:42:ac:11:00:97", "--link-local-ip", "169.254.1.2",
            "--disable-content-trust"]
    theirs_res = docker20("create", "--name", name, *args, docker_busybox, "true")
    ours_res = fl("create", "--name", name, *args, "busybox", "true")
    try:
        assert ours_res.err == theirs_res.err
        theirs = json.loads(docker20("inspect", name).out)[0]
        ours = fl.inspect(name)
        for key in ("Isolation", "KernelMemory", "UsernsMode", "VolumeDriver",
                    "CpuRealtimePeriod"):
            assert ours["HostConfig"][key] == theirs["HostConfig"][key], key
        assert ours["Config"]["MacAddress"] == theirs["Config"]["MacAddress"]
        assert (ours["NetworkSettings"]["Networks"]["none"]["IPAMConfig"]
                == theirs["NetworkSettings"]["Networks"]["none"]["IPAMConfig"])
    finally:
        docker20("rm", name, check=False)
        fl("rm", name, check=False)
