"""``container inspect`` in Docker 20.10's complete shape, side by side with a private
dockerd for the same containers (created with many flags, running, exited), and valid
against the Engine API schema (tests/support/swagger.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from support import Forklift, shapes, swagger
from support.docker import Docker
from support.images import PATH_ENV

needs_schema = pytest.mark.skipif(not swagger.available(),
                                  reason=f"{swagger.SWAGGER} missing ({swagger.PACKAGE})")
INSPECT = ("GET", "/containers/{id}/json", 200)

# Docker's containers are made by a dockerd started with --bridge=none, which marks their
# config "network disabled"; nothing else about them depends on it.
DOCKER_ONLY = {"Config": {"NetworkDisabled"}}


# Docker's fields that are null in a plain container (nil slices print [], nil pointers
# <nil>) and the zero values of the complete HostConfig
TEMPLATES = [
    "{{.HostConfig.Ulimits}}|{{.ExecIDs}}|{{.HostConfig.PidsLimit}}|{{.HostConfig.Links}}",
    "{{.HostConfig.BlkioDeviceReadBps}}|{{.HostConfig.DeviceRequests}}|{{.HostConfig.Binds}}",
    "{{.NetworkSettings.SecondaryIPAddresses}}|{{.HostConfig.MemorySwappiness}}",
    "{{.NetworkSettings.Networks.bridge.IPAMConfig}}|{{.NetworkSettings.Networks.bridge.Aliases}}",
    "{{.HostConfig.BlkioWeightDevice}}|{{.HostConfig.ConsoleSize}}|{{.HostConfig.Dns}}",
    "{{.Config.Labels}}|{{json .Config.Labels}}|{{.HostConfig.ShmSize}}|{{.HostConfig.IpcMode}}",
    "{{json .HostConfig.LogConfig}}|{{.HostConfig.ReadonlyPaths}}|{{.LogPath}}|{{.RestartCount}}",
    "{{.HostConfig.CgroupnsMode}}|{{.HostConfig.Runtime}}|{{json .HostConfig.RestartPolicy}}",
    # fields Go's JSON leaves out when empty, which a template over the struct still finds
    "{{.HostConfig.Init}}|{{.HostConfig.Tmpfs}}|{{.HostConfig.Sysctls}}|{{.HostConfig.Mounts}}",
    "{{.Config.ExposedPorts}}|{{.Config.Healthcheck}}|{{.Config.StopTimeout}}|{{.Config.Shell}}",
    "{{.State.Health}}|{{.SizeRw}}|{{.SizeRootFs}}|{{json .Config}}|{{json .State}}",
]


def flags(bind_dir: Path) -> list[str]:
    return [
        "--network", "bridge", "-e", "A=1", "-w", "/tmp", "-u", "0:0", "--expose", "81",
        "-v", "/anon", "-v", f"{bind_dir}:/b:ro", "-l", "k=v", "--read-only",
        "--stop-signal", "SIGUSR1", "-t", "-i", "-p", "8080:80", "--dns", "192.0.2.53",
        "--add-host", "h:192.0.2.4", "--memory", "64m", "--memory-swap", "128m",
        "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50",
        "--ulimit", "nofile=100:200", "--mount", "type=tmpfs,target=/mt",
        "--tmpfs", "/tt:size=1m", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--init",
        "--restart", "on-failure:3", "--health-cmd", "true", "--health-interval", "5s",
        "--shm-size", "32m", "--sysctl", "net.ipv4.ip_forward=1",
        "--dns-search", "example.com", "--dns-option", "ndots:2",
        "--domainname", "dom.example", "--group-add", "10", "--oom-score-adj", "100",
        "--memory-reservation", "32m", "--memory-swappiness", "10", "--cpuset-mems", "0",
        "--log-driver", "json-file", "--log-opt", "max-size=1m", "--stop-timeout", "7",
        "--device", "/dev/null:/dev/mynull", "--device-cgroup-rule", "c 1:3 rwm",
        "--pid", "host", "--ipc", "shareable", "--uts", "host", "--cgroupns", "private",
    ]


@pytest.fixture(scope="module")
def docker_busybox(docker20: Docker, busybox_tar: Path) -> str:
    docker = docker20
    docker("import", "-c", f"ENV {PATH_ENV}", "-c", 'CMD ["sh"]', str(busybox_tar),
           "fl-inspect-busybox:latest")
    return "fl-inspect-busybox:latest"


def docker_id(docker: Docker, name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).out.strip()[:12]


def both_inspect(docker: Docker, fl: Forklift, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    theirs = json.loads(docker("inspect", name).out)[0]
    # Docker lists the exec sessions it is running (a health probe in flight, at random);
    # forklift keeps no exec sessions (a named difference): ExecIDs is always null
    if theirs["ExecIDs"] is not None and theirs["State"].get("Health"):
        theirs["ExecIDs"] = None
    return theirs, json.loads(fl.out("inspect", name))[0]


@pytest.mark.docker
@needs_schema
def test_created_with_many_flags_is_dockers_document(fl: Forklift, busybox: str, docker20: Docker,
                                                     docker_busybox: str, tmp_path: Path):
    docker = docker20
    name = "fl-insp-flags"
    for cli, image in ((docker, docker_busybox), (fl, "busybox")):
        cli("create", "--name", name, *flags(tmp_path), image, "true")
    try:
        theirs, ours = both_inspect(docker, fl, name)
        mounts_theirs, mounts_ours = theirs.pop("Mounts"), ours.pop("Mounts")
        assert shapes.shape_differences(theirs, ours, docker_only=DOCKER_ONLY) == []
        assert (ours["Driver"], ours["GraphDriver"]["Name"]) \
            == (theirs["Driver"], theirs["GraphDriver"]["Name"]) == ("overlay2", "overlay2")
        # in Docker's order of a Go map: compared by destination; both make the anonymous
        # volume (-v /anon) at create, each with its own random name under its own root
        def comparable(mounts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            anonymous = {"Name", "Source"}
            return {m["Destination"]: {k: v for k, v in m.items()
                                       if m["Destination"] != "/anon" or k not in anonymous}
                    for m in mounts}

        assert comparable(mounts_ours) == comparable(mounts_theirs)
        anon = next(m for m in mounts_ours if m["Destination"] == "/anon")
        assert len(anon["Name"]) == 64 and anon["Source"].endswith(f"/{anon['Name']}/_data")
        assert len(ours["HostConfig"]) == 65 + 4   # and Tmpfs, Sysctls, Mounts, Init: given
        # forklift also masks /sys/devices/virtual/powercap, as Docker does since 23.0
        differ = {"MaskedPaths"}
        hc_theirs, hc_ours = theirs["HostConfig"], ours["HostConfig"]
        assert {k: v for k, v in hc_ours.items() if k not in differ} \
            == {k: v for k, v in hc_theirs.items() if k not in differ}
        assert (hc_ours["CapAdd"], hc_ours["CapDrop"]) == (["NET_ADMIN"], ["CHOWN"])
        assert set(hc_ours["MaskedPaths"]) >= set(hc_theirs["MaskedPaths"])
        cfg_theirs, cfg_ours = theirs["Config"], ours["Config"]
        assert cfg_ours["Env"] == ["A=1", PATH_ENV]    # the container's variables first
        for cfg in (cfg_theirs, cfg_ours):
            cfg.pop("Hostname")     # the container's short ID
            cfg.pop("Image")        # the name each was given
        assert cfg_ours == cfg_theirs
        swagger.validate_response({**ours, "Mounts": mounts_ours}, *INSPECT, as_docker=True)
        swagger.validate_response({**theirs, "Mounts": mounts_theirs}, *INSPECT, as_docker=True)
    finally:
        docker("rm", "-f", "-v", name, check=False)
        fl("rm", "-f", "-v", name, check=False)


@pytest.mark.docker
@needs_schema
def test_created_running_and_exited_are_dockers_documents(fl: Forklift, busybox: str,
                                                          docker20: Docker, docker_busybox: str):
    docker, p = docker20, "fl-insp"
    for cli, image in ((docker, docker_busybox), (fl, "busybox")):
        cli("create", "--name", f"{p}-new", image, "true")
        cli("run", "-d", "--name", f"{p}-up", "--network", "none", "--health-cmd", "true",
            "--health-interval", "1s", image, "sleep", "60")
        cli("run", "--name", f"{p}-down", "--network", "none", image, "sh", "-c", "exit 3",
            check=False)
    try:
        deadline = time.monotonic() + 30   # a first health probe in both, for its Log's shape
        while not all(json.loads(cli("inspect", f"{p}-up").out)[0]["State"]["Health"]["Log"]
                      for cli in (docker, fl)):
            assert time.monotonic() < deadline, "no health probe ran within 30 s"
            time.sleep(0.2)
        for suffix in ("new", "up", "down"):
            theirs, ours = both_inspect(docker, fl, f"{p}-{suffix}")
            assert shapes.shape_differences(theirs, ours, docker_only=DOCKER_ONLY) == [], suffix
            assert len(ours["HostConfig"]) == 65
            swagger.validate_response(ours, *INSPECT, as_docker=True)
            swagger.validate_response(theirs, *INSPECT, as_docker=True)
            assert ours["Config"]["Labels"] == {}
            assert (ours["State"]["Status"], ours["State"]["ExitCode"]) \
                == (theirs["State"]["Status"], theirs["State"]["ExitCode"])
        for template in TEMPLATES:
            theirs_out = docker("inspect", "-f", template, f"{p}-new").out.strip()
            ours_out = fl.out("inspect", "-f", template, f"{p}-new")
            if "{{json .Config}}" in template:   # the container's short ID: its hostname
                theirs_out = theirs_out.replace(docker_id(docker, f"{p}-new"), "ID")
                ours_out = ours_out.replace(fl.inspect(f"{p}-new")["Id"][:12], "ID")
                theirs_out = theirs_out.replace(docker_busybox, "busybox")
            assert ours_out == theirs_out, template
        for cli in (docker, fl):   # inside a chain the field is missing from the JSON
            err = cli("inspect", "-f", "{{.State.Health.Status}}", f"{p}-new", check=False)
            assert err.code != 0 and 'map has no entry for key "Health"' in err.err
        # forklift records the network it attaches a container to; Docker's CLI sends
        # "default", which its engine resolves to the bridge network at start
        assert (docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", f"{p}-new").out.strip(),
                fl.out("inspect", "-f", "{{.HostConfig.NetworkMode}}", f"{p}-new")) \
            == ("default", "bridge")
        for suffix in ("up", "down"):
            sized = json.loads(fl.out("inspect", "-s", f"{p}-{suffix}"))[0]
            swagger.validate_response(sized, *INSPECT, as_docker=True)
            assert isinstance(sized["SizeRw"], int) and isinstance(sized["SizeRootFs"], int)
        for key in ("ExtraNetworks", "AnonymousVolumes", "NetworkAliases"):
            assert key not in ours["HostConfig"]
        assert fl.inspect(f"{p}-new")["LogPath"] == ""       # no log before the first start
        log = Path(fl.inspect(f"{p}-down")["LogPath"])
        assert log.name == fl.inspect(f"{p}-down")["Id"] + "-json.log" and log.is_file()
    finally:
        docker("rm", "-f", f"{p}-new", f"{p}-up", f"{p}-down", check=False)
        fl("rm", "-f", f"{p}-new", f"{p}-up", f"{p}-down", check=False)


@pytest.mark.root
@needs_schema
def test_a_container_on_two_networks_is_a_valid_document(fl: Forklift, busybox: str):
    """Live endpoints (a user network with an alias, then one connected): the complete
    endpoint keys, the schema's types, and no internal HostConfig key."""
    net, other, name = "fl-insp-net", "fl-insp-net2", "fl-insp-on-net"
    fl("network", "create", net)
    fl("network", "create", other)
    try:
        fl("run", "-d", "--name", name, "--network", net, "--network-alias", "web",
           "busybox", "sleep", "60")
        fl("network", "connect", other, name)
        doc = fl.inspect(name)
        swagger.validate_response(doc, *INSPECT, as_docker=True)
        endpoints = doc["NetworkSettings"]["Networks"]
        assert sorted(endpoints) == sorted([net, other])
        for endpoint in endpoints.values():
            assert list(endpoint) == [
                "IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway",
                "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address",
                "GlobalIPv6PrefixLen", "MacAddress", "DriverOpts"]
            assert endpoint["IPAddress"] and endpoint["NetworkID"]
        assert "web" in endpoints[net]["Aliases"]
        assert not {"ExtraNetworks", "NetworkAliases"} & set(doc["HostConfig"])
        assert len(doc["HostConfig"]) == 65
        fl("kill", name)   # stopped: the connected network is kept for the next start
        doc = fl.inspect(name)
        swagger.validate_response(doc, *INSPECT, as_docker=True)
        assert sorted(doc["NetworkSettings"]["Networks"]) == sorted([net, other])
        assert len(doc["HostConfig"]) == 65
        assert fl.out("ps", "-a", "-q", "-f", f"network={other}") == doc["Id"][:12]
    finally:
        fl("rm", "-f", name, check=False)
        fl("network", "rm", net, other, check=False)
