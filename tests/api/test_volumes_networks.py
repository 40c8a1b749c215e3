"""Volume and network endpoints over raw HTTP (every answer against Docker's 1.41 schema,
bad input refused in one line, nothing changed) and through the real docker CLI."""

from __future__ import annotations

import json
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import Forklift, swagger
from support.service import Answer, Service

pytestmark = pytest.mark.root


def _q(doc: object) -> str:
    return urllib.parse.quote(json.dumps(doc))


def _error(answer: Answer, status: int) -> str:
    return answer.refusal(status)


def test_volume_create_list_inspect_remove(service: Service, fl: Forklift, name: str) -> None:
    made = service.request("POST", "/v1.41/volumes/create",
                           {"Name": name, "Driver": "local", "Labels": {"team": "a"}})
    assert made.status == 201, made
    swagger.validate_response(made.json(), "POST", "/volumes/create", 201)
    assert made.json()["Name"] == name and made.json()["Labels"] == {"team": "a"}
    assert fl.out("volume", "ls", "-q").split().count(name) == 1
    try:
        listed = service.request("GET", "/volumes?filters=" + _q({"label": ["team=a"]}))
        swagger.validate_response(listed.json(), "GET", "/volumes", 200)
        assert [v["Name"] for v in listed.json()["Volumes"]] == [name]
        none = service.request("GET", "/volumes?filters=" + _q({"name": ["zz-no"]}))
        assert none.json()["Volumes"] == []
        got = service.request("GET", f"/volumes/{name}")
        swagger.validate_response(got.json(), "GET", "/volumes/{name}", 200)
        assert got.json()["Mountpoint"] == made.json()["Mountpoint"]
    finally:
        assert service.request("DELETE", f"/volumes/{name}").status == 204
    assert name not in fl.out("volume", "ls", "-q").split()
    assert "no such volume" in _error(service.request("GET", f"/volumes/{name}"), 404).lower()
    _error(service.request("DELETE", f"/volumes/{name}"), 404)
    assert service.request("DELETE", f"/volumes/{name}?force=1").status == 204


def test_volume_in_use_is_409_and_prune(service: Service, fl: Forklift, name: str) -> None:
    fl.out("volume", "create", name)
    fl.out("run", "--name", name, "--network", "none", "-v", f"{name}:/data", "busybox", "true")
    fl.out("volume", "create", f"{name}-free")
    try:
        _error(service.request("DELETE", f"/volumes/{name}"), 409)
        _error(service.request("DELETE", f"/volumes/{name}?force=1"), 409)
        pruned = service.request("POST", "/volumes/prune")
        swagger.validate_response(pruned.json(), "POST", "/volumes/prune", 200)
        assert f"{name}-free" in pruned.json()["VolumesDeleted"]
        assert name not in pruned.json()["VolumesDeleted"]
        assert name in fl.out("volume", "ls", "-q").split()
    finally:
        fl.out("rm", name)
        fl.out("volume", "rm", name)


@pytest.mark.parametrize("body", [b"{nope", b'{"Name": 3}', b'{"Driver": "nfs"}',
                                  b'{"Labels": ["a"]}', b'{"DriverOpts": {"o": "bind"}}',
                                  b'{"Name": "bad/name"}'])
def test_volume_create_bad_input(service: Service, fl: Forklift, body: bytes) -> None:
    before = fl.out("volume", "ls", "-q")
    _error(service.request("POST", "/volumes/create", body), 400)
    assert fl.out("volume", "ls", "-q") == before


def test_volume_bad_filters(service: Service) -> None:
    _error(service.request("GET", "/volumes?filters=%7Bnope"), 400)
    _error(service.request("GET", "/volumes?filters=" + _q({"bogus": ["x"]})), 400)
    _error(service.request("POST", "/volumes/prune?filters=" + _q({"until": ["1h"]})), 400)


def test_network_create_inspect_list_remove(service: Service, fl: Forklift, name: str) -> None:
    made = service.request("POST", "/networks/create", {
        "Name": name, "Driver": "bridge", "CheckDuplicate": True, "Internal": True,
        "Labels": {"team": "a"}, "IPAM": {"Driver": "default", "Config": [
            {"Subnet": "10.211.231.0/24", "Gateway": "10.211.231.1"}]}})
    assert made.status == 201, made
    swagger.validate_response(made.json(), "POST", "/networks/create", 201)
    net_id = made.json()["Id"]
    try:
        assert "already exists" in _error(
            service.request("POST", "/networks/create", {"Name": name}), 409)
        got = service.request("GET", f"/networks/{net_id[:12]}")
        swagger.validate_response(got.json(), "GET", "/networks/{id}", 200)
        doc = got.json()
        assert (doc["Name"], doc["Internal"], doc["Labels"]) == (name, True, {"team": "a"})
        assert doc["IPAM"]["Config"] == [{"Subnet": "10.211.231.0/24", "Gateway": "10.211.231.1"}]
        listed = service.request("GET", "/networks")
        # the built-in networks' IPAM.Options is null, as Docker's own
        swagger.validate_response(listed.json(), "GET", "/networks", 200, as_docker=True)
        assert {"bridge", "host", "none", name} <= {n["Name"] for n in listed.json()}
        only = service.request("GET", "/networks?filters=" + _q({"label": ["team=a"]}))
        assert [n["Id"] for n in only.json()] == [net_id]
    finally:
        assert service.request("DELETE", f"/networks/{name}").status == 204
    assert name not in fl.out("network", "ls", "--format", "{{.Name}}").split()
    _error(service.request("GET", f"/networks/{name}"), 404)
    _error(service.request("DELETE", f"/networks/{name}"), 404)


def test_network_builtin_and_in_use_are_409(service: Service, fl: Forklift, name: str) -> None:
    _error(service.request("DELETE", "/networks/bridge"), 409)
    fl.out("network", "create", name)
    fl.out("create", "--name", name, "--network", name, "busybox", "true")
    try:
        _error(service.request("DELETE", f"/networks/{name}"), 409)
        pruned = service.request("POST", "/networks/prune")
        swagger.validate_response(pruned.json(), "POST", "/networks/prune", 200)
        assert name not in (pruned.json()["NetworksDeleted"] or [])
    finally:
        fl.out("rm", name)
    pruned = service.request("POST", "/networks/prune")
    assert name in pruned.json()["NetworksDeleted"]


def test_network_connect_disconnect_created_container(service: Service, fl: Forklift,
                                                       name: str) -> None:
    fl.out("network", "create", name)
    fl.out("create", "--name", name, "busybox", "true")
    try:
        answer = service.request("POST", f"/networks/{name}/connect", {"Container": name})
        assert answer.status == 200, answer
        networks = json.loads(fl.out("inspect", "-f", "{{json .HostConfig}}", name))
        assert name in (networks.get("ExtraNetworks") or []) or name in fl.out(
            "inspect", "-f", "{{json .NetworkSettings.Networks}}", name)
        _error(service.request("DELETE", f"/networks/{name}"), 409)
        answer = service.request("POST", f"/networks/{name}/disconnect", {"Container": name})
        assert answer.status == 200, answer
        _error(service.request("POST", f"/networks/{name}/disconnect", {"Container": name}), 409)
        _error(service.request("POST", f"/networks/{name}/connect", {"Container": "nosuch"}), 404)
        _error(service.request("POST", f"/networks/{name}/connect", {}), 400)
    finally:
        fl.out("rm", name)
        fl.out("network", "rm", name)


@pytest.mark.parametrize("body", [b"{nope", b"{}", b'{"Name": 3}', b'{"Name": "x/y"}',
                                  b'{"Name": "x", "Driver": "overlay"}',
                                  b'{"Name": "x", "IPAM": {"Config": [{"Subnet": "zz"}]}}',
                                  b'{"Name": "x", "Labels": {"a": 1}}'])
def test_network_create_bad_input(service: Service, fl: Forklift, body: bytes) -> None:
    before = fl.out("network", "ls", "-q")
    _error(service.request("POST", "/networks/create", body), 400)
    assert fl.out("network", "ls", "-q") == before


@pytest.mark.usefixtures("docker_cli")
def test_docker_cli_volumes(service: Service, fl: Forklift, name: str) -> None:
    assert service.docker("volume", "create", "--label", "k=v", name).out.strip() == name
    assert name in service.docker("volume", "ls", "-q").lines
    assert service.docker("volume", "inspect", "-f", "{{.Labels.k}}", name).out.strip() == "v"
    assert service.docker("volume", "rm", name).out.strip() == name
    res = service.docker("volume", "inspect", name, check=False)
    assert res.code != 0 and "no such volume" in res.err.lower()
    fl.out("volume", "create", name)
    assert name in service.docker("volume", "prune", "-f").out
    assert name not in fl.out("volume", "ls", "-q").split()


@pytest.mark.usefixtures("docker_cli")
def test_docker_cli_networks(service: Service, fl: Forklift, name: str) -> None:
    net_id = service.docker("network", "create", "--label", "k=v", name).out.strip()
    try:
        assert name in service.docker("network", "ls", "--format", "{{.Name}}").lines
        assert service.docker("network", "inspect", "-f", "{{.Id}}", name).out.strip() == net_id
        assert net_id.startswith(fl.out("network", "ls", "-q", "-f", f"name=^{name}$").strip())
        fl.out("create", "--name", name, "busybox", "true")
        try:
            service.docker("network", "connect", name, name)
            res = service.docker("network", "rm", name, check=False)
            assert res.code != 0 and "active endpoints" in res.err
            service.docker("network", "disconnect", name, name)
        finally:
            fl.out("rm", name)
    finally:
        assert service.docker("network", "rm", name).out.strip() == name
    res = service.docker("network", "rm", name, check=False)
    assert res.code != 0 and "No such network" in res.err
    fl.out("network", "create", name)
    assert name in service.docker("network", "prune", "-f").lines
    assert name not in fl.out("network", "ls", "--format", "{{.Name}}").split()


def test_network_connect_with_aliases(service: Service, fl: Forklift, name: str) -> None:
    """Compose connects a service's further networks with its name as an alias: shown in
    NetworkSettings before the start (with the short ID Compose looks for), refused on the
    default bridge and with an address outside the subnet, and dropped by a disconnect."""
    fl.out("network", "create", name)
    cid = fl.out("create", "--name", name, "busybox", "true")
    try:
        for endpoint in ({"Aliases": ["svc"], "IPAMConfig": {"IPv4Address": "10.9.9.9"}},
                         {"Aliases": [""]}, {"Aliases": "svc"}):
            _error(service.request("POST", f"/networks/{name}/connect",
                                   {"Container": name, "EndpointConfig": endpoint}), 400)
        _error(service.request("POST", "/networks/bridge/connect",
                               {"Container": name, "EndpointConfig": {"Aliases": ["svc"]}}), 400)
        answer = service.request("POST", f"/networks/{name}/connect",
                                 {"Container": name, "EndpointConfig": {"Aliases": ["svc"]}})
        assert answer.status == 200, answer
        doc = service.request("GET", f"/containers/{name}/json").json()
        swagger.validate_response(doc, "GET", "/containers/{id}/json", 200, as_docker=True)
        assert doc["NetworkSettings"]["Networks"][name]["Aliases"] == ["svc", cid[:12]]
        assert "ExtraAliases" not in doc["HostConfig"]
        service.request("POST", f"/networks/{name}/disconnect", {"Container": name})
        assert name not in fl.inspect(name)["NetworkSettings"]["Networks"]
        assert "svc" not in json.dumps(fl.inspect(name))
    finally:
        fl.out("rm", name)
        fl.out("network", "rm", name)


def test_network_connect_with_an_address_and_links(service: Service, fl: Forklift,
                                                   name: str) -> None:
    """Compose's ``ipv4_address`` (the create's NetworkingConfig and connect's
    IPAMConfig) on a network with a subnet, and connect's ``Links``: the containers get
    those addresses, inspect shows them; a held, foreign or malformed address and links
    to nobody are refused (409/400, one line) and connect nothing."""
    peer = name[:20] + "-peer"
    made = service.request("POST", "/networks/create", {
        "Name": name, "IPAM": {"Config": [{"Subnet": "10.231.88.0/24"}]}})
    assert made.status == 201, made
    endpoints = {name: {"IPAMConfig": {"IPv4Address": "10.231.88.40"}}}
    created = service.request("POST", f"/containers/create?name={peer}", {
        "Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": name},
        "NetworkingConfig": {"EndpointsConfig": endpoints}})
    assert created.status == 201, created
    cid = fl.out("create", "--name", name, "busybox", "sleep", "300")
    try:
        fl.out("start", peer)
        doc = service.request("GET", f"/containers/{peer}/json").json()
        swagger.validate_response(doc, "GET", "/containers/{id}/json", 200, as_docker=True)
        ours = doc["NetworkSettings"]["Networks"][name]
        assert ours["IPAddress"] == "10.231.88.40", ours
        assert ours["IPAMConfig"] == {"IPv4Address": "10.231.88.40"}
        assert "IPv4Address" not in doc["HostConfig"]
        for endpoint, status, message in (
                ({"IPAMConfig": {"IPv4Address": "10.231.88.40"}}, 409, "Address already in use"),
                ({"IPAMConfig": {"IPv4Address": "10.231.89.4"}}, 400, "does not belong"),
                ({"IPAMConfig": {"IPv4Address": 7}}, 400, "IPv4Address"),
                ({"IPAMConfig": {"IPv6Address": "fd00::4"}}, 400, "IPv6Address"),
                ({"Links": ["nope-link"]}, 400, "Could not get container for nope-link")):
            answer = service.request("POST", f"/networks/{name}/connect",
                                     {"Container": name, "EndpointConfig": endpoint})
            assert message in _error(answer, status), (endpoint, answer)
        answer = service.request("POST", "/networks/bridge/connect", {
            "Container": peer, "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.210.0.9"}}})
        assert "user defined networks only" in _error(answer, 400)
        assert list(fl.inspect(name)["NetworkSettings"]["Networks"]) == ["bridge"]
        answer = service.request("POST", f"/networks/{name}/connect", {
            "Container": name, "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": "10.231.88.41"}, "Links": [f"{peer}:db"]}})
        assert answer.status == 200, answer
        fl.out("start", name)
        doc = service.request("GET", f"/containers/{cid}/json").json()
        swagger.validate_response(doc, "GET", "/containers/{id}/json", 200, as_docker=True)
        ours = doc["NetworkSettings"]["Networks"][name]
        assert (ours["IPAddress"], ours["Links"]) == ("10.231.88.41", [f"{peer}:db"]), ours
        hosts = fl.out("exec", name, "cat", "/etc/hosts").splitlines()
        assert any(ln.split()[:2] == ["10.231.88.40", "db"] for ln in hosts), hosts
    finally:
        fl.out("rm", "-f", name, peer)
        fl.out("network", "rm", name)


def _connect(service: Service, network: str, container: str, address: str) -> Answer:
    return service.request("POST", f"/networks/{network}/connect", {
        "Container": container, "EndpointConfig": {"IPAMConfig": {"IPv4Address": address}}})


@pytest.mark.parametrize("running", [True, False])
def test_two_connects_at_once_for_one_address(service: Service, fl: Forklift, name: str,
                                              running: bool) -> None:
    """Two containers asking at the same moment for one address on a network: one gets
    it, the other a 409 (not the CNI plugin's failure as a 500); a round per address."""
    subnet = "10.231.90" if running else "10.231.91"
    assert service.request("POST", "/networks/create", {
        "Name": name, "IPAM": {"Config": [{"Subnet": f"{subnet}.0/24"}]}}).status == 201
    pair = [f"{name[:20]}-{i}" for i in range(2)]
    try:
        for each in pair:
            fl.out("run", "-d", "--name", each, "busybox", "sleep", "300") if running else \
                fl.out("create", "--name", each, "busybox", "true")
        for round_ in range(4):
            address = f"{subnet}.{10 + round_}"
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(_connect, [service] * 2, [name] * 2, pair, [address] * 2))
            assert sorted(a.status for a in answers) == [200, 409], answers
            assert "Address already in use" in next(a for a in answers if a.status == 409).refusal(409)
            winner = pair[[a.status for a in answers].index(200)]
            assert fl.inspect(winner)["NetworkSettings"]["Networks"][name]["IPAMConfig"] == \
                {"IPv4Address": address}
            service.request("POST", f"/networks/{name}/disconnect", {"Container": winner})
    finally:
        fl("rm", "-f", *pair, check=False)
        fl("network", "rm", name, check=False)
