"""``volume inspect`` and ``network inspect`` side by side with a private dockerd, and valid
against the Engine API's ``Volume`` and ``Network``; ``version``'s Server section against
the answer of GET /version."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import Forklift, shapes, swagger
from support.docker import Docker
from support.docker20 import docker20

pytestmark = pytest.mark.skipif(not swagger.available(),
                                reason=f"{swagger.SWAGGER} missing ({swagger.PACKAGE})")


def inspect(cli: Forklift | Docker, *args: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads(cli(*args).out)
    return docs


@pytest.mark.docker
def test_volume_documents_are_dockers(fl: Forklift, busybox: str, docker: Docker):
    docker, p = docker20(docker), "fl-vinsp"
    for cli in (docker, fl):
        cli("volume", "create", f"{p}-plain")
        cli("volume", "create", "--label", "a=b", "--label", "c=", f"{p}-labelled")
    try:
        names = (f"{p}-plain", f"{p}-labelled")
        theirs = inspect(docker, "volume", "inspect", *names)
        ours = inspect(fl, "volume", "inspect", *names)
        for t, o in zip(theirs, ours, strict=True):
            assert shapes.shape_differences(t, o) == []
            swagger.validate(o, "Volume")    # as the file says: Labels and Options not null
            swagger.validate(t, "Volume")
            for key in ("Name", "Driver", "Labels", "Options", "Scope"):
                assert o[key] == t[key], key
        # Docker's engine prints null Labels and Options for a volume a container's -v
        # made; forklift does not record how a volume was made and prints `volume create`'s
        fl("run", "--name", f"{p}-c", "--network", "none", "-v", f"{p}-implicit:/d",
           "busybox", "true")
        made = inspect(fl, "volume", "inspect", f"{p}-implicit")[0]
        assert (made["Labels"], made["Options"]) == ({}, {})
    finally:
        fl("rm", f"{p}-c", check=False)
        for cli in (docker, fl):
            cli("volume", "rm", f"{p}-plain", f"{p}-labelled", check=False)
        fl("volume", "rm", f"{p}-implicit", check=False)


@pytest.mark.docker
def test_network_documents_are_dockers(fl: Forklift, docker: Docker):
    """The private dockerd has no bridge network (--bridge=none): its none and host
    networks are compared; forklift's bridge and a user network are validated."""
    docker = docker20(docker)
    theirs = inspect(docker, "network", "inspect", "none", "host")
    ours = inspect(fl, "network", "inspect", "none", "host")
    for t, o in zip(theirs, ours, strict=True):
        assert shapes.shape_differences(t, o) == [], t["Name"]
        swagger.validate(o, "Network", as_docker=True)   # IPAM.Options: null, as Docker's
        swagger.validate(t, "Network", as_docker=True)
        for key in ("Name", "Driver", "Scope", "EnableIPv6", "IPAM", "Internal", "Attachable",
                    "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"):
            assert o[key] == t[key], (t["Name"], key)
    fl("network", "create", "--label", "k=v", "fl-ninsp")
    try:
        for doc in inspect(fl, "network", "inspect", "bridge", "fl-ninsp"):
            swagger.validate(doc, "Network", as_docker=True)
            assert isinstance(doc["IPAM"]["Config"][0]["Subnet"], str)
        user = inspect(fl, "network", "inspect", "fl-ninsp")[0]
        assert (user["IPAM"]["Options"], user["Labels"]) == ({}, {"k": "v"})
        swagger.validate(user, "Network")
    finally:
        fl("network", "rm", "fl-ninsp", check=False)


def test_version_server_document_is_valid(fl: Forklift):
    """``version``'s Server section is what GET /version answers (SystemVersion)."""
    server = json.loads(fl.out("version", "--format", "{{json .Server}}"))
    swagger.validate_response(server, "GET", "/version", 200)
    assert server["ApiVersion"] == "1.41"
