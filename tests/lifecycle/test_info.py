"""``info``: Docker 20.10's layout and ``SystemInfo`` document, with values true for this
host and this store; ``--format`` compared with Docker's on the private dockerd."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
from support import swagger
from support.cli import Forklift
from support.docker import Docker
from support.docker20 import docker20


def info(fl: Forklift) -> dict:
    return json.loads(fl.out("info", "--format", "{{json .}}"))


@pytest.mark.root
def test_info_counts_what_the_store_holds_and_reads_the_host(fl: Forklift, busybox: str) -> None:
    fl("create", "--name", "made", "busybox", "true")
    fl("run", "--name", "done", "--network", "none", "busybox", "true")
    fl("run", "-d", "--name", "up", "--network", "none", "busybox", "sleep", "60")
    try:
        doc = info(fl)
        assert (doc["Containers"], doc["ContainersRunning"], doc["ContainersPaused"],
                doc["ContainersStopped"]) == (3, 1, 0, 2)
        assert doc["Images"] == 1
        assert doc["DockerRootDir"] == str(fl.root)
        assert doc["KernelVersion"] == os.uname().release
        assert doc["Architecture"] == platform.machine()
        assert doc["NCPU"] == len(os.sched_getaffinity(0))
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
        assert doc["MemTotal"] == int(meminfo[1]) * 1024
        v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        assert doc["CgroupVersion"] == ("2" if v2 else "1")
        assert ("name=cgroupns" in doc["SecurityOptions"]) == v2
        status = dict(doc["DriverStatus"])
        assert status["Supports d_type"] == "true" and status["Layers"] == "1"
        assert doc["ID"] == info(fl)["ID"]   # stable without storing anything
        fl("pause", "up")
        doc = info(fl)
        assert (doc["ContainersRunning"], doc["ContainersPaused"]) == (0, 1)
        fl("unpause", "up")
    finally:
        fl("rm", "-f", "up")


@pytest.mark.root
def test_info_prints_dockers_layout(fl: Forklift, busybox: str) -> None:
    out = fl.out("info")
    lines = out.splitlines()
    assert lines[:3] == ["Client:", " Context:    default", " Debug Mode: false"]
    for line in [" Containers: 0", "  Running: 0", " Images: 1", " Storage Driver: overlay2",
                 "  Backing Filesystem: ", " Cgroup Version: ", " Default Runtime: runc",
                 " runc version: ", f" Docker Root Dir: {fl.root}", "  Layers: 1",
                 " Kernel Version: ", " Total Memory: ", " Insecure Registries:",
                 "  127.0.0.0/8"]:
        assert any(x.startswith(line) for x in lines), (line, out)
    assert "no daemon" in out


@pytest.mark.root
def test_info_format_errors(fl: Forklift) -> None:
    res = fl("info", "-f", "{{.Nope", check=False)
    assert res.code == 64 and res.out == ""
    assert res.err.strip() == "Error: template parsing error: template: :1: unclosed action"
    res = fl("info", "--format", "{{.Nope}}", check=False)
    assert res.code == 1 and res.out == "" and len(res.err.strip().splitlines()) == 1
    assert fl.out("info", "-f", "{{.OSType}} {{len .DriverStatus}} {{.Swarm.LocalNodeState}}") \
        == "linux 5 inactive"


@pytest.mark.docker
def test_info_json_has_dockers_keys(fl: Forklift, docker: Docker) -> None:
    d20 = docker20(docker)
    want = json.loads(d20("info", "--format", "{{json .}}").out)
    got = info(fl)
    assert sorted(got) == sorted(want)
    if swagger.available():   # Docker's own document passes the schema checks forklift's does
        swagger.validate_response({k: v for k, v in want.items() if k != "ClientInfo"},
                                  "GET", "/info", 200, as_docker=True)
    for key in ("Plugins", "RegistryConfig", "Swarm", "ClientInfo", "RuncCommit"):
        assert sorted(got[key]) == sorted(want[key]), key
    for key, value in want.items():   # the same JSON types
        assert type(got[key]) is type(value) or value is None or got[key] is None, key
    for key in ("OSType", "Architecture", "KernelVersion", "OperatingSystem", "NCPU",
                "MemTotal", "CgroupVersion", "IndexServerAddress", "Name", "IPv4Forwarding",
                "MemoryLimit", "SwapLimit", "CPUShares", "CPUSet", "PidsLimit"):
        assert got[key] == want[key], key
    template = "{{.OSType}}/{{.Architecture}} {{.NCPU}} {{.Plugins.Volume}} {{.Swarm.LocalNodeState}}"
    assert fl.out("info", "-f", template) == d20("info", "-f", template).out.strip()


def labels(text: str) -> list[str]:
    return [line.split(":", 1)[0] for line in text.splitlines()]


@pytest.mark.docker
def test_info_prints_dockers_lines(fl: Forklift, docker: Docker) -> None:
    want = labels(docker20(docker)("info").out)
    want.remove(" containerd version")   # no containerd under forklift
    got = labels(fl("info").out)
    got.remove("  Layers")                # forklift's own, under the storage driver
    # Docker lists only the HTTP proxies it has; they come from the environment
    assert [x for x in got if "Proxy" not in x] == [x for x in want if "Proxy" not in x]


@pytest.mark.root
@pytest.mark.skipif(not swagger.available(), reason=f"{swagger.SWAGGER} missing")
def test_info_document_is_the_engine_apis_system_info(fl: Forklift, busybox: str) -> None:
    doc = info(fl)
    doc.pop("ClientInfo")   # the CLI's own section, not part of GET /info
    swagger.validate_response(doc, "GET", "/info", 200, as_docker=True)
    with pytest.raises(swagger.SchemaMismatch):   # the check can fail
        swagger.validate_response({**doc, "NCPU": "2"}, "GET", "/info", 200, as_docker=True)
