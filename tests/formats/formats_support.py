"""Shared fixtures for save/load tests: busybox images made offline, store snapshots.

The private dockerd (``docker`` fixture) lives in tests/docker_support.py."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from docker_support import Docker, docker  # noqa: F401  (fixture re-exported)

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
