"""Hostile and broken archives: one-line error, non-zero exit, store unchanged."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.store import NewStore, snapshot, temporary_store

pytestmark = pytest.mark.root

Entry = tuple[tarfile.TarInfo, bytes | None]


def read_entries(path: Path) -> list[Entry]:
    with tarfile.open(path) as tf:
        return [(m, tf.extractfile(m).read() if m.isreg() else None)  # type: ignore[union-attr]
                for m in tf.getmembers()]


def write_entries(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in entries:
            info = _copy(info)
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _copy(info: tarfile.TarInfo) -> tarfile.TarInfo:
    new = tarfile.TarInfo(info.name)
    for attr in ("type", "mode", "size", "linkname", "mtime"):
        setattr(new, attr, getattr(info, attr))
    return new


def get(entries: list[Entry], name: str) -> bytes:
    return next(d for i, d in entries if i.name == name)  # type: ignore[return-value]


def put(entries: list[Entry], name: str, data: bytes) -> list[Entry]:
    if not any(i.name == name for i, _ in entries):
        info = tarfile.TarInfo(name)
        return [*entries, (info, data)]
    return [(i, data if i.name == name else d) for i, d in entries]


def drop(entries: list[Entry], name: str) -> list[Entry]:
    return [(i, d) for i, d in entries if i.name != name]


def symlink(entries: list[Entry], name: str, target: str) -> list[Entry]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return [*entries, (info, None)]


def layer_tar(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        build(tf)
    return buf.getvalue()


# ----------------------------------------------------------------------------- docker-archive

def _manifest(entries: list[Entry]) -> list[dict]:
    return json.loads(get(entries, "manifest.json"))


def _with_manifest(entries: list[Entry], change: Callable[[dict], None]) -> list[Entry]:
    manifest = _manifest(entries)
    change(manifest[0])
    return put(entries, "manifest.json", json.dumps(manifest).encode())


def _with_top_layer(entries: list[Entry], layer: bytes) -> list[Entry]:
    """Replace the top layer and point a renamed config at its diffID."""
    manifest = _manifest(entries)
    config = json.loads(get(entries, manifest[0]["Config"]))
    config["rootfs"]["diff_ids"][-1] = "sha256:" + hashlib.sha256(layer).hexdigest()
    entries = put(entries, manifest[0]["Layers"][-1], layer)
    entries = put(entries, "cfg.json", json.dumps(config).encode())
    return _with_manifest(entries, lambda m: m.update(Config="cfg.json"))


def _escape_layer(tf: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("../evil")
    info.size = 4
    tf.addfile(info, io.BytesIO(b"evil"))


def _through_symlink_layer(tf: tarfile.TarFile) -> None:
    link = tarfile.TarInfo("a")
    link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
    tf.addfile(link)
    info = tarfile.TarInfo("a/pwned")
    info.size = 1
    tf.addfile(info, io.BytesIO(b"x"))


def _flip_content(entries: list[Entry]) -> list[Entry]:
    top = _manifest(entries)[0]["Layers"][-1]
    data = get(entries, top)
    assert b"other\n" in data
    return put(entries, top, data.replace(b"other\n", b"OTHER\n"))


def _bad_config_digest(entries: list[Entry]) -> list[Entry]:
    name = _manifest(entries)[0]["Config"]
    config = json.loads(get(entries, name))
    config["author"] = "mallory"
    return put(entries, name, json.dumps(config).encode())


DOCKER_CASES: dict[str, tuple[Callable[[list[Entry]], list[Entry]], str]] = {
    "layer-dotdot": (lambda e: _with_manifest(e, lambda m: m["Layers"].__setitem__(0, "../x/layer.tar")),
                     "outside the archive"),
    "config-absolute": (lambda e: _with_manifest(e, lambda m: m.update(Config="/etc/passwd")),
                        "outside the archive"),
    "symlink-outside": (lambda e: _with_manifest(symlink(e, "ln/layer.tar", "../../../etc/passwd"),
                                                 lambda m: m["Layers"].__setitem__(-1, "ln/layer.tar")),
                        "outside the archive"),
    "missing-layer": (lambda e: drop(e, _manifest(e)[0]["Layers"][-1]), "missing"),
    "layer-digest-mismatch": (_flip_content, "digest mismatch"),
    "config-digest-mismatch": (_bad_config_digest, "digest mismatch"),
    "config-not-json": (lambda e: _with_manifest(put(e, "cfg.json", b"{not json"),
                                                 lambda m: m.update(Config="cfg.json")), "not valid JSON"),
    "manifest-not-json": (lambda e: put(e, "manifest.json", b"[{"), "not valid JSON"),
    "layer-escape": (lambda e: _with_top_layer(e, layer_tar(_escape_layer)), "escapes"),
    "layer-through-symlink": (lambda e: _with_top_layer(e, layer_tar(_through_symlink_layer)),
                              "symlink"),
    "layer-count": (lambda e: _with_manifest(e, lambda m: m["Layers"].pop()), "diff_ids"),
}


@pytest.fixture(scope="module")
def good(source_store: Forklift, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("good")
    source_store("save", "-o", str(d / "docker.tar"), "other:1")
    source_store("save", "--format", "oci-archive", "-o", str(d / "oci.tar"), "other:1")
    return {"docker": d / "docker.tar", "oci": d / "oci.tar"}


@pytest.fixture(scope="module")
def victim(source_store: Forklift) -> Iterator[Forklift]:
    """A store that already holds busybox (so the bottom layer is re-used, the rest is new)."""
    with temporary_store() as store:
        store("load", input=source_store("save", "busybox").data)
        yield store


def assert_refused(victim: Forklift, data: bytes, needle: str, via_stdin: bool = False) -> None:
    before = snapshot(victim.root)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "hostile.tar")
        path.write_bytes(data)
        proc = victim("load", input=data, check=False) if via_stdin else \
            victim("load", "-i", str(path), check=False)
    err = proc.err.strip()
    assert proc.code != 0, err
    assert err.startswith("Error: ") and "\n" not in err, err
    assert "Traceback" not in err and needle in err, err
    assert proc.data == b""
    assert snapshot(victim.root) == before


@pytest.mark.parametrize("case", sorted(DOCKER_CASES))
def test_hostile_docker_archive(case: str, good: dict[str, Path], victim: Forklift) -> None:
    mutate, needle = DOCKER_CASES[case]
    assert_refused(victim, write_entries(mutate(read_entries(good["docker"]))), needle)


@pytest.mark.parametrize("via_stdin", [False, True])
def test_truncated(good: dict[str, Path], victim: Forklift, via_stdin: bool) -> None:
    data = good["docker"].read_bytes()
    assert_refused(victim, data[: len(data) * 2 // 3 + 100], "", via_stdin)
    assert_refused(victim, gzip.compress(data)[: len(data) // 3], "", via_stdin)


def test_not_an_archive(victim: Forklift) -> None:
    assert_refused(victim, b"\x00junk" * 1000, "")
    assert_refused(victim, b"hello world\n" * 100, "", via_stdin=True)
    assert_refused(victim, write_entries([(tarfile.TarInfo("x"), b"x")]), "not an image archive")


# ----------------------------------------------------------------------------- OCI

def _index(entries: list[Entry]) -> dict:
    return json.loads(get(entries, "index.json"))


def _set_index(entries: list[Entry], change: Callable[[dict], None]) -> list[Entry]:
    index = _index(entries)
    change(index["manifests"][0])
    return put(entries, "index.json", json.dumps(index).encode())


def _manifest_blob(entries: list[Entry]) -> dict:
    return json.loads(get(entries, "blobs/sha256/" + _index(entries)["manifests"][0]["digest"][7:]))


def _top_layer_name(entries: list[Entry]) -> str:
    return "blobs/sha256/" + _manifest_blob(entries)["layers"][-1]["digest"][7:]


def _corrupt_blob(entries: list[Entry]) -> list[Entry]:
    name = _top_layer_name(entries)
    data = bytearray(get(entries, name))
    data[len(data) // 2] ^= 0xFF
    return put(entries, name, bytes(data))


def _wrong_size(entries: list[Entry]) -> list[Entry]:
    manifest = _manifest_blob(entries)
    manifest["layers"][-1]["size"] += 1
    raw = json.dumps(manifest).encode()
    digest = hashlib.sha256(raw).hexdigest()
    entries = put(entries, f"blobs/sha256/{digest}", raw)
    return _set_index(entries, lambda d: d.update(digest=f"sha256:{digest}", size=len(raw)))


OCI_CASES: dict[str, tuple[Callable[[list[Entry]], list[Entry]], str]] = {
    "index-digest-path": (lambda e: _set_index(e, lambda d: d.update(digest="sha256:../../etc/passwd")),
                          "invalid digest"),
    "blob-corrupt": (_corrupt_blob, ""),
    "blob-missing": (lambda e: drop(e, _top_layer_name(e)), "missing"),
    "manifest-digest": (lambda e: _set_index(e, lambda d: d.update(digest="sha256:" + "a" * 64)),
                        "missing"),
    "size-mismatch": (_wrong_size, "expected"),
    "index-not-json": (lambda e: put(e, "index.json", b"nope"), "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(OCI_CASES))
def test_hostile_oci_archive(case: str, good: dict[str, Path], victim: Forklift) -> None:
    mutate, needle = OCI_CASES[case]
    assert_refused(victim, write_entries(mutate(read_entries(good["oci"]))), needle)


def test_good_archives_load(good: dict[str, Path], new_store: NewStore) -> None:
    """The unmutated archives the cases start from are fine."""
    for path in good.values():
        assert new_store().out("load", "-i", str(path)) == "Loaded image: other:1"
