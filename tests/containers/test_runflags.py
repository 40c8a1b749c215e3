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
    assert fl.out("inspect", "-f", "{{.HostConfig.ContainerIDFile}}", name) == str(cidfile)
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


def _cgroup(ctrl: str, cid: str, name: str) -> str:
    base = Path("/sys/fs/cgroup")
    v2 = (base / "cgroup.controllers").exists()
    return (base / "forklift" / cid / name if v2 else base / ctrl / "forklift" / cid / name
            ).read_text().strip()


def _block_device() -> tuple[str, str]:
    for dev in sorted(Path("/sys/block").iterdir()):
        if not dev.name.startswith(("loop", "ram", "zram", "nbd")) and Path("/dev", dev.name).exists():
            return f"/dev/{dev.name}", (dev / "dev").read_text().strip()
    pytest.skip("no disk block device")


@pytest.mark.skipif(Path("/sys/fs/cgroup/cgroup.controllers").exists(), reason="cgroup v1 files")
def test_resource_flags_in_cgroup(fl: Any, name: str) -> None:
    dev, majmin = _block_device()
    fl("run", "-d", "--name", name, "-m", "64m", "--oom-kill-disable", "--oom-score-adj", "500",
       "--memory-reservation", "32m", "--memory-swappiness", "10", "--cpu-period", "50000",
       "--cpu-quota", "25000", "--cpuset-mems", "0", "--device-read-bps", f"{dev}:1mb",
       "--device-write-bps", f"{dev}:2mb", "--device-read-iops", f"{dev}:100",
       "--device-write-iops", f"{dev}:200", "busybox", "sleep", "1000")
    info = fl.inspect(name)
    cid, hc = info["Id"], info["HostConfig"]
    assert _cgroup("memory", cid, "memory.oom_control").splitlines()[0] == "oom_kill_disable 1"
    assert _cgroup("memory", cid, "memory.soft_limit_in_bytes") == str(32 * 1024**2)
    assert _cgroup("memory", cid, "memory.swappiness") == "10"
    assert _cgroup("cpu", cid, "cpu.cfs_period_us") == "50000"
    assert _cgroup("cpu", cid, "cpu.cfs_quota_us") == "25000"
    assert _cgroup("cpuset", cid, "cpuset.mems") == "0"
    for f, rate in (("read_bps", 1024**2), ("write_bps", 2 * 1024**2), ("read_iops", 100),
                    ("write_iops", 200)):
        assert _cgroup("blkio", cid, f"blkio.throttle.{f}_device") == f"{majmin} {rate}"
    assert fl.out("exec", name, "cat", "/proc/1/oom_score_adj") == "500"
    assert (hc["OomKillDisable"], hc["OomScoreAdj"], hc["MemoryReservation"],
            hc["MemorySwappiness"], hc["CpuPeriod"], hc["CpuQuota"], hc["CpusetMems"]) == (
        True, 500, 32 * 1024**2, 10, 50000, 25000, "0")
    assert hc["BlkioDeviceReadBps"] == [{"Path": dev, "Rate": 1024**2}]
    assert hc["BlkioDeviceWriteIOps"] == [{"Path": dev, "Rate": 200}]
    fl("rm", "-f", name)


@pytest.mark.parametrize(("args", "message"), [
    (("--oom-score-adj", "1001"), "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    (("--memory-reservation", "1m"), "Minimum memory reservation allowed is 6MB"),
    (("-m", "16m", "--memory-reservation", "32m"),
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    (("--memory-swappiness", "101"), "Invalid value: 101, valid memory swappiness range is 0-100"),
    (("--cpu-period", "999"),
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    (("--cpu-quota", "999"), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    (("--cpus", "0.5", "--cpu-quota", "5000"),
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    (("--cpuset-mems", "7"), "Requested memory nodes are not available - requested 7, available: 0"),
    (("--cpuset-mems", "x"), "Invalid value x for cpuset mems"),
    (("--blkio-weight", "5"), "Range of blkio weight is from 10 to 1000"),
    (("--device-read-bps", "/dev/vda"), 'invalid argument "/dev/vda" for "--device-read-bps"'
     " flag: bad format: /dev/vda"),
    (("--device-write-iops", "/tmp/x:5"), 'invalid argument "/tmp/x:5" for'
     ' "--device-write-iops" flag: bad format for path: /tmp/x'),
    (("--device-read-iops", "/dev/vda:1k"), 'invalid argument "/dev/vda:1k" for'
     ' "--device-read-iops" flag: invalid rate for device: /dev/vda:1k. The correct format is'
     " <device-path>:<number>. Number must be a positive integer."),
    (("--device-read-bps", "/dev/nosuch:1m"), "error gathering device information while"
     ' adding custom device "/dev/nosuch": no such file or directory'),
])
def test_resource_flags_refused(fl: Any, args: tuple[str, ...], message: str) -> None:
    if "cpuset-mems" in args[0] and Path("/sys/devices/system/node/node1").exists():
        pytest.skip("a NUMA host")
    assert _refused(fl, *args) == message


def test_blkio_weight_applies_or_is_refused(fl: Any, name: str) -> None:
    base = Path("/sys/fs/cgroup/blkio")
    weight = next((n for n in ("blkio.weight", "blkio.bfq.weight") if (base / n).exists()), None)
    if weight is None and base.exists():  # this host: a blkio cgroup without weights
        assert _refused(fl, "--blkio-weight", "500") == (
            "Your kernel does not support Block I/O weight: the blkio cgroup has no weight"
            " file on this host")
        return
    fl("run", "-d", "--name", name, "--blkio-weight", "500", "busybox", "sleep", "1000")
    cid = fl.inspect(name)["Id"]
    assert fl.inspect(name)["HostConfig"]["BlkioWeight"] == 500
    if weight:
        assert _cgroup("blkio", cid, weight).split()[-1] == "500"
    fl("rm", "-f", name)


def test_device_and_its_cgroup_permissions(fl: Any) -> None:
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    # /dev/fuse (10:229) is not among the default devices: opening it needs the rule
    opened = "(exec 3</dev/f) && echo read-ok; (exec 4>/dev/f) && echo write-ok; true"
    out = fl.out("run", "--rm", "--device", "/dev/fuse:/dev/f:r", "busybox", "sh", "-c",
                 "ls -l /dev/f; " + opened)
    assert out.splitlines()[0].split()[0] == "crw-------", out
    assert out.splitlines()[0].split()[4:6] == ["10,", "229"], out
    assert "read-ok" in out and "write-ok" not in out
    out = fl.out("run", "--rm", "--device-cgroup-rule", "c 10:229 rw", "busybox", "sh", "-c",
                 "mknod /dev/f c 10 229; " + opened)
    assert "read-ok" in out and "write-ok" in out
    out = fl.out("run", "--rm", "busybox", "sh", "-c", "mknod /dev/f c 10 229; " + opened)
    assert "read-ok" not in out and "write-ok" not in out


def test_device_stored_and_refused(fl: Any, name: str) -> None:
    fl("create", "--name", name, "--device", "/dev/fuse:/dev/f", "--device-cgroup-rule",
       "c 10:* rmw", "busybox", "true")
    hc = fl.inspect(name)["HostConfig"]
    assert hc["Devices"] == [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/f",
                              "CgroupPermissions": "rwm"}]
    assert hc["DeviceCgroupRules"] == ["c 10:* rmw"]
    fl("rm", name)
    assert _refused(fl, "--device", "/dev/nosuch") == (
        'error gathering device information while adding custom device "/dev/nosuch":'
        " no such file or directory")
    assert _refused(fl, "--device", "/dev/null:/dev/n:rwx") == (
        'invalid argument "/dev/null:/dev/n:rwx" for "--device" flag: bad mode specified: rwx')
    assert _refused(fl, "--device-cgroup-rule", "x 1:2 r") == (
        'invalid argument "x 1:2 r" for "--device-cgroup-rule" flag:'
        " invalid device cgroup format 'x 1:2 r'")


def test_pid_ipc_uts_cgroupns(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "--ipc", "shareable", "busybox", "sleep", "1000")
    fl("exec", name, "sh", "-c", "echo 1 > /proc/sys/kernel/shm_rmid_forced || true")
    ps = fl.out("run", "--rm", "--pid", f"container:{name}", "busybox", "ps", "-o", "pid,args")
    assert "1 sleep 1000" in " ".join(ps.split())
    own = fl.out("exec", name, "readlink", "/proc/1/ns/ipc")
    assert fl.out("run", "--rm", "--ipc", f"container:{name}", "busybox", "readlink",
                  "/proc/self/ns/ipc") == own
    fl("rm", "-f", name)
    host_pid_ns = Path("/proc/self/ns/pid").readlink().name
    assert fl.out("run", "--rm", "--pid", "host", "busybox", "readlink", "/proc/self/ns/pid") == host_pid_ns
    host_ipc_ns = Path("/proc/self/ns/ipc").readlink().name
    assert fl.out("run", "--rm", "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc") == host_ipc_ns
    assert fl.out("run", "--rm", "--uts", "host", "busybox", "hostname") == \
        Path("/proc/sys/kernel/hostname").read_text().strip()
    host_cg = Path("/proc/self/ns/cgroup").readlink().name
    assert fl.out("run", "--rm", "--cgroupns", "private", "busybox", "readlink",
                  "/proc/self/ns/cgroup") != host_cg
    assert fl.out("run", "--rm", "--cgroupns", "host", "busybox", "readlink",
                  "/proc/self/ns/cgroup") == host_cg


def test_namespace_modes_stored_and_refused(fl: Any, name: str) -> None:
    fl("create", "--name", name, "--pid", "host", "--ipc", "shareable", "--uts", "host",
       "--cgroupns", "private", "busybox", "true")
    hc = fl.inspect(name)["HostConfig"]
    assert (hc["PidMode"], hc["IpcMode"], hc["UTSMode"], hc["CgroupnsMode"]) == (
        "host", "shareable", "host", "private")
    res = fl("start", "-a", f"{name}", check=False)
    assert res.code == 0, res
    fl("create", "--name", name + "-j", "--pid", f"container:{name}", "busybox", "true")
    res = fl("start", name + "-j", check=False)
    assert res.code != 0 and "cannot join PID of a non running container" in res.err
    fl("rm", name, name + "-j")
    assert _refused(fl, "--pid", "foo") == "--pid: invalid PID mode"
    assert _refused(fl, "--ipc", "container:") == "--ipc: invalid IPC mode"
    assert _refused(fl, "--uts", "private") == "--uts: invalid UTS mode"
    assert _refused(fl, "--cgroupns", "x") == "--cgroupns: invalid CGROUP mode"
    assert _refused(fl, "--pid", "container:nosuch-ctr") == "No such container: nosuch-ctr"
    assert _refused(fl, "--uts", "host", "-h", "x") == "Conflicting options: hostname and the UTS mode"


def test_pull_policies(fl: Any, registry: Any, name: str) -> None:
    ref = f"{registry.host}/runflags/bb:1"
    fl("tag", "busybox", ref)
    fl("push", ref)
    fl("rmi", ref)
    res = fl("run", "--rm", ref, "echo", "ran")
    assert res.out == "ran\n"
    assert res.err.splitlines()[0] == f"Unable to find image '{ref}' locally"
    assert "1: Pulling from runflags/bb" in res.err
    fl("rmi", ref)
    res = fl("run", "--rm", "-q", ref, "echo", "ran")
    assert (res.out, res.err) == ("ran\n", f"Unable to find image '{ref}' locally\n")
    # always: a newer image under the same tag is pulled though one is here
    fl("run", "--name", name, "busybox", "sh", "-c", "echo v2 > /version")
    fl("commit", name, ref)
    fl("rm", name)
    fl("push", ref)
    fl("tag", "busybox", ref)
    assert fl("run", "--rm", ref, "cat", "/version", check=False).code != 0
    res = fl("run", "--rm", "--pull", "always", ref, "cat", "/version")
    assert res.out == "v2\n" and "Unable to find" not in res.err
    fl("rmi", ref)
    assert _refused(fl, "--pull", "never", ref) == f"No such image: {ref}"
    assert _refused(fl, "--pull", "sometimes") == (
        "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\"")


def test_platform(fl: Any) -> None:
    import platform as host

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(host.machine(), host.machine())
    assert fl.out("run", "--rm", "--platform", f"linux/{arch}", "busybox", "echo", "ok") == "ok"
    other = "s390x" if arch != "s390x" else "amd64"
    assert _refused(fl, "--platform", f"linux/{other}").startswith(
        f"image platform linux/{other} cannot run on this host")


def test_log_rotation(fl: Any, name: str) -> None:
    script = "for i in $(seq 1 100); do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; done"
    fl("run", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
       "busybox", "sh", "-c", script)
    info = fl.inspect(name)
    assert info["HostConfig"]["LogConfig"] == {"Type": "json-file",
                                               "Config": {"max-size": "1k", "max-file": "3"}}
    log = Path(fl.root, "containers", info["Id"], f"{info['Id']}-json.log")
    files = sorted(log.parent.glob(log.name + "*"))
    assert [f.name[len(log.name):] for f in files] == ["", ".1", ".2"]
    assert all(f.stat().st_size <= 1024 for f in files)
    lines = fl.out("logs", name).splitlines()
    assert lines[-1].startswith("line-100-")
    first = int(lines[0].split("-")[1])
    assert lines == [f"line-{i}-" + "x" * 24 for i in range(first, 101)]
    assert 1 < first < 100  # the oldest were dropped, the rotated kept
    fl("rm", name)


def test_log_driver_none_and_refusals(fl: Any, name: str) -> None:
    out = fl.out("run", "--name", name, "--log-driver", "none", "busybox", "echo", "hi")
    assert out == "hi"  # passed on, never kept
    res = fl("logs", name, check=False)
    assert res.code != 0
    assert res.err.strip() == "Error: configured logging driver does not support reading"
    fl("rm", name)
    fl("run", "--name", name, "--log-driver", "local", "busybox", "echo", "kept")
    assert fl.out("logs", name) == "kept"
    fl("rm", name)
    assert _refused(fl, "--log-driver", "syslog") == (
        "failed to initialize logging driver: logger: no log driver named 'syslog' is registered")
    assert _refused(fl, "--log-opt", "max-file=0") == "max-file cannot be less than 1"
    assert _refused(fl, "--log-opt", "foo=1") == "unknown log opt 'foo' for json-file log driver"
    assert _refused(fl, "--log-driver", "none", "--log-opt", "max-size=1m") == (
        "unknown log opt 'max-size' for none log driver")


def test_attach_streams(fl: Any, name: str) -> None:
    res = fl("run", "--name", name, "-a", "stdout", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (res.out, res.err) == ("out\n", "")
    config = fl.inspect(name)["Config"]
    assert (config["AttachStdin"], config["AttachStdout"], config["AttachStderr"]) == (
        False, True, False)
    logs = fl("logs", name)
    assert (logs.out, logs.err) == ("out\n", "err\n")  # the log keeps both
    fl("rm", name)
    res = fl("run", "--rm", "-a", "STDERR", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (res.out, res.err) == ("", "err\n")
    assert _refused(fl, "-a", "foo") == (
        'invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR')
    assert _refused(fl, "-d", "-a", "stdout") == "Conflicting options: -a and -d"


def test_sig_proxy_and_detach_keys(fl: Any) -> None:
    assert fl.out("run", "--rm", "--sig-proxy=true", "busybox", "echo", "ok") == "ok"
    assert _refused(fl, "--sig-proxy=false") == (
        "--sig-proxy=false is not supported: a foreground container lives as long as its"
        " forklift process")
    assert _refused(fl, "--detach-keys", "ctrl-xx") == "Invalid detach keys (ctrl-xx) provided"
    assert _refused(fl, "--detach-keys", "ctrl-p,ctrl-q").startswith("--detach-keys is not supported")


def test_link_and_network_alias(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    out = fl.out("run", "--rm", "--link", f"{name}:database", "busybox", "sh", "-c",
                 "grep -w database /etc/hosts; ping -c1 -W3 database | grep received")
    assert f"database {fl.inspect(name)['Id'][:12]} {name}" in out
    assert "1 packets received" in out
    fl("rm", "-f", name)
    res = fl("run", "--rm", "--link", "nosuch-ctr", "busybox", "true", check=False)
    assert res.code == 125 and res.err == "Error: Could not get container for nosuch-ctr\n"
    fl("network", "create", "rfnet-t")
    try:
        fl("run", "-d", "--name", name, "--network", "rfnet-t", "--network-alias", "backend",
           "busybox", "sleep", "1000")
        aliases = fl.inspect(name)["NetworkSettings"]["Networks"]["rfnet-t"]["Aliases"]
        assert "backend" in aliases
        out = fl.out("run", "--rm", "--network", "rfnet-t", "busybox", "ping", "-c1", "-W3", "backend")
        assert "1 packets received" in out
        res = fl("run", "--rm", "--network", "rfnet-t", "--ip", "1.2.3.4", "busybox", "true",
                 check=False)
        assert res.code == 125 and "does not belong to any of this network's subnets" in res.err
    finally:
        fl("rm", "-f", name, check=False)
        fl("network", "rm", "rfnet-t")
    assert _refused(fl, "--network-alias", "x") == (
        "network-scoped alias is supported only for containers in user defined networks")
    assert _refused(fl, "--ip", "10.1.1.1") == (
        "user specified IP address is supported on user defined networks only")
    assert _refused(fl, "--cgroup-parent", "/mine") == (
        "--cgroup-parent is not supported: forklift keeps every container's cgroup under /forklift")


@pytest.fixture(scope="module")
def docker_busybox(docker: Any, busybox_tar: Path) -> str:
    """busybox in the private dockerd (imported once per module)."""
    docker("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), "fl-busybox:latest")
    return "fl-busybox:latest"


@pytest.mark.docker
def test_stored_as_docker_stores_them(fl: Any, name: str, docker: Any, docker_busybox: str,
                                      tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("a=1\n")
    args = ["--network", "none", "--label-file", str(labels), "--stop-timeout", "3",
            "--shm-size", "8m", "--sysctl", "kernel.msgmax=4096", "--dns-search", "example.com",
            "--dns-option", "ndots:3", "--domainname", "corp.example", "--group-add", "daemon",
            "--oom-score-adj", "500", "--memory-reservation", "32m", "--memory-swappiness", "10",
            "--cpu-period", "50000", "--cpu-quota", "25000", "--cpuset-mems", "0",
            "--device-read-bps", f"{_block_device()[0]}:1mb", "--device", "/dev/null:/dev/n:r",
            "--device-cgroup-rule", "c 10:* rw", "--pid", "host", "--ipc", "shareable",
            "--uts", "host", "--cgroupns", "private", "--log-driver", "json-file",
            "--log-opt", "max-size=1k", "--log-opt", "max-file=3"]
    docker("create", "--name", name, *args, docker_busybox, "true")
    fl("create", "--name", name, *args, "busybox", "true")
    try:
        import json

        theirs = json.loads(docker("inspect", name).out)[0]
        ours = fl.inspect(name)
        for key in ("ShmSize", "Sysctls", "DnsSearch", "DnsOptions", "GroupAdd", "OomScoreAdj",
                    "MemoryReservation", "MemorySwappiness", "CpuPeriod", "CpuQuota",
                    "CpusetMems", "BlkioDeviceReadBps", "Devices", "DeviceCgroupRules",
                    "PidMode", "IpcMode", "UTSMode", "CgroupnsMode", "LogConfig"):
            assert ours["HostConfig"][key] == theirs["HostConfig"][key], key
        for key in ("StopTimeout", "Domainname", "Labels"):
            assert ours["Config"][key] == theirs["Config"][key], key
    finally:
        docker("rm", name, check=False)
        fl("rm", name, check=False)
