"""When its records reach the disk (docs/reliability.md, section 1, "Durability"): a
command that returns has checkpointed its records into the database file (its close
runs SQLite's checkpoint, which syncs the WAL and the file), and records committed by a
command killed before its close are read back from the WAL by the next command."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest
from support import Forklift
from support.store import assert_clean

pytestmark = pytest.mark.root


def _names_in_the_database_file(root: Path) -> set[str]:
    """The container names forklift.db itself holds (immutable: SQLite reads the file as
    it is and ignores any WAL beside it)."""
    conn = sqlite3.connect(f"file:{root / 'forklift.db'}?immutable=1", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM containers")}
    finally:
        conn.close()


def test_a_command_that_returned_left_its_records_in_the_database_file(
        fl: Forklift, busybox: str) -> None:
    fl("create", "--network", "none", "--name", "durable", "busybox", "true")
    assert not (fl.root / "forklift.db-wal").exists()  # checkpointed and removed at close
    assert "durable" in _names_in_the_database_file(fl.root)
    fl("run", "--rm", "--network", "none", "--name", "gone", "busybox", "true")
    assert not (fl.root / "forklift.db-wal").exists()
    assert "gone" not in _names_in_the_database_file(fl.root)
    fl("rm", "durable")


def test_a_run_killed_before_its_close_leaves_its_records_in_the_wal(
        fl: Forklift, busybox: str) -> None:
    proc = fl("run", "--rm", "--network", "none", "--name", "victim", "busybox", "true",
              env={"FORKLIFT_CRASH_AT": "start-after-runc"}, check=False)
    assert proc.code == -signal.SIGKILL, proc.err
    assert (fl.root / "forklift.db-wal").stat().st_size > 0  # never checkpointed
    assert "victim" not in _names_in_the_database_file(fl.root)
    # the next command reads the killed run's records from the WAL
    assert fl.inspect("victim")["Name"] == "/victim"
    fl("rm", "-f", "victim")
    out = fl("system", "check", "--repair", "--grace", "0", check=False)
    assert out.code == 0, out.out + out.err
    assert_clean(fl.root, full=True)
