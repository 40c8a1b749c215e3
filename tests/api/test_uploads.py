"""Request bodies past the 16 MiB a JSON body may have: archives (load, import, a copy into
a container) stream to a file in the store's tmp/ as they arrive, with Content-Length or
chunked; a client that leaves half-way leaves no file behind and the service serves on."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import tarfile
from pathlib import Path

import pytest
from support import Forklift
from support.cli import wait_for
from support.service import Service

pytestmark = pytest.mark.root
MIB = 1 << 20


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tf.addfile(info, io.BytesIO(data))


def _rootfs_tar(path: Path, payload: bytes) -> Path:
    with tarfile.open(path, "w") as tf:
        _add(tf, "big", payload)
    return path


def _image_archive(path: Path, tag: str, payload: bytes) -> str:
    """A docker-archive of one layer holding ``payload`` as /big; the layer's diff ID."""
    layer = _rootfs_tar(path.with_suffix(".layer"), payload).read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}]
    with tarfile.open(path, "w") as tf:
        _add(tf, config_name, config)
        _add(tf, "l/layer.tar", layer)
        _add(tf, "manifest.json", json.dumps(manifest).encode())
    path.with_suffix(".layer").unlink()
    return diff_id


def _uploads(fl: Forklift) -> list[str]:
    return [n for n in os.listdir(fl.root / "tmp") if "api-upload" in n]


def _connect(service: Service) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(str(service.socket))
    return s


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_load_of_40_mib_layer_raw_and_docker(service: Service, fl: Forklift, tmp_path: Path,
                                             docker_cli: None) -> None:
    for how in ("raw", "docker"):
        archive = tmp_path / f"{how}.tar"
        diff_id = _image_archive(archive, f"big-{how}:1", os.urandom(40 * MIB))
        if how == "raw":
            answer = service.request("POST", "/v1.41/images/load?quiet=1", archive.read_bytes())
            assert answer.status == 200, answer
            assert "Loaded image: big-raw:1" in answer.body.decode()
        else:
            res = service.docker("load", "-i", str(archive))
            assert "Loaded image: big-docker:1" in res.out
        layers = fl.out("image", "inspect", "-f", "{{json .RootFS.Layers}}", f"big-{how}:1")
        assert json.loads(layers) == [diff_id]
        fl("rmi", f"big-{how}:1")
    wait_for(lambda: _uploads(fl) == [], what="the uploads removed")


def test_import_of_24_mib_raw_and_docker(service: Service, fl: Forklift, tmp_path: Path,
                                         docker_cli: None) -> None:
    for how in ("raw", "docker"):
        payload = os.urandom(24 * MIB)
        rootfs = _rootfs_tar(tmp_path / f"{how}.tar", payload)
        if how == "raw":
            answer = service.request("POST", "/images/create?fromSrc=-&repo=imp-raw&tag=1",
                                     rootfs.read_bytes())
            assert answer.status == 200, answer
        else:
            service.docker("import", str(rootfs), "imp-docker:1")
        size = fl.out("image", "inspect", "-f", "{{.Size}}", f"imp-{how}:1")
        assert int(size) >= 24 * MIB
        fl("rmi", f"imp-{how}:1")
    wait_for(lambda: _uploads(fl) == [], what="the uploads removed")


def test_docker_cp_of_20_mib_into_a_container(service: Service, fl: Forklift, tmp_path: Path,
                                              name: str, docker_cli: None) -> None:
    payload = os.urandom(20 * MIB)
    (tmp_path / "big").write_bytes(payload)
    cid = fl.out("run", "-d", "--name", name, "busybox", "sleep", "300")
    try:
        wait_for(lambda: fl.status(cid) == "running", what="the container running")
        service.docker("cp", str(tmp_path / "big"), f"{name}:/tmp/")
        inside = fl.out("exec", cid, "md5sum", "/tmp/big")
        assert inside.split()[0] == hashlib.md5(payload).hexdigest()
    finally:
        fl("rm", "-f", cid, check=False)
    wait_for(lambda: _uploads(fl) == [], what="the upload removed")


def test_chunked_upload(service: Service, fl: Forklift) -> None:
    payload = os.urandom(3 * MIB)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _add(tf, "big", payload)
    data = buf.getvalue()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 100_000]), data[i:i + 100_000])
                      for i in range(0, len(data), 100_000))
    with contextlib.closing(_connect(service)) as s:
        s.sendall(b"POST /images/create?fromSrc=-&repo=chunked&tag=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    try:
        assert int(fl.out("image", "inspect", "-f", "{{.Size}}", "chunked:1")) >= 3 * MIB
    finally:
        fl("rmi", "chunked:1", check=False)


def test_client_leaving_half_way_leaves_no_file(service: Service, fl: Forklift) -> None:
    images = fl.out("images", "-q", "--no-trunc")
    with contextlib.closing(_connect(service)) as s:
        s.sendall(b"POST /images/load HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % (50 * MIB) + os.urandom(5 * MIB))

        def on_disk() -> bool:  # streamed to tmp/ as it arrives, not held in memory
            return any(os.path.exists(fl.root / "tmp" / d / "body")
                       and os.path.getsize(fl.root / "tmp" / d / "body") > MIB
                       for d in _uploads(fl))

        wait_for(on_disk, what="the body written to tmp/")
    wait_for(lambda: _uploads(fl) == [], what="the half body removed")
    assert service.request("GET", "/_ping").status == 200
    assert fl.out("images", "-q", "--no-trunc") == images
    assert service.alive()


def test_json_body_keeps_its_cap(service: Service, fl: Forklift) -> None:
    before = fl.out("ps", "-aq")
    with contextlib.closing(_connect(service)) as s:
        s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n" % (17 * MIB))
        with contextlib.suppress(OSError):  # the service stops reading past the cap
            for _ in range(17):
                s.sendall(b" " * MIB)
        s.shutdown(socket.SHUT_WR)
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b'{"message": "request body too large"}' in answer
    assert fl.out("ps", "-aq") == before
    assert service.request("GET", "/_ping").status == 200


def test_empty_upload_is_refused(service: Service, fl: Forklift) -> None:
    assert "empty" in service.request("POST", "/images/load", b"").refusal(400)
    wait_for(lambda: _uploads(fl) == [], what="the empty body's file removed")


def test_expect_100_continue_then_body(service: Service, fl: Forklift) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _add(tf, "f", b"x" * 5000)
    data = buf.getvalue()
    with contextlib.closing(_connect(service)) as s:
        s.sendall(b"POST /images/create?fromSrc=-&repo=continued&tag=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                  % len(data))
        assert s.recv(65536).startswith(b"HTTP/1.1 100 ")  # before any of the body is sent
        s.sendall(data)
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    fl("rmi", "continued:1")


def test_broken_upload_is_refused_and_removed(service: Service, fl: Forklift) -> None:
    images = fl.out("images", "-q", "--no-trunc")
    answer = service.request("POST", "/images/load", os.urandom(3 * MIB))
    assert "Traceback" not in answer.refusal(answer.status) and answer.status in (400, 500)
    wait_for(lambda: _uploads(fl) == [], what="the refused body removed")
    assert fl.out("images", "-q", "--no-trunc") == images
