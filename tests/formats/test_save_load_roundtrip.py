"""forklift save → forklift load in every format: IDs, diffIDs, tags, whiteouts, idempotence."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from support import Forklift
from support.store import NewStore, snapshot

pytestmark = pytest.mark.root

NAMES = ["hw_image:latest", "hw_image:2.7", "other:1"]
EXPECTED_LINES = ["Loaded image: hw_image:latest", "Loaded image: hw_image:2.7",
                  "Loaded image: other:1"]


def _ids(fl: Forklift, names: list[str]) -> dict[str, tuple[str, list[str]]]:
    out_ = {}
    for name in names:
        info = fl.inspect(name)
        out_[name] = (info["Id"], info["RootFS"]["Layers"])
    return out_


def _save(src: Forklift, dest: Path, fmt: str, *extra: str) -> Path:
    src("image", "save", "--format", fmt, "-o", str(dest), *extra, *NAMES)
    return dest


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_round_trip_keeps_ids_tags_and_whiteouts(source_store: Forklift, new_store: NewStore,
                                                  tmp_path: Path, fmt: str) -> None:
    archive = _save(source_store, tmp_path / "out", fmt)
    dest = new_store()
    lines = dest.out("image", "load", "-i", str(archive)).splitlines()
    assert lines == EXPECTED_LINES
    assert _ids(dest, NAMES) == _ids(source_store, NAMES)
    run = dest.out("run", "--rm", "hw_image:2.7", "sh", "-c", "ls /HelloWorld; ls /bin/cat || echo gone")
    assert run.splitlines() == ["/HelloWorld", "gone"]
    # loading it again copies nothing and changes nothing (every file under blobs/ included)
    before = snapshot(dest.root)
    assert dest.out("load", "-i", str(archive)).splitlines() == EXPECTED_LINES
    assert snapshot(dest.root) == before


def test_docker_archive_resave_is_byte_identical(source_store: Forklift, new_store: NewStore,
                                                 tmp_path: Path) -> None:
    first = _save(source_store, tmp_path / "a.tar", "docker-archive")
    dest = new_store()
    dest("load", "-i", str(first))
    second = _save(dest, tmp_path / "b.tar", "docker-archive")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
def test_oci_resave_keeps_manifest_digests(source_store: Forklift, new_store: NewStore,
                                           tmp_path: Path, compress: str) -> None:
    first = _save(source_store, tmp_path / "a.tar", "oci-archive", "--compress", compress)
    dest = new_store()
    dest("load", "-i", str(first))
    second = _save(dest, tmp_path / "b.tar", "oci-archive", "--compress", compress)
    assert _index(first) == _index(second)
    media = {layer["mediaType"] for layer in _manifests(first)}
    suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ".tar"}[compress]
    assert all(m.endswith(suffix) for m in media)


def _index(path: Path) -> dict:
    with tarfile.open(path) as tf:
        return json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]


def _manifests(path: Path) -> list[dict]:
    layers = []
    with tarfile.open(path) as tf:
        for entry in _index(path)["manifests"]:
            blob = tf.extractfile(f"blobs/sha256/{entry['digest'][7:]}")
            layers.extend(json.load(blob)["layers"])  # type: ignore[arg-type]
    return layers


def test_stream_stdout_to_stdin_and_wrapped(source_store: Forklift, new_store: NewStore,
                                            tmp_path: Path) -> None:
    data = source_store("save", "hw_image:2.7").data
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] == ["hw_image:2.7"]  # type: ignore[arg-type]
    dest = new_store()
    assert dest.out("load", input=data) == "Loaded image: hw_image:2.7"
    plain = tmp_path / "hw.tar"
    plain.write_bytes(data)
    assert dest.out("load", stdin=plain) == "Loaded image: hw_image:2.7"  # read in place
    assert dest.out("load", input=gzip.compress(data)) == "Loaded image: hw_image:2.7"
    zst = tmp_path / "hw.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(data))
    assert dest.out("load", stdin=zst) == "Loaded image: hw_image:2.7"
    assert dest.out("load", "-i", str(zst)) == "Loaded image: hw_image:2.7"
    assert list((dest.root / "tmp").iterdir()) == []


def test_manifest_json_at_end_from_stdin(source_store: Forklift, new_store: NewStore,
                                        tmp_path: Path) -> None:
    """A docker-archive whose manifest.json comes last still loads from a pipe."""
    src = _save(source_store, tmp_path / "a.tar", "docker-archive")
    moved = tmp_path / "b.tar"
    with tarfile.open(src) as tin, tarfile.open(moved, "w") as tout:
        members = tin.getmembers()
        for m in sorted(members, key=lambda m: m.name in ("manifest.json", "repositories")):
            tout.addfile(m, tin.extractfile(m) if m.isreg() else None)
    lines = new_store().out("load", input=moved.read_bytes()).splitlines()
    assert lines == EXPECTED_LINES


def test_save_by_name_id_and_untagged_load(source_store: Forklift, new_store: NewStore) -> None:
    image_id = source_store.inspect("other:1")["Id"]
    data = source_store("save", image_id[7:19]).data
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] is None  # type: ignore[arg-type]
    assert new_store().out("load", input=data) == f"Loaded image ID: {image_id}"
    # a bare repository name saves every tag of it, as docker save does
    lines = new_store().out("load", input=source_store("save", "hw_image").data)
    assert sorted(lines.splitlines()) == ["Loaded image: hw_image:2.7", "Loaded image: hw_image:latest"]


def test_oci_dir_layout_and_adding_to_it(source_store: Forklift, new_store: NewStore,
                                         tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    source_store("save", "--format", "oci-dir", "-o", str(layout), "hw_image:2.7")
    source_store("save", "--format", "oci-dir", "-o", str(layout), "other:1")
    index = json.loads((layout / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == ["2.7", "1"]
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    lines = new_store().out("load", "-i", str(layout)).splitlines()
    assert lines == ["Loaded image: hw_image:2.7", "Loaded image: other:1"]


def test_save_errors_are_one_line(source_store: Forklift, tmp_path: Path) -> None:
    cases = [
        ["save", "-o", str(tmp_path / "x.tar"), "nosuch:1"],
        ["save", "--format", "oci-dir", "hw_image"],
        ["save", "--compress", "zstd", "-o", str(tmp_path / "y.tar"), "hw_image"],
    ]
    for args in cases:
        proc = source_store(*args, check=False)
        err = proc.err.strip()
        assert proc.code != 0 and err.startswith("Error: ") and "\n" not in err, (args, err)
    assert not (tmp_path / "x.tar").exists() and not list(tmp_path.glob(".*tmp"))


def test_docker25_style_archive(source_store: Forklift, new_store: NewStore,
                                tmp_path: Path) -> None:
    """Docker >= 25 writes an OCI layout plus manifest.json naming blobs/sha256/… (and symlinks)."""
    layout = tmp_path / "layout"
    source_store("save", "--format", "oci-dir", "--compress", "none", "-o", str(layout), "other:1")
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    layers = [f"blobs/sha256/{d['digest'][7:]}" for d in manifest["layers"]]
    (layout / "legacy").mkdir()
    (layout / "legacy" / "layer.tar").symlink_to(f"../{layers[-1]}")
    entry = {"Config": f"blobs/sha256/{manifest['config']['digest'][7:]}", "RepoTags": ["d25:1"],
             "Layers": [*layers[:-1], "legacy/layer.tar"]}
    (layout / "manifest.json").write_text(json.dumps([entry]))
    archive = tmp_path / "d25.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(layout, ".")
    dest = new_store()
    assert dest.out("load", "-i", str(archive)) == "Loaded image: d25:1"
    assert dest.inspect("d25:1")["Id"] == source_store.inspect("other:1")["Id"]
