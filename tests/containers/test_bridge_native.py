"""The default bridge set up in-process (`engine/bridgenet`) instead of by the CNI plugins:
the same interface, address, route and reachability as the plugins give, the lease and
the veth gone after stop, rm and a killed run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root

IPAM = Path("/run/forklift/ipam/forklift")
CNI_ONLY = {"FORKLIFT_NETWORK_CNI": "1"}


def _leases_of(container_id: str) -> list[str]:
    out = []
    for path in IPAM.glob("10.*"):
        try:
            if path.read_bytes().split(b"\r\n")[0] == container_id.encode():
                out.append(path.name)
        except FileNotFoundError:  # another test's container just let it go
            pass
    return out


def _endpoint(fl: Any, container_id: str) -> dict[str, Any]:
    return dict(json.loads((fl.root / "containers" / container_id / "network.json").read_text()))


def _netns_mounted(fl: Any, container_id: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(ln.split()[4] == f"{fl.root}/netns/{container_id}" for ln in f)


def _gone(fl: Any, container_id: str, veth: str) -> None:
    assert _leases_of(container_id) == []
    assert not _netns_mounted(fl, container_id)
    # the veth pair goes with the namespace, which the kernel frees in its own time
    deadline = time.monotonic() + 30
    while os.path.exists(f"/sys/class/net/{veth}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/sys/class/net/{veth}")


SHAPE = ("ip -4 addr show eth0; ip -4 route; cat /sys/class/net/eth0/mtu;"
         " ping -c1 -W3 10.210.0.1 >/dev/null && echo gateway-answers")


def _shape(out: str) -> str:
    out = re.sub(r"10\.210\.(\d+)\.(\d+)(?=[/ ]|$)",
                 lambda m: "GW" if m.group(0) == "10.210.0.1" else "ADDR", out, flags=re.M)
    out = re.sub(r"^\d+: eth0@if\d+", "N: eth0@ifN", out, flags=re.M)
    return out


def test_same_interface_and_routes_as_the_cni_plugins(fl: Any) -> None:
    native = fl.out("run", "--rm", "busybox", "sh", "-c", SHAPE)
    plugins = fl.out("run", "--rm", "busybox", "sh", "-c", SHAPE, env=CNI_ONLY)
    assert "gateway-answers" in native
    assert "default via 10.210.0.1 dev eth0" in native
    assert _shape(native) == _shape(plugins)


def test_endpoint_inspect_lease_and_veth(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    peer = f"{name}-cni"
    try:
        info = fl.inspect(name)
        cid, settings = info["Id"], info["NetworkSettings"]
        ip, mac = settings["IPAddress"], settings["MacAddress"]
        assert settings["Gateway"] == "10.210.0.1" and settings["IPPrefixLen"] == 16
        assert f"inet {ip}/16" in fl.out("exec", name, "ip", "-4", "addr", "show", "eth0")
        assert fl.out("exec", name, "cat", "/sys/class/net/eth0/address") == mac
        assert (IPAM / ip).read_bytes() == f"{cid}\r\neth0".encode()
        veth = _endpoint(fl, cid)["HostVeth"]
        assert os.path.basename(os.readlink(f"/sys/class/net/{veth}/master")) == "forklift0"
        assert Path(f"/sys/class/net/{veth}/brport/hairpin_mode").read_text().strip() == "1"
        # a container the plugins attach shares the bridge and the lease directory
        fl("run", "-d", "--name", peer, "busybox", "sleep", "1000", env=CNI_ONLY)
        peer_ip = fl.inspect(peer)["NetworkSettings"]["IPAddress"]
        assert peer_ip != ip and peer_ip.startswith("10.210.")
        assert "1 packets received" in fl.out("exec", peer, "ping", "-c1", "-W3", ip)
        assert "1 packets received" in fl.out("exec", name, "ping", "-c1", "-W3", peer_ip)
        # stop gives everything back; the next start attaches again
        fl("stop", "-t", "1", name)
        _gone(fl, cid, veth)
        fl("start", name)
        again = _endpoint(fl, cid)["HostVeth"]
        assert _leases_of(cid) == [fl.inspect(name)["NetworkSettings"]["IPAddress"]]
        assert "1 packets received" in fl.out("exec", name, "ping", "-c1", "-W3", peer_ip)
        fl("rm", "-f", name)
        _gone(fl, cid, again)
    finally:
        fl("rm", "-f", name, peer, check=False)


def _wait_attached(fl: Any, name: str, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended early"
        ids = fl.out("ps", "-q", "--no-trunc", "--filter", f"name=^{name}$")
        if ids and (fl.root / "containers" / ids / "network.json").exists():
            return str(ids)
        time.sleep(0.05)
    raise AssertionError("the container never ran")


@contextlib.contextmanager
def _foreground_run(fl: Any, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A foreground ``run`` of a long sleep, killed and its container removed at the end."""
    proc = subprocess.Popen([*fl.argv, "run", "--name", name, "busybox", "sleep", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        fl("rm", "-f", name, check=False)


def test_killed_run_leaves_no_lease_veth_or_namespace(fl: Any, name: str) -> None:
    with _foreground_run(fl, name) as proc:
        cid = _wait_attached(fl, name, proc)
        veth = _endpoint(fl, cid)["HostVeth"]
        assert len(_leases_of(cid)) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        fl("rm", "-f", name)
        _gone(fl, cid, veth)


def test_killed_run_started_again_keeps_one_lease(fl: Any, name: str) -> None:
    with _foreground_run(fl, name) as proc:
        cid = _wait_attached(fl, name, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        fl("start", name)
        ip = fl.inspect(name)["NetworkSettings"]["IPAddress"]
        assert _leases_of(cid) == [ip]
        assert "1 packets received" in fl.out("exec", name, "ping", "-c1", "-W3", "10.210.0.1")
        veth = _endpoint(fl, cid)["HostVeth"]
        fl("rm", "-f", name)
        _gone(fl, cid, veth)
