"""Through the CLI: an imported or loaded layer is stored as its directory and a tar-split,
and `save` gives its tar back byte for byte (Docker's own save too); a layer directory
changed behind forklift's back makes `save` fail with one line and `system check --full`
report it."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from support import Forklift
from support.docker import Docker
from support.store import NewStore

pytestmark = pytest.mark.root


def _layer_dirs(fl: Forklift) -> list[Path]:
    return sorted(p for p in (fl.root / "layers").iterdir() if p.is_dir())


def _saved_layers(fl: Forklift, image: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(fl("save", image).data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return {name: tar.extractfile(name).read()  # type: ignore[union-attr]
                for name in manifest[0]["Layers"]}


def test_import_keeps_no_tar_and_save_gives_it_back(new_store: NewStore, busybox_tar: Path,
                                                    tmp_path: Path) -> None:
    fl = new_store()
    fl("import", str(busybox_tar), "bb:1")
    (layer,) = _layer_dirs(fl)
    assert (layer / "tar-split").stat().st_size < busybox_tar.stat().st_size // 20
    assert not list((fl.root / "blobs" / "sha256").glob(fl.inspect("bb:1")["RootFS"]["Layers"][0][7:]))
    fl("run", "--rm", "bb:1", "true")
    fl("system", "check", "--full")
    (data,) = _saved_layers(fl, "bb:1").values()
    assert data == busybox_tar.read_bytes()[:len(data)]
    # and loaded elsewhere, the same again
    other = new_store()
    other("load", input=fl("save", "bb:1").data)
    assert list(_saved_layers(other, "bb:1").values()) == [data]
    other("system", "check", "--full")


def test_a_changed_layer_directory_fails_save_with_one_line(new_store: NewStore,
                                                           tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_bytes(b"original content\n")
    subprocess.run(["tar", "-cf", str(tmp_path / "a.tar"), "-C", str(src), "."], check=True)
    fl = new_store()
    fl("import", str(tmp_path / "a.tar"), "changed:1")
    (layer,) = _layer_dirs(fl)
    (layer / "diff" / "file").write_bytes(b"ORIGINAL CONTENT\n")
    out = tmp_path / "out.tar"
    proc = fl("save", "-o", str(out), "changed:1", check=False)
    err = proc.err.strip()
    assert proc.code != 0 and err.startswith("Error: ") and "\n" not in err, err
    assert "no longer matches its diffID" in err and not out.exists()
    check = fl("system", "check", "--full", check=False)
    assert check.code == 1 and "layer sha256:" in check.out, check.out


@pytest.mark.docker
def test_docker_save_layers_come_back_byte_for_byte(new_store: NewStore, busybox_tar: Path,
                                                    docker: Docker) -> None:
    docker("rmi", "-f", "tsplit:1", check=False)
    docker("import", str(busybox_tar), "tsplit:1")
    saved = docker("save", "tsplit:1").data
    with tarfile.open(fileobj=io.BytesIO(saved)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        docker_layers = [tar.extractfile(n).read() for n in manifest[0]["Layers"]]  # type: ignore[union-attr]
    docker("rmi", "tsplit:1")
    fl = new_store()
    fl("load", input=saved)
    assert all((d / "tar-split").exists() for d in _layer_dirs(fl))
    assert list(_saved_layers(fl, "tsplit:1").values()) == docker_layers
