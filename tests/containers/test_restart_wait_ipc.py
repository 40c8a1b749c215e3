"""Docker 20.10's behaviour around restarts, IPC sharing and links (issue 13), with the
Docker engine as the oracle: a foreground ``run --restart`` returns with the first exit
while the container goes on restarting; ``wait`` returns at the next exit even under
``always``; ``kill`` of a restarting container ends its restarts while ``exec``/``pause``/
``top`` refuse it; ``--ipc container:`` shares a shareable donor's /dev/shm; HostConfig
``Links`` in Docker's form."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from support import wait_for

pytestmark = pytest.mark.root

DONE = "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"


def _monitor_gone(fl: Any, name: str) -> bool:
    return not fl.inspect(name)["State"]["Running"]


def test_foreground_run_restarts_after_returning(fl: Any, name: str) -> None:
    res = fl("run", "--name", name, "--network", "none", "--restart", "on-failure:2",
             "busybox", "sh", "-c", "echo hi; exit 3", check=False)
    assert (res.code, res.out) == (3, "hi\n")
    wait_for(lambda: fl.out("inspect", "-f", DONE, name) == "2 exited 3", timeout=30,
             what="two restarts, then exited")
    assert fl.out("logs", name).split() == ["hi"] * 3
    fl("rm", name)
    # a policy that says no more: nothing restarts it
    res = fl("run", "--name", name, "--network", "none", "--restart", "on-failure",
             "busybox", "true", check=False)
    assert res.code == 0
    assert fl.out("inspect", "-f", DONE, name) == "0 exited 0"
    fl("rm", name)


def _in_one_gap(fl: Any, name: str, command: tuple[str, ...]) -> Any:
    """Run ``command`` while ``name`` waits to be restarted; retried if a restart came
    between the look and the command's end (the count tells)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        wait_for(lambda: fl.inspect(name)["State"]["Restarting"], timeout=30, what="restarting")
        before = fl.inspect(name)["RestartCount"]
        res = fl(*command, check=False)
        if command[0] == "pause" and res.code == 0:
            # a restart came first and the pause froze the running container (as Docker's
            # would): it would never exit again, so thaw it and try in the next gap
            fl("unpause", name)
        info = fl.inspect(name)
        if info["RestartCount"] == before and (
                info["State"]["Restarting"] or command[0] == "kill"):
            return res
    raise AssertionError(f"{command} never ran within one backoff")


def test_restarting_container_refuses_exec_pause_top_and_kill_ends_it(
        fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--network", "none", "--restart", "always", "busybox",
       "sh", "-c", "exit 1")
    # the backoff doubles from 100 ms: after 4 restarts it waits 1.6 s, then 3.2 s
    wait_for(lambda: fl.inspect(name)["RestartCount"] >= 4, timeout=60, what="4 restarts")
    cid = fl.inspect(name)["Id"]
    message = f"Container {cid} is restarting, wait until the container is running"
    for command in (("exec", name, "true"), ("pause", name), ("top", name)):
        res = _in_one_gap(fl, name, command)
        assert res.code == 1 and message in res.err, res
    res = _in_one_gap(fl, name, ("kill", "-s", "USR1", name))
    assert (res.code, res.out) == (0, f"{name}\n")
    wait_for(lambda: _monitor_gone(fl, name), timeout=10, what="the restarts to end")
    count = fl.inspect(name)["RestartCount"]
    time.sleep(0.5)  # no monitor is left to restart it: the count stays
    info = fl.inspect(name)
    assert (info["State"]["Status"], info["RestartCount"]) == ("exited", count)
    fl("rm", name)


def test_wait_returns_at_the_next_exit_under_always(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--network", "none", "--restart", "always", "busybox",
       "sh", "-c", "sleep 1; exit 7")
    assert fl.out("wait", name) == "7"
    assert fl.inspect(name)["State"]["Running"]  # restarting or running again
    wait_for(lambda: fl.inspect(name)["RestartCount"] >= 1, timeout=30, what="a restart")
    assert fl.out("wait", name) == "7"  # and again at the end of the next run
    fl("rm", "-f", name)


def _shm_mounts(fl: Any) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].endswith("/shm")
                and str(fl.root) in line.split()[4]]


def test_ipc_container_shares_the_donors_shm(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--network", "none", "--ipc", "shareable", "--shm-size",
       "8m", "busybox", "sleep", "1000")
    fl("exec", name, "sh", "-c", "echo from-donor > /dev/shm/a")
    out = fl.out("run", "--rm", "--network", "none", "--ipc", f"container:{name}", "busybox",
                 "sh", "-c", "cat /dev/shm/a; echo from-joiner > /dev/shm/b; df -k /dev/shm")
    assert out.splitlines()[0] == "from-donor"
    assert out.splitlines()[-1].split()[1] == "8192"  # the donor's tmpfs, its size
    assert fl.out("exec", name, "cat", "/dev/shm/b") == "from-joiner"
    cid = fl.inspect(name)["Id"]
    joiner = fl.out("create", "--network", "none", "--ipc", f"container:{name}", "busybox")
    assert fl.inspect(joiner)["HostConfig"]["IpcMode"] == f"container:{cid}"
    fl("rm", joiner)
    fl("stop", "-t", "0", name)
    assert not [m for m in _shm_mounts(fl) if cid in m]  # unmounted with its container
    fl("rm", name)
    # a private donor (Docker 20.10's default mode) is not joined
    fl("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
    cid = fl.inspect(name)["Id"]
    res = fl("run", "--rm", "--network", "none", "--ipc", f"container:{name}", "busybox",
             "true", check=False)
    assert res.code == 125
    assert res.err == (f"Error: can't join IPC of container {cid}: non-shareable IPC (hint:"
                       " use IpcMode:shareable for the donor container)\n")
    fl("rm", "-f", name)


def test_links_in_dockers_form(fl: Any, name: str) -> None:
    fl("create", "--name", name, "busybox", "true")
    fl("create", "--name", name + "-a", "--link", f"{name}:db", "busybox", "true")
    fl("create", "--name", name + "-b", "--link", f"/{name}", "busybox", "true")
    assert fl.inspect(name + "-a")["HostConfig"]["Links"] == [f"/{name}:/{name}-a/db"]
    assert fl.inspect(name + "-b")["HostConfig"]["Links"] == [f"/{name}:/{name}-b/{name}"]
    res = fl("create", "--network", "none", "--link", name, "busybox", "true", check=False)
    assert (res.code, res.err) == (
        125, "Error: links are only supported for user-defined networks\n")
    fl("rm", name + "-b")
    # a rename shows at both ends, and the link still resolves
    fl("rename", name, name + "-t")
    fl("rename", name + "-a", name + "-c")
    assert fl.inspect(name + "-c")["HostConfig"]["Links"] == [f"/{name}-t:/{name}-c/db"]
    fl("rm", name + "-c", name + "-t")
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    fl("create", "--name", name + "-a", "--link", f"{name}:db", "busybox", "grep", "-w", "db",
       "/etc/hosts")
    fl("rename", name, name + "-t")
    out = fl.out("start", "-a", name + "-a")
    assert f"db {fl.inspect(name + '-t')['Id'][:12]} {name}-t" in out, out
    fl("rm", "-f", name + "-t", name + "-a")


# ----------------------------------------------------------------------------- the oracle

@pytest.mark.docker
def test_restart_and_wait_match_docker(fl: Any, name: str, docker20: Any,
                                       docker_busybox: str) -> None:
    tools = ((fl, "busybox"), (docker20, docker_busybox))
    try:
        seen = []
        for tool, image in tools:
            res = tool("run", "--name", name, "--network", "none", "--restart", "on-failure:2",
                       image, "sh", "-c", "echo hi; exit 3", check=False)
            seen.append((res.code, res.out))
        assert seen[0] == seen[1] == (3, "hi\n")
        for tool, _ in tools:
            wait_for(lambda t=tool: t("inspect", "-f", DONE, name).out.strip() == "2 exited 3",
                     timeout=30, what="two restarts, then exited")
        assert fl.out("logs", name) == docker20("logs", name).out.strip()
        for tool, image in tools:
            tool("rm", name)
            tool("run", "-d", "--name", name, "--network", "none", "--restart", "always",
                 image, "sh", "-c", "sleep 1; exit 7")
        assert [t("wait", name).out for t, _ in tools] == ["7\n", "7\n"]
    finally:
        docker20("rm", "-f", name, check=False)
        fl("rm", "-f", name, check=False)


@pytest.mark.docker
def test_links_and_ipc_modes_match_docker(fl: Any, name: str, docker20: Any,
                                          docker_busybox: str) -> None:
    tools = ((fl, "busybox"), (docker20, docker_busybox))
    made = [name, name + "-a", name + "-b"]
    try:
        for tool, image in tools:
            tool("create", "--name", name, "--network", "none", image, "true")
            tool("create", "--name", name + "-a", "--link", f"{name}:db", image, "true")
            tool("create", "--name", name + "-b", "--link", name, "--ipc",
                 f"container:{name}", "--pid", f"container:{name}", image, "true")
        docs = [[json.loads(t("inspect", n).out)[0] for n in made] for t, _ in tools]
        for ours, theirs in zip(docs[0], docs[1], strict=True):
            assert ours["HostConfig"].get("Links") == theirs["HostConfig"]["Links"]
        for tool, _ in tools:  # links show the current names of both ends
            tool("rename", name, name + "-t")
            tool("rename", name + "-a", name + "-c")
        assert (fl.inspect(name + "-c")["HostConfig"]["Links"]
                == json.loads(docker20("inspect", name + "-c").out)[0]["HostConfig"]["Links"]
                == [f"/{name}-t:/{name}-c/db"])
        for tool, _ in tools:
            tool("rename", name + "-t", name)
            tool("rename", name + "-c", name + "-a")
        # the container IDs differ: the modes name each engine's own donor by ID
        for doc in docs:
            assert doc[2]["HostConfig"]["IpcMode"] == f"container:{doc[0]['Id']}"
            assert doc[2]["HostConfig"]["PidMode"] == f"container:{doc[0]['Id']}"
        errors = [t("create", "--network", "none", "--link", name, image, "true",
                    check=False).err for t, image in tools]
        assert errors[0].removeprefix("Error: ").strip() == (
            errors[1].splitlines()[0].removeprefix("docker: ").removesuffix("."))
    finally:
        for tool, _ in tools:
            tool("rm", "-f", *made, check=False)
