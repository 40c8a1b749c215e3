"""The exec path's plain records and scratch removal behave as the dataclasses and
shutil.rmtree they replaced: keyword construction, fresh defaults, equality by value."""

from __future__ import annotations

import os
from pathlib import Path

from forklift.engine.exec import ExecOptions
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import remove_path


def test_container_record_compares_by_value_with_fresh_defaults() -> None:
    a = ContainerRecord("id1", "n", "sha256:x", "img", 1.0)
    b = ContainerRecord(id="id1", name="n", image_id="sha256:x", image_name="img", created=1.0)
    assert a == b and a.state is State.CREATED and a.pid is None
    a.config["Env"] = ["A=1"]
    assert b.config == {} and a != b  # no shared default dict
    assert ContainerRecord("id1", "n", "sha256:x", "img", 1.0, State.RUNNING, 5) != b
    assert "id='id1'" in repr(a) and a.short_id == "id1"


def test_exec_options_keywords_and_defaults() -> None:
    opts = ExecOptions(tty=True, env=["A=1"], user="1000")
    assert (opts.tty, opts.interactive, opts.detach, opts.workdir) == (True, False, False, None)
    assert opts == ExecOptions(user="1000", env=["A=1"], tty=True)
    assert ExecOptions().env == [] and ExecOptions().env is not ExecOptions().env
    assert opts != ExecOptions(tty=True, env=["A=2"], user="1000")


def test_remove_path_flat_and_nested_trees(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "process.json").write_text("{}")
    os.symlink("/etc", flat / "link")  # a symlink to a directory is unlinked, not walked
    nested = tmp_path / "nested"
    (nested / "a" / "b").mkdir(parents=True)
    (nested / "a" / "b" / "f").write_text("x")
    for path in (flat, nested, tmp_path / "missing"):
        remove_path(str(path))
        assert not path.exists()
    assert os.path.isdir("/etc")
