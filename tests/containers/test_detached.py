"""Detached containers: run -d, the monitor, logs and the lifecycle verbs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest
from support import wait_for

pytestmark = pytest.mark.root

TICKER = "i=0; while true; do echo line $i; echo err $i >&2; i=$((i+1)); sleep 0.1; done"


def _log_lines(fl: Any, name: str, *args: str) -> list[str]:
    return fl.out("logs", *args, name).splitlines()


def test_run_detached_prints_id_and_logs(fl: Any, name: str) -> None:
    t0 = time.monotonic()
    cid = fl.out("run", "-d", "--name", name, "busybox", "sh", "-c", TICKER)
    assert time.monotonic() - t0 < 5
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    assert fl.status(name) == "running"
    wait_for(lambda: len(_log_lines(fl, name)) >= 6, what="log lines")
    # json-file log in Docker's format
    path = fl.root / "containers" / cid / f"{cid}-json.log"
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) == {"log", "stream", "time"}
    assert first["log"].endswith("\n") and first["stream"] in ("stdout", "stderr")
    assert first["time"].endswith("Z") and len(first["time"].split(".")[1]) == 10
    proc = fl("logs", "--tail", "2", name)
    assert len(proc.out.splitlines()) + len(proc.err.splitlines()) == 2
    assert "line" in fl("logs", name).out and "err" in fl("logs", name).err
    p = fl("logs", "-t", "--tail", "1", name)
    stamped = (p.out + p.err).strip()
    assert stamped[:4].isdigit() and "T" in stamped.split()[0]
    assert fl.out("logs", "--since", "1h", name)
    assert not fl("logs", "--since", "2999-01-01T00:00:00Z", name).out
    # ps shows it running; inspect has a real state
    assert name in fl.out("ps")
    state = fl.inspect(name)["State"]
    assert state["Running"] and state["Status"] == "running" and state["Pid"] > 0
    assert state["StartedAt"].startswith("20")
    fl("rm", "-f", name)


def test_logs_follow_returns_when_container_exits(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.3; done")
    proc = fl("logs", "-f", name, timeout=20)
    assert proc.out.split() == ["n1", "n2", "n3"]
    assert fl.out("wait", name) == "0"
    fl("rm", name)


def test_stop_start_restart_kill_wait(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    t0 = time.monotonic()
    fl("stop", "-t", "5", name)
    assert time.monotonic() - t0 < 4  # the trap makes it exit on SIGTERM, no SIGKILL needed
    state = fl.inspect(name)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 7
    assert state["FinishedAt"] >= state["StartedAt"]
    fl("start", name)
    assert fl.status(name) == "running"
    first_start = fl.inspect(name)["State"]["StartedAt"]
    fl("restart", "-t", "1", name)
    assert fl.status(name) == "running"
    assert fl.inspect(name)["State"]["StartedAt"] > first_start
    waiter = subprocess.Popen([*fl.argv, "wait", name], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert waiter.poll() is None
    fl("kill", "-s", "TERM", name)
    assert waiter.communicate(timeout=10)[0].strip() == "7"
    fl("start", name)
    fl("kill", name)
    assert fl.out("wait", name) == "137"
    fl("rm", name)


def test_stop_escalates_to_sigkill(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
    t0 = time.monotonic()
    fl("stop", "-t", "1", name)
    took = time.monotonic() - t0
    assert 0.9 < took < 6
    assert fl.inspect(name)["State"]["ExitCode"] == 137
    fl("rm", name)


def test_kill_hup_reaches_process(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c",
       "trap 'echo got-hup' HUP; while true; do sleep 0.1; done")
    time.sleep(0.3)
    fl("kill", "-s", "HUP", name)
    wait_for(lambda: "got-hup" in fl.out("logs", name), what="HUP trap")
    assert fl.status(name) == "running"
    fl("rm", "-f", name)


def test_pause_unpause_top_rename_exec(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "echo $$ > /tmp/pid; exec sleep 1000")
    fl("pause", name)
    assert fl.status(name) == "paused"
    assert "Paused" in fl.out("ps")
    assert fl("exec", name, "true", check=False).code != 0
    fl("unpause", name)
    assert fl.status(name) == "running"
    top = fl.out("top", name).splitlines()
    assert "PID" in top[0] and "CMD" in top[0]
    assert any("sleep 1000" in line for line in top[1:])
    fl("rename", name, name + "-new")
    assert fl.status(name + "-new") == "running"
    assert fl("inspect", name, check=False).code != 0
    name += "-new"
    # exec: exit code, -u, -w, -e, -d
    assert fl("exec", name, "sh", "-c", "exit 3", check=False).code == 3
    assert fl.out("exec", name, "cat", "/tmp/pid") == "1"
    assert fl.out("exec", "-u", "65534:65534", name, "id", "-u") == "65534"
    assert fl.out("exec", "-w", "/etc", name, "pwd") == "/etc"
    assert fl.out("exec", "-e", "FOO=bar", name, "sh", "-c", "echo $FOO") == "bar"
    assert fl("exec", "-i", name, "cat", input="piped\n").out == "piped\n"
    fl("exec", "-d", name, "sh", "-c", "sleep 0.2; touch /tmp/detached")
    wait_for(lambda: fl("exec", name, "test", "-e", "/tmp/detached", check=False).code == 0,
             what="detached exec")
    assert fl("exec", name, "nonexistent-cmd", check=False).code == 127
    fl("rm", "-f", name)
    assert fl("exec", name, "true", check=False).code != 0


def test_monitor_killed_shows_exited(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    pid = fl.monitor_pid(name)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: fl.status(name) == "exited", what="exited after monitor death")
    assert name not in fl.out("ps")
    assert "Exited" in fl.out("ps", "-a", "--filter", f"name={name}", check=False) or \
        "Exited" in fl.out("ps", "-a")
    # it can be started again (the orphaned process is cleaned up first) and removed
    fl("start", name)
    assert fl.status(name) == "running"
    fl("rm", "-f", name)
    assert fl("inspect", name, check=False).code != 0


def test_rm_running_refused_and_auto_remove(fl: Any, name: str) -> None:
    cid = fl.out("run", "-d", "--name", name, "busybox", "sleep", "1000")
    proc = fl("rm", name, check=False)
    assert proc.code != 0
    assert f"You cannot remove a running container {cid}" in proc.err
    fl("rm", "-f", name)
    fl("run", "-d", "--rm", "--name", name, "busybox", "sh", "-c", "sleep 0.3")
    wait_for(lambda: fl("inspect", name, check=False).code != 0, what="--rm removal")
    assert not (fl.root / "containers" / cid).exists()


def test_start_failure_reported(fl: Any, name: str) -> None:
    proc = fl("run", "-d", "--name", name, "busybox", "no-such-binary", check=False)
    assert proc.code == 125
    assert "no-such-binary" in proc.err
    assert fl.status(name) == "exited"
    fl("rm", name)


def test_commit_running_container(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "echo hello > /greeting; exec sleep 1000")
    wait_for(lambda: fl("exec", name, "test", "-e", "/greeting", check=False).code == 0,
             what="file written")
    fl("commit", name, name + ":v2")
    assert fl.status(name) == "running"
    assert fl.out("exec", name, "cat", "/greeting") == "hello"
    assert fl.out("run", "--rm", name + ":v2", "cat", "/greeting") == "hello"
    fl("rm", "-f", name)
    fl("rmi", name + ":v2")


def test_attach_to_detached(fl: Any, name: str) -> None:
    fl("run", "-d", "-i", "--name", name, "busybox", "sh", "-c", "read x; echo got $x; exit 5")
    proc = fl("attach", name, input="hello\n", check=False, timeout=20)
    assert "got hello" in proc.out
    assert proc.code == 5
    fl("rm", name)
