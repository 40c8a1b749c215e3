"""The image endpoints over raw HTTP (answers against Docker's 1.41 schema, hostile input
refused in one line with the store unchanged) and through the real docker CLI: tag, rmi,
history, commit, import, save/load, prune, pull/push/login against a real registry."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from support import Forklift
from support.registry import Registry, bcrypt_line, running_registry
from support.service import Answer, Service
from support.swagger import required as swagger_required
from support.tarcraft import tar_of

pytestmark = pytest.mark.root


def _error(answer: Answer, status: int) -> str:
    return answer.refusal(status)


def _ids(fl: Forklift) -> list[str]:
    return sorted(fl.out("images", "-aq", "--no-trunc").split())


def _state(fl: Forklift) -> list[str]:
    """Every image and tag of the store."""
    return sorted(fl.out("images", "-a", "--no-trunc", "--format",
                         "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines())



# ----------------------------------------------------------------------------- tag, rmi, history

def test_tag_history_rmi(service: Service, fl: Forklift) -> None:
    swagger = swagger_required()
    image_id = fl.inspect("busybox")["Id"]
    assert service.request("POST", "/v1.41/images/busybox/tag?repo=example.com/a/b&tag=1").status == 201
    assert fl.inspect("example.com/a/b:1")["Id"] == image_id
    history = service.request("GET", "/v1.41/images/example.com/a/b:1/history")
    assert history.status == 200
    swagger.validate_response(history.json(), "GET", "/images/{name}/history", 200)
    top = history.json()[0]
    assert top["Id"] == image_id and "example.com/a/b:1" in top["Tags"]
    removed = service.request("DELETE", "/v1.41/images/example.com/a/b:1")
    assert removed.status == 200
    swagger.validate_response(removed.json(), "DELETE", "/images/{name}", 200)
    assert removed.json() == [{"Untagged": "example.com/a/b:1"}]
    assert _ids(fl) == [image_id]


def test_tag_rmi_history_errors(service: Service, fl: Forklift) -> None:
    before = _state(fl)
    assert "nosuch" in _error(service.request("POST", "/images/nosuch/tag?repo=x"), 404)
    _error(service.request("POST", "/images/busybox/tag?repo=UPPER"), 400)
    _error(service.request("POST", "/images/busybox/tag?repo=a&tag=b@c"), 400)
    _error(service.request("POST", "/images/busybox/tag"), 400)
    _error(service.request("DELETE", "/images/nosuch:1"), 404)
    _error(service.request("GET", "/images/nosuch/history"), 404)
    assert _state(fl) == before


def test_rmi_of_used_image_is_409(service: Service, fl: Forklift, name: str,
                                  tmp_path: Path) -> None:
    (tmp_path / "used.tar").write_bytes(tar_of({"bin/true": b"x"}))
    image_id = fl.out("import", str(tmp_path / "used.tar"), "used:1")
    fl("create", "--name", name, "used:1", "true")
    try:
        message = _error(service.request("DELETE", "/images/used:1"), 409)
        assert "is using its referenced image" in message
        assert "stopped container" in _error(service.request("DELETE", f"/images/{image_id}"), 409)
        assert fl.inspect("used:1")["Id"] == image_id
        forced = service.request("DELETE", "/images/used:1?force=1")
        assert forced.json() == [{"Untagged": "used:1"}, {"Deleted": image_id}]
    finally:
        fl("rm", "-f", name)


# ----------------------------------------------------------------------------- commit

def test_commit_with_body_changes_and_errors(service: Service, fl: Forklift, name: str) -> None:
    swagger = swagger_required()
    fl("run", "--name", name, "busybox", "sh", "-c", "echo hi > /made")
    try:
        before = _ids(fl)
        _error(service.request("POST", "/commit?container=nosuch&repo=x"), 404)
        _error(service.request("POST", f"/commit?container={name}&repo=Bad:Ref"), 400)
        _error(service.request("POST", f"/commit?container={name}", b"[1]"), 400)
        _error(service.request("POST", f"/commit?container={name}", {"Cmd": 3}), 400)
        _error(service.request("POST", "/commit"), 400)
        assert _ids(fl) == before
        answer = service.request(
            "POST", f"/v1.41/commit?container={name}&repo=committed&tag=2&comment=note"
            "&author=me&changes=ENV%20A%3D1&changes=LABEL%20k%3Dv",
            {"Cmd": ["cat", "/made"], "WorkingDir": "/tmp"})
        assert answer.status == 201, answer
        swagger.validate_response(answer.json(), "POST", "/commit", 201)
        doc = fl.inspect("committed:2")
        assert doc["Id"] == answer.json()["Id"]
        assert doc["Config"]["Cmd"] == ["cat", "/made"] and doc["Config"]["WorkingDir"] == "/tmp"
        assert "A=1" in doc["Config"]["Env"] and doc["Config"]["Labels"] == {"k": "v"}
        assert (doc["Comment"], doc["Author"]) == ("note", "me")
        assert fl.out("run", "--rm", "committed:2") == "hi"
        fl("rmi", "committed:2")
    finally:
        fl("rm", "-f", name)


# ----------------------------------------------------------------------------- import, save, load

def test_import_from_body(service: Service, fl: Forklift) -> None:
    body = tar_of({"hello.txt": b"imported\n"})
    answer = service.request("POST", "/v1.41/images/create?fromSrc=-&repo=flat&tag=1"
                             "&message=from%20api&changes=CMD%20%5B%22cat%22%5D", body,
                             headers={"Content-Type": "application/x-tar"})
    image_id = Answer.json_lines(answer)[-1]["status"]
    doc = fl.inspect("flat:1")
    assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["cat"]
    assert doc["Comment"] == "from api"
    fl("rmi", "flat:1")


@pytest.mark.parametrize("body", [b"not a tarball at all" * 100, b"\0" * 10])
def test_import_and_load_refuse_a_brokentar_of(service: Service, fl: Forklift, body: bytes) -> None:
    before = _state(fl)
    for path in ("/images/create?fromSrc=-&repo=broken", "/images/load"):
        answer = service.request("POST", path, body, headers={"Content-Type": "application/x-tar"})
        assert answer.status in (400, 500), answer
        _error(answer, answer.status)
    _error(service.request("POST", "/images/load", b""), 400)
    _error(service.request("POST", "/images/create"), 400)
    _error(service.request("POST", "/images/create?fromSrc=http://example.com/x.tar"), 400)
    assert _state(fl) == before
    assert not [n for n in os.listdir(Path(fl.root) / "tmp") if "api-upload" in n]


def test_save_then_load_round_trip(service: Service, fl: Forklift) -> None:
    fl("tag", "busybox", "saved:1")
    saved = service.request("GET", "/v1.41/images/saved:1/get")
    assert saved.status == 200 and saved.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(saved.body)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["saved:1"]
    both = service.request("GET", "/images/get?names=saved:1&names=busybox")
    assert both.status == 200 and len(both.body) >= len(saved.body)
    _error(service.request("GET", "/images/nosuch/get"), 404)
    _error(service.request("GET", "/images/get?names=busybox&names=nosuch"), 404)
    _error(service.request("GET", "/images/get"), 400)
    fl("rmi", "saved:1")
    loaded = service.request("POST", "/images/load?quiet=1", saved.body,
                             headers={"Content-Type": "application/x-tar"})
    assert Answer.json_lines(loaded) == [{"stream": "Loaded image: saved:1\n"}]
    assert fl.inspect("saved:1")["Id"] == fl.inspect("busybox")["Id"]
    fl("rmi", "saved:1")


def test_prune_dangling(service: Service, fl: Forklift) -> None:
    swagger = swagger_required()
    body = tar_of({"dangling.txt": b"x\n"})
    image_id = Answer.json_lines(service.request("POST", "/images/create?fromSrc=-", body))[-1]["status"]
    _error(service.request("POST", "/images/prune?filters=%7B%22nokey%22%3A%5B%22x%22%5D%7D"), 400)
    assert image_id in _ids(fl)
    pruned = service.request("POST", "/v1.41/images/prune?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D")
    assert pruned.status == 200
    swagger.validate_response(pruned.json(), "POST", "/images/prune", 200)
    assert {"Deleted": image_id} in pruned.json()["ImagesDeleted"]
    assert image_id not in _ids(fl) and fl.inspect("busybox")["Id"]


def test_list_filters(service: Service, fl: Forklift) -> None:
    from urllib.parse import quote

    swagger = swagger_required()
    labelled = Answer.json_lines(service.request("POST", "/images/create?fromSrc=-&repo=listed:1"
                                      "&changes=LABEL%20team%3Dapi", tar_of({"a": b"a"})))[-1]["status"]
    dangling = Answer.json_lines(service.request("POST", "/images/create?fromSrc=-", tar_of({"b": b"b"})))[-1]["status"]
    try:
        def ids(filters: dict[str, list[str]]) -> list[str]:
            answer = service.request("GET", "/v1.41/images/json?filters=" + quote(json.dumps(filters)))
            assert answer.status == 200, answer
            swagger.validate_response(answer.json(), "GET", "/images/json", 200)
            return sorted(doc["Id"] for doc in answer.json())

        assert ids({"dangling": ["true"]}) == [dangling]
        assert ids({"label": ["team=api"]}) == [labelled]
        assert ids({"reference": ["listed:*"]}) == [labelled]
        assert ids({"reference": ["busy*"]}) == [fl.inspect("busybox")["Id"]]
        _error(service.request("GET", "/images/json?filters=" + quote('{"dangling": ["maybe"]}')), 400)
    finally:
        fl("rmi", "listed:1", dangling)


def test_listing_equals_each_inspect(service: Service, fl: Forklift, name: str) -> None:
    """Each ImageSummary says what the image's inspect says (labels and parents read in
    one pass, labels kept across listings: a second listing answers the same)."""
    labelled = Answer.json_lines(service.request("POST", "/images/create?fromSrc=-&repo=summed:1"
                                      "&changes=LABEL%20team%3Dapi", tar_of({"a": b"a"})))[-1]["status"]
    fl("tag", "summed:1", "summed:2")
    fl("create", "--name", name, "summed:1", "true")
    try:
        child = service.request("POST", f"/commit?container={name}&repo=summed-child&tag=1"
                                "&changes=LABEL%20more%3Dyes").json()["Id"]
        first = service.request("GET", "/images/json").json()
        swagger_required().validate_response(first, "GET", "/images/json", 200)
        assert service.request("GET", "/images/json").json() == first
        rows = {row["Id"]: row for row in first}
        assert {labelled, child} <= set(rows)
        for image_id, row in rows.items():
            doc = service.request("GET", f"/images/{image_id}/json").json()
            assert (row["Labels"], row["ParentId"], row["Size"], sorted(row["RepoTags"])) == (
                doc["Config"]["Labels"] or {}, doc["Parent"], doc["Size"],
                sorted(doc["RepoTags"]) or ["<none>:<none>"]), image_id
        assert rows[labelled]["Labels"] == {"team": "api"}
        assert sorted(rows[labelled]["RepoTags"]) == ["summed:1", "summed:2"]
        assert rows[child]["Labels"] == {"team": "api", "more": "yes"}
        assert rows[child]["ParentId"] == labelled
        # a listing kept by the service is never older than the store: a tag made through
        # the service (a worker thread's connection) or by another process shows at once
        assert service.request("POST", "/images/summed:1/tag?repo=summed&tag=3").status == 201
        assert "summed:3" in _tags_of(service, labelled)
        fl("tag", "summed:1", "summed:4")
        assert "summed:4" in _tags_of(service, labelled)
        fl("rmi", "summed:4")
        assert sorted(_tags_of(service, labelled)) == ["summed:1", "summed:2", "summed:3"]
    finally:
        fl("rm", "-f", name)
        fl("rmi", "summed-child:1", "summed:1", "summed:2", "summed:3", check=False)


def _tags_of(service: Service, image_id: str) -> list[str]:
    rows = service.request("GET", "/images/json").json()
    return list(next(row["RepoTags"] for row in rows if row["Id"] == image_id))


# ----------------------------------------------------------------------------- registry

USER, PASSWORD = "packager", "api-s3cret"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("api-auth-registry")
    (d / "htpasswd").write_text(bcrypt_line(USER, PASSWORD) + "\n")
    with running_registry(d, extra=f"auth:\n  htpasswd:\n    realm: test\n"
                                   f"    path: {d / 'htpasswd'}\n") as reg:
        yield reg


def _auth_header(user: str, password: str, server: str) -> dict[str, str]:
    doc = json.dumps({"username": user, "password": password, "serveraddress": server})
    return {"X-Registry-Auth": base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=")}


def test_push_and_pull_with_registry_auth(service: Service, fl: Forklift,
                                          auth_registry: Registry, tmp_path: Path) -> None:
    swagger = swagger_required()
    ref = f"{auth_registry.host}/api/app"
    (tmp_path / "own.tar").write_bytes(tar_of({"data": os.urandom(300_000)}))
    image_id = fl.out("import", str(tmp_path / "own.tar"), f"{ref}:1")  # a layer of its own
    denied = Answer.json_lines(service.request("POST", f"/images/{ref}/push?tag=1"))
    assert "error" in denied[-1] and denied[-1]["errorDetail"]["message"] == denied[-1]["error"]
    good = _auth_header(USER, PASSWORD, auth_registry.host)
    pushed = Answer.json_lines(service.request("POST", f"/v1.41/images/{ref}/push?tag=1", headers=good))
    assert not [m for m in pushed if "error" in m], pushed
    aux = pushed[-1]["aux"]
    assert aux["Tag"] == "1" and aux["Digest"].startswith("sha256:") and aux["Size"] > 0
    assert any(m.get("status") == "Pushed" for m in pushed)
    fl("rmi", f"{ref}:1")  # its layer goes with it: the pull downloads it
    pulled = Answer.json_lines(service.request("POST", f"/v1.41/images/create?fromImage={ref}&tag=1",
                                    headers=good))
    assert not [m for m in pulled if "error" in m], pulled
    assert pulled[0] == {"status": "Pulling from api/app", "id": "1"}
    downloads = [m for m in pulled if m.get("status") == "Downloading"]
    assert downloads and downloads[-1]["progressDetail"]["current"] == \
        downloads[-1]["progressDetail"]["total"] > 0
    assert any(m.get("status") == "Pull complete" and m["id"] == downloads[-1]["id"] for m in pulled)
    assert pulled[-1]["status"] == f"Status: Downloaded newer image for {ref}:1"
    for message in pulled:
        swagger.validate(message, "CreateImageInfo")
    for message in pushed:
        swagger.validate(message, "PushImageInfo")
    assert fl.inspect(f"{ref}:1")["Id"] == image_id
    fl("rmi", f"{ref}:1")
    assert not _holding(_service_config_dirs(service) + [fl.root], PASSWORD.encode())
    missing = Answer.json_lines(service.request("POST", f"/images/create?fromImage={ref}&tag=nosuch",
                                     headers=good))
    assert missing[-1]["error"] and "\n" not in missing[-1]["error"]


def test_pull_push_bad_input(service: Service, fl: Forklift) -> None:
    before = _ids(fl)
    _error(service.request("POST", "/images/create?fromImage=Bad%20Name"), 400)
    _error(service.request("POST", "/images/busybox/push", headers={"X-Registry-Auth": "%%%"}), 400)
    _error(service.request("POST", "/images/BAD/push"), 400)
    assert _ids(fl) == before


def test_auth_checks_without_storing(service: Service, auth_registry: Registry) -> None:
    swagger = swagger_required()
    ok = service.request("POST", "/v1.41/auth", {"username": USER, "password": PASSWORD,
                                                 "serveraddress": auth_registry.host})
    assert ok.status == 200, ok
    swagger.validate_response(ok.json(), "POST", "/auth", 200)
    assert ok.json()["Status"] == "Login Succeeded"
    bad = service.request("POST", "/auth", {"username": USER, "password": "wrong",
                                            "serveraddress": auth_registry.host})
    assert "unauthorized" in _error(bad, 401)
    _error(service.request("POST", "/auth", {"serveraddress": auth_registry.host}), 400)
    _error(service.request("POST", "/auth", b"{nope"), 400)
    assert not _holding(_service_config_dirs(service) + [service.fl.root], PASSWORD.encode())


def _service_config_dirs(service: Service) -> list[Path]:
    """Where the service's process would store a login (its environment, not the test's)."""
    from forklift.registry import config

    env = dict(entry.split("=", 1) for entry in
               Path(f"/proc/{service.proc.pid}/environ").read_text().split("\0") if "=" in entry)
    with pytest.MonkeyPatch.context() as mp:
        for key in ("DOCKER_CONFIG", "FORKLIFT_CONFIG_DIR", "XDG_CONFIG_HOME", "HOME"):
            if key in env:
                mp.setenv(key, env[key])
            else:
                mp.delenv(key, raising=False)
        return [Path(config.docker_config_dir()), Path(config.forklift_config_dir())]


def _holding(places: list[Path], secret: bytes) -> list[Path]:
    files = [p for place in places if place.exists() for p in place.rglob("*")
             if p.is_file() and not p.is_symlink()]
    basic = base64.b64encode(b"%s:%s" % (USER.encode(), secret))
    return [p for p in files if secret in p.read_bytes() or basic in p.read_bytes()]


# ----------------------------------------------------------------------------- the docker CLI

@pytest.mark.usefixtures("docker_cli")
def test_docker_tag_history_rmi(service: Service, fl: Forklift) -> None:
    image_id = fl.inspect("busybox")["Id"]
    service.docker("tag", "busybox", "cli-tag:2")
    assert fl.inspect("cli-tag:2")["Id"] == image_id
    history = service.docker("history", "--no-trunc", "--format", "{{.ID}} {{.Comment}}", "cli-tag:2")
    assert history.lines[0].startswith(image_id)
    assert service.docker("rmi", "cli-tag:2").out == "Untagged: cli-tag:2\n"
    err = service.docker("rmi", "nosuch:9", check=False)
    assert err.code == 1 and "No such image" in err.err and "Traceback" not in err.err
    assert _ids(fl) == [image_id]


@pytest.mark.usefixtures("docker_cli")
def test_docker_commit(service: Service, fl: Forklift, name: str) -> None:
    service.docker("run", "--name", name, "busybox", "sh", "-c", "echo cli > /made")
    try:
        out = service.docker("commit", "-m", "by cli", "-a", "me", "-c", "CMD [\"cat\", \"/made\"]",
                             name, "cli-commit:1").out.strip()
        doc = fl.inspect("cli-commit:1")
        assert out == doc["Id"] and doc["Comment"] == "by cli" and doc["Author"] == "me"
        assert service.docker("run", "--rm", "cli-commit:1").out == "cli\n"
        service.docker("rmi", "cli-commit:1")
    finally:
        fl("rm", "-f", name)


@pytest.mark.usefixtures("docker_cli")
def test_docker_import_save_load(service: Service, fl: Forklift, tmp_path: Path) -> None:
    out = service.docker("import", "-c", "CMD [\"cat\", \"/f\"]", "-m", "cli import", "-",
                         "cli-flat:1", input=tar_of({"f": b"flat\n"})).out.strip()
    assert out == fl.inspect("cli-flat:1")["Id"]
    archive = tmp_path / "saved.tar"
    service.docker("save", "-o", str(archive), "cli-flat:1")
    with tarfile.open(archive) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["cli-flat:1"]  # type: ignore[arg-type]
    service.docker("rmi", "cli-flat:1")
    loaded = service.docker("load", "-i", str(archive))
    assert loaded.out.strip() == "Loaded image: cli-flat:1"
    assert fl.inspect("cli-flat:1")["Id"] == out
    fl("rmi", "cli-flat:1")
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"garbage" * 100)
    before = _state(fl)
    res = service.docker("load", "-i", str(broken), check=False)
    assert res.code != 0 and "Traceback" not in res.err
    assert _state(fl) == before


@pytest.mark.usefixtures("docker_cli")
def test_docker_login_push_pull(service: Service, fl: Forklift, auth_registry: Registry) -> None:
    host = auth_registry.host
    bad = service.docker("login", "-u", USER, "--password-stdin", host, input="wrong\n", check=False)
    assert bad.code != 0 and "unauthorized" in bad.err
    login = service.docker("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n")
    assert "Login Succeeded" in login.out
    ref = f"{host}/cli/app:3"
    service.docker("tag", "busybox", ref)
    pushed = service.docker("push", ref)
    assert "digest: sha256:" in pushed.out
    service.docker("rmi", ref)
    service.docker("pull", ref)
    assert fl.inspect(ref)["Id"] == fl.inspect("busybox")["Id"]
    missing = service.docker("pull", f"{host}/cli/app:nosuch", check=False)
    assert missing.code != 0 and "Traceback" not in missing.err
    service.docker("rmi", ref)


@pytest.mark.usefixtures("docker_cli")
def test_docker_image_prune(service: Service, fl: Forklift) -> None:
    dangling = service.docker("import", "-", input=tar_of({"p": b"prune me\n"})).out.strip()
    kept = _state(fl)
    assert any(dangling in line for line in kept)
    out = service.docker("image", "prune", "-f").out
    assert f"deleted: {dangling}" in out and "Total reclaimed space" in out
    assert _state(fl) == [line for line in kept if dangling not in line]


@pytest.mark.parametrize("encode", [
    lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
    lambda raw: base64.urlsafe_b64encode(raw).decode(),
    lambda raw: base64.b64encode(raw).decode(),
])
def test_registry_auth_header_forms(encode: Any) -> None:
    from forklift.api.distribution import registry_auth
    from forklift.api.server import ApiError, Request
    from forklift.registry.config import Credentials

    def creds(doc: Any) -> Any:
        header = encode(json.dumps(doc).encode())
        return registry_auth(Request("POST", "/x", {}, {"x-registry-auth": header}, b""))

    assert creds({"username": "u", "password": "p?>~", "serveraddress": "h"}) == \
        Credentials("u", "p?>~")
    assert creds({"identitytoken": "tok"}) == Credentials("<token>", "tok", identity=True)
    assert creds({}) is None and creds(None) is None
    assert registry_auth(Request("POST", "/x", {}, {}, b"")) is None
    for bad in ("%%%", encode(b"[1]"), encode(b"{nope")):
        with pytest.raises(ApiError) as info:
            registry_auth(Request("POST", "/x", {}, {"x-registry-auth": bad}, b""))
        assert info.value.status == 400
