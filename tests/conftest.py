"""Fixtures shared by every test directory: a busybox base image and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUSYBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_cli(root: str, *args: str, input: bytes | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run([sys.executable, "-m", "forklift", "--root", root, *args],
                          input=input, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return Result(proc.returncode, proc.stdout.decode(errors="replace"),
                  proc.stderr.decode(errors="replace"))


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-rootfs.sh"), str(out)],
                   check=True, capture_output=True)
    return out


def _unmount_under(root: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(root + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture
def store_root() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="forklift-test-", dir="/var/tmp")
    try:
        yield root
    finally:
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fl(store_root: str) -> Callable[..., Result]:
    """Run the real CLI against this test's store."""

    def call(*args: str, **kw: object) -> Result:
        return run_cli(store_root, *args, **kw)  # type: ignore[arg-type]

    return call


@pytest.fixture
def busybox(fl: Callable[..., Result], busybox_tar: Path) -> str:
    """A busybox:latest image in this test's store; returns its ID."""
    res = fl("image", "import", "-c", f"ENV PATH={BUSYBOX_PATH}", "-c", 'CMD ["sh"]',
             str(busybox_tar), "busybox:latest")
    assert res.code == 0, res.err
    return res.out.strip()
