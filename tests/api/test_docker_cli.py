"""Debian's docker CLI (20.10) driving forklift through `forklift system service`, and the
forklift CLI on the same store at the same time."""

from __future__ import annotations

import json
import threading

import pytest
from support import Forklift
from support.service import Service

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("docker_cli")]


def test_version_info_ps_images(service: Service, fl: Forklift) -> None:
    version = service.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert version.out.strip() == "1.41 linux"
    info = json.loads(service.docker("info", "--format", "{{json .}}").out)
    assert info["Images"] == 1 and info["Driver"] == "overlay2"
    assert service.docker("images", "--format", "{{.Repository}}:{{.Tag}}").lines == ["busybox:latest"]
    image_id = fl.out("images", "-q", "--no-trunc")
    assert service.docker("inspect", "-f", "{{.Id}}", "busybox").out.strip() == image_id
    assert service.docker("ps", "-q").out == ""


def test_run_rm_echo(service: Service, fl: Forklift) -> None:
    before = fl.out("ps", "-aq")
    res = service.docker("run", "--rm", "busybox", "echo", "hi")
    assert (res.out, res.err) == ("hi\n", "")
    assert fl.out("ps", "-aq") == before


def test_run_rm_exit_code_and_stderr(service: Service) -> None:
    res = service.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3",
                         check=False)
    assert (res.code, res.out, res.err) == (3, "out\n", "err\n")


def test_run_interactive_pipe(service: Service) -> None:
    data = "".join(f"line {i}\n" for i in range(2000))
    res = service.docker("run", "-i", "--rm", "busybox", "cat", input=data)
    assert res.out == data
    assert service.docker("run", "-i", "--rm", "busybox", "wc", "-l", input="x\ny\n").out.strip() == "2"


def test_detached_logs_stop_rm(service: Service, fl: Forklift, name: str) -> None:
    cid = service.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                         "echo ready; exec sleep 60").out.strip()
    try:
        assert fl.status(name) == "running"
        assert service.docker("ps", "--format", "{{.Names}} {{.Status}}").out.startswith(f"{name} Up")
        follow = service.docker("logs", "--tail", "1", name)
        assert follow.out == "ready\n"
        service.docker("restart", "-t", "1", name)
        assert fl.status(name) == "running"
        service.docker("stop", "-t", "1", name)
        assert fl.status(name) == "exited"
        assert service.docker("inspect", "-f", "{{.State.ExitCode}}", name).out.strip() == "137"
        service.docker("rm", name)
        assert fl("inspect", cid, check=False).code != 0
    finally:
        fl("rm", "-f", cid, check=False)


def test_errors_reach_the_docker_cli(service: Service) -> None:
    res = service.docker("rm", "nosuch", check=False)
    assert res.code == 1 and res.err.strip() == "Error: No such container: nosuch"
    res = service.docker("run", "--rm", "nosuch:1", "true", check=False)
    assert res.code != 0 and "Traceback" not in res.err


def test_cli_and_api_on_one_store_at_once(service: Service, fl: Forklift, name: str) -> None:
    """Each side sees what the other made while both create and remove containers."""
    failures: list[str] = []

    def forklift_side() -> None:
        for i in range(4):
            res = fl("run", "--rm", "--network", "none", "busybox", "true", check=False)
            if res.code != 0:
                failures.append(str(res))
            fl("create", "--name", f"{name}-fl{i}", "busybox", "true")

    thread = threading.Thread(target=forklift_side)
    thread.start()
    try:
        for i in range(4):
            assert service.docker("run", "--rm", "--network", "none", "busybox", "echo",
                                  str(i)).out == f"{i}\n"
            service.docker("create", "--name", f"{name}-api{i}", "busybox", "true")
    finally:
        thread.join()
    try:
        assert failures == []
        made = {f"{name}-{side}{i}" for side in ("fl", "api") for i in range(4)}
        seen_api = set(service.docker("ps", "-a", "--format", "{{.Names}}").lines)
        seen_fl = set(fl.out("ps", "-a", "--format", "{{.Names}}").splitlines())
        assert made <= seen_api and made <= seen_fl
    finally:
        for n in [f"{name}-{side}{i}" for side in ("fl", "api") for i in range(4)]:
            fl("rm", "-f", n, check=False)
    assert "consistent" in fl.out("system", "check")


def test_logs_follow_streams_each_line(service: Service, fl: Forklift, name: str) -> None:
    """``logs -f`` prints a line as soon as the container writes it, and ends at its exit."""
    import os
    import subprocess

    from support.service import DOCKER20

    fl("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
       "echo first; read x < /dev/null; sleep 30; echo last")
    env = dict(os.environ, DOCKER_HOST=service.host)
    follower = subprocess.Popen([DOCKER20, "logs", "-f", name], stdout=subprocess.PIPE, env=env)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"first\n"  # while the container still runs
        assert fl.status(name) == "running"
        fl("kill", name)
        assert follower.wait(30) == 0
    finally:
        follower.kill()
        follower.wait()
        fl("rm", "-f", name)


def test_attach_to_a_running_container(service: Service, fl: Forklift, name: str) -> None:
    """``docker attach`` goes through the container's monitor: stdin to its end, both
    streams apart, the container's exit code."""
    fl("run", "-d", "-i", "--name", name, "--network", "none", "busybox", "sh", "-c",
       "while read l; do echo got:$l; echo err:$l >&2; done; exit 5")
    try:
        res = service.docker("attach", name, input="a\nb\n", check=False)
        assert (res.code, res.out, res.err) == (5, "got:a\ngot:b\n", "err:a\nerr:b\n")
        assert fl.status(name) == "exited"
    finally:
        fl("rm", "-f", name)
