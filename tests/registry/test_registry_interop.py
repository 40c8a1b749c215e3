"""skopeo interop, hand-made multi-arch indexes, and hostile registry answers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support import Forklift, one_line_error, run
from support.registry import Proxy, Registry, put_blob, put_manifest
from support.store import NewStore, snapshot, tmp_entries

pytestmark = pytest.mark.root

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _arch() -> str:
    import platform

    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _skopeo(*args: str) -> str:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    return run(["skopeo", *args]).out


@pytest.fixture(scope="module")
def pushed(source_store: Forklift, registry: Registry) -> tuple[str, str]:
    ref = f"{registry.host}/interop/app:1"
    source_store("tag", "app:1", ref)
    out = source_store("push", ref).out
    return ref, out.strip().splitlines()[-1].split("digest: ")[1].split()[0]


# ----------------------------------------------------------------------------- skopeo

def test_skopeo_reads_what_forklift_pushed(source_store: Forklift, pushed: tuple[str, str],
                                           tmp_path: Path) -> None:
    ref, digest = pushed
    info = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
    assert info["Digest"] == digest
    assert info["Architecture"] == _arch()
    _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path / 'oci'}:v1")
    config = json.loads(_skopeo("inspect", "--config", f"oci:{tmp_path / 'oci'}:v1"))
    assert config["rootfs"]["diff_ids"] == source_store.inspect("app:1")["RootFS"]["Layers"]


def test_forklift_pulls_what_skopeo_pushed(source_store: Forklift, pushed: tuple[str, str],
                                           registry: Registry, tmp_path: Path, new_store: NewStore) -> None:
    ref, _ = pushed
    layout = tmp_path / "layout"
    _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:v1")
    target = f"{registry.host}/skopeo/img:1"
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{target}")
    remote = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{target}"))
    assert remote["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    fresh = new_store()
    fresh("pull", target)
    config_digest = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw",
                                       f"docker://{target}"))["config"]["digest"]
    info = fresh.inspect(target)
    assert info["Id"] == config_digest  # skopeo rewrote the config as OCI
    assert info["RootFS"]["Layers"] == source_store.inspect("app:1")["RootFS"]["Layers"]
    assert fresh("run", "--rm", "--network", "none", target, "cat", "/one.txt").out == "one\n"


# ----------------------------------------------------------------------------- multi-arch

def _manifest(registry: Registry, repo: str, ref: str) -> bytes:
    r = httpx.get(f"{registry.base}/v2/{repo}/manifests/{ref}",
                  headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 200
    return r.content


def _variant(registry: Registry, repo: str, base: dict, arch: str) -> tuple[dict, bytes]:
    """A copy of ``base`` whose config says another architecture."""
    cfg = httpx.get(f"{registry.base}/v2/{repo}/blobs/{base['config']['digest']}").json()
    cfg["architecture"] = arch
    data = json.dumps(cfg).encode()
    digest = put_blob(registry.base, repo, data)
    manifest = dict(base, config=dict(base["config"], digest=digest, size=len(data)))
    body = json.dumps(manifest, indent=3).encode()
    return manifest, body


def _index(registry: Registry, repo: str, tag: str, entries: list[tuple[bytes, str]]) -> str:
    manifests = []
    for body, arch in entries:
        digest = put_manifest(registry.base, repo, "sha256:" + __import__("hashlib").sha256(
            body).hexdigest(), body, DOCKER_MANIFEST)
        manifests.append({"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(body),
                          "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": manifests}).encode()
    return put_manifest(registry.base, repo, tag, index, OCI_INDEX)


def test_multi_arch_index(source_store: Forklift, pushed: tuple[str, str], registry: Registry,
                          new_store: NewStore) -> None:
    ref, _ = pushed
    native_body = _manifest(registry, "interop/app", "1")
    base = json.loads(native_body)
    _, s390x_body = _variant(registry, "interop/app", base, "s390x")
    _, arm_body = _variant(registry, "interop/app", base, "arm64" if _arch() != "arm64" else "ppc64le")
    index_digest = _index(registry, "interop/app", "multi",
                          [(s390x_body, "s390x"), (native_body, _arch())])
    target = f"{registry.host}/interop/app:multi"
    fresh = new_store()
    out = fresh("pull", target).out
    assert f"Digest: {index_digest}" in out
    info = fresh.inspect(target)
    assert info["Id"] == source_store.inspect("app:1")["Id"]
    assert info["RepoDigests"] == [f"{registry.host}/interop/app@{index_digest}"]
    fresh("pull", "--platform", "linux/s390x", target)
    assert fresh.inspect(target)["Architecture"] == "s390x"
    # an index without this machine's platform: one clear line listing what exists
    foreign = arm_body if _arch() != "arm64" else s390x_body
    other_arch = json.loads(httpx.get(
        f"{registry.base}/v2/interop/app/blobs/{json.loads(foreign)['config']['digest']}"
    ).content)["architecture"]
    _index(registry, "interop/app", "foreign", [(s390x_body, "s390x"), (foreign, other_arch)])
    before = snapshot(fresh.root)
    err = one_line_error(fresh("pull", f"{registry.host}/interop/app:foreign",
                                  check=False))
    assert f"no matching manifest for linux/{_arch()}" in err
    assert "linux/s390x" in err and f"linux/{other_arch}" in err
    assert snapshot(fresh.root) == before


# ----------------------------------------------------------------------------- hostile

Mutate = Callable[[str, str, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes] | None]


def _blob_mutator(change: Callable[[bytes], bytes], big_only: bool = True) -> Mutate:
    def mutate(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if method == "GET" and "/blobs/sha256:" in path and (len(body) > 100000 or not big_only):
            return status, headers, change(body)
        return None
    return mutate


def _flip(body: bytes) -> bytes:
    return body[:-1000] + bytes([body[-1000] ^ 0xFF]) + body[-999:]


def _manifest_header_liar(method: str, path: str, status: int, headers: dict[str, str],
                          body: bytes):
    if method == "GET" and "/manifests/" in path:
        headers = {k: v for k, v in headers.items() if k.lower() != "docker-content-digest"}
        headers["Docker-Content-Digest"] = "sha256:" + "0" * 64
        return status, headers, body
    return None


def _manifest_body_liar(method: str, path: str, status: int, headers: dict[str, str],
                        body: bytes):
    if method == "GET" and "/manifests/" in path:
        return status, headers, body.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
    return None


def _config_liar(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
    if method == "GET" and "/blobs/" in path and body.startswith(b"{"):
        return status, headers, body.replace(b'"os":"linux"', b'"os":"LINUX"')
    return None


HOSTILE = {
    "wrong-bytes": (_blob_mutator(_flip), "digest mismatch"),
    "extra-bytes": (_blob_mutator(lambda b: b + b"trailing garbage"), "more than"),
    "short-body": (_blob_mutator(lambda b: b[:-5000]), "short read"),
    "lying-digest-header": (_manifest_header_liar, "claims digest"),
    "tampered-manifest": (_manifest_body_liar, "claims digest"),
    "tampered-config": (_config_liar, "digest mismatch"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_registry(source_store: Forklift, proxy: Proxy, new_store: NewStore,
                          case: str) -> None:
    ref = f"{proxy.host}/hostile/app:1"
    source_store("tag", "app:1", ref)
    proxy.reset()
    source_store("push", ref)
    fresh = new_store()
    fresh("images")
    before = snapshot(fresh.root)
    mutate, expected = HOSTILE[case]
    proxy.mutate = mutate
    try:
        err = one_line_error(fresh("pull", ref, check=False))
        assert expected in err, err
        assert snapshot(fresh.root) == before
        assert tmp_entries(fresh.root) == []
    finally:
        proxy.mutate = None


def test_tampered_manifest_by_digest(source_store: Forklift, proxy: Proxy,
                                     new_store: NewStore) -> None:
    ref = f"{proxy.host}/hostile/bydigest:1"
    source_store("tag", "app:1", ref)
    proxy.reset()
    digest = source_store("push", ref).out.split("digest: ")[1].split()[0]

    def mutate(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if "/manifests/" in path:
            headers = {k: v for k, v in headers.items() if k.lower() != "docker-content-digest"}
            return status, headers, body + b" "
        return None

    proxy.mutate = mutate
    fresh = new_store()
    try:
        err = one_line_error(fresh("pull", f"{proxy.host}/hostile/bydigest@{digest}",
                                      check=False))
    finally:
        proxy.mutate = None
    assert "digest mismatch" in err
    assert fresh("images", "-q").out.strip() == ""
