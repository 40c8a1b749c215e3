"""``exec``'s light path (engine/quickexec) against the ordinary one (engine/exec): the same
process in the container, the same exit codes and events, and nothing done where it
leaves the decision to the ordinary path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import Forklift

from forklift.engine import exec as exec_mod
from forklift.engine import quickexec
from forklift.store import open_store

pytestmark = pytest.mark.root

SERVER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]
# what a process sees of itself: user, groups, directory, environment (not its rlimits:
# runc 1.1.5 gives every other exec from one process the hard NOFILE limit as its soft one)
PROBE = ["sh", "-c", "id; pwd; env | sort; echo $A; exit 3"]


def _events(fl: Forklift) -> list[str]:
    path = fl.root / "events.log"
    return path.read_text().splitlines() if path.exists() else []


def _both(fl: Forklift, capfd: pytest.CaptureFixture[str], name: str, command: list[str],
          **kw: Any) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of ``command`` by the light path, then the ordinary one."""
    answers = []
    code = quickexec.run(str(fl.root), name, command, interactive=False, **kw)
    assert code is not None
    answers.append((code, *capfd.readouterr()))
    store = open_store(str(fl.root))
    try:
        opts = exec_mod.ExecOptions(**kw)
        code = exec_mod.exec_(store, name, command, opts)
    finally:
        store.close()
    answers.append((code, *capfd.readouterr()))
    return answers


@pytest.mark.parametrize("kw", [
    {"user": None, "workdir": None, "env": []},
    {"user": "nobody", "workdir": "/tmp", "env": ["A=1", "HOME=/x"]},
    {"user": "65534:0", "workdir": None, "env": ["PATH"]},
])
def test_the_light_path_runs_the_same_process(fl: Forklift, name: str,
                                               capfd: pytest.CaptureFixture[str],
                                               kw: dict[str, Any]) -> None:
    fl("run", "-d", "--name", name, "-e", "FROM_IMAGE=1", "-w", "/etc", "busybox", *SERVER)
    try:
        light, ordinary = _both(fl, capfd, name, PROBE, **kw)
        assert light == ordinary
        assert light[0] == 3 and "FROM_IMAGE=1" in light[1]
        for command, code in ((["no-such-program"], 127), (["/etc/passwd"], 126)):
            light, ordinary = _both(fl, capfd, name, command, **kw)
            assert light[0] == ordinary[0] == code
            assert light[1:] == ordinary[1:]  # runc's own reason, on stderr
    finally:
        fl("rm", "-f", name)


def test_its_events_and_scratch_are_the_ordinary_ones(fl: Forklift, name: str,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    fl("run", "-d", "--name", name, "busybox", *SERVER)
    try:
        before = len(_events(fl))
        _both(fl, capfd, name, ["sh", "-c", "exit 5"], user=None, workdir=None, env=[])
        new = _events(fl)[before:]
        light, ordinary = new[:2], new[2:]
        assert len(new) == 4
        for a, b in zip(light, ordinary, strict=True):
            # equal but for the exec's ID and the time
            assert _without_ids(a) == _without_ids(b)
        assert '"exitCode":"5"' in light[1]
        assert not os.listdir(fl.root / "tmp")
    finally:
        fl("rm", "-f", name)


def _without_ids(line: str) -> dict[str, Any]:
    event = json.loads(line)
    del event["time"], event["timeNano"], event["Actor"]["Attributes"]["execID"]
    return event  # type: ignore[no-any-return]


def test_it_leaves_everything_else_to_the_ordinary_path(fl: Forklift, name: str) -> None:
    """None, having written nothing, for: no such container, one not running or paused, no
    command, a store still to recover (a dead process's scratch) or to create; the CLI
    then gives the ordinary path's answers."""
    fl("create", "--name", name, "busybox", *SERVER)
    try:
        events, scratch = len(_events(fl)), sorted(os.listdir(fl.root / "tmp"))

        def run(target: str, command: list[str], root: Path = fl.root) -> int | None:
            return quickexec.run(str(root), target, command, interactive=False, user=None,
                                 workdir=None, env=[])

        assert run("no-such-container", ["true"]) is None
        assert run(name, ["true"]) is None  # created, not running
        fl("start", name)
        assert run(name, []) is None
        fl("pause", name)
        assert run(name, ["true"]) is None
        assert "is paused" in fl("exec", name, "true", check=False).err
        fl("unpause", name)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        leftover = fl.root / "tmp" / f"{dead}-exec-000000000000"
        leftover.mkdir()
        assert run(name, ["true"]) is None
        assert leftover.exists()
        assert run(name, ["true"], root=fl.root / "no-store-here") is None
        assert not (fl.root / "no-store-here").exists()
        assert not [e for e in _events(fl)[events:] if '"exec_' in e]  # start, pause…: no exec's
        assert fl("exec", name, "true").code == 0  # the ordinary path recovers first
        assert not leftover.exists()
        assert sorted(os.listdir(fl.root / "tmp")) == scratch
        assert run(name, ["true"]) == 0
        short = fl.inspect(name)["Id"][:12]
        assert run(short, ["sh", "-c", "exit 4"]) == 4  # an ID prefix finds it too
    finally:
        fl("rm", "-f", name)
    assert fl("exec", name, "true", check=False).err.strip() == f"Error: No such container: {name}"


def test_a_stop_during_the_exec_ends_it(fl: Forklift, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", *SERVER)
    try:
        proc = subprocess.Popen([*fl.argv, "exec", name, "sleep", "30"], env=fl.environ(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(200):  # until the container shows the exec'd process
            if "sleep 30" in fl.out("exec", name, "ps"):
                break
        fl("stop", "-t", "1", name)
        assert proc.wait(timeout=30) != 0
        assert not os.listdir(fl.root / "tmp")
    finally:
        fl("rm", "-f", name)
