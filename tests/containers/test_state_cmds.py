"""The commands of issue 13 that read and change running things: version, port, events,
stats, update, network connect/disconnect; through the real CLI and the engine API, with
Docker on this machine as the oracle for the shape of their output."""

from __future__ import annotations

import json
import re

import pytest
from support import Forklift
from support.cli import one_line_error
from support.docker import Docker

from forklift.engine.version import version

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
