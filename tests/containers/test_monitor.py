"""What the monitor adds to a container: ``--restart`` policies, ``--init`` (tini as PID 1),
healthchecks."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from support import wait_for
from support.docker import Docker

pytestmark = pytest.mark.root


def test_init_is_pid_1_and_reaps_orphans(fl: Any, name: str) -> None:
    cmdline = fl.out("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline")
    assert cmdline.split("\0")[:4] == ["/sbin/docker-init", "--", "cat", "/proc/1/cmdline"]
    # the orphaned sleep is reparented to PID 1: tini reaps it, no zombie is left
    script = "(sleep 0.1 &); sleep 1; cat /proc/[0-9]*/stat"
    stats = fl.out("run", "--rm", "--init", "busybox", "sh", "-c", script).splitlines()
    assert len(stats) >= 2
    assert all(line.split(") ")[1].split()[0] != "Z" for line in stats), stats


def test_init_forwards_signals(fl: Any, name: str) -> None:
    # sleep as PID 1 would ignore SIGTERM (no handler) and stop would wait its 20 s;
    # under tini it gets the signal and dies of it
    fl("run", "-d", "--init", "--name", name, "busybox", "sleep", "100")
    cfg = fl.inspect(name)
    assert cfg["HostConfig"]["Init"] is True
    t0 = time.monotonic()
    fl("stop", "-t", "20", name)
    assert time.monotonic() - t0 < 10
    assert fl.inspect(name)["State"]["ExitCode"] == 143
    fl("rm", name)


def _monitor_gone(name: str) -> bool:
    """No process left that ``run -d --name NAME`` forked (the monitor keeps its argv)."""
    needle = f"--name\0{name}\0".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read():
                    return False
        except OSError:
            continue
    return True


def test_restart_on_failure_stops_after_n(fl: Any, name: str) -> None:
    fl("run", "-d", "--restart", "on-failure:2", "--name", name, "busybox",
       "sh", "-c", "echo ran; exit 3")
    wait_for(lambda: _monitor_gone(name), timeout=30, what="the monitor to give up")
    info = fl.inspect(name)
    assert info["RestartCount"] == 2
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 3
    assert fl.out("logs", name).split() == ["ran"] * 3
    fl("rm", name)


def test_restart_on_failure_not_after_success(fl: Any, name: str) -> None:
    fl("run", "-d", "--restart", "on-failure", "--name", name, "busybox", "true")
    wait_for(lambda: _monitor_gone(name), timeout=30, what="the monitor to end")
    assert fl.inspect(name)["RestartCount"] == 0
    fl("rm", name)


def test_restart_always_backs_off_until_stopped(fl: Any, name: str) -> None:
    fl("run", "-d", "--restart", "always", "--name", name, "busybox", "sh", "-c", "exit 3")
    # the backoff doubles from 100 ms: after 5 restarts it waits 3.2 s, long enough for
    # the commands below to see it waiting
    wait_for(lambda: fl.inspect(name)["RestartCount"] >= 5, timeout=30, what="5 restarts")

    seen: dict[str, Any] = {}

    def restarting() -> bool:  # ps and inspect in one poll: both within one backoff
        seen["ps"] = _ps_status(fl, name)
        seen["info"] = fl.inspect(name)
        return seen["ps"].startswith("Restarting") and seen["info"]["State"]["Restarting"]

    wait_for(restarting, timeout=30, what="restarting")
    state = seen["info"]["State"]
    assert state["Status"] == "restarting" and state["Running"] is True
    assert state["ExitCode"] == 3
    assert re.fullmatch(r"Restarting \(3\) (Less than a second|\d+ seconds?) ago", seen["ps"])
    t0 = time.monotonic()
    fl("stop", name)
    assert time.monotonic() - t0 < 5
    assert fl.inspect(name)["State"]["Status"] == "exited"
    wait_for(lambda: _monitor_gone(name), timeout=10, what="the monitor to end")
    assert fl.inspect(name)["State"]["Status"] == "exited"
    # a start runs it again under its policy; rm -f ends a restarting container
    fl("start", name)
    wait_for(lambda: fl.inspect(name)["State"]["Restarting"], timeout=30, what="restarting")
    t0 = time.monotonic()
    fl("rm", "-f", name)
    assert time.monotonic() - t0 < 5
    assert fl("inspect", name, check=False).code != 0


def test_kill_ends_restart_always(fl: Any, name: str) -> None:
    fl("run", "-d", "--restart", "always", "--name", name, "busybox", "sleep", "100")
    fl("kill", name)
    assert fl.out("wait", name) == "137"
    wait_for(lambda: _monitor_gone(name), timeout=10, what="the monitor to end")
    info = fl.inspect(name)
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == 0
    fl("rm", name)


def test_restart_bad_input(fl: Any, name: str) -> None:
    for args, message in (
            (["--restart", "always", "--rm"], "conflicting options: cannot specify both --restart and --rm"),
            (["--restart", "sometimes"], "invalid restart policy 'sometimes'"),
            (["--restart", "always:3"],
             "maximum retry count cannot be used with restart policy 'always'")):
        proc = fl("create", "--name", name, *args, "busybox", "true", check=False)
        assert proc.code == 125 and proc.err == f"Error: {message}\n", proc.err
        assert fl("inspect", name, check=False).code != 0


def _ps_status(fl: Any, name: str) -> str:
    rows = fl.out("ps", "-a", "--format", "{{.Names}}\t{{.Status}}").splitlines()
    return dict(r.split("\t") for r in rows)[name]


def test_healthcheck_flips_with_a_file(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--health-cmd", "cat /ok", "--health-interval", "1s",
       "--health-retries", "2", "busybox", "sh", "-c", "echo fine > /ok; exec sleep 100")
    health = lambda: fl.inspect(name)["State"].get("Health") or {}  # noqa: E731
    wait_for(lambda: health().get("Status") == "healthy", timeout=30, what="healthy")
    assert _ps_status(fl, name).endswith(" (healthy)")
    entry = health()["Log"][-1]
    assert entry["ExitCode"] == 0 and entry["Output"] == "fine\n"
    assert entry["Start"] <= entry["End"] and entry["Start"].startswith("20")
    assert health()["FailingStreak"] == 0
    fl("exec", name, "rm", "/ok")
    wait_for(lambda: health().get("FailingStreak", 0) >= 1, timeout=30, what="a failure")
    wait_for(lambda: health().get("Status") == "unhealthy", timeout=30, what="unhealthy")
    assert health()["FailingStreak"] >= 2 and health()["Log"][-1]["ExitCode"] == 1
    assert _ps_status(fl, name).endswith(" (unhealthy)")
    wait_for(lambda: len(health()["Log"]) == 5, timeout=30, what="5 log entries")
    fl("exec", name, "touch", "/ok")
    wait_for(lambda: health().get("Status") == "healthy", timeout=30, what="healthy again")
    assert len(health()["Log"]) == 5 and health()["FailingStreak"] == 0
    changes = fl.out("events", "--since", "5m", "--until", "0s", "--filter", f"container={name}",
                     "--format", "{{.Action}}").splitlines()
    assert [a for a in changes if a.startswith("health_status")] == [
        "health_status: healthy", "health_status: unhealthy", "health_status: healthy"]
    fl("rm", "-f", name)


def test_healthcheck_starting_and_config(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--health-cmd", "true", "--health-interval", "1h",
       "--health-timeout", "2s", "--health-start-period", "1m30s", "--health-retries", "4",
       "busybox", "sleep", "100")
    assert fl.inspect(name)["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 3600 * 10**9, "Timeout": 2 * 10**9,
        "StartPeriod": 90 * 10**9, "Retries": 4}
    assert _ps_status(fl, name).endswith(" (health: starting)")
    wait_for(lambda: fl.inspect(name)["State"].get("Health") is not None, what="health state")
    assert fl.inspect(name)["State"]["Health"] == {"Status": "starting", "FailingStreak": 0,
                                                   "Log": []}
    fl("rm", "-f", name)


def test_healthcheck_timeout(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--health-cmd", "sleep 10", "--health-interval", "1s",
       "--health-timeout", "500ms", "--health-retries", "1", "busybox", "sleep", "100")
    health = lambda: fl.inspect(name)["State"].get("Health") or {}  # noqa: E731
    wait_for(lambda: health().get("Status") == "unhealthy", timeout=30, what="unhealthy")
    entry = health()["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (500ms)"
    fl("rm", "-f", name)


def test_image_healthcheck_and_no_healthcheck(fl: Any, name: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=1s --retries=1 CMD exit 3\n")
    fl("build", "--network", "none", "-q", "-t", "hc-image", str(tmp_path))
    fl("run", "-d", "--name", name, "hc-image", "sleep", "100")
    health = lambda: fl.inspect(name)["State"].get("Health") or {}  # noqa: E731
    wait_for(lambda: health().get("Status") == "unhealthy", timeout=30, what="unhealthy")
    assert health()["Log"][0]["ExitCode"] == 3
    fl("rm", "-f", name)
    fl("run", "-d", "--name", name, "--no-healthcheck", "hc-image", "sleep", "100")
    info = fl.inspect(name)
    assert info["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert "Health" not in info["State"]
    assert _ps_status(fl, name).startswith("Up ") and "health" not in _ps_status(fl, name)
    fl("rm", "-f", name)
    fl("rmi", "hc-image")


def test_healthcheck_bad_input(fl: Any, name: str) -> None:
    for args, message in (
            (["--no-healthcheck", "--health-cmd", "true"],
             "--no-healthcheck conflicts with --health-* options"),
            (["--health-interval", "-1s"], "--health-interval cannot be negative"),
            (["--health-timeout", "soon"],
             'invalid argument "soon" for "--health-timeout" flag: time: invalid duration "soon"'),
            (["--health-retries", "-2"], "--health-retries cannot be negative")):
        proc = fl("create", "--name", name, *args, "busybox", "true", check=False)
        assert proc.code == 125 and proc.err == f"Error: {message}\n", proc.err
        assert fl("inspect", name, check=False).code != 0


# ----------------------------------------------------------------------------- Docker, the oracle

@pytest.fixture(scope="module")
def docker_busybox(docker: Docker, busybox_tar: Path) -> str:
    """busybox in the private dockerd (imported once per module)."""
    docker("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), "fl-busybox:latest")
    return "fl-busybox:latest"


def _out(tool: Any, *args: str) -> str:
    return str(tool(*args).out).strip()


@pytest.mark.docker
def test_monitor_flags_match_docker(fl: Any, name: str, docker: Docker,
                                    docker_busybox: str) -> None:
    health = lambda tool: json.loads(_out(  # noqa: E731
        tool, "inspect", "-f", "{{json .State.Health}}", name) or "null") or {}
    try:
        for tool, image in ((fl, "busybox"), (docker, docker_busybox)):
            tool("run", "-d", "--name", name, "--network", "none", "--init",
                 "--restart", "on-failure:2", "--health-cmd", "cat /ok",
                 "--health-interval", "1s", "--health-retries", "1", image,
                 "sh", "-c", "echo ok > /ok; exec sleep 1000")
        for tool in (fl, docker):
            wait_for(lambda t=tool: health(t).get("Status") == "healthy", timeout=30,
                     what="healthy")
        fields = ("{{json .HostConfig.RestartPolicy}}|{{.HostConfig.Init}}|"
                  "{{json .Config.Healthcheck}}|{{.RestartCount}}|{{.State.Status}}")
        assert _out(fl, "inspect", "-f", fields, name) == _out(docker, "inspect", "-f", fields,
                                                               name)
        ours, theirs = health(fl), health(docker)
        assert set(ours) == set(theirs) and ours["Status"] == theirs["Status"]
        assert set(ours["Log"][0]) == set(theirs["Log"][0])
        assert ours["Log"][0]["Output"] == theirs["Log"][0]["Output"] == "ok\n"
        pid1 = [_out(t, "exec", name, "cat", "/proc/1/cmdline") for t in (fl, docker)]
        assert pid1[0] == pid1[1]
        status = [_ps_status(fl, name),
                  _out(docker, "ps", "--format", "{{.Status}}", "--filter", f"name={name}")]
        assert [s.rsplit(" (", 1)[1] for s in status] == ["healthy)", "healthy)"]
    finally:
        docker("rm", "-f", name, check=False)
        fl("rm", "-f", name, check=False)


@pytest.mark.docker
def test_restart_on_failure_matches_docker(fl: Any, name: str, docker: Docker,
                                           docker_busybox: str) -> None:
    try:
        for tool, image in ((fl, "busybox"), (docker, docker_busybox)):
            tool("run", "-d", "--name", name, "--network", "none", "--restart", "on-failure:2",
                 image, "sh", "-c", "echo ran; exit 3")
        fields = "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{.State.Restarting}}"
        for tool in (fl, docker):
            wait_for(lambda t=tool: _out(t, "inspect", "-f", fields, name) == "2 exited 3 false",
                     timeout=30, what="two restarts, then exited")
        assert _out(fl, "logs", name) == _out(docker, "logs", name)
        for args in (["--restart", "always", "--rm"], ["--restart", "nope"],
                     ["--restart", "always:1"], ["--no-healthcheck", "--health-cmd", "x"],
                     ["--health-retries", "-1"], ["--health-interval", "-2s"]):
            theirs = docker("create", *args, docker_busybox, "true", check=False)
            ours = fl("create", *args, "busybox", "true", check=False)
            assert theirs.code != 0 and ours.code == 125, (args, theirs.err)
            assert ours.err.split(": ", 1)[1].strip() in theirs.err, (args, theirs.err, ours.err)
    finally:
        docker("rm", "-f", name, check=False)
        fl("rm", "-f", name, check=False)
