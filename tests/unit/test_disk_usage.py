"""``du``: sizes counted as Docker counts a volume or a container layer (moby's directory.Size)."""

from __future__ import annotations

import os
from pathlib import Path

from forklift.engine.system import du


def test_du_counts_symlinks_and_every_file_once(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1234567")
    os.link(tmp_path / "f", tmp_path / "hard")
    os.symlink("/some/long/target/path", tmp_path / "link")  # 22 bytes, never followed
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "g").write_bytes(b"12")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "empty").touch()
    # Docker 20.10 reports 31B for this tree in `system df -v` and `volume prune`
    assert du(str(tmp_path)) == 7 + 22 + 2


def test_du_of_a_missing_directory_is_zero(tmp_path: Path) -> None:
    assert du(str(tmp_path / "nosuch")) == 0
