"""Fixtures shared by every test directory: a busybox base image and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_support import REPO, Result, run_cli, unmount_under

# made once per machine (~30 s of debootstrap), shared with scripts/fresh-machine-check.sh
DEBIAN_TAR = Path(os.environ.get("FORKLIFT_FRESH_CACHE", "/var/cache/forklift")) / "debian-bookworm-minbase.tar"
BUSYBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-rootfs.sh"), str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    """A real distribution: ``debootstrap --variant=minbase bookworm`` as a tarball (cached;
    the script makes xdist workers wait for one build)."""
    subprocess.run(["bash", str(REPO / "scripts" / "make-debian-rootfs.sh"), str(DEBIAN_TAR)],
                   check=True, capture_output=True, timeout=900)
    return DEBIAN_TAR


@pytest.fixture
def store_root() -> Iterator[str]:
    root = tempfile.mkdtemp(prefix="forklift-test-", dir="/var/tmp")
    try:
        yield root
    finally:
        unmount_under(root)
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
