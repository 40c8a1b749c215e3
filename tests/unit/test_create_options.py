"""`engine.containers.CreateOptions` and the ps records: slotted classes on the `run` path
that keep the dataclass interface their callers (the CLI, the API, the builder) use."""

from __future__ import annotations

import pytest

from forklift.engine.containers import ContainerRow, CreateOptions, Status
from forklift.store.containers import ContainerRecord


def test_defaults_are_click_s_and_lists_are_never_shared() -> None:
    a, b = CreateOptions(), CreateOptions()
    assert (a.network, a.name, a.auto_remove, a.env, a.run_flags) == ("bridge", None, False, [], None)
    a.env.append("A=1")
    assert b.env == [] and CreateOptions().env == []


def test_keywords_equality_and_replace_as_a_dataclass() -> None:
    opts = CreateOptions(name="x", labels=["a=1"], network="none")
    assert opts == CreateOptions(name="x", labels=["a=1"], network="none")
    assert opts != CreateOptions(name="y", labels=["a=1"], network="none")
    copy = opts.replace(labels=["b=2", *opts.labels])
    assert (copy.labels, copy.name, copy.network) == (["b=2", "a=1"], "x", "none")
    assert opts.labels == ["a=1"]
    assert "name='x'" in repr(opts)
    with pytest.raises(TypeError, match="no_such_option"):
        CreateOptions(no_such_option=1)
    with pytest.raises(AttributeError):
        opts.no_such_option = 1  # type: ignore[attr-defined]  # slotted: no stray fields


def test_status_and_row_records() -> None:
    now = Status("running", 0, 1.0, 0.0)
    assert now.health == "" and now == Status("running", 0, 1.0, 0.0, "")
    rec = ContainerRecord("a" * 64, "n", "sha256:" + "b" * 64, "img", 1.0)
    row = ContainerRow(rec.id, "img", "sh", 1.0, now, "", "n", rec)
    assert (row.status.state, row.names, row.record) == ("running", "n", rec)
