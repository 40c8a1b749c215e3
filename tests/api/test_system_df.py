"""``GET /system/df``, ``POST /containers/prune`` and ``POST /build/prune`` over raw HTTP
(against Docker's 1.41 schema) and through the docker CLI's ``system df`` and
``container prune``."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from support import Forklift, swagger
from support.service import Answer, Service

pytestmark = pytest.mark.root


def _error(answer: Answer, status: int) -> str:
    return answer.refusal(status)


def test_df_counts_images_containers_volumes(service: Service, fl: Forklift, name: str) -> None:
    fl.out("volume", "create", name)
    fl.out("run", "--name", name, "--network", "none", "-v", f"{name}:/data", "busybox",
           "sh", "-c", "head -c 70000 /dev/zero > /data/f; head -c 50000 /dev/zero > /f")
    try:
        answer = service.request("GET", "/v1.41/system/df")
        assert answer.status == 200, answer
        doc = answer.json()
        # the 1.41 file defines ContainerSummary as an array (of the summaries), so the
        # list of summaries is checked apart, each as a one-summary ContainerSummary
        swagger.validate_response({**doc, "Containers": []}, "GET", "/system/df", 200,
                                  as_docker=True)
        for summary in doc["Containers"]:
            swagger.validate([summary], "ContainerSummary", as_docker=True)
        image_id = fl.out("images", "-q", "--no-trunc").strip()
        (image,) = [i for i in doc["Images"] if i["Id"] == image_id]
        assert image["RepoTags"] == ["busybox:latest"] and image["Containers"] >= 1
        assert doc["LayersSize"] >= image["Size"] > 0
        (container,) = [c for c in doc["Containers"] if c["Names"] == ["/" + name]]
        assert container["SizeRw"] >= 50000 and container["State"] == "exited"
        (volume,) = [v for v in doc["Volumes"] if v["Name"] == name]
        assert volume["UsageData"]["RefCount"] == 1 and volume["UsageData"]["Size"] >= 70000
        assert doc["BuildCache"] == []
    finally:
        fl.out("rm", name)
        fl.out("volume", "rm", name)


def test_container_prune_removes_only_stopped(service: Service, fl: Forklift, name: str) -> None:
    fl.out("create", "--name", f"{name}-a", "--label", "k=v", "busybox", "true")
    fl.out("create", "--name", f"{name}-b", "busybox", "true")
    up = fl.out("run", "-d", "--name", f"{name}-up", "--network", "none", "busybox",
                "sleep", "60").strip()
    try:
        filters = urllib.parse.quote(json.dumps({"label": ["k=v"]}))
        answer = service.request("POST", f"/containers/prune?filters={filters}")
        swagger.validate_response(answer.json(), "POST", "/containers/prune", 200)
        names = fl.out("ps", "-a", "--format", "{{.Names}}").split()
        assert f"{name}-a" not in names and f"{name}-b" in names
        assert len(answer.json()["ContainersDeleted"]) == 1
        answer = service.request("POST", "/containers/prune")
        assert up not in answer.json()["ContainersDeleted"]
        names = fl.out("ps", "-a", "--format", "{{.Names}}").split()
        assert f"{name}-b" not in names and f"{name}-up" in names
    finally:
        fl.out("rm", "-f", up)


def test_prune_bad_filters_and_build_prune(service: Service, fl: Forklift) -> None:
    before = fl.out("ps", "-aq")
    _error(service.request("POST", "/containers/prune?filters=%7Bnope"), 400)
    bogus = urllib.parse.quote(json.dumps({"dangling": ["true"]}))
    _error(service.request("POST", f"/containers/prune?filters={bogus}"), 400)
    assert fl.out("ps", "-aq") == before
    answer = service.request("POST", "/build/prune")
    swagger.validate_response(answer.json(), "POST", "/build/prune", 200)
    assert answer.json() == {"CachesDeleted": [], "SpaceReclaimed": 0}


@pytest.mark.usefixtures("docker_cli")
def test_docker_cli_system_df_and_container_prune(service: Service, fl: Forklift,
                                                  name: str) -> None:
    rows = service.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}").lines
    assert rows[0] == "Images 1" and rows[3].startswith("Build Cache 0")
    verbose = service.docker("system", "df", "-v").out
    assert "busybox" in verbose
    fl.out("create", "--name", name, "busybox", "true")
    out = service.docker("container", "prune", "-f").out
    assert fl.out("ps", "-aq", "-f", f"name=^{name}$") == ""
    assert "Total reclaimed space" in out
