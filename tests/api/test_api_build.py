"""``POST /build`` over raw HTTP (the classic builder's JSON stream checked message by
message against what dockerd 20.10 sends, each message against the 1.41 schema), refusals
before the stream (one line, the store unchanged), and through the real docker 20.10 CLI
(``docker build`` with ``-t``, ``-f``, ``--build-arg``, ``--target``, ``-q``, a failing RUN)
and docker-py when it is importable."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from support import Forklift
from support.cli import run
from support.registry import Registry, bcrypt_line, running_registry
from support.service import DOCKER20, Answer, Service
from support.swagger import required as swagger_required
from support.tarcraft import tar_of

pytestmark = pytest.mark.root

DOCKERFILE = b"FROM busybox\nARG X=1\nRUN echo hi $X\nCOPY a.txt /a.txt\nLABEL k=v\n"



def _build(service: Service, body: bytes, query: str = "", **kw: Any) -> Answer:
    sep = "&" if query else ""
    return service.request("POST", f"/v1.41/build?networkmode=none{sep}{query}", body,
                           headers={"Content-Type": "application/x-tar", **kw.pop("headers", {})},
                           timeout=120, **kw)


def _q(doc: Any) -> str:
    return quote(json.dumps(doc))


def _messages(answer: Answer) -> list[dict[str, Any]]:
    assert answer.status == 200, answer
    assert answer.headers["content-type"] == "application/json"
    docs = [json.loads(line) for line in answer.body.split(b"\r\n") if line.strip()]
    swagger = swagger_required()
    for doc in docs:
        swagger.validate(doc, "BuildInfo")
    return docs


def _text(docs: list[dict[str, Any]]) -> str:
    return "".join(d.get("stream", "") for d in docs)


def _state(fl: Forklift) -> tuple[list[str], list[str], list[str]]:
    """Every image and tag, every container, and the scratch space (without the service's
    own dirty markers)."""
    images = sorted(fl.out("images", "-a", "--no-trunc", "--format",
                           "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines())
    containers = fl.out("ps", "-aq", "--no-trunc").split()
    scratch = sorted(p.name for p in (fl.root / "tmp").iterdir() if "-dirty-" not in p.name)
    return images, containers, scratch


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


# ----------------------------------------------------------------------------- the stream

def test_build_stream_as_dockerd_sends_it(service: Service, fl: Forklift) -> None:
    busybox = fl.inspect("busybox")["Id"]
    body = tar_of({"Dockerfile": DOCKERFILE, "a.txt": b"hello\n"})
    docs = _messages(_build(service, body, "t=api-b1:1&t=api-b1b&buildargs="
                            + _q({"X": "5"})))
    image_id = docs[-4]["aux"]["ID"]
    run_in = re.fullmatch(r" ---> Running in ([0-9a-f]{12})\n", docs[8]["stream"])
    assert run_in is not None, docs[8]
    steps = [d["stream"] for d in docs if d.get("stream", "").startswith(" ---> ")]
    assert docs == [
        {"stream": "Step 1/5 : FROM busybox"}, {"stream": "\n"},
        {"stream": f" ---> {_short(busybox)}\n"},
        {"stream": "Step 2/5 : ARG X=1"}, {"stream": "\n"}, {"stream": steps[1]},
        {"stream": "Step 3/5 : RUN echo hi $X"}, {"stream": "\n"},
        {"stream": f" ---> Running in {run_in.group(1)}\n"}, {"stream": "hi 5\n"},
        {"stream": f"Removing intermediate container {run_in.group(1)}\n"}, {"stream": steps[3]},
        {"stream": "Step 4/5 : COPY a.txt /a.txt"}, {"stream": "\n"}, {"stream": steps[4]},
        {"stream": "Step 5/5 : LABEL k=v"}, {"stream": "\n"},
        {"stream": f" ---> {_short(image_id)}\n"},
        {"aux": {"ID": image_id}},
        {"stream": f"Successfully built {_short(image_id)}\n"},
        {"stream": "Successfully tagged api-b1:1\n"},
        {"stream": "Successfully tagged api-b1b:latest\n"},
    ]
    assert fl.inspect("api-b1:1")["Id"] == image_id == fl.inspect("api-b1b")["Id"]
    assert fl.inspect(image_id)["Config"]["Labels"] == {"k": "v"}
    assert fl.out("run", "--rm", "api-b1:1", "cat", "/a.txt") == "hello"
    assert fl.out("ps", "-aq") == ""   # the RUN container is gone

    again = _messages(_build(service, body, "t=api-b1:1&buildargs=" + _q({"X": "5"})))
    assert _text(again).count(" ---> Using cache\n") == 4
    assert again[-3] == {"aux": {"ID": image_id}}
    fl("rmi", "api-b1:1", "api-b1b")


def test_build_query_parameters(service: Service, fl: Forklift) -> None:
    """``dockerfile`` in a subdirectory, ``target``, ``labels``, ``nocache``, ``q``, a gzip
    context."""
    dockerfile = b"FROM busybox AS first\nRUN echo one > /one\nFROM busybox\nRUN echo two\n"
    body = gzip.compress(tar_of({"sub/Build.file": dockerfile}))
    query = "dockerfile=sub/Build.file&target=first&t=api-b2&labels=" + _q({"a": "b"})
    docs = _messages(_build(service, body, query))
    text = _text(docs)
    assert "Step 1/3 : FROM busybox AS first\n" in text and "Step 3/3 : LABEL a=b" in text
    assert "echo two" not in text
    image = fl.inspect("api-b2")
    assert image["Config"]["Labels"] == {"a": "b"}
    assert fl.out("run", "--rm", "api-b2", "cat", "/one") == "one"

    quiet = _messages(_build(service, body, query + "&q=1&nocache=1"))
    assert len(quiet) == 1 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", quiet[0]["stream"])
    assert quiet[0]["stream"].strip() == fl.inspect("api-b2")["Id"] != image["Id"]   # rebuilt
    fl("rmi", "api-b2")
    fl("image", "prune", "-f")


def test_failing_run_ends_the_stream(service: Service, fl: Forklift) -> None:
    body = tar_of({"Dockerfile": b"FROM busybox\nRUN echo out; exit 3\n"})
    before = _state(fl)
    docs = _messages(_build(service, body, "t=api-b3"))
    message = "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3"
    assert docs[-2:] == [{"stream": "out\n"},
                         {"errorDetail": {"code": 3, "message": message}, "error": message}]
    assert _state(fl) == before   # no tag, no container, no scratch left

    quiet = _messages(_build(service, body, "t=api-b3&q=1"))   # q: everything, then the error
    assert quiet[0] == {"stream": "Step 1/2 : FROM busybox"} and quiet[-1]["error"] == message
    assert _state(fl) == before


USER, PASSWORD = "builder", "build-s3cret"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    d = tmp_path_factory.mktemp("api-build-registry")
    (d / "htpasswd").write_text(bcrypt_line(USER, PASSWORD) + "\n")
    with running_registry(d, extra=f"auth:\n  htpasswd:\n    realm: test\n"
                                   f"    path: {d / 'htpasswd'}\n") as reg:
        yield reg


def _b64(doc: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


def test_registry_config_credentials_pull_the_base(service: Service, fl: Forklift,
                                                   auth_registry: Registry) -> None:
    """``X-Registry-Config``: the credentials of the FROM pull (memory only); without
    them the pull is refused in the stream; a malformed header is a 400."""
    ref = f"{auth_registry.host}/build/base:1"
    fl("tag", "busybox", ref)
    login = {"username": USER, "password": PASSWORD, "serveraddress": auth_registry.host}
    pushed = service.request("POST", f"/v1.41/images/{auth_registry.host}/build/base/push?tag=1",
                             headers={"X-Registry-Auth": _b64(login)})
    assert b'"error"' not in pushed.body, pushed
    fl("rmi", ref)
    body = tar_of({"Dockerfile": f"FROM {ref}\n".encode()})
    before = _state(fl)

    bad = _build(service, body, headers={"X-Registry-Config": "%%%"})
    assert "X-Registry-Config" in bad.refusal(400)
    refused = _messages(_build(service, body, "t=api-reg"))
    assert "could not be pulled" in refused[-1]["error"] and "code" not in refused[-1]["errorDetail"]
    assert _state(fl) == before

    config = {auth_registry.host: {"username": USER, "password": PASSWORD}}
    docs = _messages(_build(service, body, "t=api-reg",
                            headers={"X-Registry-Config": _b64(config)}))
    assert docs[-1] == {"stream": "Successfully tagged api-reg:latest\n"}
    assert fl.inspect("api-reg")["Id"] == fl.inspect(ref)["Id"] == fl.inspect("busybox")["Id"]
    # pull: the base is asked for again although it is here (refused without credentials)
    repulled = _messages(_build(service, body, "pull=1", headers={"X-Registry-Config": _b64(config)}))
    assert repulled[-1]["stream"].startswith("Successfully built ")
    assert "could not be pulled" in _messages(_build(service, body, "pull=1"))[-1]["error"]
    for where in ("DOCKER_CONFIG", "FORKLIFT_CONFIG_DIR"):   # nothing stored
        stored = Path(service.fl.env[where])
        assert not stored.exists() or USER not in "".join(
            p.read_text(errors="replace") for p in stored.rglob("*") if p.is_file())
    fl("rmi", "api-reg", ref)


# ----------------------------------------------------------------------------- refusals

def _through_link() -> bytes:
    """A file written through a symlink that leads out of the context."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("out")
        info.type, info.linkname = tarfile.SYMTYPE, "/tmp"
        tar.addfile(info)
        data = b"FROM busybox\n"
        for name in ("out/fl-build-escape", "Dockerfile"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


REFUSED = {
    "no-dockerfile": (tar_of({"a": b"x"}), "", "Cannot locate specified Dockerfile: Dockerfile"),
    "dockerfile-named": (tar_of({"Dockerfile": b"FROM busybox\n"}), "dockerfile=nope",
                         "Cannot locate specified Dockerfile: nope"),
    "dockerfile-outside": (tar_of({"Dockerfile": b"FROM busybox\n"}), "dockerfile=../../etc/passwd",
                           "forbidden path outside the build context"),
    "dockerfile-link-out": (tar_of({}, {"Dockerfile": "/etc/passwd"}), "", "Dockerfile"),
    "not-a-tar": (b"FROM busybox\n" * 100, "", "the build context is not a tar archive"),
    "dotdot": (tar_of({"Dockerfile": b"FROM busybox\n", "../escape": b"x"}), "",
               "the build context: tar entry '../escape' escapes"),
    "absolute": (tar_of({"Dockerfile": b"FROM busybox\n", "/etc/evil": b"x"}), "", ""),
    "through-link": (_through_link(), "", ""),
    "bad-gzip": (b"\x1f\x8b\x08\x00" + b"\x00" * 600, "", ""),
    "buildargs": (tar_of({"Dockerfile": b"FROM busybox\n"}), "buildargs=xx", "error reading build args"),
    "buildargs-type": (tar_of({"Dockerfile": b"FROM busybox\n"}), "buildargs=" + _q({"A": 1}),
                       "error reading build args"),
    "labels": (tar_of({"Dockerfile": b"FROM busybox\n"}), "labels=[1]", "error reading labels"),
    "empty-dockerfile": (tar_of({"Dockerfile": b""}), "", "cannot be empty"),
    "no-stage": (tar_of({"Dockerfile": b"ARG X=1\n"}), "", "no stages"),
    "unknown-instruction": (tar_of({"Dockerfile": b"FROM busybox\nFOO bar\n"}), "",
                            "unknown instruction: FOO"),
    "target": (tar_of({"Dockerfile": b"FROM busybox\n"}), "target=zz", 'target stage "zz"'),
    "network": (tar_of({"Dockerfile": b"FROM busybox\n"}), "networkmode=mynet", "network mode"),
    "tag": (tar_of({"Dockerfile": b"FROM busybox\n"}), "t=Bad:Tag:x", ""),
    "remote": (b"", "remote=https://example.com/x.git", "not supported"),
    "platform": (tar_of({"Dockerfile": b"FROM busybox\n"}), "platform=windows/amd64", "platform"),
    "shmsize": (tar_of({"Dockerfile": b"FROM busybox\n"}), "shmsize=-1", "shmsize"),
    "ulimits": (tar_of({"Dockerfile": b"FROM busybox\n"}), "ulimits=" + _q([{"Name": "x"}]),
                "error reading ulimits"),
    "buildkit": (tar_of({"Dockerfile": b"FROM busybox\n"}), "version=2", "BuildKit"),
    "empty-body": (b"", "", "empty"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_before_the_stream(service: Service, fl: Forklift, case: str) -> None:
    body, query, words = REFUSED[case]
    before = _state(fl)
    answer = _build(service, body, query)
    message = answer.refusal(400)
    swagger_required().validate_response(answer.json(), "POST", "/build", 400)
    assert words in message
    assert _state(fl) == before
    assert not os.path.exists("/tmp/fl-build-escape") and not os.path.exists("/etc/evil")


# ----------------------------------------------------------------------------- docker CLI

def _docker(service: Service, *args: str, cwd: Path, check: bool = True) -> Any:
    env = dict(os.environ, DOCKER_HOST=service.host, DOCKER_BUILDKIT="0")
    return run([DOCKER20, *args], env=env, cwd=cwd, check=check, timeout=180)


def test_docker_cli_build(service: Service, fl: Forklift, docker_cli: None, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nARG WHO=nobody\nRUN echo \"hello $WHO\" > /who\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "Dockerfile.two").write_text(
        "FROM busybox AS base\nCOPY data /data\nFROM base\nRUN exit 7\n")
    (tmp_path / "data").write_text("payload\n")

    res = _docker(service, "build", "--network", "none", "-t", "api-cli:1", "--iidfile", "iid1",
                  "--build-arg", "WHO=docker", ".", cwd=tmp_path)
    assert (tmp_path / "iid1").read_text() == fl.inspect("api-cli:1")["Id"]   # from the aux
    assert "Step 3/3 : RUN echo \"hello $WHO\" > /who" in res.out
    assert re.search(r"^Successfully built [0-9a-f]{12}$", res.out, re.M)
    assert "Successfully tagged api-cli:1" in res.out
    assert fl.out("run", "--rm", "api-cli:1", "cat", "/who") == "hello docker"

    quiet = _docker(service, "build", "-q", "--compress", "--label", "a=b", "--network", "none",
                    "--iidfile", str(tmp_path / "iid"), "-t", "api-cli:1",
                    "--build-arg", "WHO=docker", ".", cwd=tmp_path)
    # the docker CLI writes -q's line, newline and all, as it does with dockerd
    assert quiet.out.strip() == fl.inspect("api-cli:1")["Id"] == (tmp_path / "iid").read_text().strip()
    assert fl.inspect("api-cli:1")["Config"]["Labels"] == {"a": "b"}

    env = dict(os.environ, DOCKER_HOST=service.host, DOCKER_BUILDKIT="0")
    stdin = run([DOCKER20, "build", "--network", "none", "--add-host", "db.example:10.1.2.3",
                 "--shm-size", "32m", "--ulimit", "nofile=100:200", "-"], env=env,
                input="FROM busybox\nRUN grep db.example /etc/hosts; df -k /dev/shm; ulimit -n\n")
    assert "10.1.2.3\tdb.example\n" in stdin.out
    assert re.search(r"^tmpfs +32768 .* /dev/shm$", stdin.out, re.M) and "\n100\n" in stdin.out

    target = _docker(service, "build", "--network", "none", "-f", "other/Dockerfile.two",
                     "--target", "base", "-t", "api-cli:base", ".", cwd=tmp_path)
    assert "Successfully tagged api-cli:base" in target.out
    assert fl.out("run", "--rm", "api-cli:base", "cat", "/data") == "payload"

    before = _state(fl)
    failed = _docker(service, "build", "--network", "none", "-f", "other/Dockerfile.two",
                     "-t", "api-cli:fail", ".", cwd=tmp_path, check=False)
    assert failed.code == 7, failed
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in failed.err
    assert _state(fl) == before

    missing = _docker(service, "build", "-f", "nope", ".", cwd=tmp_path, check=False)
    assert missing.code != 0 and "Traceback" not in missing.err
    fl("rmi", "api-cli:1", "api-cli:base")


def test_docker_py_build(service: Service, fl: Forklift, tmp_path: Path) -> None:
    docker = pytest.importorskip("docker")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo from-docker-py\n")
    client = docker.DockerClient(base_url=service.host, version="1.41")
    try:
        image, logs = client.images.build(path=str(tmp_path), tag="api-py:1", network_mode="none")
        assert image.id == fl.inspect("api-py:1")["Id"]
        assert "from-docker-py\n" in [d.get("stream") for d in logs]
        with pytest.raises(docker.errors.BuildError, match="returned a non-zero code: 4"):
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 4\n"),
                                network_mode="none")
    finally:
        client.close()
    fl("rmi", "api-py:1")


def test_a_client_that_leaves_stops_the_build(service: Service, fl: Forklift) -> None:
    """The step that runs is killed (its ``sleep 300`` does not hold the build), the next
    one never starts: no image, no container and no scratch are left, and the same build
    then runs to its end."""
    import socket
    import time

    body = tar_of({"Dockerfile": b"FROM busybox\nRUN sleep 300; echo one\nRUN echo two > /two\n"})
    images, containers, scratch = _state(fl)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(service.socket))
        sock.sendall(b"POST /v1.41/build?networkmode=none&nocache=1&t=api-left:1 HTTP/1.1\r\n"
                     b"Host: x\r\nContent-Type: application/x-tar\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        seen = b""
        while b"Running in" not in seen:
            chunk = sock.recv(65536)
            assert chunk, seen
            seen += chunk
    deadline = time.monotonic() + 30   # well before the step's sleep would end
    while _state(fl) != (images, containers, scratch) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _state(fl) == (images, containers, scratch)
    assert service.alive()
    quick = tar_of({"Dockerfile": b"FROM busybox\nRUN echo one\nRUN echo two > /two\n"})
    docs = _messages(_build(service, quick, "t=api-left:1"))
    assert docs[-1] == {"stream": "Successfully tagged api-left:1\n"}
    fl("rmi", "api-left:1")
    fl("image", "prune", "-f")


def test_classic_display_numbers_steps_across_stages() -> None:
    """The display alone: instruction steps numbered across stages out of the planned
    total, the builder's own steps shown by their output only, a cached step, a RUN."""
    from forklift.build.classic import ClassicProgress

    docs: list[dict[str, Any]] = []
    progress = ClassicProgress(docs.append)
    progress.plan(3)
    pull = progress.step("[internal] pull busybox")
    pull.done()
    first = progress.step("[base 1/2] FROM busybox AS base")
    first.image_id = "sha256:" + "a" * 64
    first.done()
    cached = progress.step("[base 2/2] ENV A=1")
    cached.image_id = "sha256:" + "b" * 64
    cached.cached()
    ran = progress.step("[2/2] RUN make")
    ran.container("c" * 64)
    ran.line("built")
    ran.error("ignored: the stream's error document says it")
    ran.image_id = "sha256:" + "d" * 64
    ran.done()
    progress.built("sha256:" + "d" * 64)
    progress.note("Successfully built dddddddddddd")
    assert [d.get("stream", d) for d in docs] == [
        "Step 1/3 : FROM busybox AS base", "\n", " ---> aaaaaaaaaaaa\n",
        "Step 2/3 : ENV A=1", "\n", " ---> Using cache\n", " ---> bbbbbbbbbbbb\n",
        "Step 3/3 : RUN make", "\n", f" ---> Running in {'c' * 12}\n", "built\n",
        f"Removing intermediate container {'c' * 12}\n", " ---> dddddddddddd\n",
        {"aux": {"ID": "sha256:" + "d" * 64}}, "Successfully built dddddddddddd\n"]
