"""TLS verification, htpasswd Basic auth, Bearer tokens, login/logout, credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift, one_line_error
from support.registry import Pki, Registry, bcrypt_line, make_pki, running_registry
from support.store import NewStore
from support.tokens import TokenService, token_auth_registry

pytestmark = pytest.mark.root

USER, PASSWORD = "packager", "s3cret-pass"


# ----------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Pki]]:
    d = tmp_path_factory.mktemp("tls-registry")
    pki = make_pki(d / "pki")
    with running_registry(d, tls=pki) as reg:
        yield reg, pki


def test_tls_verified_with_ca_from_certs_d(source_store: Forklift,
                                           tls_registry: tuple[Registry, Pki],
                                           new_store: NewStore) -> None:
    reg, pki = tls_registry
    ref = f"{reg.host}/secure/app:1"
    source_store("tag", "app:1", ref)
    err = one_line_error(source_store("push", ref, check=False))
    assert "certificate" in err.lower()
    ca_dir = Path(os.environ["FORKLIFT_CERTS_D"]) / reg.host
    ca_dir.mkdir(parents=True)
    (ca_dir / "ca.crt").write_bytes(pki.ca_pem.read_bytes())
    source_store("push", ref)
    fresh = new_store()
    fresh("pull", ref)
    assert fresh.inspect(ref)["Id"] == source_store.inspect("app:1")["Id"]


def test_tls_system_cas_found_in_hashed_directory(source_store: Forklift,
                                                tls_registry: tuple[Registry, Pki],
                                                new_store: NewStore, tmp_path: Path) -> None:
    """The system CAs are read from OpenSSL's hashed directory when a certificate names
    one, not parsed up front: a CA only there is trusted, a directory without it is not,
    and SSL_CERT_FILE (the whole-bundle path) is still honoured."""
    reg, pki = tls_registry
    ref = f"{reg.host}/secure/system-ca:1"
    source_store("tag", "app:1", ref)
    source_store("push", "--tls-verify=false", ref)
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / "test-ca.pem").write_bytes(pki.ca_pem.read_bytes())
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, capture_output=True)
    assert any(p.name.endswith(".0") for p in hashed.iterdir())
    (hashed / "bundle.crt").write_bytes(b"")  # a bundle in the directory: read per certificate
    lacking = tmp_path / "lacking"
    lacking.mkdir()
    (lacking / "00000000.0").write_bytes(b"")
    (lacking / "bundle.crt").write_bytes(b"")
    err = one_line_error(new_store()("pull", ref, check=False, env={
        "SSL_CERT_DIR": str(lacking), "SSL_CERT_FILE": str(lacking / "bundle.crt")}))
    assert "certificate" in err.lower()
    fresh = new_store()
    fresh("pull", ref, env={"SSL_CERT_DIR": str(hashed), "SSL_CERT_FILE": str(hashed / "bundle.crt")})
    assert fresh.inspect(ref)["Id"] == source_store.inspect("app:1")["Id"]
    # a bundle elsewhere is read whole, as before
    new_store()("pull", ref, env={"SSL_CERT_FILE": str(pki.ca_pem), "SSL_CERT_DIR": str(lacking)})


def test_tls_verify_false_and_insecure_list(source_store: Forklift,
                                            tls_registry: tuple[Registry, Pki],
                                            new_store: NewStore) -> None:
    reg, _ = tls_registry
    ref = f"{reg.host}/secure/insecure:1"
    source_store("tag", "busybox", ref)
    source_store("push", "--tls-verify=false", ref)
    fresh = new_store()
    one_line_error(fresh("pull", ref, check=False))
    fresh("pull", ref, env={"FORKLIFT_INSECURE_REGISTRIES": f"example.org,{reg.host}"})
    other = new_store()
    cfg = Path(os.environ["FORKLIFT_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(json.dumps({"insecure-registries": [reg.host]}))
    other("pull", ref)


# ----------------------------------------------------------------------------- Basic

@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    d = tmp_path_factory.mktemp("basic-registry")
    (d / "htpasswd").write_text(bcrypt_line(USER, PASSWORD) + "\n")
    with running_registry(d, extra=f"auth:\n  htpasswd:\n    realm: test\n"
                                   f"    path: {d / 'htpasswd'}\n") as reg:
        yield reg


def test_basic_auth_login_push_pull_logout(source_store: Forklift, basic_registry: Registry,
                                           new_store: NewStore) -> None:
    host = basic_registry.host
    ref = f"{host}/private/app:1"
    source_store("tag", "app:1", ref)
    err = one_line_error(source_store("push", ref, check=False))
    assert "unauthorized" in err
    err = one_line_error(source_store("login", host, "-u", USER, "--password-stdin",
                                  input="wrong\n", check=False))
    assert "unauthorized" in err or "incorrect" in err
    out = source_store("login", host, "-u", USER, "--password-stdin", input=PASSWORD + "\n")
    assert "Login Succeeded" in out.out
    config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    auth = json.loads(config.read_text())["auths"][host]["auth"]
    assert base64.b64decode(auth).decode() == f"{USER}:{PASSWORD}"
    source_store("push", ref)
    fresh = new_store()
    fresh("pull", ref)
    assert fresh.inspect(ref)["Id"] == source_store.inspect("app:1")["Id"]
    assert f"Removing login credentials for {host}" in source_store("logout", host).out
    assert host not in json.loads(config.read_text()).get("auths", {})
    assert "Not logged in" in source_store("logout", host).out
    other = new_store()
    assert "unauthorized" in one_line_error(other("pull", ref, check=False))


def test_credential_helper(source_store: Forklift, basic_registry: Registry, tmp_path: Path,
                           new_store: NewStore) -> None:
    host = basic_registry.host
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fltest"
    helper.write_text(f"""#!/bin/sh
read server
if [ "$1" = get ] && [ "$server" = "{host}" ]; then
  echo '{{"ServerURL":"{host}","Username":"{USER}","Secret":"{PASSWORD}"}}'; exit 0
fi
echo "credentials not found in native keychain"; exit 1
""")
    helper.chmod(0o755)
    config_dir = Path(os.environ["DOCKER_CONFIG"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {host: "fltest"}}))
    ref = f"{host}/private/helper:1"
    source_store("tag", "busybox", ref)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    source_store("push", ref, env=env)
    fresh = new_store()
    fresh("pull", ref, env=env)


# ----------------------------------------------------------------------------- Bearer

@pytest.fixture(scope="module")
def token_registry(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenService]]:
    with token_auth_registry(tmp_path_factory.mktemp("token-registry"), USER, PASSWORD) as pair:
        yield pair


def test_bearer_token_auth(source_store: Forklift, token_registry: tuple[Registry, TokenService],
                           new_store: NewStore) -> None:
    reg, tokens = token_registry
    ref = f"{reg.host}/public/app:1"
    source_store("tag", "app:1", ref)
    err = one_line_error(source_store("push", ref, check=False))
    assert "denied" in err or "unauthorized" in err
    source_store("login", reg.host, "-u", USER, "--password-stdin", input=PASSWORD)
    tokens.requests.clear()
    source_store("push", ref)
    assert tokens.requests and all(r["user"] == USER for r in tokens.requests)
    assert len(tokens.requests) <= 3  # cached per scope, not one per request
    source_store("logout", reg.host)
    fresh = new_store()
    tokens.requests.clear()
    fresh("pull", ref)  # anonymous pull of a public repository
    assert tokens.requests[0]["user"] is None
    assert tokens.requests[0]["scopes"] == ["repository:public/app:pull"]
    assert fresh.inspect(ref)["Id"] == source_store.inspect("app:1")["Id"]
    err = one_line_error(fresh("login", reg.host, "-u", USER, "--password-stdin",
                                  input="nope", check=False))
    assert "unauthorized" in err


def test_identity_token_from_a_credential_helper(
        source_store: Forklift, token_registry: tuple[Registry, TokenService],
        new_store: NewStore, tmp_path: Path) -> None:
    """A helper that answers the user ``<token>`` holds an identity token (Docker's
    convention): it is traded by the refresh grant, never sent as a password."""
    reg, tokens = token_registry
    identity = tokens.issue_refresh_token(USER)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fltoken"
    helper.write_text(f"""#!/bin/sh
read server
echo '{{"ServerURL":"{reg.host}","Username":"<token>","Secret":"{identity}"}}'
""")
    helper.chmod(0o755)
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(
        json.dumps({"credHelpers": {reg.host: "fltoken"}}))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DOCKER_CONFIG": str(tmp_path / "docker")}
    ref = f"{reg.host}/private/token-helper:1"
    source_store("tag", "busybox", ref)
    tokens.requests.clear()
    source_store("push", ref, env=env)
    new_store()("pull", ref, env=env)
    assert tokens.requests and all(r["grant"] == "refresh_token" and r["user"] == USER
                                   for r in tokens.requests), tokens.requests
