"""Fixtures for end-to-end container tests: a private store per module with busybox in it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE_ROOTFS = REPO / "scripts" / "make-busybox-rootfs.sh"
PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runc") is None or not os.path.exists("/bin/busybox"),
    reason="needs root, runc and busybox-static",
)


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Skip this directory's tests where containers cannot run (test modules do not
    import conftest: other test directories have a conftest module of the same name)."""
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(NEEDS_ROOT)


def forklift_argv() -> list[str]:
    exe = shutil.which("forklift")
    return [exe] if exe else [sys.executable, "-m", "forklift"]


class Forklift:
    """Run the real CLI against one private store root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.argv = [*forklift_argv(), "--root", str(root)]

    def __call__(self, *args: str, check: bool = True, input: str | None = None,
                 timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.argv, *args], capture_output=True, text=True, input=input,
                              timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"forklift {' '.join(args)} -> {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def out(self, *args: str, **kw: Any) -> str:
        return self(*args, **kw).stdout.strip()

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self.out("inspect", name))[0]

    def status(self, name: str) -> str:
        return self.out("inspect", "-f", "{{.State.Status}}", name)

    def wait_for(self, pred: Any, timeout: float = 10, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def monitor_pid(self, name: str) -> int:
        import sqlite3

        cid = self.out("inspect", "-f", "{{.Id}}", name)
        conn = sqlite3.connect(str(self.root / "forklift.db"))
        try:
            return int(conn.execute("SELECT pid FROM containers WHERE id=?", (cid,)).fetchone()[0])
        finally:
            conn.close()


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run(["bash", str(MAKE_ROOTFS), str(out)], check=True, capture_output=True,
                   timeout=300)
    return out


def _cleanup(fl: Forklift) -> None:
    ids = fl.out("ps", "-aq", "--no-trunc", check=False).split()
    if ids:
        fl("rm", "-f", "-v", *ids, check=False)
    for net in fl.out("network", "ls", "-q", "--filter", "type=custom", check=False).split():
        fl("network", "rm", net, check=False)
    root = str(fl.root)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p.startswith(root)), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], check=False, capture_output=True)


@pytest.fixture(scope="module")
def fl(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Forklift]:
    # A short path: unix sockets and overlay options have length limits.
    root = Path(tmp_path_factory.mktemp("fl"))
    f = Forklift(root)
    f("image", "import", "-c", PATH_ENV, "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
    try:
        yield f
    finally:
        _cleanup(f)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return "t-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]


@contextlib.contextmanager
def removing(fl: Forklift, *names: str) -> Iterator[None]:
    try:
        yield
    finally:
        fl("rm", "-f", "-v", *names, check=False)
