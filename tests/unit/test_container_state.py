"""store.containers.State: the five states as plain text, with an enum's interface."""

from __future__ import annotations

import copy
import json
import pickle
import sqlite3
import subprocess
import sys

import pytest

from forklift.store.containers import State

TEXTS = ("created", "running", "paused", "exited", "restarting")


@pytest.mark.parametrize("text", TEXTS)
def test_each_state_is_its_text(text: str) -> None:
    state = State(text)
    assert state is getattr(State, text.upper())
    assert state == text and hash(state) == hash(text) and {text: 1}[state] == 1
    assert str(state) == f"{state}" == state.value == text and type(str(state)) is str
    assert state.name == text.upper()
    assert repr(state) == f"<State.{text.upper()}: {text!r}>"
    assert json.dumps(state) == json.dumps(text)
    assert pickle.loads(pickle.dumps(state)) is state
    assert copy.deepcopy(state) is state
    conn = sqlite3.connect(":memory:")
    assert conn.execute("SELECT ?", (state,)).fetchone()[0] == text
    assert state.up == (text in ("running", "paused", "restarting"))


@pytest.mark.parametrize("text", ["", "Running", "dead", "removing"])
def test_other_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a valid State"):
        State(text)


def test_it_needs_no_enum() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, forklift.store.containers;"
                          " print('enum' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
