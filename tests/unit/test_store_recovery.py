"""Crash recovery is run by whoever opens the store (``open_store``), not by ``Store`` itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from forklift.store import open_store, recovery
from forklift.store.db import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "forklift"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: nothing runs under it until the kernel reuses it


def _crash_leftovers(root: Path) -> list[Path]:
    """What a forklift process killed between rename and commit leaves behind."""
    Store(str(root)).open().close()
    scratch = root / "tmp" / f"{_dead_pid()}-layer-abc"
    scratch.mkdir()
    layer = root / "layers" / "deadbeef0001"
    (layer / "diff").mkdir(parents=True)
    blob = root / "blobs" / "sha256" / ("0" * 64)
    blob.write_bytes(b"orphan")
    return [scratch, layer, blob]


def test_store_open_leaves_a_crash_as_it_was(tmp_path: Path) -> None:
    leftovers = _crash_leftovers(tmp_path)
    store = Store(str(tmp_path)).open()
    store.close()
    assert all(p.exists() for p in leftovers)


def test_open_store_sweeps_scratch_and_orphans_of_dead_processes(tmp_path: Path) -> None:
    leftovers = _crash_leftovers(tmp_path)
    store = open_store(str(tmp_path))
    try:
        assert not any(p.exists() for p in leftovers)
        assert recovery.sweep_orphans(store) == []  # idempotent
    finally:
        store.close()


def test_live_scratch_keeps_its_files(tmp_path: Path) -> None:
    """Without a dead process's leftover there is nothing to sweep: an orphan-looking layer
    directory may be one a live process is about to register."""
    Store(str(tmp_path)).open().close()
    layer = tmp_path / "layers" / "deadbeef0001"
    layer.mkdir()
    open_store(str(tmp_path)).close()
    assert layer.exists()


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return imported | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_store_db_imports_no_other_store_module() -> None:
    """db is the bottom of the store package; only layout (constants, which import
    nothing of forklift) is below it."""
    assert {m for m in _imported(SRC / "store" / "db.py") if m.startswith("forklift.store")} \
        <= {"forklift.store.layout"}
    assert not {m for m in _imported(SRC / "store" / "layout.py") if m.startswith("forklift")}
