"""`load` of layers the store already has: registered on the stored layer, never extracted
again (Docker's "Loading layer … already exists"), and a lie about one still refused."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest
from support import Forklift
from support.store import NewStore, snapshot

pytestmark = pytest.mark.root

# reached once per layer extracted into scratch space (store/layers.ingest)
EXTRACTING = {"FORKLIFT_CRASH_AT": "layer-extracted"}


def _layers(fl: Forklift) -> dict[str, tuple[str, int]]:
    """diffID -> (directory, inode of that directory): a layer made again gets new ones."""
    conn = sqlite3.connect(f"file:{fl.root / 'forklift.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT diff_id, dir FROM layers").fetchall()
    finally:
        conn.close()
    return {d: (name, (fl.root / "layers" / name / "diff").stat().st_ino) for d, name in rows}


def test_second_load_extracts_nothing(source_store: Forklift, new_store: NewStore,
                                      tmp_path: Path) -> None:
    archive = tmp_path / "other.tar"
    source_store("save", "-o", str(archive), "other:1")
    dest = new_store()
    # the crash point is reached on this path: a load that extracts is killed there
    assert dest("load", "-i", str(archive), env=EXTRACTING, check=False).code != 0
    assert dest.out("load", "-i", str(archive)) == "Loaded image: other:1"
    layers, before = _layers(dest), snapshot(dest.root)
    assert len(layers) == 3
    proc = dest("load", "-i", str(archive), env=EXTRACTING, check=False)
    assert proc.code == 0, proc.err
    assert proc.out.strip() == "Loaded image: other:1"
    assert _layers(dest) == layers and snapshot(dest.root) == before


def test_load_sharing_base_layers_reuses_them(source_store: Forklift, new_store: NewStore,
                                             tmp_path: Path) -> None:
    base, top = tmp_path / "busybox.tar", tmp_path / "other.tar"
    source_store("save", "-o", str(base), "busybox")
    source_store("save", "-o", str(top), "other:1")
    dest = new_store()
    dest("load", "-i", str(base))
    (base_id, base_layer), = _layers(dest).items()
    # killed when the first layer is extracted, its scratch copy left behind (SIGKILL):
    # that first layer must be the one the store lacks, not busybox's again
    assert dest("load", "-i", str(top), env=EXTRACTING, check=False).code != 0
    extracted = [p.relative_to(p.parents[1]) for p in (dest.root / "tmp").glob("*/diff/*/*")]
    assert extracted and Path("bin/busybox") not in extracted, extracted
    assert dest.out("load", "-i", str(top)) == "Loaded image: other:1"
    after = _layers(dest)
    assert after[base_id] == base_layer  # the same directory, not a new copy
    assert len(after) == 3
    assert dest.inspect("other:1")["RootFS"]["Layers"] == \
        source_store.inspect("other:1")["RootFS"]["Layers"]


def test_stored_layer_is_not_read_again(source_store: Forklift, new_store: NewStore,
                                        tmp_path: Path) -> None:
    """An archive naming a layer the store has, with other bytes under that name: as
    Docker, the image is registered on the stored layer; those bytes are never read, so
    nothing of them reaches the store."""
    good = tmp_path / "busybox.tar"
    source_store("save", "-o", str(good), "busybox")
    dest = new_store()
    dest("load", "-i", str(good))
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as out:
        manifest = json.loads(src.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for info in src.getmembers():
            data = src.extractfile(info) if info.isfile() else None
            if info.name == manifest[0]["Layers"][0]:
                body = b"not a tar at all"
                info.size = len(body)
                out.addfile(info, io.BytesIO(body))
            else:
                out.addfile(info, data)
    before = snapshot(dest.root)
    assert dest.out("load", "-i", str(bad)) == "Loaded image: busybox:latest"
    assert snapshot(dest.root) == before
    dest("rmi", "busybox")  # a layer refused is refused still, when it is not stored
    proc = dest("load", "-i", str(bad), check=False)
    err = proc.err.strip()
    assert proc.code != 0 and err.startswith("Error: ") and "\n" not in err, err
    assert "Traceback" not in err
    assert dest.out("images", "-q") == ""
