"""Container extras over raw HTTP and the docker 20.10 CLI: rename, pause/unpause, top,
changes, stats, export (and their refusals)."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import time
from collections.abc import Iterator

import pytest
from support import Forklift, swagger
from support.service import Answer, Service, _UnixConnection

pytestmark = pytest.mark.root


@pytest.fixture
def running(service: Service, fl: Forklift, name: str) -> Iterator[str]:
    cid = fl.out("run", "-d", "--name", name, "busybox", "sh", "-c",
                 "mkdir /made; echo x > /made/f; rm /bin/sed; echo y >> /etc/passwd;"
                 " exec sleep 300").strip()
    try:
        # `run -d` returns once the shell runs, not once it has made its changes: they are
        # all made when the shell has become sleep.
        deadline = time.monotonic() + 20
        while fl.out("exec", cid, "cat", "/proc/1/comm").strip() != "sleep":
            assert time.monotonic() < deadline, "the container's shell never became sleep"
            time.sleep(0.05)
        yield cid
    finally:
        fl("rm", "-f", cid, check=False)


def refused(ans: Answer, status: int) -> None:
    assert ans.status == status, ans.body
    message = ans.json()["message"]
    assert message and "\n" not in message and "Traceback" not in message


def test_rename(service: Service, fl: Forklift, running: str, name: str) -> None:
    ans = service.request("POST", f"/v1.41/containers/{running}/rename?name={name}-new")
    assert ans.status == 204
    assert fl.inspect(running)["Name"] == f"/{name}-new"
    refused(service.request("POST", f"/v1.41/containers/{running}/rename?name=bad/name"), 400)
    refused(service.request("POST", f"/v1.41/containers/{running}/rename"), 400)
    refused(service.request("POST", "/v1.41/containers/nope/rename?name=x"), 404)
    other = fl.out("create", "--name", f"{name}-other", "busybox", "true").strip()
    try:
        refused(service.request("POST", f"/v1.41/containers/{running}/rename?name={name}-other"),
                409)
    finally:
        fl("rm", other)


def test_pause_unpause(service: Service, fl: Forklift, running: str) -> None:
    assert service.request("POST", f"/v1.41/containers/{running}/pause").status == 204
    assert fl.status(running) == "paused"
    refused(service.request("POST", f"/v1.41/containers/{running}/pause"), 409)
    assert service.request("POST", f"/v1.41/containers/{running}/unpause").status == 204
    assert fl.status(running) == "running"
    refused(service.request("POST", f"/v1.41/containers/{running}/unpause"), 409)
    refused(service.request("POST", "/v1.41/containers/nope/pause"), 404)


def test_top(service: Service, fl: Forklift, running: str) -> None:
    ans = service.request("GET", f"/v1.41/containers/{running}/top")
    assert ans.status == 200
    doc = ans.json()
    swagger.validate_response(doc, "get", "/containers/{id}/top")
    assert "PID" in doc["Titles"] and any("sleep 300" in " ".join(p) for p in doc["Processes"])
    custom = service.request("GET", f"/v1.41/containers/{running}/top?ps_args=-o%20pid,comm").json()
    assert custom["Titles"] == ["PID", "COMMAND"] and ["sleep"] == [p[1] for p in custom["Processes"]]
    stopped = fl.out("create", "busybox", "true").strip()
    try:
        refused(service.request("GET", f"/v1.41/containers/{stopped}/top"), 409)
    finally:
        fl("rm", stopped)
    refused(service.request("GET", "/v1.41/containers/nope/top"), 404)


def test_changes(service: Service, running: str) -> None:
    ans = service.request("GET", f"/v1.41/containers/{running}/changes")
    assert ans.status == 200
    doc = ans.json()
    swagger.validate_response(doc, "get", "/containers/{id}/changes")
    kinds = {d["Path"]: d["Kind"] for d in doc}
    assert (kinds["/made"], kinds["/made/f"], kinds["/bin/sed"], kinds["/etc/passwd"]) == (1, 1, 2, 0)
    refused(service.request("GET", "/v1.41/containers/nope/changes"), 404)


def test_stats_one_document_and_stream(service: Service, fl: Forklift, running: str) -> None:
    ans = service.request("GET", f"/v1.41/containers/{running}/stats?stream=false")
    assert ans.status == 200
    doc = ans.json()
    swagger.validate_response(doc, "get", "/containers/{id}/stats")
    assert doc["id"] == running and doc["pids_stats"]["current"] >= 1
    assert doc["memory_stats"]["usage"] > 0 and doc["cpu_stats"]["system_cpu_usage"] > 0
    assert doc["precpu_stats"]["system_cpu_usage"] < doc["cpu_stats"]["system_cpu_usage"]
    conn = _UnixConnection(str(service.socket), 30)
    try:
        conn.request("GET", f"/v1.41/containers/{running}/stats")
        resp = conn.getresponse()
        docs = [json.loads(resp.readline()) for _ in range(2)]
    finally:
        conn.close()
    assert docs[0]["read"] < docs[1]["read"]
    assert docs[1]["precpu_stats"] == docs[0]["cpu_stats"]
    refused(service.request("GET", "/v1.41/containers/nope/stats?stream=false"), 404)


def test_export(service: Service, running: str) -> None:
    ans = service.request("GET", f"/v1.41/containers/{running}/export")
    assert ans.status == 200 and ans.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(ans.body)) as tar:
        names = set(tar.getnames())
        made = tar.extractfile("made/f")
        assert made is not None and made.read() == b"x\n"
    assert "bin/sed" not in names and "bin/sh" in names
    refused(service.request("GET", "/v1.41/containers/nope/export"), 404)


@pytest.mark.usefixtures("docker_cli")
def test_docker_cli_extras(service: Service, fl: Forklift, running: str, name: str) -> None:
    top = service.docker("top", running).lines
    assert top[0].split()[:2] == ["UID", "PID"] and any("sleep 300" in row for row in top)
    diff = service.docker("diff", running).lines
    assert {"A /made", "A /made/f", "D /bin/sed", "C /etc/passwd"} <= set(diff)
    service.docker("pause", running)
    assert fl.status(running) == "paused"
    service.docker("unpause", running)
    assert fl.status(running) == "running"
    service.docker("rename", running, f"{name}-cli")
    assert fl.inspect(running)["Name"] == f"/{name}-cli"
    stats = service.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", running)
    assert stats.out.strip() == f"{name}-cli 1"
    exported = service.docker("export", running).data
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        assert "made/f" in tar.getnames()


def _tar(*members: tuple[str, bytes | str | None]) -> bytes:
    """A tar of (name, file bytes | symlink target | None for a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member, content in members:
            info = tarfile.TarInfo(member)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _path_stat(ans: Answer) -> dict[str, object]:
    import base64

    doc: dict[str, object] = json.loads(base64.b64decode(ans.headers["x-docker-container-path-stat"]))
    return doc


def test_archive_get_head_put(service: Service, fl: Forklift, running: str) -> None:
    head = service.request("HEAD", f"/v1.41/containers/{running}/archive?path=/made")
    assert head.status == 200 and head.body == b""
    made = _path_stat(head)
    assert made["name"] == "made" and made["mode"] == (1 << 31) | 0o755 and made["linkTarget"] == ""
    got = service.request("GET", f"/v1.41/containers/{running}/archive?path=/made/f")
    assert got.status == 200 and _path_stat(got)["size"] == 2
    with tarfile.open(fileobj=io.BytesIO(got.body)) as tar:
        member = tar.extractfile("f")
        assert member is not None and member.read() == b"x\n"
    link = _path_stat(service.request("HEAD", f"/v1.41/containers/{running}/archive?path=/bin/sh"))
    assert link["mode"] == 1 << 27 | 0o777 and link["linkTarget"] == "/bin/busybox"
    put = service.request("PUT", f"/v1.41/containers/{running}/archive?path=/made",
                          _tar(("new", None), ("new/g", b"put\n")))
    assert put.status == 200, put.body
    assert fl.out("exec", running, "cat", "/made/new/g") == "put"
    refused(service.request("GET", f"/v1.41/containers/{running}/archive?path=/nope"), 404)
    assert service.request("HEAD", "/v1.41/containers/nope/archive?path=/").status == 404
    refused(service.request("GET", f"/v1.41/containers/{running}/archive"), 400)
    refused(service.request("PUT", f"/v1.41/containers/{running}/archive?path=/nope", _tar()), 404)
    refused(service.request("PUT", f"/v1.41/containers/{running}/archive?path=/made/f", _tar()), 400)


def test_archive_put_hostile_tar_escapes_nothing(service: Service, fl: Forklift,
                                                 running: str, tmp_path: object) -> None:
    import os

    outside = "/tmp/fl-api-cp-escape"
    statuses: list[int] = []
    for hostile in (_tar(("../../../../tmp/fl-api-cp-escape", b"out\n")),
                    _tar(("/tmp/fl-api-cp-escape", b"out\n")),
                    _tar(("esc", "/tmp"), ("esc/fl-api-cp-escape", b"out\n")),
                    _tar(("up", "../../../../../tmp"), ("up/fl-api-cp-escape", b"out\n"))):
        ans = service.request("PUT", f"/v1.41/containers/{running}/archive?path=/made", hostile)
        statuses.append(ans.status)
        if ans.status != 200:
            refused(ans, ans.status)
        assert not os.path.lexists(outside)
    assert statuses == [400] * 4
    for where in ("/tmp/fl-api-cp-escape", "/fl-api-cp-escape"):  # the container's own
        assert fl("exec", running, "test", "-e", where, check=False).code == 1


@pytest.mark.usefixtures("docker_cli")
def test_docker_cp_both_ways(service: Service, fl: Forklift, running: str,
                             tmp_path: object) -> None:
    from pathlib import Path

    here = Path(str(tmp_path))
    service.docker("cp", f"{running}:/made", str(here / "out"))
    assert (here / "out" / "f").read_text() == "x\n"
    (here / "in.txt").write_text("from host\n")
    service.docker("cp", str(here / "in.txt"), f"{running}:/made/copied.txt")
    assert fl.out("exec", running, "cat", "/made/copied.txt") == "from host"
    missing = service.docker("cp", f"{running}:/nope", str(here / "x"), check=False)
    assert missing.code != 0 and "nope" in missing.err


def test_resize_a_detached_tty_container(service: Service, fl: Forklift, name: str) -> None:
    cid = fl.out("run", "-dt", "--name", name, "busybox", "sh", "-c",
                 "while true; do stty size > /tmp/size; sleep 0.1; done").strip()
    try:
        ans = service.request("POST", f"/v1.41/containers/{cid}/resize?h=41&w=101")
        assert ans.status == 200, ans.body
        deadline = time.monotonic() + 20
        while (size := fl("exec", cid, "cat", "/tmp/size", check=False).out.strip()) != "41 101":
            assert time.monotonic() < deadline, size
            time.sleep(0.2)
        refused(service.request("POST", f"/v1.41/containers/{cid}/resize?h=x&w=1"), 400)
        fl("stop", "-t", "0", cid)
        refused(service.request("POST", f"/v1.41/containers/{cid}/resize?h=1&w=1"), 409)
    finally:
        fl("rm", "-f", cid, check=False)
    refused(service.request("POST", "/v1.41/containers/nope/resize?h=1&w=1"), 404)


@pytest.mark.usefixtures("docker_cli")
def test_docker_port(service: Service, fl: Forklift, name: str) -> None:
    cid = fl.out("run", "-d", "--name", name, "-p", "127.0.0.1::80", "-p", "81/udp",
                 "busybox", "sleep", "300").strip()
    try:
        ports = fl.inspect(cid)["NetworkSettings"]["Ports"]
        host_port, udp_port = ports["80/tcp"][0]["HostPort"], ports["81/udp"][0]["HostPort"]
        lines = service.docker("port", name).lines
        assert sorted(lines) == sorted([f"80/tcp -> 127.0.0.1:{host_port}",
                                        f"81/udp -> 0.0.0.0:{udp_port}"])
        assert service.docker("port", name, "80").out.strip() == f"127.0.0.1:{host_port}"
        missing = service.docker("port", name, "82", check=False)
        assert missing.code != 0 and "82" in missing.err
    finally:
        fl("rm", "-f", cid, check=False)


def test_go_file_mode() -> None:
    import stat

    from forklift.engine.copy import go_file_mode

    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o4755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_file_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == (1 << 31) | (1 << 20) | 0o777


def _attach(service: Service, cid: str, query: str) -> bytes:
    """What a hijacked ``POST /containers/ID/attach?query`` sends after its head, to the
    end (read here from the raw socket: docker-py loses bytes that come with the head)."""
    s, rest = service.hijack(f"/v1.41/containers/{cid}/attach?{query}")
    with s:
        while chunk := s.recv(65536):
            rest += chunk
    return rest


def test_attach_logs_replays_the_log(service: Service, fl: Forklift, name: str) -> None:
    """``logs=1`` sends what the container logged, framed (alone without ``stream``);
    ``stream=0`` without it sends nothing."""
    fl("run", "--name", name, "busybox", "sh", "-c", "echo out; echo err >&2")
    try:
        both = _attach(service, name, "logs=1&stdout=1&stderr=1")
        frames = []
        while both:
            kind, size = struct.unpack(">BxxxI", both[:8])
            frames.append((kind, both[8:8 + size]))
            both = both[8 + size:]
        assert sorted(frames) == [(1, b"out\n"), (2, b"err\n")], frames
        assert _attach(service, name, "logs=1&stdout=1") == b"\x01\0\0\0\0\0\0\x04out\n"
        assert _attach(service, name, "stream=0&stdout=1&stderr=1") == b""
    finally:
        fl("rm", "-f", name, check=False)
