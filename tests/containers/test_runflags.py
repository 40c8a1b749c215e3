"""The rarer run/create flags (issue 13): each one's effect inside a real container, its
HostConfig/Config entry as Docker stores it, and a bad value refused in Docker's words
with nothing created."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root


def _refused(fl: Any, *args: str) -> str:
    before = fl.out("ps", "-a", "-q", "--no-trunc")
    res = fl("run", "--rm", *args, "busybox", "true", check=False)
    assert res.code == 125, res
    assert fl.out("ps", "-a", "-q", "--no-trunc") == before
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
    return str(lines[0][len("Error: "):])


def test_cidfile_written_and_never_overwritten(fl: Any, name: str, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    cid = fl.out("create", "--name", name, "--cidfile", str(cidfile), "busybox", "true")
    assert cidfile.read_text() == cid
    assert _refused(fl, "--cidfile", str(cidfile)) == (
        "Container ID file found, make sure the other container isn't running or delete"
        f" {cidfile}")
    assert cidfile.read_text() == cid
    fl("rm", name)


def test_label_file_then_label_flags(fl: Any, name: str, tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_text("# a comment\n\na=1\nb=from-file\n")
    fl("create", "--name", name, "--label-file", str(path), "-l", "b=from-flag", "busybox", "true")
    assert fl.inspect(name)["Config"]["Labels"] == {"a": "1", "b": "from-flag"}
    fl("rm", name)
    missing = tmp_path / "nope"
    assert _refused(fl, "--label-file", str(missing)) == f"open {missing}: no such file or directory"


def test_stop_timeout_is_the_default_grace(fl: Any, name: str) -> None:
    # sh as PID 1 ignores SIGTERM: stop waits the whole grace, then kills
    fl("run", "-d", "--name", name, "--stop-timeout", "1", "busybox", "sleep", "1000")
    assert fl.inspect(name)["Config"]["StopTimeout"] == 1
    start = time.monotonic()
    fl("stop", name)
    assert time.monotonic() - start < 8  # Docker's default grace is 10 s
    assert fl.inspect(name)["State"]["ExitCode"] == 137
    fl("rm", name)


def test_shm_size(fl: Any) -> None:
    out = fl.out("run", "--rm", "--shm-size", "8m", "busybox", "df", "-k", "/dev/shm")
    assert out.splitlines()[-1].split()[1] == "8192", out
    assert _refused(fl, "--shm-size", "-1") == (
        'invalid argument "-1" for "--shm-size" flag: invalid size: \'-1\'')


def test_shm_size_stored(fl: Any, name: str) -> None:
    fl("create", "--name", name, "--shm-size", "1g", "busybox", "true")
    assert fl.inspect(name)["HostConfig"]["ShmSize"] == 1024**3
    fl("rm", name)


def test_sysctl(fl: Any, name: str) -> None:
    out = fl.out("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl",
                 "kernel.shmmax=1234567", "busybox", "cat", "/proc/sys/net/ipv4/ip_forward",
                 "/proc/sys/kernel/shmmax")
    assert out.split() == ["1", "1234567"]
    fl("create", "--name", name, "--sysctl", "kernel.msgmax=4096", "busybox", "true")
    assert fl.inspect(name)["HostConfig"]["Sysctls"] == {"kernel.msgmax": "4096"}
    fl("rm", name)
    assert _refused(fl, "--sysctl", "kernel.hostname=x") == (
        'invalid argument "kernel.hostname=x" for "--sysctl" flag:'
        " sysctl 'kernel.hostname=x' is not whitelisted")
    assert _refused(fl, "--network", "host", "--sysctl", "net.ipv4.ip_forward=1") == (
        'sysctl "net.ipv4.ip_forward" not allowed in host network namespace')


def test_dns_search_and_options(fl: Any, name: str) -> None:
    out = fl.out("run", "--rm", "--dns-search", "example.com", "--dns-search", "b.example",
                 "--dns-option", "ndots:3", "busybox", "cat", "/etc/resolv.conf")
    assert "search example.com b.example" in out.splitlines()
    assert "options ndots:3" in out.splitlines()
    fl("create", "--name", name, "--dns-search", "example.com", "--dns-option", "debug",
       "busybox", "true")
    hc = fl.inspect(name)["HostConfig"]
    assert (hc["DnsSearch"], hc["DnsOptions"]) == (["example.com"], ["debug"])
    fl("rm", name)
    assert _refused(fl, "--dns-search", "a..b") == (
        'invalid argument "a..b" for "--dns-search" flag: a..b is not a valid domain')


def test_domainname(fl: Any, name: str) -> None:
    out = fl.out("run", "--rm", "--domainname", "corp.example", "busybox", "cat",
                 "/proc/sys/kernel/domainname")
    assert out == "corp.example"
    assert Path("/proc/sys/kernel/domainname").read_text().strip() != "corp.example"
    fl("create", "--name", name, "--domainname", "corp.example", "busybox", "true")
    assert fl.inspect(name)["Config"]["Domainname"] == "corp.example"
    fl("rm", name)


def test_group_add(fl: Any, name: str) -> None:
    out = fl.out("run", "--rm", "--group-add", "daemon", "--group-add", "4242", "busybox", "id")
    assert out == "uid=0(root) gid=0(root) groups=0(root),1(daemon),4242", out
    fl("create", "--name", name, "--group-add", "daemon", "busybox", "true")
    assert fl.inspect(name)["HostConfig"]["GroupAdd"] == ["daemon"]
    fl("rm", name)
    res = fl("run", "--rm", "--group-add", "nosuch", "busybox", "true", check=False)
    assert res.code == 125
    assert res.err.strip() == "Error: unable to find group nosuch: no matching entries in group file"
