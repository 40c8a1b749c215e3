"""The runc driver's reading of runc, against a stand-in runc program (no root needed).

The stand-in logs the error it is told to (``FAKE_RUNC_ERROR``, in runc's JSON log
format) and exits with ``FAKE_RUNC_EXIT``; it records its working directory and
arguments. The real runc's wording is pinned by tests/runtime/test_runtime_runc.py.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest

from forklift.errors import (
    CommandNotExecutable,
    CommandNotFound,
    NoSuchRuntimeContainer,
    RuntimeFailure,
)
from forklift.runtime.runc import Runc

FAKE_RUNC = r"""#!/bin/sh
log=""; prev=""
for a in "$@"; do
  [ "$prev" = "--log" ] && log="$a"
  prev="$a"
done
printf '%s %s\n' "$PWD" "$*" >> "$FAKE_RUNC_CALLS"
if [ -n "$FAKE_RUNC_ERROR" ]; then
  printf '{"level":"warning","msg":"not this one"}\n' >> "$log"
  printf '{"level":"error","msg":"%s"}\n' "$FAKE_RUNC_ERROR" >> "$log"
fi
case " $* " in
  *" state "*) [ -z "$FAKE_RUNC_ERROR" ] && echo '{"status":"running","pid":42}' ;;
  *" ps "*) echo '[7,8]' ;;
esac
exit "${FAKE_RUNC_EXIT:-0}"
"""

NOT_FOUND = r'runc run failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH'
NO_FILE = r'runc run failed: unable to start container process: exec: \"/nope\": stat /nope: no such file or directory'
NOT_EXECUTABLE = r'runc run failed: unable to start container process: exec: \"/etc\": permission denied'


@pytest.fixture
def runc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runc:
    program = tmp_path / "runc"
    program.write_text(FAKE_RUNC)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_RUNC_CALLS", str(tmp_path / "calls"))
    monkeypatch.delenv("FAKE_RUNC_ERROR", raising=False)
    monkeypatch.delenv("FAKE_RUNC_EXIT", raising=False)
    (tmp_path / "bundle").mkdir()
    return Runc(str(tmp_path / "state"), binary=str(program))


def fails(monkeypatch: pytest.MonkeyPatch, message: str, code: int = 1) -> None:
    monkeypatch.setenv("FAKE_RUNC_ERROR", message)
    monkeypatch.setenv("FAKE_RUNC_EXIT", str(code))


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def bundle(tmp_path: Path) -> str:
    return str(tmp_path / "bundle")


@pytest.mark.parametrize(("message", "error", "code"), [
    (NOT_FOUND, CommandNotFound, 127),
    (NO_FILE, CommandNotFound, 127),
    (NOT_EXECUTABLE, CommandNotExecutable, 126),
])
def test_a_command_that_cannot_run(runc: Runc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   message: str, error: type[RuntimeFailure], code: int) -> None:
    fails(monkeypatch, message)
    with pytest.raises(error) as info:
        runc.run("c1", bundle(tmp_path))
    assert info.value.exit_code == code
    assert info.value.message == message.replace('\\"', '"')
    with pytest.raises(error):
        runc.create("c1", bundle(tmp_path))
    with pytest.raises(error):
        runc.exec("c1", "process.json")


def test_other_failures_are_runtime_failures(runc: Runc, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fails(monkeypatch, "runc run failed: mount /x: operation not permitted")
    with pytest.raises(RuntimeFailure) as info:
        runc.run("c1", bundle(tmp_path))
    assert type(info.value) is RuntimeFailure
    assert info.value.message == "runc run failed: mount /x: operation not permitted"
    monkeypatch.delenv("FAKE_RUNC_ERROR")
    with pytest.raises(RuntimeFailure, match="^runc start exited with 1$"):
        runc.start("c1")


def test_the_containers_own_exit_status_passes_through(runc: Runc, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for code in (0, 1, 3, 137, 255):
        monkeypatch.setenv("FAKE_RUNC_EXIT", str(code))
        assert runc.run("c1", bundle(tmp_path)) == code
        assert runc.exec("c1", "process.json") == code
    # runc exec's own failure exits 255 with an error logged
    fails(monkeypatch, NOT_FOUND.replace("runc run", "exec"), code=255)
    with pytest.raises(CommandNotFound):
        runc.exec("c1", "process.json")


def test_delete_and_state_of_an_unknown_container(runc: Runc, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    runc.delete("c1", force=True)
    assert calls(tmp_path) == []  # no state directory: runc is not even asked
    os.makedirs(os.path.join(runc.state_root, "c1"))
    fails(monkeypatch, "container does not exist")
    runc.delete("c1")
    assert runc.state("c1") is None
    with pytest.raises(NoSuchRuntimeContainer):
        runc.kill("c1", signal.SIGKILL)
    monkeypatch.delenv("FAKE_RUNC_ERROR")
    monkeypatch.delenv("FAKE_RUNC_EXIT")
    assert runc.state("c1") == {"status": "running", "pid": 42}
    assert runc.pids("c1") == [7, 8]
    assert not any(name.endswith(".log") for name in os.listdir(runc.state_root))


def test_arguments(runc: Runc, tmp_path: Path) -> None:
    b = bundle(tmp_path)
    long_dir = tmp_path / ("d" * 100)
    long_dir.mkdir()
    runc.kill("c1", signal.SIGTERM)
    runc.kill("c1", "SIGKILL", all=True)
    runc.delete("c1")  # no state: not run
    os.makedirs(os.path.join(runc.state_root, "c1"))
    runc.delete("c1", force=True)
    runc.run("c1", b, detach=True, console_socket=str(long_dir / "console.sock"),
             pid_file=f"{b}/init.pid")
    runc.create("c1", b, pid_file=f"{b}/init.pid")
    runc.exec("c1", "/p.json", detach=True)
    runc.pause("c1")
    runc.resume("c1")
    verbs = [line.split(" --log-format json ", 1)[1] for line in calls(tmp_path)]
    assert verbs == [
        "kill c1 15",
        "kill --all c1 SIGKILL",
        "delete --force c1",
        f"run --detach --pid-file {b}/init.pid --bundle {b} --console-socket console.sock c1",
        f"create --bundle {b} --pid-file {b}/init.pid c1",
        "exec --process /p.json --detach c1",
        "pause c1",
        "resume c1",
    ]
    # the console socket's path may be too long for sun_path: runc runs beside it
    assert calls(tmp_path)[3].split(" ", 1)[0] == str(long_dir)
    assert all(f"--root {runc.state_root} --log " in line for line in calls(tmp_path))


def test_the_bundles_log_is_kept(runc: Runc, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fails(monkeypatch, "runc create failed: boom")
    with pytest.raises(RuntimeFailure):
        runc.create("c1", bundle(tmp_path))
    lines = (tmp_path / "bundle" / "runc.log").read_text().splitlines()
    assert json.loads(lines[-1]) == {"level": "error", "msg": "runc create failed: boom"}


def _state(runc: Runc, cid: str, pid: int, start: int) -> None:
    os.makedirs(os.path.join(runc.state_root, cid), exist_ok=True)
    with open(os.path.join(runc.state_root, cid, "state.json"), "w") as f:
        json.dump({"id": cid, "init_process_pid": pid, "init_process_start": start}, f)


def _start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rpartition(b")")[2].split()[19])


def test_kill_signals_a_live_init_without_runc(runc: Runc, tmp_path: Path) -> None:
    import subprocess

    child = subprocess.Popen(["sleep", "30"])
    try:
        _state(runc, "c1", child.pid, _start_time(child.pid))
        runc.kill("c1", signal.SIGTERM)
        assert child.wait(10) == -signal.SIGTERM
        assert calls(tmp_path) == []
    finally:
        child.kill()
        child.wait()


def test_kill_leaves_a_recycled_or_dead_pid_to_runc(runc: Runc, tmp_path: Path) -> None:
    import subprocess

    child = subprocess.Popen(["sleep", "30"])
    try:
        # same pid, another start time: a process that merely reuses the init's pid
        _state(runc, "c1", child.pid, _start_time(child.pid) + 1)
        runc.kill("c1", signal.SIGTERM)
        assert child.poll() is None  # not signalled
        child.kill()
        child.wait()
        _state(runc, "c2", child.pid, _start_time(os.getpid()))  # gone
        runc.kill("c2", signal.SIGTERM)
        runc.kill("c3", signal.SIGTERM)  # no state at all
        runc.kill("c1", "SIGTERM")  # by name, and --all: always runc's
        verbs = [line.split(" --log-format json ", 1)[1] for line in calls(tmp_path)]
        assert verbs == ["kill c1 15", "kill c2 15", "kill c3 15", "kill c1 SIGTERM"]
    finally:
        child.kill()
        child.wait()
