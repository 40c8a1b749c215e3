"""The commands of issue 13 that read and change running things: version, port, events,
stats, update, network connect/disconnect; through the real CLI and the engine API, with
Docker on this machine as the oracle for the shape of their output."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support import Forklift
from support.cli import one_line_error
from support.docker import Docker
from support.registry import Registry

from forklift.engine.version import version
from forklift.errors import InvalidArgument

pytestmark = pytest.mark.root


def _labels(text: str) -> list[str]:
    """The ``Label:`` lines of a ``version`` section, without their values."""
    return [m.group(1) for m in re.finditer(r"^( *[A-Za-z/ ]+?):", text, re.M)]


# ----------------------------------------------------------------------------- version

def test_version_has_client_and_a_daemonless_server(fl: Forklift):
    out = fl.out("version")
    client, _, server = out.partition("\n\nServer: ")
    assert client.startswith("Client: forklift\n Version:")
    assert server.startswith("forklift (daemonless)\n Engine:\n  Version:")
    assert re.search(r"^  Daemon: +none: every forklift process is the engine", server, re.M)
    assert re.search(r"^ runc:\n  Version: +\d+\.\d+", server, re.M)
    # values start in one column, as Docker's tabwriter aligns them
    assert {line.index(line.split()[-1]) for line in out.splitlines()
            if line.startswith(" Version:") or line.startswith("  Version:")} == {20}


def test_version_format_reads_the_document(fl: Forklift):
    doc = version()
    assert fl.out("version", "--format", "{{.Client.Version}}") == doc["Client"]["Version"]
    printed = json.loads(fl.out("version", "--format", "{{json .}}"))
    assert set(printed) == {"Client", "Server"}
    assert printed["Server"]["Components"][0]["Name"] == "Engine"
    assert printed["Client"]["ApiVersion"] == printed["Server"]["ApiVersion"] == "1.41"


def test_version_bad_template_is_one_line_exit_64(fl: Forklift):
    res = fl("version", "--format", "{{.Client.Version", check=False)
    assert "Template parsing error" in one_line_error(res)
    assert res.code == 64


@pytest.mark.docker
def test_version_shape_matches_docker(fl: Forklift, docker: Docker):
    ours = json.loads(fl.out("version", "--format", "{{json .}}"))
    theirs = json.loads(docker("version", "--format", "{{json .}}").out)
    assert set(theirs) == set(ours)
    go_only = {"GoVersion", "Experimental"}
    for section in ("Client", "Server"):
        assert set(theirs[section]) - go_only <= set(ours[section]), section
    assert {c["Name"] for c in theirs["Server"]["Components"]} >= {"Engine", "runc"}
    assert {c["Name"] for c in ours["Server"]["Components"]} == {"Engine", "runc"}
    theirs_text, ours_text = docker("version").out, fl.out("version")
    common = {" Version", " API version", " OS/Arch", " Context", " Engine", "  Version",
              "  API version", "  OS/Arch", "  Experimental", " runc",
              "  GitCommit"}
    assert common <= set(_labels(theirs_text))
    assert common <= set(_labels(ours_text))
    assert theirs_text.startswith("Client:") and "\n\nServer:" in theirs_text


# ----------------------------------------------------------------------------- port

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_lists_and_looks_up_published_ports(fl: Forklift, name: str):
    tcp, udp = _free_port(), _free_port()
    fl("run", "-d", "--name", name, "-p", f"{tcp}:80", "-p", f"127.0.0.1:{udp}:53/udp",
       "busybox", "sleep", "1000")
    try:
        assert fl.out("port", name).splitlines() == [f"53/udp -> 127.0.0.1:{udp}",
                                                     f"80/tcp -> 0.0.0.0:{tcp}"]
        assert fl.out("port", name, "80") == f"0.0.0.0:{tcp}"
        assert fl.out("container", "port", name, "80/tcp") == f"0.0.0.0:{tcp}"
        assert fl.out("port", name, "53/udp") == f"127.0.0.1:{udp}"
        res = fl("port", name, "53", check=False)
        assert one_line_error(res) == f"Error: No public port '53/tcp' published for {name}"
        assert "Invalid containerPort" in one_line_error(fl("port", name, "http", check=False))
        assert "Invalid proto" in one_line_error(fl("port", name, "80/xyz", check=False))
        fl("stop", "-t", "0", name)
        # a container that does not run publishes nothing, as in Docker
        assert fl.out("port", name) == ""
        assert "No public port '80/tcp'" in one_line_error(fl("port", name, "80", check=False))
    finally:
        fl("rm", "-f", name)


def test_port_of_an_unknown_container(fl: Forklift):
    assert "No such container: nope-t" in one_line_error(fl("port", "nope-t", check=False))
    assert one_line_error(fl("port", check=False)).startswith('Error: "forklift port" requires')


def test_port_engine_normalizes_private_ports():
    from forklift.engine.ports import normalize

    assert normalize("80") == "80/tcp" and normalize("53/UDP") == "53/udp"
    assert normalize("8080/") == "8080/tcp"
    for bad in ("0", "65536", "-1", "", "80/icmp", "1e3"):
        with pytest.raises(InvalidArgument):
            normalize(bad)


@pytest.fixture(scope="module")
def docker_busybox(docker: Docker, busybox_tar: Path) -> str:
    """busybox in the private dockerd (imported once per module)."""
    docker("import", str(busybox_tar), "fl-busybox:latest")
    return "fl-busybox:latest"


@pytest.mark.docker
def test_port_errors_match_docker(fl: Forklift, name: str, docker: Docker, docker_busybox: str):
    docker("create", "--name", name, "--network", "none", docker_busybox, "true")
    fl("create", "--name", name, "--network", "none", "busybox", "true")
    try:
        for args in ([name], [name, "80"], [name, "53/udp"], ["nope-t", "80"]):
            theirs, ours = docker("port", *args, check=False), fl("port", *args, check=False)
            assert (theirs.code == 0) == (ours.code == 0), args
            assert theirs.out == ours.out, args
            if theirs.code:
                # Docker 20.10 names the port with its protocol; this machine's newer
                # client names it as typed; forklift has no daemon to respond
                theirs_line = theirs.err.strip().splitlines()[-1].replace("'80'", "'80/tcp'")
                theirs_line = theirs_line.replace("Error response from daemon: ", "Error: ")
                assert theirs_line.lower() == one_line_error(ours).lower()
    finally:
        docker("rm", "-f", name, check=False)
        fl("rm", "-f", name)


# ----------------------------------------------------------------------------- events

_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (\w+) (\S+) (\S+)"
                   r"( \(.*\))?$")


def _events(fl: Forklift, since: float, *args: str) -> list[dict]:
    out = fl.out("events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}",
                 "--format", "{{json .}}", *args)
    return [json.loads(line) for line in out.splitlines()]


def test_events_of_a_run_in_dockers_order_and_line(fl: Forklift, name: str):
    since = time.time()
    fl("run", "--rm", "--name", name, "--label", "team=a", "busybox", "true")
    mine = [e for e in _events(fl, since, "--filter", f"container={name}")]
    assert [e["Action"] for e in mine] == ["create", "start", "die", "destroy"]
    assert mine[2]["Actor"]["Attributes"] == {"image": "busybox", "name": name, "team": "a",
                                              "exitCode": "0"}
    cid = mine[0]["Actor"]["ID"]
    lines = fl.out("events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}",
                   "--filter", "event=die", "--filter", f"container={cid[:12]}").splitlines()
    assert len(lines) == 1
    m = _LINE.match(lines[0])
    assert m and m.group(2, 3, 4) == ("container", "die", cid), lines
    assert m.group(5) == f" (exitCode=0, image=busybox, name={name}, team=a)"
    net = _events(fl, since, "--filter", "type=network")
    assert [e["Action"] for e in net] == ["connect", "disconnect"]
    assert {e["Actor"]["Attributes"]["container"] for e in net} == {cid}
    # the same stream under `system events`, with Docker's Go field names
    out = fl.out("system", "events", "--since", f"{since:.9f}", "--until", f"{time.time():.9f}",
                 "--filter", "event=create", "--format", "{{.Status}} {{.ID}} {{.From}} {{.Scope}}")
    assert out == f"create {cid} busybox local"


def test_events_of_images_volumes_and_lifecycle(fl: Forklift, name: str):
    since = time.time()
    fl("tag", "busybox", "ev-t:1")
    fl("rmi", "ev-t:1")
    fl("volume", "create", "ev-vol")
    fl("volume", "rm", "ev-vol")
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    fl("pause", name)
    fl("unpause", name)
    fl("exec", name, "true")
    fl("rename", name, name + "-2")
    fl("kill", name + "-2")
    fl("rm", name + "-2")
    got = [(e["Type"], e["Action"]) for e in _events(fl, since)
           if e["Type"] != "network"]
    assert got[:4] == [("image", "tag"), ("image", "untag"), ("volume", "create"),
                       ("volume", "destroy")]
    container = [a for t, a in got[4:]]
    assert container[:5] == ["create", "start", "pause", "unpause", "exec_start: true"]
    assert container[5:] == ["exec_die", "rename", "kill", "die", "destroy"]
    renamed = _events(fl, since, "--filter", "event=rename")[0]["Actor"]["Attributes"]
    assert renamed["oldName"] == name and renamed["name"] == name + "-2"
    assert _events(fl, since, "--filter", "event=kill")[0]["Actor"]["Attributes"]["signal"] == "9"


def test_events_follow_until_terminated(fl: Forklift, name: str):
    since = time.time()
    proc = subprocess.Popen([*fl.argv, "events", "--since", f"{since:.9f}", "--filter",
                             "type=volume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=fl.environ(), text=True)
    guard = threading.Timer(60, proc.kill)  # a missing event fails the test, never hangs it
    guard.start()
    try:
        fl("volume", "create", name)
        line = proc.stdout.readline() if proc.stdout else ""  # blocks until the event shows
        assert " volume create " + name in line
        fl("volume", "rm", name)
        assert " volume destroy " + name in (proc.stdout.readline() if proc.stdout else "")
        assert proc.poll() is None  # still following
    finally:
        guard.cancel()
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_events_refuse_hostile_input_in_one_line(fl: Forklift):
    assert one_line_error(fl("events", "--filter", "colour=red", "--until", "0s",
                             check=False)) == "Error: Invalid filter 'colour'"
    assert 'invalid value for "since"' in one_line_error(
        fl("events", "--since", "last tuesday", check=False))
    assert 'invalid value for "until"' in one_line_error(
        fl("events", "--until", "2026-02-30T00:00:00Z", check=False))
    assert "bad format of filter" in one_line_error(fl("events", "--filter", "x", check=False))
    assert "template" in one_line_error(fl("events", "--format", "{{.Type", "--until", "0s",
                                           check=False))


@pytest.mark.docker
def test_events_shape_matches_docker(fl: Forklift, name: str, docker: Docker,
                                     docker_busybox: str):
    since = time.time()
    docker("create", "--name", name, "--network", "none", "--label", "k=v", docker_busybox,
           "true")
    docker("rm", name)
    fl("create", "--name", name, "--network", "none", "--label", "k=v", "busybox", "true")
    fl("rm", name)
    window = ["--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
              "--filter", f"container={name}"]
    theirs = [json.loads(x) for x in docker("events", *window, "--format", "{{json .}}").lines]
    ours = [json.loads(x) for x in fl("events", *window, "--format", "{{json .}}").lines]
    assert [e["Action"] for e in ours] == [e["Action"] for e in theirs] == ["create", "destroy"]
    for a, b in zip(theirs, ours, strict=True):
        assert set(a) == set(b)
        assert set(a["Actor"]) == set(b["Actor"])
        assert set(a["Actor"]["Attributes"]) == set(b["Actor"]["Attributes"])
    for text in (docker("events", *window).lines, fl("events", *window).lines):
        matched = [_LINE.match(x) for x in text]
        assert [m.group(2, 3) if m else x for m, x in zip(matched, text, strict=True)] == [
            ("container", "create"), ("container", "destroy")], text


# ----------------------------------------------------------------------------- stats

_STATS_KEYS = {"BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO",
               "PIDs"}
_STATS_SHAPES = {
    "CPUPerc": r"\d+\.\d\d%", "MemPerc": r"\d+\.\d\d%",
    "MemUsage": r"[\d.]+(B|KiB|MiB|GiB|TiB) / [\d.]+(B|KiB|MiB|GiB|TiB)",
    "NetIO": r"[\d.]+(B|kB|MB|GB|TB) / [\d.]+(B|kB|MB|GB|TB)",
    "BlockIO": r"[\d.]+(B|kB|MB|GB|TB) / [\d.]+(B|kB|MB|GB|TB)", "PIDs": r"\d+",
    "ID": r"[0-9a-f]{12}"}
_STATS_HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                 "BLOCK I/O", "PIDS"]


def _header(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_stats_no_stream_reads_the_containers_cgroup(fl: Forklift, name: str):
    fl("run", "-d", "--name", name, "--memory", "64m", "--pids-limit", "20", "busybox", "sh",
       "-c", "sleep 1000 & sleep 1000 & wait")
    fl("create", "--name", name + "-off", "busybox", "true")
    try:
        row = json.loads(fl.out("stats", "--no-stream", "--format", "{{json .}}", name))
        assert set(row) == _STATS_KEYS
        for key, shape in _STATS_SHAPES.items():
            assert re.fullmatch(shape, row[key]), (key, row[key])
        assert row["Container"] == row["Name"] == name
        assert row["MemUsage"].endswith(" / 64MiB")
        assert row["PIDs"] == "3"  # the shell and its two sleeps
        # the default table lists running containers only; -a the others too, at zero
        lines = fl.out("stats", "--no-stream").splitlines()
        assert _header(lines[0]) == _STATS_HEADER
        assert any(line.split()[1] == name for line in lines[1:])
        assert not any(line.split()[1] == name + "-off" for line in lines[1:])
        off = [x for x in fl.out("stats", "--no-stream", "-a", "--format",
                                 "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}").splitlines()
               if x.startswith(name + "-off ")]
        assert off == [f"{name}-off 0.00% 0B / 0B 0"]
        full = fl.out("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", name)
        assert len(full) == 64 and full == fl.inspect(name)["Id"]
    finally:
        fl("rm", "-f", name, name + "-off")


def test_stats_streams_a_redrawn_table_until_interrupted(fl: Forklift, name: str):
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    proc = subprocess.Popen([*fl.argv, "stats", name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=fl.environ())
    guard = threading.Timer(60, proc.kill)  # a stuck table fails the test, never hangs it
    guard.start()
    try:
        seen = b""
        assert proc.stdout is not None
        while seen.count(b"\033[2J\033[H") < 2:  # two redraws, a second apart
            chunk = proc.stdout.read1(4096)
            assert chunk, proc.stderr.read() if proc.stderr else b""
            seen += chunk
        assert proc.poll() is None
    finally:
        guard.cancel()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        fl("rm", "-f", name)
    tables = seen.decode().split("\033[2J\033[H")[1:]
    assert _header(tables[0].splitlines()[0]) == _STATS_HEADER
    assert tables[0].splitlines()[1].split()[1] == name
    assert proc.returncode in (0, 130)
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_stats_refuses_hostile_input_in_one_line(fl: Forklift):
    assert one_line_error(fl("stats", "--no-stream", "nope-t", check=False)) == \
        "Error: No such container: nope-t"
    assert "template" in one_line_error(fl("stats", "--no-stream", "--format", "{{.Name",
                                           check=False))


@pytest.mark.docker
def test_stats_shape_matches_docker(fl: Forklift, name: str, docker: Docker,
                                    docker_busybox: str):
    docker("run", "-d", "--name", name, "--network", "none", docker_busybox, "sleep", "1000")
    fl("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
    try:
        theirs = json.loads(docker("stats", "--no-stream", "--format", "{{json .}}", name).out)
        ours = json.loads(fl.out("stats", "--no-stream", "--format", "{{json .}}", name))
        assert set(theirs) == set(ours) == _STATS_KEYS
        for key, shape in _STATS_SHAPES.items():
            assert re.fullmatch(shape, theirs[key]), (key, theirs[key])
            assert re.fullmatch(shape, ours[key]), (key, ours[key])
        assert _header(docker("stats", "--no-stream").lines[0]) == _header(
            fl("stats", "--no-stream").lines[0])
    finally:
        docker("rm", "-f", name, check=False)
        fl("rm", "-f", name)


# ----------------------------------------------------------------------------- update

def _cgroup(cid: str, controller: str, name: str) -> str:
    from forklift.engine import hostconfig

    return Path(hostconfig.cgroup_dir(cid, controller), name).read_text().strip()


def test_update_changes_a_running_containers_cgroup(fl: Forklift, name: str):
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    try:
        cid = fl.inspect(name)["Id"]
        assert fl.out("update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
                      "--pids-limit", "30",
                      "--cpu-shares", "512", "--restart", "on-failure:2", name) == name
        assert _cgroup(cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert _cgroup(cid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cgroup(cid, "cpu", "cpu.shares") == "512"
        assert _cgroup(cid, "pids", "pids.max") == "30"
        hc = fl.inspect(name)["HostConfig"]
        assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (64 << 20, 500_000_000, 30)
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        fl("container", "update", "--pids-limit", "-1", name)
        assert _cgroup(cid, "pids", "pids.max") == "max"
        assert fl.status(name) == "running"
    finally:
        fl("rm", "-f", name)


def test_update_of_a_stopped_container_applies_at_its_next_start(fl: Forklift, name: str):
    fl("create", "--name", name, "busybox", "sleep", "1000")
    try:
        fl("update", "--memory", "48m", "--memory-swap", "-1", "--pids-limit", "25", name)
        fl("start", name)
        cid = fl.inspect(name)["Id"]
        assert _cgroup(cid, "memory", "memory.limit_in_bytes") == str(48 << 20)
        assert _cgroup(cid, "pids", "pids.max") == "25"
    finally:
        fl("rm", "-f", name)


def test_update_refuses_hostile_input_in_one_line(fl: Forklift, name: str):
    fl("create", "--name", name, "--rm", "busybox", "true")
    try:
        before = fl.inspect(name)["HostConfig"]
        for args, error in (([], "you must provide one or more flags"),
                            (["--memory", "1m"], "Minimum memory limit allowed is 6MB"),
                            (["--restart", "always"], "AutoRemove is enabled"),
                            (["--restart", "maybe"], "invalid restart policy 'maybe'"),
                            (["--cpus", "99999"], "Range of CPUs")):
            assert error in one_line_error(fl("update", *args, name, check=False)), args
        assert fl.inspect(name)["HostConfig"] == before
        assert one_line_error(fl("update", "--cpus", "1", "nope-t", check=False)) == \
            "Error: No such container: nope-t"
        res = fl("update", "--cpus", "1", name, "nope-t", check=False)
        assert res.out.strip() == name and "No such container: nope-t" in res.err
        assert res.code == 1
    finally:
        fl("rm", "-f", name)


@pytest.mark.docker
def test_update_matches_docker(fl: Forklift, name: str, docker: Docker, docker_busybox: str):
    docker("run", "-d", "--name", name, "--network", "none", docker_busybox, "sleep", "1000")
    fl("run", "-d", "--name", name, "--network", "none", "busybox", "sleep", "1000")
    try:
        for args in (["--memory", "64m"],
                     ["--memory", "64m", "--memory-swap", "128m", "--pids-limit", "40",
                      "--restart", "on-failure:2"], ["--memory", "96m"], ["--memory", "200m"],
                     ["--cpus", "0.5", "--cpu-shares", "512"], ["--memory", "1m"],
                     ["--restart", "always:3"]):
            theirs, ours = docker("update", *args, name, check=False), fl("update", *args, name,
                                                                         check=False)
            assert (theirs.code == 0, theirs.out) == (ours.code == 0, ours.out), (args, theirs.err)
            if theirs.code:
                assert ours.err.split(": ", 1)[1].strip() in theirs.err, (theirs.err, ours.err)
        fields = "{{json .HostConfig.RestartPolicy}}|{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}" \
                 " {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}}"
        ours_policy, ours_rest = fl.out("inspect", "-f", fields, name).split("|")
        theirs_policy, theirs_rest = docker("inspect", "-f", fields, name).out.strip().split("|")
        assert json.loads(ours_policy) == json.loads(theirs_policy)
        assert ours_rest == theirs_rest
    finally:
        docker("rm", "-f", name, check=False)
        fl("rm", "-f", name)


# ----------------------------------------------------------------------------- network connect

def _addresses(fl: Forklift, name: str) -> dict[str, str]:
    """Interface → IPv4 address inside the container (lo left out)."""
    out = fl.out("exec", name, "ip", "-4", "-o", "addr")
    return {f[1]: f[3].split("/")[0] for f in (line.split() for line in out.splitlines())
            if f[1] != "lo"}


def test_network_connect_and_disconnect_a_running_container(fl: Forklift, name: str):
    net = name[:20] + "-net"
    fl("network", "create", net)
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    try:
        since = time.time()
        fl("network", "connect", net, name)
        addresses = _addresses(fl, name)
        assert set(addresses) == {"eth0", "eth1"}
        info = json.loads(fl.out("network", "inspect", net))[0]
        (entry,) = info["Containers"].values()
        assert entry["Name"] == name and entry["IPv4Address"].split("/")[0] == addresses["eth1"]
        networks = fl.inspect(name)["NetworkSettings"]["Networks"]
        assert set(networks) == {"bridge", net}
        assert networks[net]["IPAddress"] == addresses["eth1"]
        assert "already exists in network" in one_line_error(
            fl("network", "connect", net, name, check=False))
        assert fl("network", "rm", net, check=False).code != 0  # in use
        # the container keeps it across a restart
        fl("restart", "-t", "0", name)
        assert set(_addresses(fl, name)) == {"eth0", "eth1"}
        fl("network", "disconnect", net, name)
        assert set(_addresses(fl, name)) == {"eth0"}
        assert json.loads(fl.out("network", "inspect", net))[0]["Containers"] == {}
        assert "is not connected to the network" in one_line_error(
            fl("network", "disconnect", net, name, check=False))
        fl("network", "disconnect", "-f", net, name)  # -f: not connected is fine
        assert "first network" in one_line_error(
            fl("network", "disconnect", "bridge", name, check=False))
        acts = [e["Action"] for e in _events(fl, since, "--filter", f"network={net}")]
        assert acts == ["connect", "disconnect", "connect", "disconnect"]
    finally:
        fl("rm", "-f", name)
    fl("network", "rm", net)


def test_network_connect_alias_reaches_the_peers_hosts(fl: Forklift, name: str):
    """A connected network's names (the container's name and ``--alias``) in its peers'
    /etc/hosts there and theirs in its own, again after a restart, gone at disconnect."""
    net, peer = name[:20] + "-net", name[:20] + "-peer"
    fl("network", "create", net)
    fl("run", "-d", "--name", peer, "--network", net, "busybox", "sleep", "1000")
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    try:
        assert "user defined networks" in one_line_error(
            fl("network", "connect", "--alias", "svc", "bridge", name, check=False))
        fl("network", "connect", "--alias", "svc", net, name)
        for _ in range(2):
            lines = [ln.split() for ln in fl.out("exec", peer, "cat", "/etc/hosts").splitlines()]
            (mine,) = [f for f in lines if "svc" in f]
            assert mine[0] == _addresses(fl, name)["eth1"] and name in mine, lines
            assert peer in fl.out("exec", name, "cat", "/etc/hosts")
            assert fl.inspect(name)["NetworkSettings"]["Networks"][net]["Aliases"][:2] == \
                [name, "svc"]
            fl("restart", "-t", "0", name)
        fl("network", "disconnect", net, name)
        assert "svc" not in fl.out("exec", peer, "cat", "/etc/hosts")
        assert peer not in fl.out("exec", name, "cat", "/etc/hosts")
    finally:
        fl("rm", "-f", name, peer)
    fl("network", "rm", net)


def test_network_connect_and_run_with_an_address_and_links(fl: Forklift, name: str):
    """``run --ip`` and ``connect --ip`` on a network with a subnet: the container has that
    address (again after a restart); a held address, one outside the subnet or on the
    default bridge is refused and changes nothing. ``connect --link`` names the target
    there in the container's /etc/hosts until the disconnect."""
    net, peer = name[:20] + "-net", name[:20] + "-peer"
    fl("network", "create", "--subnet", "10.231.77.0/24", net)
    fl("run", "-d", "--name", peer, "--network", net, "--ip", "10.231.77.50", "busybox",
       "sleep", "1000")
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    try:
        assert _addresses(fl, peer) == {"eth0": "10.231.77.50"}
        refused = {"10.231.77.50": "Error: Address already in use: 10.231.77.50",
                   "10.231.77.1": "Error: Address already in use: 10.231.77.1",
                   "10.231.78.5": "Error: Invalid address 10.231.78.5: It does not belong to"
                                  " any of this network's subnets",
                   "10.231.77": "Error: invalid IPv4 address: 10.231.77"}
        for address, error in refused.items():
            assert one_line_error(fl("network", "connect", "--ip", address, net, name,
                                     check=False)) == error
        assert one_line_error(fl("network", "connect", "--ip", "10.210.0.99", "bridge", peer,
                                 check=False)) == ("Error: user specified IP address is"
                                                   " supported on user defined networks only")
        assert "Could not get container for nope-x" in one_line_error(
            fl("network", "connect", "--link", "nope-x", net, name, check=False))
        assert set(fl.inspect(name)["NetworkSettings"]["Networks"]) == {"bridge"}
        fl("network", "connect", "--ip", "10.231.77.60", "--link", f"{peer}:db", net, name)
        for _ in range(2):
            assert _addresses(fl, name)["eth1"] == "10.231.77.60"
            hosts = [ln.split() for ln in fl.out("exec", name, "cat", "/etc/hosts").splitlines()]
            assert ["10.231.77.50", "db"] in [h[:2] for h in hosts], hosts
            endpoint = fl.inspect(name)["NetworkSettings"]["Networks"][net]
            assert endpoint["IPAMConfig"] == {"IPv4Address": "10.231.77.60"}
            assert endpoint["Links"] == [f"{peer}:db"]
            fl("restart", "-t", "0", name)
        fl("network", "disconnect", net, name)
        assert " db" not in fl.out("exec", name, "cat", "/etc/hosts")
    finally:
        fl("rm", "-f", name, peer)
    fl("network", "rm", net)


def test_network_connect_a_stopped_container_is_stored(fl: Forklift, name: str):
    net = name[:20] + "-net"
    fl("network", "create", net)
    fl("create", "--name", name, "--network", "none", "busybox", "sleep", "1000")
    try:
        assert "cannot be connected" in one_line_error(
            fl("network", "connect", net, name, check=False))
        fl("rm", name)
        fl("create", "--name", name, "busybox", "sleep", "1000")
        fl("network", "connect", net, name)
        fl("network", "disconnect", "bridge", name)  # stopped: its first network may go
        fl("start", name)
        assert set(_addresses(fl, name)) == {"eth0"}
        assert list(fl.inspect(name)["NetworkSettings"]["Networks"]) == [net]
    finally:
        fl("rm", "-f", name)
    fl("network", "rm", net)


def test_network_connect_hostile_input(fl: Forklift, name: str):
    assert one_line_error(fl("network", "connect", "nope-net", "x", check=False)) == \
        "Error: network nope-net not found"
    assert one_line_error(fl("network", "connect", "bridge", "nope-t", check=False)) == \
        "Error: No such container: nope-t"
    assert "requires exactly 2 arguments" in one_line_error(
        fl("network", "connect", "bridge", check=False))


@pytest.mark.docker
def test_network_connect_errors_match_docker(fl: Forklift, name: str, docker: Docker,
                                             docker_busybox: str):
    net = name[:20] + "-net"
    docker("network", "create", net)
    fl("network", "create", net)
    docker("create", "--name", name, "--network", net, docker_busybox, "true")
    fl("create", "--name", name, "--network", net, "busybox", "true")
    try:
        # connected already: a stopped container's connection is config, no error
        assert docker("network", "connect", net, name).code == fl("network", "connect", net,
                                                                   name).code == 0
        for args in (["disconnect", "bridge", name],
                     ["connect", net, "nope-t"]):
            theirs = docker("network", *args, check=False)
            ours = fl("network", *args, check=False)
            assert theirs.code != 0 and ours.code != 0, args
            theirs_text = theirs.err.strip().replace("Error response from daemon: ", "")
            ours_text = one_line_error(ours).removeprefix("Error: ")
            # Docker names the container by its ID where forklift may use its name
            assert re.sub(r"[0-9a-f]{64}", "ID", ours_text).lower().split(":")[0] in \
                re.sub(r"[0-9a-f]{64}", "ID", theirs_text).lower(), (theirs.err, ours.err)
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)
        fl("rm", "-f", name)
        fl("network", "rm", net)


def test_events_of_moving_images(fl: Forklift, tmp_path: Path, registry: Registry):
    since = time.time()
    image_id = fl.inspect("busybox")["Id"]
    fl("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    fl("load", "-i", str(tmp_path / "bb.tar"))
    ref = f"{registry.host}/events/bb:1"
    fl("tag", "busybox", ref)
    fl("push", ref)
    fl("rmi", ref)
    fl("pull", ref)
    got = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"])
           for e in _events(fl, since, "--filter", "type=image")]
    assert got == [("save", image_id, image_id), ("load", image_id, image_id),
                   ("tag", image_id, ref), ("push", ref, ref), ("untag", image_id, image_id),
                   ("pull", ref, ref)]
    assert [e["Action"] for e in _events(fl, since, "--filter", f"image={ref}")] == [
        "tag", "push", "pull"]
    fl("rmi", ref)
