"""Shared helpers for the reliability suite: a busybox rootfs, fresh stores, the CLI,
and the store invariant checks used after every injected crash."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "ls", "cat", "true", "touch", "rm", "echo", "mkdir", "sleep")
SLOW = os.environ.get("FORKLIFT_SLOW") == "1"
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (overlay mounts, runc)")
needs_busybox = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs /bin/busybox")
needs_runc = pytest.mark.skipif(shutil.which("runc") is None, reason="needs runc")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SLOW:
        return
    skip = pytest.mark.skip(reason="long variant: set FORKLIFT_SLOW=1")
    for item in items:
        if "slow" in item.keywords and "reliability" in str(item.fspath):
            item.add_marker(skip)


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


# ----------------------------------------------------------------------------- tarballs

def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, *, kind: bytes = tarfile.REGTYPE,
         link: str = "", mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.linkname = link
    if data is not None:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        tf.addfile(info)


def busybox_rootfs_tar(path: Path) -> Path:
    """A minimal rootfs: bin/busybox plus the applet symlinks the tests use."""
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root"):
            _add(tf, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tf, "bin/busybox", binary, mode=0o755)
        for applet in APPLETS:
            _add(tf, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tf, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        _add(tf, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return path


def small_tar(path: Path, seed: int, files: int = 3, size: int = 2048) -> Path:
    """A tiny flat tarball whose content depends on ``seed`` (same seed, same layer)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "data", kind=tarfile.DIRTYPE, mode=0o755)
        for i in range(files):
            body = (f"{seed}-{i}-".encode() * (size // 8 + 1))[:size]
            _add(tf, f"data/f{i}", body)
    return path


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.path.exists(BUSYBOX):
        pytest.skip("needs /bin/busybox")
    return busybox_rootfs_tar(tmp_path_factory.mktemp("busybox") / "busybox.tar")


# ----------------------------------------------------------------------------- CLI

def fl_argv(root: str | Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "forklift", "--root", str(root), *args]


def fl(root: str | Path, *args: str, check: bool = True, timeout: float = 120,
       env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("FORKLIFT_CRASH_AT", None)
    full_env.update(env or {})
    proc = subprocess.run(fl_argv(root, *args), capture_output=True, text=True, timeout=timeout,
                          env=full_env, input=input if input is not None else "")
    if check and proc.returncode != 0:
        raise AssertionError(f"forklift {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    """A failure is exactly one ``Error: …`` line on stderr, never a traceback."""
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


@pytest.fixture
def store_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "store"
    yield root
    cleanup_store(root)


def cleanup_store(root: Path) -> None:
    """Unmount anything a test left mounted under ``root`` and remove it."""
    root_s = str(root)
    try:
        with open("/proc/self/mountinfo") as f:
            points = [ln.split()[4] for ln in f]
    except OSError:
        points = []
    for point in sorted((p for p in points if p.startswith(root_s + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bb_store(store_root: Path, busybox_tar: Path) -> Path:
    """A fresh store holding ``busybox:latest``."""
    fl(store_root, "import", str(busybox_tar), "busybox")
    return store_root


# ----------------------------------------------------------------------------- invariants

# Leftovers a crash may leave until the next command / repair; anything else is corruption.
def is_leftover(problem: object) -> bool:
    kind = getattr(problem, "kind", "")
    message = getattr(problem, "message", "")
    return kind == "tmp" or "has no record" in message or "still mounted" in message


def store_findings(root: str | Path, full: bool = False):  # type: ignore[no-untyped-def]
    from forklift.store.check import check

    store = _open_quiet(root)
    try:
        return check(store, full=full, grace=0)
    finally:
        store.close()


def _open_quiet(root: str | Path):  # type: ignore[no-untyped-def]
    """Open without the crash recovery of ``open_store`` (so the test sees what the crash
    really left)."""
    import sqlite3

    from forklift.store.db import Store

    store = Store(str(root)).open()
    store.conn.row_factory = sqlite3.Row
    return store


def assert_no_corruption(root: str | Path, full: bool = False) -> list[str]:
    """No problem other than crash leftovers; returns the leftovers (as text)."""
    found = store_findings(root, full=full)
    corrupt = [str(p) for p in found.problems if not is_leftover(p)]
    assert not corrupt, "store corrupted:\n" + "\n".join(corrupt)
    return [str(p) for p in found.problems]


def assert_clean(root: str | Path, full: bool = False) -> None:
    found = store_findings(root, full=full)
    assert found.ok, "store not clean:\n" + "\n".join(str(p) for p in found.problems)


def repair(root: str | Path) -> list[str]:
    from forklift.engine import system
    from forklift.store import open_store

    store = open_store(str(root))
    try:
        result = system.check(store, repair=True, grace=0)
    finally:
        store.close()
    assert not result.remaining, "repair left problems:\n" + "\n".join(result.remaining)
    return result.repaired


def image_ids(root: str | Path) -> list[str]:
    from forklift.store import open_store

    store = open_store(str(root))
    try:
        return [r[0] for r in store.conn.execute("SELECT id FROM images ORDER BY added")]
    finally:
        store.close()


def verify_images_usable(root: str | Path, limit: int | None = None, run: bool = True) -> int:
    """Every image can be inspected, its history read, and exported (flattened through a
    container); those holding busybox are also run through the CLI."""
    from forklift.engine import containers, images
    from forklift.store import open_store

    ids = image_ids(root)
    if limit is not None:
        ids = ids[-limit:]
    # one scratch dir per call: several stores (and threads) share a parent directory
    scratch = Path(tempfile.mkdtemp(prefix="verify-export-", dir=Path(root).parent))
    out_tar = scratch / "export.tar"
    runnable = []
    store = open_store(str(root))
    try:
        for image_id in ids:
            images.inspect(store, image_id)
            images.history(store, image_id)
            rec = containers.create(store, image_id, ["/bin/busybox", "true"],
                                    containers.CreateOptions(network="none"))
            try:
                with open(out_tar, "wb") as out:
                    containers.export(store, rec.id, out)
            finally:
                containers.remove(store, rec.id, force=True)
            with tarfile.open(out_tar) as tf:
                names = tf.getnames()
            assert names, f"export of {image_id} is empty"
            if "bin/busybox" in names:
                runnable.append(image_id)
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if run:
        for image_id in runnable[-2:]:
            proc = fl(root, "run", "--rm", "--network", "none", image_id, "/bin/busybox", "true", check=False)
            assert proc.returncode == 0, f"cannot run {image_id}: {proc.stderr}"
    return len(ids)
