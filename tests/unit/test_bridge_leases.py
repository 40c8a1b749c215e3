"""The in-process default-bridge attachment's address leases (`engine/bridgenet`): the
same files, round robin and lock as the CNI host-local plugin, which shares the
directory with it."""

from __future__ import annotations

import errno
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from forklift.engine import bridgenet, network
from forklift.store.db import Store

CID = "a" * 64


def _leases(directory: Path) -> dict[str, str]:
    return {p.name: p.read_bytes().decode() for p in directory.iterdir()
            if p.name[0].isdigit()}


def test_lease_file_is_host_locals(tmp_path: Path) -> None:
    ip = bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", CID)
    assert ip == "10.9.0.2"  # .1 is the gateway
    assert _leases(tmp_path) == {"10.9.0.2": f"{CID}\r\neth0"}
    assert (tmp_path / "last_reserved_ip.0").read_text() == "10.9.0.2"
    assert (tmp_path / "lock").exists()


def test_round_robin_after_last_reserved_and_reuse_by_id(tmp_path: Path) -> None:
    (tmp_path / "last_reserved_ip.0").write_text("10.9.0.253")
    assert bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", "b" * 64) == "10.9.0.254"
    # wraps past the broadcast address and the gateway
    assert bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", "c" * 64) == "10.9.0.2"
    # a container that already holds a lease on the interface keeps it (host-local's GetByID)
    assert bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", "b" * 64) == "10.9.0.254"
    assert bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", "b" * 64,
                              ifname="eth1") == "10.9.0.3"


def test_taken_addresses_skipped_and_exhaustion(tmp_path: Path) -> None:
    (tmp_path / "10.9.0.2").write_bytes(b"other\r\neth0")  # a CNI plugin's lease
    got = {bridgenet.allocate(str(tmp_path), "10.9.0.0/29", "10.9.0.1", f"{n:064x}")
           for n in range(4)}
    assert got == {"10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}
    with pytest.raises(OSError) as exc:
        bridgenet.allocate(str(tmp_path), "10.9.0.0/29", "10.9.0.1", "f" * 64)
    assert exc.value.errno == errno.ENOSPC


def test_release_by_address_and_by_id(tmp_path: Path) -> None:
    mine = bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", CID)
    bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", CID, ifname="eth1")
    other = bridgenet.allocate(str(tmp_path), "10.9.0.0/24", "10.9.0.1", "d" * 64)
    bridgenet.release(str(tmp_path), "d" * 64, mine)  # not its lease: kept
    assert mine in _leases(tmp_path)
    bridgenet.release(str(tmp_path), CID, mine)
    assert set(_leases(tmp_path)) == {"10.9.0.3", other}
    bridgenet.release(str(tmp_path), CID, None, ifname="eth1")  # by ID: a crash lost the address
    assert set(_leases(tmp_path)) == {other}
    bridgenet.release(str(tmp_path), CID, None)  # idempotent
    bridgenet.release(str(tmp_path / "never-made"), CID, None)
    assert not (tmp_path / "never-made").exists()


def _grab(args: tuple[str, int]) -> str:
    directory, n = args
    return bridgenet.allocate(directory, "10.9.0.0/24", "10.9.0.1", f"{n:064x}")


def test_concurrent_processes_never_share_an_address(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        got = pool.map(_grab, [(str(tmp_path), n) for n in range(40)])
    assert len(set(got)) == 40
    assert set(_leases(tmp_path)) == set(got)


def test_teardown_without_endpoint_frees_the_lease(store: Store, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed after its address was leased but before its endpoint file was written
    leaves only the lease, which names the container: teardown finds it by ID."""
    monkeypatch.setattr(network, "IPAM_DIR", str(tmp_path / "ipam"))
    directory = tmp_path / "ipam" / "forklift"
    cid = "e" * 64
    bridgenet.allocate(str(directory), network.DEFAULT_SUBNET, "10.210.0.1", cid)
    other = bridgenet.allocate(str(directory), network.DEFAULT_SUBNET, "10.210.0.1", CID)

    class Rec:
        id = cid
        name = "victim"
        host_config: dict[str, Any] = {"NetworkMode": "bridge"}
        config: dict[str, Any] = {}

    os.makedirs(store.container_path(cid))
    network.teardown(store, Rec())
    assert set(_leases(directory)) == {other}


@pytest.mark.parametrize("cidr", ["10.210.0.0/16", "10.9.0.0/24", "10.9.0.8/29", "0.0.0.0/0",
                                  "192.168.1.7/32", "255.255.255.0/24", "10.9.0.0"])
def test_ipv4_arithmetic_agrees_with_ipaddress(cidr: str) -> None:
    """bridgenet's few lines of IPv4 numbers (it keeps ipaddress off the `run` path) give
    what ipaddress gives."""
    import ipaddress

    net = ipaddress.ip_network(cidr)
    assert bridgenet.network_of(cidr) == (int(net.network_address), net.prefixlen)
    assert bridgenet.ipv4(str(net.broadcast_address)) == int(net.broadcast_address)
    assert bridgenet.dotted(int(net.broadcast_address)) == str(net.broadcast_address)


@pytest.mark.parametrize("text", ["10.9.0.1/24", "10.9.0.0/33", "10.9.0/24",
                                  "10.9.0.256/32", "10.9.0.-1/32", "10.9.0.0/x", "a.b.c.d/8",
                                  "10.9.0.٣/32"])
def test_ipv4_arithmetic_refuses_what_ipaddress_refuses(text: str) -> None:
    import ipaddress

    with pytest.raises(ValueError):
        ipaddress.ip_network(text)
    with pytest.raises(ValueError):
        bridgenet.network_of(text)
