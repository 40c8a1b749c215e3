"""Shared fixtures for save/load tests: busybox images made offline, store snapshots, dockerd."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FORKLIFT = [sys.executable, "-m", "forklift"]
APPLETS = ("sh", "ls", "cat", "true", "rm", "touch", "echo")
TABLES = ("blobs", "layers", "images", "image_layers", "tags", "repo_digests", "compressed_blobs")


def fl(root: Path, *args: str, stdin: bytes | None = None, check: bool = True,
       stdin_file: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run ``forklift --root ROOT ARGS`` and return the completed process (bytes)."""
    kwargs: dict = {"input": stdin} if stdin is not None else {}
    if stdin_file is not None:
        kwargs = {"stdin": stdin_file.open("rb")}
    elif stdin is None:
        kwargs = {"stdin": subprocess.DEVNULL}
    proc = subprocess.run([*FORKLIFT, "--root", str(root), *args], capture_output=True,
                          timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"forklift {' '.join(args)} failed ({proc.returncode}):"
                             f" {proc.stderr.decode(errors='replace')}")
    return proc


def out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode().strip()


def inspect(root: Path, name: str) -> dict:
    return json.loads(fl(root, "image", "inspect", name).stdout)[0]


def snapshot(root: Path) -> dict[str, object]:
    """Every metadata row and every file name in blobs/, layers/ and tmp/."""
    conn = sqlite3.connect(f"file:{root}/forklift.db?mode=ro", uri=True)
    try:
        rows = {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}").fetchall()), key=repr)
                for t in TABLES}
    finally:
        conn.close()
    files = {d: sorted(os.listdir(root / d)) for d in ("blobs/sha256", "layers", "tmp")}
    return {"rows": rows, "files": files}


def count_files(root: Path) -> int:
    return sum(len(files) + len(dirs) for _, dirs, files in os.walk(root / "blobs"))


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/busybox (static) plus applet symlinks, as a tarball."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("busybox (busybox-static) is not installed")
    path = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
    with tarfile.open(path, "w") as tf:
        tf.add(busybox, "bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tf.addfile(info)
    return path


def make_images(root: Path, rootfs: Path) -> None:
    """busybox:latest; hw_image:latest/2.7 (adds /HelloWorld, deletes /bin/cat); other:1."""
    fl(root, "import", "-c", "ENV PATH=/bin", str(rootfs), "busybox:latest")
    fl(root, "run", "--name", "c1", "busybox", "sh", "-c", "touch /HelloWorld && rm /bin/cat")
    fl(root, "commit", "c1", "hw_image:latest")
    fl(root, "tag", "hw_image:latest", "hw_image:2.7")
    fl(root, "run", "--name", "c2", "hw_image", "sh", "-c", "echo other > /other")
    fl(root, "commit", "c2", "other:1")
    fl(root, "rm", "c1", "c2")


@pytest.fixture(scope="module")
def source_store(tmp_path_factory: pytest.TempPathFactory, rootfs_tar: Path) -> Path:
    root = tmp_path_factory.mktemp("src-store")
    make_images(root, rootfs_tar)
    return root


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


# ----------------------------------------------------------------------------- docker

class Docker:
    def __init__(self, sock: str) -> None:
        self.argv = ["docker", "-H", f"unix://{sock}"]

    def __call__(self, *args: str, stdin: bytes | None = None, stdout: int | None = None,
                 check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([*self.argv, *args], input=stdin, timeout=timeout,
                              stdout=stdout if stdout is not None else subprocess.PIPE,
                              stderr=subprocess.PIPE)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc


def _start_dockerd(base: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    sock = base / "docker.sock"
    log = (base / "dockerd.log").open("wb")
    cmd = ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
           "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"),
           "--iptables=false", "--ip6tables=false", "--bridge=none"]
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        return None, "dockerd is not installed"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (base / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:]
            return None, f"dockerd exited: {tail[0] if tail else 'no output'}"
        ok = subprocess.run(["docker", "-H", f"unix://{sock}", "info"], capture_output=True)
        if ok.returncode == 0:
            return proc, str(sock)
        time.sleep(0.5)
    _stop(proc)
    return None, "dockerd did not come up within 30 s"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _unmount_under(base: Path) -> None:
    with open("/proc/self/mountinfo") as fh:
        mounts = [ln.split()[4] for ln in fh if ln.split()[4].startswith(f"{base}/")]
    for mnt in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True)


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    """A private dockerd (own data-root, exec-root, socket; no host networking changes)."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI is not installed")
    base = Path(f"/var/tmp/forklift-test-dockerd-{os.getpid()}")
    base.mkdir(parents=True, exist_ok=True)
    proc, sock_or_reason = _start_dockerd(base)
    if proc is None:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start dockerd: {sock_or_reason}")
    try:
        yield Docker(sock_or_reason)
    finally:
        _stop(proc)
        _unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
