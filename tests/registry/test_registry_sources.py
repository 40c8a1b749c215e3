"""A pulled layer keeps no compressed blob, only where it came from (``layer_sources``):
a push HEADs, mounts, re-fetches from the source, or else recompresses (as Docker)."""

from __future__ import annotations

import hashlib
import sqlite3
import tarfile
from pathlib import Path

import pytest
from support import Forklift
from support.registry import Proxy, Registry, running_registry
from support.store import NewStore, assert_clean

from forklift.store import blobs, open_store

pytestmark = pytest.mark.root


def _digest_of(push_out: str) -> str:
    return push_out.strip().splitlines()[-1].split("digest: ")[1].split()[0]


def _rows(fl: Forklift, sql: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(fl.root / "forklift.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _pulled(source_store: Forklift, registry: Registry | Proxy, new_store: NewStore,
            name: str) -> tuple[Forklift, str, str]:
    """``app:1`` pushed by the source store and pulled into a fresh one: (store, ref, digest)."""
    ref = f"{registry.host}/{name}:1"
    source_store("tag", "app:1", ref)
    digest = _digest_of(source_store("push", ref).out)
    fresh = new_store()
    fresh("pull", ref)
    return fresh, ref, digest


def test_pull_writes_layers_once_and_records_their_source(source_store: Forklift,
                                                          empty_registry: Registry,
                                                          new_store: NewStore) -> None:
    fresh, ref, digest = _pulled(source_store, empty_registry, new_store, "team/once")
    layers = _rows(fresh, "SELECT diff_id, blob, blob_media_type FROM layers")
    assert len(layers) == 2
    assert all(mt == "application/vnd.forklift.layer.v1.tar+tarsplit" and blob == diff
               for diff, blob, mt in layers)
    # only the config and the manifest are blobs: no compressed layer bytes kept
    kept = sorted(p.name for p in (fresh.root / "blobs" / "sha256").iterdir())
    assert len(kept) == 2
    sources = _rows(fresh, "SELECT diff_id, repository FROM layer_sources")
    assert sorted(d for d, _ in sources) == sorted(d for d, _, _ in layers)
    assert {r for _, r in sources} == {f"{empty_registry.host}/team/once"}
    assert_clean(fresh.root, full=True)
    # the docker-archive save gives the tars the diffIDs name
    archive = fresh.root.parent / f"{fresh.root.name}-save.tar"
    fresh("save", "-o", str(archive), ref)
    with tarfile.open(archive) as tar:
        layer_tars = [m for m in tar.getmembers() if m.name.endswith(".tar")]
        got = sorted("sha256:" + hashlib.sha256(tar.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
                     for m in layer_tars)
    archive.unlink()
    assert got == sorted(d for d, _, _ in layers)
    # the pushed-back image keeps its manifest digest: every layer is already there
    again = fresh("push", ref).out
    assert again.count("Layer already exists") == 2 and _digest_of(again) == digest
    fresh("rmi", ref)
    assert not _rows(fresh, "SELECT * FROM layer_sources")


def test_push_to_another_repository_mounts(source_store: Forklift, empty_registry: Registry,
                                           new_store: NewStore) -> None:
    fresh, ref, digest = _pulled(source_store, empty_registry, new_store, "team/mount-src")
    other = f"{empty_registry.host}/elsewhere/copy:2"
    fresh("tag", ref, other)
    fresh("rmi", ref)  # its repo digest gone: the mount source is the layer's recorded origin
    out = fresh("push", other).out
    assert out.count("Mounted from team/mount-src") == 2, out
    assert _digest_of(out) == digest


def test_push_elsewhere_refetches_from_the_source(source_store: Forklift,
                                                  empty_registry: Registry,
                                                  new_store: NewStore, tmp_path: Path) -> None:
    fresh, ref, digest = _pulled(source_store, empty_registry, new_store, "team/refetch")
    with running_registry(tmp_path / "second") as second:
        target = f"{second.host}/copies/app:1"
        fresh("tag", ref, target)
        out = fresh("push", target).out
        assert out.count(": Pushed") == 2 and _digest_of(out) == digest
        assert len(list((fresh.root / "blobs" / "sha256").iterdir())) == 2  # nothing kept
        assert not _rows(fresh, "SELECT * FROM compressed_blobs")  # fetched, not compressed
        back = new_store()
        back("pull", target)
        assert back.inspect(target)["Id"] == source_store.inspect("app:1")["Id"]
    assert not list((fresh.root / "tmp").iterdir())


def test_push_recompresses_when_the_source_is_gone(source_store: Forklift,
                                                   new_store: NewStore, tmp_path: Path) -> None:
    with running_registry(tmp_path / "first") as first:
        fresh, ref, digest = _pulled(source_store, first, new_store, "team/gone")
    with running_registry(tmp_path / "second") as second:
        target = f"{second.host}/copies/app:1"
        fresh("tag", ref, target)
        assert not _rows(fresh, "SELECT * FROM compressed_blobs")
        out = fresh("push", target).out
        assert out.count(": Pushed") == 2
        # compressed here (forklift's gzip is deterministic, and the source store's push
        # used it: the same digest; another tool's blobs would get new ones, as Docker's)
        made = _rows(fresh, "SELECT c.diff_id FROM compressed_blobs c JOIN blobs b"
                            " ON b.digest = c.digest")
        assert len(made) == 2
        assert _digest_of(out) == digest
        back = new_store()
        back("pull", target)
        assert back.inspect(target)["Id"] == source_store.inspect("app:1")["Id"]
        # the same image pushed again gets the same (recompressed) manifest
        assert _digest_of(fresh("push", target).out) == _digest_of(out)
    assert_clean(fresh.root, full=True)


def test_refetched_bytes_are_verified(source_store: Forklift, empty_proxy: Proxy,
                                      new_store: NewStore, tmp_path: Path) -> None:
    """A source that now answers other bytes under the digest is not believed: the layers
    are compressed here instead, and nothing wrong reaches the target."""
    fresh, ref, digest = _pulled(source_store, empty_proxy, new_store, "team/liar")
    empty_proxy.mutate = _flip_blobs
    with running_registry(tmp_path / "second") as second:
        target = f"{second.host}/copies/app:1"
        fresh("tag", ref, target)
        out = fresh("push", target).out
        assert out.count(": Pushed") == 2
        assert len(_rows(fresh, "SELECT * FROM compressed_blobs")) == 2
        assert [r for r in empty_proxy.requests if r[0] == "GET" and "/blobs/" in r[1]]
        back = new_store()
        back("pull", target)
        assert back.inspect(target)["Id"] == source_store.inspect("app:1")["Id"]
    assert not list((fresh.root / "tmp").iterdir())


def _flip_blobs(method: str, path: str, status: int, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes] | None:
    if method == "GET" and "/blobs/sha256:" in path and len(body) > 1000:
        return status, headers, body[:-500] + bytes([body[-500] ^ 0xFF]) + body[-499:]
    return None


def test_old_store_with_pulled_blobs_still_pushes_them(source_store: Forklift,
                                                       new_store: NewStore,
                                                       tmp_path: Path) -> None:
    """A store from before: each pulled layer's blob is its compressed bytes (no tar-split,
    no source row). Those bytes are pushed as they are, the source long gone."""
    with running_registry(tmp_path / "first") as first:
        fresh, ref, digest = _pulled(source_store, first, new_store, "team/old")
        _make_old_style(fresh, first, "team/old")
    assert_clean(fresh.root, full=True)
    with running_registry(tmp_path / "second") as second:
        target = f"{second.host}/copies/app:1"
        fresh("tag", ref, target)
        out = fresh("push", target).out
        assert out.count(": Pushed") == 2 and _digest_of(out) == digest
    assert fresh("run", "--rm", "--network", "none", ref, "cat", "/one.txt").out == "one\n"
    assert _rows(fresh, "SELECT value FROM meta WHERE key='schema'") == [("4",)]
    fresh("rmi", ref, target)
    assert not _rows(fresh, "SELECT * FROM layers")
    assert not list((fresh.root / "blobs" / "sha256").iterdir())


def _make_old_style(fl: Forklift, registry: Registry, name: str) -> None:
    """Rewrite a pulled store as an older forklift left it: the compressed blobs fetched
    again and recorded as the layers' blobs, tar-splits and source rows removed."""
    import httpx

    store = open_store(str(fl.root))
    try:
        rows = store.query("SELECT diff_id, digest, media_type FROM layer_sources")
        with store.transaction() as conn:
            for diff_id, digest, media_type in rows:
                data = httpx.get(f"{registry.base}/v2/{name}/blobs/{digest}",
                                 follow_redirects=True).content
                assert blobs.put_bytes(store, data, media_type) == digest
                conn.execute("UPDATE layers SET blob=?, blob_media_type=? WHERE diff_id=?",
                             (digest, media_type, diff_id))
                (fl.root / "layers").joinpath(
                    conn.execute("SELECT dir FROM layers WHERE diff_id=?", (diff_id,))
                    .fetchone()[0], "tar-split").unlink()
            conn.execute("DROP TABLE layer_sources")
            conn.execute("UPDATE meta SET value='3' WHERE key='schema'")  # before the table
    finally:
        store.close()
