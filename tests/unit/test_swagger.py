"""The Engine API schema validator of tests/support/swagger.py itself: what it accepts,
what it refuses and where it says the mismatch is."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from support import swagger

pytestmark = pytest.mark.skipif(not swagger.available(),
                                reason=f"{swagger.SWAGGER} missing ({swagger.PACKAGE})")

VOLUME: dict[str, Any] = {
    "CreatedAt": "2026-11-30T13:40:00Z", "Driver": "local", "Labels": {"a": "b"},
    "Mountpoint": "/var/lib/forklift/volumes/v/_data", "Name": "v", "Options": {},
    "Scope": "local",
}
VERSION: dict[str, Any] = {
    "Platform": {"Name": "forklift"}, "Version": "1.0", "ApiVersion": "1.41",
    "MinAPIVersion": "1.12", "GitCommit": "", "GoVersion": "", "Os": "linux", "Arch": "amd64",
    "KernelVersion": "6.1", "BuildTime": "",
    "Components": [{"Name": "Engine", "Version": "1.0", "Details": {}}],
}


def changed(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


def test_a_good_document_passes():
    swagger.validate(VOLUME, "Volume")
    swagger.validate_response(VERSION, "GET", "/version", 200)
    swagger.validate_response(VERSION, "get", "/version", "200")


@pytest.mark.parametrize(("path", "value", "where"), [
    (("Name",), 7, "$.Name"),                                  # wrong type
    (("Labels", "a"), 1, "$.Labels.a"),                        # additionalProperties: string
    (("Scope",), "galaxy", "$.Scope"),                         # enum
    (("Labels",), None, "$.Labels"),                           # x-nullable: false
    (("Mountpoint",), _DELETE, "$"),                           # required
])
def test_a_mismatch_names_its_json_path(path, value, where):
    with pytest.raises(swagger.SchemaMismatch) as err:
        swagger.validate(changed(VOLUME, path, value), "Volume")
    assert err.value.path == where
    assert str(err.value).startswith(f"{where}: ")
    if value is _DELETE:
        assert "'Mountpoint' is a required property" in str(err.value)


def test_references_are_followed_into_nested_definitions():
    """ContainerInspectResponse -> HostConfig (allOf Resources) -> ThrottleDevice."""
    doc = {"HostConfig": {"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": "fast"}]}}
    with pytest.raises(swagger.SchemaMismatch) as err:
        swagger.validate_response(doc, "GET", "/containers/{id}/json", 200)
    assert err.value.path == "$.HostConfig.BlkioDeviceReadBps[0].Rate"
    doc["HostConfig"]["BlkioDeviceReadBps"][0]["Rate"] = 1024
    swagger.validate_response(doc, "GET", "/containers/{id}/json", 200)


def test_x_nullable_admits_null_and_nothing_else_does():
    swagger.validate_response({"State": None, "ExecIDs": None}, "GET", "/containers/{id}/json")
    with pytest.raises(swagger.SchemaMismatch, match=r"^\$\.Args: None is not of type"):
        swagger.validate_response({"Args": None}, "GET", "/containers/{id}/json")


def test_as_docker_admits_gos_null_slices_and_the_listed_quirks_only():
    doc = {"HostConfig": {"Links": None, "MemorySwappiness": None, "Isolation": "",
                          "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}}}
    with pytest.raises(swagger.SchemaMismatch, match=r"^\$\.HostConfig\."):
        swagger.validate_response(doc, "GET", "/containers/{id}/json")
    swagger.validate_response(doc, "GET", "/containers/{id}/json", as_docker=True)
    for path, value in [(("HostConfig", "Memory"), None), (("HostConfig", "Isolation"), "x"),
                        (("HostConfig", "RestartPolicy", "Name"), "sometimes")]:
        with pytest.raises(swagger.SchemaMismatch):
            swagger.validate_response(changed(doc, path, value), "GET", "/containers/{id}/json",
                                      as_docker=True)
    with pytest.raises(swagger.SchemaMismatch, match=r"^\$\.Labels"):  # x-nullable: false stays
        swagger.validate(changed(VOLUME, ("Labels",), None), "Volume", as_docker=True)


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="NoSuchThing"):
        swagger.validate({}, "NoSuchThing")
    with pytest.raises(KeyError, match="/nowhere"):
        swagger.validate_response({}, "GET", "/nowhere")
    with pytest.raises(KeyError, match="status 299"):
        swagger.validate_response({}, "GET", "/version", 299)
