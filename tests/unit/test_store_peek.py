"""store.peek: a running container's record without the store machinery, and None (the
ordinary path decides) for everything else."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from forklift.store import containers, open_store, peek
from forklift.store.containers import ContainerRecord, State


def _store_with(root: Path, *records: tuple[str, str, State, int | None]) -> None:
    store = open_store(str(root))
    try:
        with store.transaction():
            for cid, name, state, pid in records:
                containers.insert(store, ContainerRecord(
                    cid, name, "sha256:" + "0" * 64, "img", time.time(), state, pid,
                    config={"User": "nobody", "Labels": {"a": "b"}},
                    host_config={"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}]}))
    finally:
        store.close()


def test_a_running_container_by_id_name_and_prefix(tmp_path: Path) -> None:
    a, b = "ab" + "1" * 62, "ab" + "2" * 62
    _store_with(tmp_path, (a, "one", State.RUNNING, os.getpid()),
                (b, "two", State.RUNNING, os.getpid()),
                ("cd" + "3" * 62, "stopped", State.EXITED, None),
                ("ef" + "4" * 62, "dead", State.RUNNING, 2**22 + 1),  # no such pid
                ("f0" + "5" * 62, "paused", State.PAUSED, os.getpid()))
    for text in (a, "one", "/one", a[:12], "ab1"):
        rec = peek.running_container(str(tmp_path), text)
        assert rec is not None and rec.id == a, text
        assert (rec.name, rec.image_name, rec.pid) == ("one", "img", os.getpid())
        assert rec.config == {"User": "nobody", "Labels": {"a": "b"}}
        assert rec.host_config["Ulimits"][0]["Hard"] == 2
    for text in ("ab", "stopped", "dead", "paused", "nothing", "", "cd"):
        assert peek.running_container(str(tmp_path), text) is None, text


def test_a_store_to_open_or_recover_is_left_alone(tmp_path: Path) -> None:
    cid = "9" * 64
    _store_with(tmp_path, (cid, "one", State.RUNNING, os.getpid()))
    assert peek.running_container(str(tmp_path), "one") is not None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    leftover = tmp_path / "tmp" / f"{dead}-exec-0"
    leftover.mkdir()
    assert peek.running_container(str(tmp_path), "one") is None
    assert leftover.exists()  # recovery is open_store's
    leftover.rmdir()
    (tmp_path / "tmp" / f"{os.getpid()}-exec-0").mkdir()  # a live process's: fine
    assert peek.running_container(str(tmp_path), "one") is not None
    store = open_store(str(tmp_path))
    store.conn.execute("UPDATE meta SET value='3' WHERE key='schema'")  # to migrate
    store.close()
    assert peek.running_container(str(tmp_path), "one") is None
    empty = tmp_path / "empty"
    assert peek.running_container(str(empty), "one") is None
    assert not empty.exists()


def test_reading_loads_neither_sqlite3_nor_functools_and_both_work_after() -> None:
    script = """
import sys
from forklift.store import peek
peek._import_sqlite()
assert not {"functools", "collections", "sqlite3", "datetime", "json", "re"} & set(sys.modules)
import functools, sqlite3
assert functools.__file__.endswith("functools.py") and functools.lru_cache
conn = sqlite3.connect(":memory:")
for i in range(600):  # more statements than the cache holds: it evicts and re-prepares
    assert conn.execute(f"SELECT {i % 300}, ?", (i,)).fetchone() == (i % 300, i)
print("ok")
"""
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                         env=_with_forklift_on_path(), check=False)
    assert out.stdout.strip() == "ok", out.stderr


def _with_forklift_on_path() -> dict[str, str]:
    """The environment with forklift's directory first on PYTHONPATH: under ``-S`` an
    editable install's .pth file is not read (the launcher appends it itself)."""
    import forklift

    src = str(Path(forklift.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": src if not path else f"{src}{os.pathsep}{path}"}
