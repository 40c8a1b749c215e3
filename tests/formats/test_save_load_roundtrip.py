"""forklift save → forklift load in every format: IDs, diffIDs, tags, whiteouts, idempotence."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from formats_support import count_files, fl, inspect, out, snapshot

NAMES = ["hw_image:latest", "hw_image:2.7", "other:1"]
EXPECTED_LINES = ["Loaded image: hw_image:latest", "Loaded image: hw_image:2.7",
                  "Loaded image: other:1"]


def _ids(root: Path, names: list[str]) -> dict[str, tuple[str, list[str]]]:
    out_ = {}
    for name in names:
        info = inspect(root, name)
        out_[name] = (info["Id"], info["RootFS"]["Layers"])
    return out_


def _save(src: Path, dest: Path, fmt: str, *extra: str) -> Path:
    fl(src, "image", "save", "--format", fmt, "-o", str(dest), *extra, *NAMES)
    return dest


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_round_trip_keeps_ids_tags_and_whiteouts(source_store: Path, tmp_path: Path, fmt: str) -> None:
    archive = _save(source_store, tmp_path / "out", fmt)
    dest = tmp_path / "store"
    lines = out(fl(dest, "image", "load", "-i", str(archive))).splitlines()
    assert lines == EXPECTED_LINES
    assert _ids(dest, NAMES) == _ids(source_store, NAMES)
    run = fl(dest, "run", "--rm", "hw_image:2.7", "sh", "-c", "ls /HelloWorld; ls /bin/cat || echo gone")
    assert out(run).splitlines() == ["/HelloWorld", "gone"]
    # loading it again copies nothing and changes nothing
    before, files = snapshot(dest), count_files(dest)
    assert out(fl(dest, "load", "-i", str(archive))).splitlines() == EXPECTED_LINES
    assert snapshot(dest) == before and count_files(dest) == files


def test_docker_archive_resave_is_byte_identical(source_store: Path, tmp_path: Path) -> None:
    first = _save(source_store, tmp_path / "a.tar", "docker-archive")
    dest = tmp_path / "store"
    fl(dest, "load", "-i", str(first))
    second = _save(dest, tmp_path / "b.tar", "docker-archive")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
def test_oci_resave_keeps_manifest_digests(source_store: Path, tmp_path: Path, compress: str) -> None:
    first = _save(source_store, tmp_path / "a.tar", "oci-archive", "--compress", compress)
    dest = tmp_path / "store"
    fl(dest, "load", "-i", str(first))
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


def test_stream_stdout_to_stdin_and_wrapped(source_store: Path, tmp_path: Path) -> None:
    data = fl(source_store, "save", "hw_image:2.7").stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] == ["hw_image:2.7"]  # type: ignore[arg-type]
    dest = tmp_path / "store"
    assert out(fl(dest, "load", stdin=data)) == "Loaded image: hw_image:2.7"
    plain = tmp_path / "hw.tar"
    plain.write_bytes(data)
    assert out(fl(dest, "load", stdin_file=plain)) == "Loaded image: hw_image:2.7"  # read in place
    assert out(fl(dest, "load", stdin=gzip.compress(data))) == "Loaded image: hw_image:2.7"
    zst = tmp_path / "hw.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(data))
    assert out(fl(dest, "load", stdin_file=zst)) == "Loaded image: hw_image:2.7"
    assert out(fl(dest, "load", "-i", str(zst))) == "Loaded image: hw_image:2.7"
    assert list((dest / "tmp").iterdir()) == []


def test_manifest_json_at_end_from_stdin(source_store: Path, tmp_path: Path) -> None:
    """A docker-archive whose manifest.json comes last still loads from a pipe."""
    src = _save(source_store, tmp_path / "a.tar", "docker-archive")
    moved = tmp_path / "b.tar"
    with tarfile.open(src) as tin, tarfile.open(moved, "w") as tout:
        members = tin.getmembers()
        for m in sorted(members, key=lambda m: m.name in ("manifest.json", "repositories")):
            tout.addfile(m, tin.extractfile(m) if m.isreg() else None)
    lines = out(fl(tmp_path / "store", "load", stdin=moved.read_bytes())).splitlines()
    assert lines == EXPECTED_LINES


def test_save_by_name_id_and_untagged_load(source_store: Path, tmp_path: Path) -> None:
    image_id = inspect(source_store, "other:1")["Id"]
    data = fl(source_store, "save", image_id[7:19]).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] is None  # type: ignore[arg-type]
    assert out(fl(tmp_path / "s", "load", stdin=data)) == f"Loaded image ID: {image_id}"
    # a bare repository name saves every tag of it, as docker save does
    lines = out(fl(tmp_path / "t", "load", stdin=fl(source_store, "save", "hw_image").stdout))
    assert sorted(lines.splitlines()) == ["Loaded image: hw_image:2.7", "Loaded image: hw_image:latest"]


def test_oci_dir_layout_and_adding_to_it(source_store: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    fl(source_store, "save", "--format", "oci-dir", "-o", str(layout), "hw_image:2.7")
    fl(source_store, "save", "--format", "oci-dir", "-o", str(layout), "other:1")
    index = json.loads((layout / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == ["2.7", "1"]
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    lines = out(fl(tmp_path / "store", "load", "-i", str(layout))).splitlines()
    assert lines == ["Loaded image: hw_image:2.7", "Loaded image: other:1"]


def test_save_errors_are_one_line(source_store: Path, tmp_path: Path) -> None:
    cases = [
        ["save", "-o", str(tmp_path / "x.tar"), "nosuch:1"],
        ["save", "--format", "oci-dir", "hw_image"],
        ["save", "--compress", "zstd", "-o", str(tmp_path / "y.tar"), "hw_image"],
    ]
    for args in cases:
        proc = fl(source_store, *args, check=False)
        err = proc.stderr.decode().strip()
        assert proc.returncode != 0 and err.startswith("Error: ") and "\n" not in err, (args, err)
    assert not (tmp_path / "x.tar").exists() and not list(tmp_path.glob(".*tmp"))


def test_docker25_style_archive(source_store: Path, tmp_path: Path) -> None:
    """Docker >= 25 writes an OCI layout plus manifest.json naming blobs/sha256/… (and symlinks)."""
    layout = tmp_path / "layout"
    fl(source_store, "save", "--format", "oci-dir", "--compress", "none", "-o", str(layout), "other:1")
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
    dest = tmp_path / "store"
    assert out(fl(dest, "load", "-i", str(archive))) == "Loaded image: d25:1"
    assert inspect(dest, "d25:1")["Id"] == inspect(source_store, "other:1")["Id"]
