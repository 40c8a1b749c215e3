"""``ps --filter``, ``ps -s`` and ``inspect -s`` through the CLI, side by side with Docker
20.10 for the same containers made the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import Forklift
from support.cli import one_line_error
from support.docker import Docker


@pytest.fixture(scope="module")
def docker_busybox(docker: Docker, busybox_tar: Path) -> str:
    docker("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), "fl-ps-busybox:latest")
    return "fl-ps-busybox:latest"


def _make(cli: Forklift | Docker, image: str, p: str) -> None:
    """p-new (created, label a=1, volume), p-bad (exited 3 after writing 3 bytes, label a=2),
    p-up (running), then p-kid from an image committed from p-bad."""
    cli("create", "--name", f"{p}-new", "--network", "none", "-l", "a=1", "-v", f"{p}-vol:/data",
        image, "true")
    cli("run", "--name", f"{p}-bad", "--network", "none", "-l", "a=2", image,
        "sh", "-c", "echo hi > /f; exit 3", check=False)
    cli("run", "-d", "--name", f"{p}-up", "--network", "none", image, "sleep", "60")
    cli("commit", f"{p}-bad", f"{p}-child")
    cli("create", "--name", f"{p}-kid", "--network", "none", f"{p}-child", "true")


def _drop(cli: Forklift | Docker, p: str) -> None:
    cli("rm", "-f", f"{p}-new", f"{p}-bad", f"{p}-up", f"{p}-kid", check=False)
    cli("rmi", f"{p}-child", check=False)
    cli("volume", "rm", f"{p}-vol", check=False)


QUERIES = [
    [], ["-a"], ["-f", "status=exited"], ["-f", "status=created"], ["-f", "status=running"],
    ["-a", "-f", "exited=3"], ["-a", "-f", "exited=0"], ["-f", "exited=3"],
    ["-a", "-f", "label=a"], ["-a", "-f", "label=a=1"], ["-a", "-f", "label=b"],
    ["-a", "-f", "ancestor=IMAGE"], ["-a", "-f", "ancestor=P-child"], ["-a", "-f", "ancestor=nope"],
    ["-a", "-f", "volume=P-vol"], ["-a", "-f", "volume=/data"],
    ["-a", "-f", "network=none"], ["-a", "-f", "network=bridge"],
    ["-a", "-f", "health=none"], ["-a", "-f", "health=healthy"],
    ["-a", "-f", "is-task=false"], ["-a", "-f", "is-task=true"],
    ["-a", "-f", "before=P-up"], ["-a", "-f", "since=P-bad"], ["-f", "since=P-new"],
    ["-f", "before=P-kid"], ["-f", "before=P-bad"], ["-f", "label=a"],
    ["-a", "-f", "status=exited", "-f", "status=created"], ["-a", "-f", "name=-(up|kid)$"],
    ["-a", "-f", "expose=80"], ["-a", "-f", "publish=80-90/tcp"],
]
BAD = [["-f", "status=up"], ["-f", "exited=x"], ["-f", "health=sick"], ["-f", "bogus=1"],
       ["-f", "label!=a"], ["-f", "is-task=maybe"], ["-f", "publish=1:2"],
       ["-f", "expose=x"], ["-f", "since=P-nope"], ["-f", "before=P-nope"]]


@pytest.mark.docker
def test_ps_filters_match_docker(fl: Forklift, docker: Docker, docker_busybox: str):
    p = "fl-psf"
    _make(docker, docker_busybox, p)
    _make(fl, "busybox", p)
    try:
        for query in QUERIES:
            args = [a.replace("P-", f"{p}-") for a in query]
            theirs = docker("ps", "--format", "{{.Names}}", "-f", f"name=^/?{p}-", *[
                a.replace("IMAGE", docker_busybox) for a in args]).out
            ours = fl.out("ps", "--format", "{{.Names}}", "-f", f"name=^/?{p}-",
                          *[a.replace("IMAGE", "busybox") for a in args])
            assert ours.split() == theirs.split(), query
        for query in BAD:
            args = [a.replace("P-", f"{p}-") for a in query]
            theirs_res, ours_res = docker("ps", *args, check=False), fl("ps", *args, check=False)
            assert theirs_res.code != 0, query
            theirs_line = theirs_res.err.strip().splitlines()[-1]
            assert theirs_line.replace("Error response from daemon: ", "Error: ") \
                == one_line_error(ours_res), query
    finally:
        _drop(docker, p)
        _drop(fl, p)


@pytest.mark.docker
def test_sizes_match_docker(fl: Forklift, docker: Docker, docker_busybox: str):
    p = "fl-pss"
    for cli, image in ((docker, docker_busybox), (fl, "busybox")):
        cli("run", "--name", f"{p}-w", "--network", "none", image,
            "sh", "-c", "echo hello > /f; mkdir /d; ln /f /d/hard; ln -s /f /d/soft")
    try:
        fmt = "{{.SizeRw}}"
        theirs = int(docker("inspect", "-s", "--format", fmt, f"{p}-w").out)
        assert theirs == 6 + len("/f")   # the file once (a hard link is one inode), the link
        assert int(fl.out("container", "inspect", "-s", "--format", fmt, f"{p}-w")) == theirs
        assert int(fl.out("inspect", "--size", "--format", fmt, f"{p}-w")) == theirs
        assert docker("ps", "-a", "-s", "--format", "{{.Size}}", "-f", f"name={p}-w").out.split()[0] \
            == fl.out("ps", "-a", "-s", "--format", "{{.Size}}", "-f", f"name={p}-w").split()[0]
    finally:
        docker("rm", "-f", f"{p}-w", check=False)
        fl("rm", "-f", f"{p}-w", check=False)


def test_ps_size_column_and_inspect_size(fl: Forklift, name: str):
    fl("run", "--name", name, "--network", "none", "busybox", "sh", "-c", "head -c 2000 /bin/busybox > /x")
    try:
        image_size = int(fl.out("image", "inspect", "--format", "{{.Size}}", "busybox"))
        doc = json.loads(fl.out("container", "inspect", "-s", name))[0]
        assert (doc["SizeRw"], doc["SizeRootFs"]) == (2000, 2000 + image_size)
        keys = list(doc)
        assert keys.index("SizeRw") == keys.index("GraphDriver") + 1
        assert "SizeRw" not in json.loads(fl.out("container", "inspect", name))[0]
        table = fl.out("ps", "-a", "-s", "-f", f"name=^{name}$").splitlines()
        assert table[0].split()[-1] == "SIZE"
        assert re.search(r"  2kB \(virtual \d+(\.\d+)?MB\)$", table[1]), table[1]
        # a template naming .Size gets the sizes without -s, as Docker's CLI asks for them
        assert fl.out("ps", "-a", "--format", "{{.Size}}", "-f", f"name=^{name}$").startswith("2kB (virtual ")
        assert fl.out("ps", "-a", "-s", "-q", "-f", f"name=^{name}$").strip() == doc["Id"][:12]
    finally:
        fl("rm", name)
