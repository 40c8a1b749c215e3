"""Foreground runs log and report OOM kills as detached ones do; cp with '-' (tar on
stdin/stdout), mounted files, dangling links and a container renaming files meanwhile
(issue 9 section 5, issue 10's cp findings)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from support import wait_for

pytestmark = pytest.mark.root


def log_entries(fl: Any, name: str) -> list[dict[str, Any]]:
    cid = fl.out("inspect", "-f", "{{.Id}}", name)
    path = fl.root / "containers" / cid / f"{cid}-json.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


# ----------------------------------------------------------------------------- logs

def test_foreground_run_is_logged_like_docker(fl: Any, name: str) -> None:
    res = fl("run", "--name", name, "busybox", "sh", "-c",
             "echo hello; echo oops >&2; printf partial; exit 3", check=False)
    assert res.code == 3
    assert res.out == "hello\npartial" and res.err == "oops\n"
    logs = fl("logs", name)
    assert logs.out == "hello\npartial" and logs.err == "oops\n"
    entries = log_entries(fl, name)
    assert sorted((e["stream"], e["log"]) for e in entries) == [
        ("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "partial")]
    stamped = fl("logs", "-t", name).out.splitlines()
    assert stamped[0].endswith("Z hello") and stamped[0][:4].isdigit()
    # start -a appends to the same log, as Docker's does
    fl("start", "-a", name, check=False)
    assert fl("logs", name).out == "hello\npartialhello\npartial"
    fl("rm", name)


def test_foreground_tty_and_stdin_runs_are_logged(fl: Any, name: str) -> None:
    res = fl("run", "-t", "--name", name, "busybox", "echo", "on a tty")
    assert res.out == "on a tty\r\n"
    assert [(e["stream"], e["log"]) for e in log_entries(fl, name)] == [("stdout", "on a tty\r\n")]
    piped = fl("run", "-i", "--name", name + "-i", "busybox", "sh", "-c", "cat; exit 5",
               input="from a pipe\n", check=False)
    assert piped.code == 5 and piped.out == "from a pipe\n"
    assert fl("logs", name + "-i").out == "from a pipe\n"
    fl("rm", name, name + "-i")


def test_a_runc_start_failure_is_not_logged(fl: Any, name: str) -> None:
    res = fl("run", "--name", name, "busybox", "no-such-command", check=False)
    assert res.code == 127
    logs = fl("logs", name)
    assert logs.out == "" and logs.err == ""
    fl("rm", name)


def test_foreground_run_forwards_signals_and_keeps_logging(fl: Any, name: str) -> None:
    proc = subprocess.Popen(
        [*fl.argv, "run", "--name", name, "busybox", "sh", "-c",
         "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 7
        assert proc.stdout.read() == b"got TERM\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert fl("logs", name).out == "ready\ngot TERM\n"
    fl("rm", name)


def test_a_closed_stdout_does_not_stop_the_container_or_its_log(fl: Any, name: str) -> None:
    script = "for i in $(seq 1 2000); do echo line $i; done; echo done >&2"
    pipeline = f"{' '.join(fl.argv)} run --name {name} busybox sh -c '{script}' | head -1"
    res = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True,
                         text=True, timeout=60)
    assert res.stdout == "line 1\n"
    logs = fl("logs", name)
    assert logs.out.splitlines()[-1] == "line 2000" and logs.err == "done\n"
    fl("rm", name)


def test_oom_killed_foreground_run(fl: Any, name: str) -> None:
    res = fl("run", "--name", name, "--memory", "32m", "busybox", "sh", "-c", "tail /dev/zero",
             check=False)
    assert res.code == 137
    assert fl.out("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", name) == "true 137"
    res = fl("run", "-t", "--name", name + "-t", "--memory", "32m", "busybox", "tail", "/dev/zero",
             check=False)
    assert res.code == 137
    assert fl.out("inspect", "-f", "{{.State.OOMKilled}}", name + "-t") == "true"
    # a limited container that was not OOM-killed, and its runc state is gone
    fl("run", "--name", name + "-ok", "--memory", "32m", "busybox", "true")
    assert fl.out("inspect", "-f", "{{.State.OOMKilled}}", name + "-ok") == "false"
    assert not any(p.name.startswith(fl.out("inspect", "-f", "{{.Id}}", name + "-ok"))
                   for p in (fl.root / "runc").iterdir())
    fl("rm", name, name + "-t", name + "-ok")


# ----------------------------------------------------------------------------- cp

def test_cp_tar_on_stdin_and_stdout(fl: Any, name: str, tmp_path: Path) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "mkdir /dir; exec sleep 1000")
    wait_for(lambda: fl("exec", name, "test", "-d", "/dir", check=False).code == 0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for rel, data in (("a", b"hello\n"), ("sub/b", b"deep\n")):
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../escaped")
        evil.size = 1
        tf.addfile(evil, io.BytesIO(b"x"))
    refused = fl("cp", "-", f"{name}:/dir", input=buf.getvalue(), check=False)
    assert refused.code != 0 and refused.err.startswith("Error: ")
    assert len(refused.err.splitlines()) == 1
    assert fl("exec", name, "test", "-e", "/escaped", check=False).code != 0
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w") as tf:
        for rel, data in (("a", b"hello\n"), ("sub/b", b"deep\n")):
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    fl("cp", "-", f"{name}:/dir", input=good.getvalue())
    assert fl.out("exec", name, "cat", "/dir/a", "/dir/sub/b") == "hello\ndeep"
    res = fl("cp", "-", f"{name}:/nodir", input=good.getvalue(), check=False)
    assert res.code == 1
    assert res.err.strip() == f'Error: destination "{name}:/nodir" must be a directory'
    notatar = fl("cp", "-", f"{name}:/dir", input=b"not a tar\n", check=False)
    assert notatar.code == 1 and len(notatar.err.splitlines()) == 1

    out = fl("cp", f"{name}:/etc", "-", cwd=tmp_path)
    assert not (tmp_path / "-").exists()
    with tarfile.open(fileobj=io.BytesIO(out.data)) as tf:
        names = tf.getnames()
        assert names[0] == "etc" and "etc/passwd" in names
        hosts = tf.extractfile("etc/hosts")
        assert hosts is not None
        assert hosts.read().decode() == fl("exec", name, "cat", "/etc/hosts").out
    one = fl("cp", f"{name}:/dir/a", "-", cwd=tmp_path)
    with tarfile.open(fileobj=io.BytesIO(one.data)) as tf:
        assert tf.getnames() == ["a"]
    fl("rm", "-f", name)


def test_cp_reads_mounted_files_where_the_container_sees_them(fl: Any, name: str,
                                                              tmp_path: Path) -> None:
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    for file in ("hosts", "hostname", "resolv.conf"):
        fl("cp", f"{name}:/etc/{file}", str(tmp_path / file))
        expected = fl("exec", name, "cat", f"/etc/{file}").out
        assert expected and (tmp_path / file).read_text() == expected
    fl("cp", f"{name}:/etc", str(tmp_path / "etc"))
    assert (tmp_path / "etc" / "hosts").read_text() == (tmp_path / "hosts").read_text()
    fl("stop", "-t", "0", name)
    fl("cp", f"{name}:/etc/hostname", str(tmp_path / "stopped"))
    assert (tmp_path / "stopped").read_text() == (tmp_path / "hostname").read_text()
    fl("rm", name)


def test_cp_follow_of_a_dangling_link_is_one_line(fl: Any, name: str, tmp_path: Path) -> None:
    fl("run", "-d", "--name", name, "busybox", "sh", "-c",
       "ln -s /nonexist /dangle; ln -s /nonexist/deeper /dangle2; exec sleep 1000")
    wait_for(lambda: fl("exec", name, "test", "-L", "/dangle2", check=False).code == 0)
    for link, target in (("/dangle", "/nonexist"), ("/dangle2", "/nonexist/deeper")):
        res = fl("cp", "-L", f"{name}:{link}", str(tmp_path / "out"), check=False)
        assert res.code == 1
        assert res.err.strip() == f"Error: No such container:path: {name}:{target}"
    fl("cp", f"{name}:/dangle", str(tmp_path / "link"))  # without -L: the link itself
    assert os.readlink(tmp_path / "link") == "/nonexist"
    fl("rm", "-f", name)


def test_cp_while_the_container_renames_files(fl: Any, name: str, tmp_path: Path) -> None:
    churn = ("mkdir -p /d/sub; for i in $(seq 1 40); do echo $i > /d/f$i; echo $i > /d/sub/g$i;"
             " done; touch /ready; while :; do for i in 1 2 3 4 5 6 7 8; do mv /d/f$i /d/h$i;"
             " mv /d/h$i /d/f$i; done; mv /d/sub /d/sub2; mv /d/sub2 /d/sub; done")
    fl("run", "-d", "--name", name, "busybox", "sh", "-c", churn)
    wait_for(lambda: fl("exec", name, "test", "-e", "/ready", check=False).code == 0)
    outcomes = []
    for i in range(30):
        dest = tmp_path / f"copy{i}"
        args = ("cp", f"{name}:/d", str(dest)) if i % 3 else ("cp", f"{name}:/d/f1", str(dest))
        res = fl(*args, check=False)
        outcomes.append(res.code)
        if res.code:
            lines = res.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
            assert "internal error" not in lines[0]
        tarred = fl("cp", f"{name}:/d", "-", cwd=tmp_path, check=False)
        if tarred.code:
            assert "internal error" not in tarred.err
        else:
            with tarfile.open(fileobj=io.BytesIO(tarred.data)) as tf:
                assert tf.getnames()[0] == "d"
    assert outcomes.count(0) >= 10  # skipping vanished entries keeps most copies whole
    fl("rm", "-f", name)
