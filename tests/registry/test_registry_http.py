"""Push and pull against a real plain-HTTP registry (through a recording proxy)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from support import Forklift, one_line_error
from support.images import derive
from support.registry import Proxy, Registry
from support.store import NewStore, snapshot

pytestmark = pytest.mark.root


def _layers(fl: Forklift, name: str) -> list[str]:
    return fl.inspect(name)["RootFS"]["Layers"]


def test_push_pull_round_trip(source_store: Forklift, empty_registry: Registry,
                              new_store: NewStore) -> None:
    registry = empty_registry
    ref = f"{registry.host}/team/app:1.4.2"
    source_store("tag", "app:1", ref)
    out = source_store("push", ref).out
    assert f"The push refers to repository [{registry.host}/team/app]" in out
    assert out.count(": Pushed") == 2
    digest = out.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    fresh = new_store()
    pulled = fresh("pull", ref).out
    assert "1.4.2: Pulling from team/app" in pulled
    assert pulled.count(": Pull complete") == 2
    assert f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {ref}" in pulled
    assert pulled.strip().splitlines()[-1] == ref
    original = source_store.inspect("app:1")
    copy = fresh.inspect(ref)
    assert copy["Id"] == original["Id"]
    assert copy["RootFS"]["Layers"] == original["RootFS"]["Layers"]
    assert copy["RepoDigests"] == [f"{registry.host}/team/app@{digest}"]
    digests = fresh("image", "inspect", "--format", "{{json .RepoDigests}}", ref).out
    assert json.loads(digests) == [f"{registry.host}/team/app@{digest}"]
    listing = fresh("images", "--digests").out
    assert digest in listing
    # the pulled image runs
    assert fresh("run", "--rm", "--network", "none", ref, "cat", "/one.txt").out == "one\n"
    # pull again: nothing fetched, image up to date
    again = fresh("image", "pull", ref).out
    assert "Already exists" in again and "Pull complete" not in again
    assert f"Status: Image is up to date for {ref}" in again
    # re-push from the pulled store keeps the manifest digest
    repushed = fresh("push", ref).out
    assert f"digest: {digest}" in repushed


def test_pull_by_digest_verified(source_store: Forklift, registry: Registry,
                                 new_store: NewStore) -> None:
    ref = f"{registry.host}/team/bydigest:1"
    source_store("tag", "app:1", ref)
    source_store("push", "-q", ref)
    # app:1 may have been pushed elsewhere by other tests: take this repository's digest
    by_digest, = [d for d in source_store.inspect(ref)["RepoDigests"]
                  if d.startswith(f"{registry.host}/team/bydigest@")]
    fresh = new_store()
    out = fresh("pull", by_digest).out
    assert "Pull complete" in out
    assert fresh("images", "-q").out.strip() == source_store.inspect("app:1")["Id"][7:19]
    assert fresh.inspect(by_digest)["Id"] == source_store.inspect("app:1")["Id"]
    rows = fresh("images", "--digests", "--format", "{{.Tag}} {{.Digest}}").out
    assert rows.strip() == "<none> <none>" or by_digest.split("@")[1] in rows


def test_repush_sends_no_layer(source_store: Forklift, empty_proxy: Proxy) -> None:
    proxy = empty_proxy
    ref = f"{proxy.host}/team/again:1"
    source_store("tag", "app:1", ref)
    proxy.reset()
    source_store("push", ref)
    assert len(proxy.uploads()) >= 3  # two layers and the config
    proxy.reset()
    out = source_store("push", ref).out
    assert out.count("Layer already exists") == 2
    assert proxy.uploads() == []
    heads = [r for r in proxy.requests if r[0] == "HEAD"]
    assert len(heads) == 3
    assert ("PUT", "/v2/team/again/manifests/1") in proxy.requests


def test_cross_repository_mount(source_store: Forklift, proxy: Proxy) -> None:
    source_store("tag", "app:1", f"{proxy.host}/team/source:1")
    source_store("push", f"{proxy.host}/team/source:1")
    source_store("tag", "app:1", f"{proxy.host}/team/mounted:1")
    proxy.reset()
    out = source_store("push", f"{proxy.host}/team/mounted:1").out
    assert out.count("Mounted from team/") == 2  # team/source or an earlier repository
    assert proxy.uploads() == []
    assert len([p for m, p in proxy.requests if m == "POST" and "mount=" in p]) == 3


def test_chunked_upload(source_store: Forklift, proxy: Proxy, new_store: NewStore) -> None:
    ref = f"{proxy.host}/team/chunked:1"
    image_id = derive(source_store, "busybox", "random:1", "head -c 400000 /dev/urandom > /r")
    source_store("tag", "random:1", ref)
    proxy.reset()
    source_store("push", ref, env={"FORKLIFT_PUSH_CHUNK_SIZE": "65536"})
    patches = [r for r in proxy.requests if r[0] == "PATCH"]
    assert len(patches) >= 6  # a ~400 kB layer in 64 KiB chunks
    fresh = new_store()
    fresh("pull", ref)
    assert fresh.inspect(ref)["Id"] == image_id


def test_redirected_blobs_followed(source_store: Forklift, proxy: Proxy, registry: Registry,
                                   new_store: NewStore) -> None:
    ref = f"{proxy.host}/team/redirect:1"
    source_store("tag", "app:1", ref)
    source_store("push", ref)

    def redirect(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if method == "GET" and "/blobs/sha256:" in path:
            return 307, {"Location": f"http://{registry.host}{path}"}, b""
        return None

    proxy.reset()
    proxy.mutate = redirect
    fresh = new_store()
    fresh("pull", ref)
    assert fresh.inspect(ref)["Id"] == source_store.inspect("app:1")["Id"]


def test_push_all_tags(source_store: Forklift, registry: Registry, new_store: NewStore) -> None:
    repo = f"{registry.host}/team/many"
    source_store("tag", "app:1", f"{repo}:a")
    source_store("tag", "busybox", f"{repo}:b")
    out = source_store("push", "--all-tags", repo).out
    assert "a: digest: sha256:" in out and "b: digest: sha256:" in out
    fresh = new_store()
    fresh("pull", f"{repo}:b")
    assert fresh.inspect(f"{repo}:b")["Id"] == source_store.inspect("busybox")["Id"]


def test_push_missing_image_and_unknown_tag(source_store: Forklift, registry: Registry,
                                            new_store: NewStore) -> None:
    err = one_line_error(source_store("push", f"{registry.host}/team/none:1", check=False))
    assert "An image does not exist locally with the tag" in err
    fresh = new_store()
    err = one_line_error(fresh("pull", f"{registry.host}/team/none:1", check=False))
    assert "manifest unknown" in err
    err = one_line_error(fresh("pull", "127.0.0.1:1/x:1", check=False))
    assert "cannot reach registry" in err


def test_concurrent_pushes_share_layers(source_store: Forklift, registry: Registry,
                                        new_store: NewStore) -> None:
    derive(source_store, "busybox", "shared:a", "echo a > /a")
    derive(source_store, "busybox", "shared:b", "echo b > /b")
    refs = [f"{registry.host}/team/shared-{x}:1" for x in "ab"]
    for x, ref in zip("ab", refs, strict=True):
        source_store("tag", f"shared:{x}", ref)
    procs = [subprocess.Popen([*source_store.argv, "push", r], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for r in refs]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    fresh = new_store()
    for x, ref in zip("ab", refs, strict=True):
        fresh("pull", ref)
        assert fresh.inspect(ref)["Id"] == source_store.inspect(f"shared:{x}")["Id"]
    assert _layers(fresh, refs[0])[0] == _layers(fresh, refs[1])[0]


def test_interrupted_pull_leaves_nothing(source_store: Forklift, proxy: Proxy,
                                         new_store: NewStore) -> None:
    ref = f"{proxy.host}/team/interrupted:1"
    source_store("tag", "app:1", ref)
    source_store("push", ref)
    fresh = new_store()
    fresh("images")
    before = snapshot(fresh.root)

    def truncate(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if method == "GET" and "/blobs/" in path and len(body) > 100000:
            headers["X-Test-Truncate"] = str(len(body) // 2)
            return status, headers, body
        return None

    proxy.mutate = truncate
    err = one_line_error(fresh("pull", ref, check=False))
    assert "interrupted" in err or "short read" in err
    assert snapshot(fresh.root) == before
    fresh("images")
    assert [e for e in os.listdir(fresh.root / "tmp")] == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_stalled_parallel_pull_leaves_nothing(
        source_store: Forklift, proxy: Proxy, new_store: NewStore, sig: signal.Signals) -> None:
    """Both layers download at once; the big one stalls half way. SIGINT ends the pull
    at once (the stalled download is cut short, exit 130) and SIGTERM kills it; either
    way nothing is left once the next command has run, and ``system check`` is clean."""
    ref = f"{proxy.host}/team/stopped-{sig.name.lower()}:1"
    source_store("tag", "app:1", ref)
    source_store("push", ref)
    fresh = new_store()
    fresh("images")
    before = snapshot(fresh.root)

    def stall(method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if method == "GET" and "/blobs/" in path and len(body) > 100000:
            headers["X-Test-Stall"] = str(len(body) // 2)
            return status, headers, body
        return None

    proxy.mutate = stall
    proc = subprocess.Popen([*fresh.argv, "pull", ref], env=fresh.environ(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proxy.stalled.wait(60), "the pull never reached the stalled layer"
        proc.send_signal(sig)
        # well before the proxy gives up on its own (100 s): the pull did not wait for it
        _, err = proc.communicate(timeout=60)
    finally:
        proxy.release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if sig == signal.SIGINT else -sig)
    assert b"Traceback" not in err
    fresh("images")
    assert snapshot(fresh.root) == before
    fresh("system", "check")
