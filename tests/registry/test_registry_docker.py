"""Docker engine interop through a local registry (dockerd started by the test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_support import Registry, forklift, inspect, new_store

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def dockerd(registry: Registry) -> Iterator[list[str]]:
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("dockerd/docker not installed")
    base = Path(tempfile.mkdtemp(prefix="fl-reg-dockerd-", dir="/var/tmp"))
    sock = base / "docker.sock"
    log = open(base / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
         "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"), "--iptables=false",
         "--bridge=none", "--insecure-registry", registry.host],
        stdout=log, stderr=subprocess.STDOUT)
    cli = ["docker", "-H", f"unix://{sock}"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if subprocess.run([*cli, "info"], capture_output=True).returncode == 0:
            break
        time.sleep(0.5)
    else:
        proc.terminate()
        proc.wait(10)
        tail = (base / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:]
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"dockerd did not start within 30s: {tail}")
    yield cli
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    subprocess.run(["umount", "-R", str(base / "data")], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def _docker(cli: list[str], *args: str) -> str:
    proc = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_docker_pulls_forklift_push(store: Path, registry: Registry, dockerd: list[str]) -> None:
    ref = f"{registry.host}/docker/from-forklift:1"
    forklift(store, "tag", "app:1", ref)
    digest = forklift(store, "push", ref).stdout.split("digest: ")[1].split()[0]
    _docker(dockerd, "pull", ref)
    assert _docker(dockerd, "image", "inspect", "--format", "{{.Id}}", ref).strip() == \
        inspect(store, "app:1")["Id"]
    assert digest in _docker(dockerd, "image", "inspect", "--format", "{{json .RepoDigests}}", ref)


def test_forklift_pulls_docker_push(store: Path, registry: Registry, dockerd: list[str],
                                    tmp_path: Path) -> None:
    src = f"{registry.host}/docker/from-forklift:1"
    ref = f"{registry.host}/docker/from-docker:1"
    _docker(dockerd, "tag", src, ref)
    out = _docker(dockerd, "push", ref)
    digest = out.split("digest: ")[1].split()[0]
    fresh = new_store(tmp_path)
    assert f"Digest: {digest}" in forklift(fresh, "pull", ref).stdout
    assert inspect(fresh, ref)["Id"] == inspect(store, "app:1")["Id"]
