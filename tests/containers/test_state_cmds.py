"""The commands of issue 13 that read and change running things: version, port, events,
stats, update, network connect/disconnect; through the real CLI and the engine API, with
Docker on this machine as the oracle for the shape of their output."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from support import Forklift
from support.cli import one_line_error
from support.docker import Docker

from forklift.engine.version import version
from forklift.errors import InvalidArgument

pytestmark = pytest.mark.root


def _labels(text: str) -> list[str]:
    """The ``Label:`` lines of a ``version`` section, without their values."""
    return [m.group(1) for m in re.finditer(r"^( *[A-Za-z/ ]+?):", text, re.M)]


# ----------------------------------------------------------------------------- version

def test_version_has_client_and_a_daemonless_server(fl: Forklift):
    out = fl.out("version")
    client, _, server = out.partition("\n\nServer: ")
    assert client.startswith("Client: forklift\n Version:")
    assert server.startswith("forklift (daemonless)\n Engine:\n  Version:")
    assert re.search(r"^  Daemon: +none: every forklift process is the engine", server, re.M)
    assert re.search(r"^ runc:\n  Version: +\d+\.\d+", server, re.M)
    # values start in one column, as Docker's tabwriter aligns them
    assert {line.index(line.split()[-1]) for line in out.splitlines()
            if line.startswith(" Version:") or line.startswith("  Version:")} == {20}


def test_version_format_reads_the_document(fl: Forklift):
    doc = version()
    assert fl.out("version", "--format", "{{.Client.Version}}") == doc["Client"]["Version"]
    printed = json.loads(fl.out("version", "--format", "{{json .}}"))
    assert set(printed) == {"Client", "Server"}
    assert printed["Server"]["Components"][0]["Name"] == "Engine"
    assert printed["Client"]["ApiVersion"] == printed["Server"]["ApiVersion"] == "1.41"


def test_version_bad_template_is_one_line_exit_64(fl: Forklift):
    res = fl("version", "--format", "{{.Client.Version", check=False)
    assert "Template parsing error" in one_line_error(res)
    assert res.code == 64


@pytest.mark.docker
def test_version_shape_matches_docker(fl: Forklift, docker: Docker):
    ours = json.loads(fl.out("version", "--format", "{{json .}}"))
    theirs = json.loads(docker("version", "--format", "{{json .}}").out)
    assert set(theirs) == set(ours)
    go_only = {"GoVersion", "Experimental"}
    for section in ("Client", "Server"):
        assert set(theirs[section]) - go_only <= set(ours[section]), section
    assert {c["Name"] for c in theirs["Server"]["Components"]} >= {"Engine", "runc"}
    assert {c["Name"] for c in ours["Server"]["Components"]} == {"Engine", "runc"}
    theirs_text, ours_text = docker("version").out, fl.out("version")
    common = {" Version", " API version", " OS/Arch", " Context", " Engine", "  Version",
              "  API version", "  OS/Arch", "  Experimental", " runc",
              "  GitCommit"}
    assert common <= set(_labels(theirs_text))
    assert common <= set(_labels(ours_text))
    assert theirs_text.startswith("Client:") and "\n\nServer:" in theirs_text


# ----------------------------------------------------------------------------- port

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_lists_and_looks_up_published_ports(fl: Forklift, name: str):
    tcp, udp = _free_port(), _free_port()
    fl("run", "-d", "--name", name, "-p", f"{tcp}:80", "-p", f"127.0.0.1:{udp}:53/udp",
       "busybox", "sleep", "1000")
    try:
        assert fl.out("port", name).splitlines() == [f"53/udp -> 127.0.0.1:{udp}",
                                                     f"80/tcp -> 0.0.0.0:{tcp}"]
        assert fl.out("port", name, "80") == f"0.0.0.0:{tcp}"
        assert fl.out("container", "port", name, "80/tcp") == f"0.0.0.0:{tcp}"
        assert fl.out("port", name, "53/udp") == f"127.0.0.1:{udp}"
        res = fl("port", name, "53", check=False)
        assert one_line_error(res) == f"Error: No public port '53/tcp' published for {name}"
        assert "Invalid containerPort" in one_line_error(fl("port", name, "http", check=False))
        assert "Invalid proto" in one_line_error(fl("port", name, "80/xyz", check=False))
        fl("stop", "-t", "0", name)
        # a container that does not run publishes nothing, as in Docker
        assert fl.out("port", name) == ""
        assert "No public port '80/tcp'" in one_line_error(fl("port", name, "80", check=False))
    finally:
        fl("rm", "-f", name)


def test_port_of_an_unknown_container(fl: Forklift):
    assert "No such container: nope-t" in one_line_error(fl("port", "nope-t", check=False))
    assert one_line_error(fl("port", check=False)).startswith('Error: "forklift port" requires')


def test_port_engine_normalizes_private_ports():
    from forklift.engine.ports import normalize

    assert normalize("80") == "80/tcp" and normalize("53/UDP") == "53/udp"
    assert normalize("8080/") == "8080/tcp"
    for bad in ("0", "65536", "-1", "", "80/icmp", "1e3"):
        with pytest.raises(InvalidArgument):
            normalize(bad)


@pytest.fixture(scope="module")
def docker_busybox(docker: Docker, busybox_tar: Path) -> str:
    """busybox in the private dockerd (imported once per module)."""
    docker("import", str(busybox_tar), "fl-busybox:latest")
    return "fl-busybox:latest"


@pytest.mark.docker
def test_port_errors_match_docker(fl: Forklift, name: str, docker: Docker, docker_busybox: str):
    docker("create", "--name", name, "--network", "none", docker_busybox, "true")
    fl("create", "--name", name, "--network", "none", "busybox", "true")
    try:
        for args in ([name], [name, "80"], [name, "53/udp"], ["nope-t", "80"]):
            theirs, ours = docker("port", *args, check=False), fl("port", *args, check=False)
            assert (theirs.code == 0) == (ours.code == 0), args
            assert theirs.out == ours.out, args
            if theirs.code:
                # Docker 20.10 names the port with its protocol; this machine's newer
                # client names it as typed; forklift has no daemon to respond
                theirs_line = theirs.err.strip().splitlines()[-1].replace("'80'", "'80/tcp'")
                theirs_line = theirs_line.replace("Error response from daemon: ", "Error: ")
                assert theirs_line.lower() == one_line_error(ours).lower()
    finally:
        docker("rm", "-f", name, check=False)
        fl("rm", "-f", name)
