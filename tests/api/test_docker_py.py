"""docker-py (the Python SDK, `docker` on PyPI) driving the service: containers, execs,
images, volumes, networks and the system endpoints, through the client's own models, as a
program written for Docker would use them."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Forklift
from support.registry import Registry
from support.service import Service

docker = pytest.importorskip("docker", reason="docker-py: pip install -e .[test]")

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[Any]:
    c = docker.DockerClient(base_url=service.host, version="1.41", timeout=120)
    yield c
    c.close()


@pytest.fixture
def sleeper(client: Any, name: str) -> Iterator[Any]:
    """A running detached busybox, removed after."""
    c = client.containers.run("busybox", ["sleep", "300"], name=name, detach=True)
    _until(lambda: c.reload() or c.status == "running")
    yield c
    c.remove(force=True)


def _until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _names(fl: Forklift) -> list[str]:
    return fl.out("ps", "-a", "--format", "{{.Names}}").split()


# ----------------------------------------------------------------------------- system

def test_ping_version_info_df(client: Any) -> None:
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == "1.41" and version["Os"] == "linux"
    info = client.info()
    assert info["Images"] >= 1 and "Containers" in info
    df = client.df()
    assert any("busybox:latest" in (i.get("RepoTags") or []) for i in df["Images"])
    assert {"Containers", "Volumes", "LayersSize"} <= set(df)


def test_events_since_until(client: Any, fl: Forklift, name: str) -> None:
    since = time.time() - 1
    client.containers.run("busybox", "true", name=name, remove=True)
    events = list(client.events(since=since, until=time.time() + 1, decode=True,
                                filters={"container": name}))
    actions = [e["Action"] for e in events]
    assert "create" in actions and "start" in actions and "destroy" in actions
    assert name not in _names(fl)


# ----------------------------------------------------------------------------- containers

def test_run_foreground_returns_output_and_removes(client: Any, fl: Forklift, name: str) -> None:
    out = client.containers.run("busybox", ["sh", "-c", "echo out; sleep 0.2; echo err >&2"],
                                name=name, remove=True, stderr=True)
    assert out == b"out\nerr\n"
    assert name not in _names(fl)


def test_run_nonzero_raises_container_error(client: Any, fl: Forklift, name: str) -> None:
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], name=name,
                              remove=True, stderr=True)
    assert err.value.exit_status == 3 and b"bad" in err.value.stderr
    assert name not in _names(fl)


def test_entrypoint_array_is_kept_whole(client: Any, name: str) -> None:
    c = client.containers.create("busybox", ["b"], entrypoint=["echo", "a"], name=name)
    try:
        assert c.attrs["Config"]["Entrypoint"] == ["echo", "a"]
        assert c.attrs["Config"]["Cmd"] == ["b"]
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 0
        assert c.logs() == b"a b\n"
    finally:
        c.remove(force=True)


def test_healthcheck_and_rarer_fields(client: Any, name: str) -> None:
    c = client.containers.run(
        "busybox", ["sleep", "300"], name=name, detach=True, stop_signal="SIGKILL",
        healthcheck={"test": ["CMD", "test", "-d", "/tmp"], "interval": 200_000_000,
                     "retries": 2}, shm_size="8m", domainname="example.org",
        ulimits=[docker.types.Ulimit(name="nofile", soft=100, hard=200)])
    try:
        _until(lambda: c.reload() or (c.attrs["State"].get("Health") or {}).get("Status")
               == "healthy")
        assert c.exec_run(["sh", "-c", "ulimit -n"]).output == b"100\n"
        assert b" 8192 " in c.exec_run(["df", "-k", "/dev/shm"]).output
        assert c.attrs["Config"]["Domainname"] == "example.org"
    finally:
        c.remove(force=True)


def test_detached_logs_wait_remove(client: Any, fl: Forklift, name: str) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "echo one; echo two >&2; exit 4"],
                              name=name, detach=True, labels={"suite": "py"})
    assert c.wait(timeout=30)["StatusCode"] == 4
    assert c.logs(stdout=True, stderr=False) == b"one\n"
    assert c.logs(stdout=False, stderr=True) == b"two\n"
    assert [x.name for x in client.containers.list(all=True, filters={"label": "suite=py"})] == [name]
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 4
    c.remove()
    assert name not in _names(fl)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_stop_kill_restart_rename_top(client: Any, sleeper: Any, name: str) -> None:
    assert [c.name for c in client.containers.list(filters={"name": name})] == [name]
    top = sleeper.top()
    assert any("sleep 300" in " ".join(p) for p in top["Processes"])
    sleeper.rename(name + "-new")
    sleeper.reload()
    assert sleeper.name == name + "-new"
    sleeper.restart(timeout=1)
    sleeper.reload()
    assert sleeper.status == "running"
    sleeper.kill(signal="SIGKILL")
    assert sleeper.wait(timeout=30)["StatusCode"] == 137
    sleeper.start()
    sleeper.stop(timeout=1)
    sleeper.reload()
    assert sleeper.status == "exited"


def test_stats_one_and_stream_ends_with_container(client: Any, sleeper: Any) -> None:
    one = sleeper.stats(stream=False)
    assert one["memory_stats"]["usage"] > 0 and one["pids_stats"]["current"] >= 1
    stream = sleeper.stats(decode=True)
    first = next(stream)
    assert first["id"] == sleeper.id
    sleeper.kill()
    rest = list(stream)  # Docker ends the stream when the container stops
    assert len(rest) < 5


def test_exec_run_plain_stream_demux(client: Any, sleeper: Any) -> None:
    code, out = sleeper.exec_run(["sh", "-c", "echo o; echo e >&2; exit 2"])
    assert code == 2 and sorted(out.splitlines()) == [b"e", b"o"]  # two pipes: either order
    code, (out, err) = sleeper.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
    assert code == 0 and out == b"o\n" and err == b"e\n"
    result = sleeper.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True)
    assert result.exit_code is None and b"".join(result.output) == b"a\nb\n"
    code, out = sleeper.exec_run("pwd", workdir="/tmp", environment={"X": "1"}, user="nobody")
    assert (code, out) == (0, b"/tmp\n")


@pytest.mark.parametrize("detach", [True, False], ids=["detached", "piped"])
def test_exec_inspect_pid_is_the_containers(client: Any, sleeper: Any, detach: bool) -> None:
    api = client.api
    exec_id = api.exec_create(sleeper.id, ["sleep", "2"])["Id"]
    if detach:
        api.exec_start(exec_id, detach=True)
    else:   # the service runs a piped exec in its own thread: the PID is runc's report
        threading.Thread(target=lambda: list(api.exec_start(exec_id, stream=True)),
                         daemon=True).start()

    def command() -> bytes:
        pid = api.exec_inspect(exec_id)["Pid"]
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes() if pid else b""
        except OSError:
            return b""

    _until(lambda: command() == b"sleep\x002\x00")  # runc's init first, then sleep


def test_attach_to_running(client: Any, name: str) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "sleep 1; echo late"], name=name, detach=True)
    try:
        out = b"".join(c.attach(stream=True, logs=False))
        assert out.endswith(b"late\n")
    finally:
        c.remove(force=True)


def test_attaches_to_a_stopped_container_wait_for_its_start(client: Any, name: str) -> None:
    """A streamed attach to a stopped container waits for its next start, which carries
    each attach's stream (two attaches, as dockerpty makes them)."""
    from docker.utils.socket import frames_iter

    c = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], name=name,
                              detach=True)
    try:
        assert c.wait()["StatusCode"] == 0
        _until(lambda: client.api.inspect_container(c.id)["State"]["Status"] == "exited")
        socks = [client.api.attach_socket(c.id, params={key: 1, "stream": 1})
                 for key in ("stdout", "stderr")]
        c.start()
        got = [[(kind, bytes(data)) for kind, data in frames_iter(s, tty=False)] for s in socks]
        assert got == [[(1, b"out\n")], [(2, b"err\n")]], got
        assert c.wait()["StatusCode"] == 0
    finally:
        c.remove(force=True)


def test_abandoned_attach_leaves_the_start_detached(client: Any, name: str) -> None:
    c = client.containers.create("busybox", ["sh", "-c", "sleep 1; echo late"], name=name)
    try:
        sock = client.api.attach_socket(c.id, params={"stdout": 1, "stream": 1})
        raw = sock._sock  # a SocketIO: the client's response keeps the fd open after close
        raw.shutdown(socket.SHUT_RDWR)
        sock.close()
        time.sleep(0.6)  # the service notices the hang-up within its 0.2 s polls
        c.start()
        # a detached start: its monitor takes an attach (an attached one's child would not)
        assert b"".join(c.attach(stream=True, logs=False)).endswith(b"late\n")
    finally:
        c.remove(force=True)


def test_archive_export_diff_commit(client: Any, fl: Forklift, sleeper: Any) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    assert sleeper.put_archive("/tmp", buf.getvalue()) is True
    assert sleeper.exec_run("cat /tmp/hello.txt").output == b"hi\n"
    chunks, stat = sleeper.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt" and stat["size"] == 3
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        member = tf.extractfile("hello.txt")
        assert member is not None and member.read() == b"hi\n"
    flat = b"".join(sleeper.export())
    with tarfile.open(fileobj=io.BytesIO(flat)) as tf:
        assert "tmp/hello.txt" in tf.getnames()
    assert {"Path": "/tmp/hello.txt", "Kind": 1} in sleeper.diff()
    image = sleeper.commit("py-committed", "v1", message="m", author="a",
                           changes=["ENV COMMITTED=1"])
    try:
        assert "py-committed:v1" in image.tags
        assert "COMMITTED=1" in image.attrs["Config"]["Env"]
        out = client.containers.run(image, ["cat", "/tmp/hello.txt"], remove=True)
        assert out == b"hi\n"
    finally:
        client.images.remove(image.id, force=True)


def test_errors(client: Any, fl: Forklift, name: str) -> None:
    before = _names(fl)
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("py-no-such-image:1", "true", name=name)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("py-no-such-container")
    assert _names(fl) == before


# ----------------------------------------------------------------------------- images

def test_images_list_get_tag_history_remove(client: Any, fl: Forklift) -> None:
    bb = client.images.get("busybox")
    assert "busybox:latest" in bb.tags
    assert bb.id in [i.id for i in client.images.list()]
    assert bb.tag("py-tagged", "x") is True
    try:
        assert "py-tagged:x" in client.images.get("py-tagged:x").tags
        assert [i.id for i in client.images.list(name="py-tagged")] == [bb.id]
        history = bb.history()
        assert history and history[0]["Id"] == bb.id
    finally:
        client.images.remove("py-tagged:x")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("py-tagged:x")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("py-no-such-image")


def test_save_and_load(client: Any, fl: Forklift) -> None:
    bb = client.images.get("busybox")
    bb.tag("py-saved", "1")
    data = b"".join(client.images.get("py-saved:1").save(named="py-saved:1"))
    client.images.remove("py-saved:1")
    loaded = client.images.load(data)
    try:
        assert [i.id for i in loaded] == [bb.id]
        assert "py-saved:1" in client.images.get(bb.id).tags
    finally:
        client.images.remove("py-saved:1")


def test_push_pull_prune(client: Any, fl: Forklift, registry: Registry) -> None:
    ref = f"{registry.host}/py/app"
    client.images.get("busybox").tag(ref, "1")
    lines = list(client.images.push(ref, "1", stream=True, decode=True))
    assert not [x for x in lines if "error" in x], lines
    assert any("aux" in x and x["aux"]["Tag"] == "1" for x in lines)
    client.images.remove(f"{ref}:1")
    pulled = client.images.pull(ref, tag="1")
    try:
        assert f"{ref}:1" in pulled.tags
    finally:
        client.images.remove(f"{ref}:1")
    pruned = client.images.prune(filters={"dangling": True})
    assert "SpaceReclaimed" in pruned


# ----------------------------------------------------------------------------- volumes and networks

def test_volumes(client: Any, fl: Forklift, name: str) -> None:
    vol = client.volumes.create(name, labels={"suite": "py"})
    try:
        assert client.volumes.get(name).attrs["Labels"] == {"suite": "py"}
        assert [v.name for v in client.volumes.list(filters={"label": "suite=py"})] == [name]
        out = client.containers.run("busybox", ["sh", "-c", "echo v > /data/f; cat /data/f"],
                                    volumes={name: {"bind": "/data", "mode": "rw"}}, remove=True)
        assert out == b"v\n"
    finally:
        vol.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(name)
    client.volumes.create(name + "-spare")
    assert name + "-spare" in client.volumes.prune()["VolumesDeleted"]


def test_networks_connect_disconnect(client: Any, fl: Forklift, sleeper: Any, name: str) -> None:
    net = client.networks.create(name, driver="bridge", labels={"suite": "py"})
    try:
        assert client.networks.get(net.id).name == name
        assert net.attrs["Options"] == {}  # only those given, as Docker's
        assert [n.name for n in client.networks.list(filters={"label": "suite=py"})] == [name]
        net.connect(sleeper)
        sleeper.reload()
        assert name in sleeper.attrs["NetworkSettings"]["Networks"]
        net.reload()
        assert sleeper.id in net.attrs["Containers"]
        net.disconnect(sleeper)
        sleeper.reload()
        assert name not in sleeper.attrs["NetworkSettings"]["Networks"]
    finally:
        net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(name)
    client.networks.create(name + "-spare")
    assert name + "-spare" in client.networks.prune()["NetworksDeleted"]


def test_container_prune(client: Any, fl: Forklift, name: str) -> None:
    client.containers.run("busybox", "true", name=name, labels={"prune": name})
    pruned = client.containers.prune(filters={"label": f"prune={name}"})
    assert len(pruned["ContainersDeleted"]) == 1
    assert name not in _names(fl)
