"""Registry identity tokens through the API, against the real docker-registry behind a
token service (``support.tokens``): ``POST /auth`` asks for offline access and answers the
refresh token the service issued as ``IdentityToken``; an ``identitytoken`` in
``X-Registry-Auth`` (what the docker CLI then stores and sends) is traded for access tokens
by the OAuth2 refresh-token grant, never sent as a password; a bad one is refused."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.cli import run
from support.registry import Registry, b64url
from support.service import DOCKER20, Answer, Service
from support.swagger import required as swagger_required
from support.tokens import TokenService, token_auth_registry

pytestmark = pytest.mark.root

USER, PASSWORD = "tokenuser", "t0ken-pass"


@pytest.fixture(scope="module")
def token_registry(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenService]]:
    with token_auth_registry(tmp_path_factory.mktemp("api-token-registry"), USER,
                             PASSWORD) as pair:
        yield pair


def _auth(doc: dict[str, str]) -> dict[str, str]:
    return {"X-Registry-Auth": b64url(json.dumps(doc).encode())}


def _login(service: Service, doc: dict[str, str]) -> Answer:
    return service.request("POST", "/v1.41/auth", doc)


def test_identity_token_from_login_pushes_and_pulls(
        service: Service, fl: Forklift, token_registry: tuple[Registry, TokenService]) -> None:
    swagger = swagger_required()
    reg, tokens = token_registry
    tokens.requests.clear()
    ok = _login(service, {"username": USER, "password": PASSWORD, "serveraddress": reg.host})
    assert ok.status == 200, ok
    swagger.validate_response(ok.json(), "POST", "/auth", 200)
    identity = ok.json()["IdentityToken"]
    assert tokens.refresh_tokens.get(identity) == USER
    assert [(r["grant"], r["offline"], r["client_id"]) for r in tokens.requests] == \
        [("basic", True, "docker")]

    ref = f"{reg.host}/team/app"   # a private repository: nothing for an anonymous token
    fl("tag", "busybox", f"{ref}:1")
    auth = _auth({"identitytoken": identity, "serveraddress": reg.host})
    tokens.requests.clear()
    pushed = Answer.json_lines(service.request("POST", f"/v1.41/images/{ref}/push?tag=1", headers=auth))
    assert not [m for m in pushed if "error" in m], pushed
    assert pushed[-1]["aux"]["Digest"].startswith("sha256:")
    assert tokens.requests and all(r["grant"] == "refresh_token" and r["user"] == USER
                                   and r["client_id"] == "docker" for r in tokens.requests)
    fl("rmi", f"{ref}:1")
    pulled = Answer.json_lines(service.request("POST", f"/v1.41/images/create?fromImage={ref}&tag=1",
                                    headers=auth))
    assert pulled[-1] == {"status": f"Status: Image is up to date for {ref}:1"} or \
        pulled[-1] == {"status": f"Status: Downloaded newer image for {ref}:1"}, pulled
    assert fl.inspect(f"{ref}:1")["Id"] == fl.inspect("busybox")["Id"]
    fl("rmi", f"{ref}:1")
    again = _login(service, {"identitytoken": identity, "serveraddress": reg.host})
    assert again.status == 200 and again.json()["Status"] == "Login Succeeded", again


def test_bad_identity_token_is_refused(
        service: Service, fl: Forklift, token_registry: tuple[Registry, TokenService]) -> None:
    reg, tokens = token_registry
    before = fl.out("images", "-q", "--no-trunc")
    auth = _auth({"identitytoken": "not-issued", "serveraddress": reg.host})
    tokens.requests.clear()
    pulled = Answer.json_lines(service.request("POST", f"/v1.41/images/create?fromImage={reg.host}/team/app"
                                    "&tag=1", headers=auth))
    assert "unauthorized" in pulled[-1]["errorDetail"]["message"], pulled
    assert tokens.requests and all(r["grant"] == "refresh_token" for r in tokens.requests)
    assert "unauthorized" in _login(service, {"identitytoken": "not-issued",
                                              "serveraddress": reg.host}).refusal(401)
    assert fl.out("images", "-q", "--no-trunc") == before


@pytest.mark.usefixtures("docker_cli")
def test_docker_cli_stores_and_uses_the_identity_token(
        service: Service, fl: Forklift, token_registry: tuple[Registry, TokenService],
        tmp_path: Path) -> None:
    """``docker login`` keeps the identity token (not the password) in its config.json,
    and its push and pull send it back; forklift's CLI pulls with that login as well."""
    reg, tokens = token_registry
    env = dict(os.environ, DOCKER_HOST=service.host, DOCKER_CONFIG=str(tmp_path / "docker"))

    def docker(*args: str, input: str | None = None) -> str:
        return run([DOCKER20, *args], input=input, env=env).out

    assert "Login Succeeded" in docker("login", "-u", USER, "--password-stdin", reg.host,
                                       input=PASSWORD + "\n")
    entry = json.loads((tmp_path / "docker" / "config.json").read_text())["auths"][reg.host]
    assert tokens.refresh_tokens.get(entry["identitytoken"]) == USER
    assert PASSWORD not in json.dumps(entry)
    ref = f"{reg.host}/team/cli:2"
    docker("tag", "busybox", ref)
    tokens.requests.clear()
    assert "digest: sha256:" in docker("push", ref)
    docker("rmi", ref)
    docker("pull", ref)
    assert fl.inspect(ref)["Id"] == fl.inspect("busybox")["Id"]
    assert tokens.requests and all(r["grant"] == "refresh_token" for r in tokens.requests)
    docker("rmi", ref)
    tokens.requests.clear()   # forklift's own CLI reads the docker CLI's stored login too
    fl("pull", ref, env={"DOCKER_CONFIG": str(tmp_path / "docker")})
    assert tokens.requests and all(r["grant"] == "refresh_token" for r in tokens.requests)
    fl("rmi", ref)
