"""Push and pull against a real plain-HTTP registry (through a recording proxy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from registry_support import (
    Proxy,
    Registry,
    derive,
    forklift,
    inspect,
    new_store,
    one_line_error,
    store_state,
)


def _layers(root: Path, name: str) -> list[str]:
    return inspect(root, name)["RootFS"]["Layers"]


def test_push_pull_round_trip(store: Path, registry: Registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/team/app:1.4.2"
    forklift(store, "tag", "app:1", ref)
    out = forklift(store, "push", ref).stdout
    assert f"The push refers to repository [{registry.host}/team/app]" in out
    assert out.count(": Pushed") == 2
    digest = out.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    fresh = new_store(tmp_path)
    pulled = forklift(fresh, "pull", ref).stdout
    assert "1.4.2: Pulling from team/app" in pulled
    assert pulled.count(": Pull complete") == 2
    assert f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {ref}" in pulled
    assert pulled.strip().splitlines()[-1] == ref
    original = inspect(store, "app:1")
    copy = inspect(fresh, ref)
    assert copy["Id"] == original["Id"]
    assert copy["RootFS"]["Layers"] == original["RootFS"]["Layers"]
    assert copy["RepoDigests"] == [f"{registry.host}/team/app@{digest}"]
    digests = forklift(fresh, "image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    assert json.loads(digests) == [f"{registry.host}/team/app@{digest}"]
    listing = forklift(fresh, "images", "--digests").stdout
    assert digest in listing
    # the pulled image runs
    assert forklift(fresh, "run", "--rm", "--network", "none", ref, "cat", "/one.txt").stdout == "one\n"
    # pull again: nothing fetched, image up to date
    again = forklift(fresh, "image", "pull", ref).stdout
    assert "Already exists" in again and "Pull complete" not in again
    assert f"Status: Image is up to date for {ref}" in again
    # re-push from the pulled store keeps the manifest digest
    repushed = forklift(fresh, "push", ref).stdout
    assert f"digest: {digest}" in repushed


def test_pull_by_digest_verified(store: Path, registry: Registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/team/bydigest:1"
    forklift(store, "tag", "app:1", ref)
    digest = forklift(store, "push", "-q", ref).stdout and inspect(store, ref)["RepoDigests"][0]
    by_digest = digest.replace("/team/bydigest@", "/team/bydigest@")
    fresh = new_store(tmp_path)
    out = forklift(fresh, "pull", by_digest).stdout
    assert "Pull complete" in out
    assert forklift(fresh, "images", "-q").stdout.strip() == inspect(store, "app:1")["Id"][7:19]
    assert inspect(fresh, by_digest)["Id"] == inspect(store, "app:1")["Id"]
    rows = forklift(fresh, "images", "--digests", "--format", "{{.Tag}} {{.Digest}}").stdout
    assert rows.strip() == "<none> <none>" or digest.split("@")[1] in rows


def test_repush_sends_no_layer(store: Path, proxy: Proxy) -> None:
    ref = f"{proxy.host}/team/again:1"
    forklift(store, "tag", "app:1", ref)
    proxy.reset()
    forklift(store, "push", ref)
    assert len(proxy.uploads()) >= 3  # two layers and the config
    proxy.reset()
    out = forklift(store, "push", ref).stdout
    assert out.count("Layer already exists") == 2
    assert proxy.uploads() == []
    heads = [r for r in proxy.requests if r[0] == "HEAD"]
    assert len(heads) == 3
    assert ("PUT", "/v2/team/again/manifests/1") in proxy.requests


def test_cross_repository_mount(store: Path, proxy: Proxy) -> None:
    forklift(store, "tag", "app:1", f"{proxy.host}/team/source:1")
    forklift(store, "push", f"{proxy.host}/team/source:1")
    forklift(store, "tag", "app:1", f"{proxy.host}/team/mounted:1")
    proxy.reset()
    out = forklift(store, "push", f"{proxy.host}/team/mounted:1").stdout
    assert out.count("Mounted from team/") == 2  # team/source or an earlier repository
    assert proxy.uploads() == []
    assert len([p for m, p in proxy.requests if m == "POST" and "mount=" in p]) == 3


def test_chunked_upload(store: Path, proxy: Proxy, tmp_path: Path) -> None:
    ref = f"{proxy.host}/team/chunked:1"
    image_id = derive(store, "busybox", "random:1", "head -c 400000 /dev/urandom > /r")
    forklift(store, "tag", "random:1", ref)
    proxy.reset()
    forklift(store, "push", ref, env={"FORKLIFT_PUSH_CHUNK_SIZE": "65536"})
    patches = [r for r in proxy.requests if r[0] == "PATCH"]
    assert len(patches) >= 6  # a ~400 kB layer in 64 KiB chunks
    fresh = new_store(tmp_path)
    forklift(fresh, "pull", ref)
    assert inspect(fresh, ref)["Id"] == image_id


def test_redirected_blobs_followed(store: Path, proxy: Proxy, registry: Registry,
                                   tmp_path: Path) -> None:
    ref = f"{proxy.host}/team/redirect:1"
    forklift(store, "tag", "app:1", ref)
    forklift(store, "push", ref)

    def redirect(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if method == "GET" and "/blobs/sha256:" in path:
            return 307, {"Location": f"http://{registry.host}{path}"}, b""
        return None

    proxy.reset()
    proxy.mutate = redirect
    fresh = new_store(tmp_path)
    forklift(fresh, "pull", ref)
    assert inspect(fresh, ref)["Id"] == inspect(store, "app:1")["Id"]


def test_push_all_tags(store: Path, registry: Registry, tmp_path: Path) -> None:
    repo = f"{registry.host}/team/many"
    forklift(store, "tag", "app:1", f"{repo}:a")
    forklift(store, "tag", "busybox", f"{repo}:b")
    out = forklift(store, "push", "--all-tags", repo).stdout
    assert "a: digest: sha256:" in out and "b: digest: sha256:" in out
    fresh = new_store(tmp_path)
    forklift(fresh, "pull", f"{repo}:b")
    assert inspect(fresh, f"{repo}:b")["Id"] == inspect(store, "busybox")["Id"]


def test_push_missing_image_and_unknown_tag(store: Path, registry: Registry,
                                            tmp_path: Path) -> None:
    err = one_line_error(forklift(store, "push", f"{registry.host}/team/none:1", check=False))
    assert "An image does not exist locally with the tag" in err
    fresh = new_store(tmp_path)
    err = one_line_error(forklift(fresh, "pull", f"{registry.host}/team/none:1", check=False))
    assert "manifest unknown" in err
    err = one_line_error(forklift(fresh, "pull", "127.0.0.1:1/x:1", check=False))
    assert "cannot reach registry" in err


def test_concurrent_pushes_share_layers(store: Path, registry: Registry, tmp_path: Path) -> None:
    derive(store, "busybox", "shared:a", "echo a > /a")
    derive(store, "busybox", "shared:b", "echo b > /b")
    refs = [f"{registry.host}/team/shared-{x}:1" for x in "ab"]
    for x, ref in zip("ab", refs, strict=True):
        forklift(store, "tag", f"shared:{x}", ref)
    procs = [subprocess.Popen([sys.executable, "-m", "forklift", "--root", str(store), "push", r],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=os.environ.copy())
             for r in refs]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    fresh = new_store(tmp_path)
    for x, ref in zip("ab", refs, strict=True):
        forklift(fresh, "pull", ref)
        assert inspect(fresh, ref)["Id"] == inspect(store, f"shared:{x}")["Id"]
    assert _layers(fresh, refs[0])[0] == _layers(fresh, refs[1])[0]


def test_interrupted_pull_leaves_nothing(store: Path, proxy: Proxy, tmp_path: Path) -> None:
    ref = f"{proxy.host}/team/interrupted:1"
    forklift(store, "tag", "app:1", ref)
    forklift(store, "push", ref)
    fresh = new_store(tmp_path)
    forklift(fresh, "images")
    before = store_state(fresh)

    def truncate(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if method == "GET" and "/blobs/" in path and len(body) > 100000:
            headers["X-Test-Truncate"] = str(len(body) // 2)
            return status, headers, body
        return None

    proxy.mutate = truncate
    err = one_line_error(forklift(fresh, "pull", ref, check=False))
    assert "interrupted" in err or "short read" in err
    assert store_state(fresh) == before
    forklift(fresh, "images")
    assert [e for e in os.listdir(fresh / "tmp")] == []
