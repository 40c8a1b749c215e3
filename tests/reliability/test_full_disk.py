"""A store on a small, full filesystem: an import or commit that runs out of space
fails with one ``Error: no space left…`` line, keeps everything that existed
before, and leaves nothing behind (no scratch, no orphan, space given back)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import (
    assert_clean,
    assert_one_line_error,
    fl,
    needs_busybox,
    needs_root,
    needs_runc,
    small_tar,
    verify_images_usable,
)

pytestmark = [needs_root, needs_busybox, needs_runc,
              pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="needs mkfs.ext4")]

SIZE_MB = 40


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    image = tmp_path / "fs.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(SIZE_MB << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
    proc = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot loop-mount: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        with open("/proc/self/mountinfo") as f:
            points = [ln.split()[4] for ln in f]
        for point in sorted((p for p in points if p.startswith(str(mnt) + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        subprocess.run(["umount", str(mnt)], capture_output=True, check=False)
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _big_tar(path: Path, mb: int) -> Path:
    chunk = os.urandom(1 << 20)
    with tarfile.open(path, "w") as tf:
        for i in range(mb):
            info = tarfile.TarInfo(f"big/part{i}")
            info.size = len(chunk)
            import io

            tf.addfile(info, io.BytesIO(chunk[i:] + chunk[:i]))
    return path


def _snapshot(root: Path) -> tuple[str, str, list[str]]:
    images = fl(root, "images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    containers = fl(root, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}").stdout
    return images, containers, sorted(os.listdir(root / "layers"))


def test_import_and_commit_on_full_disk(small_fs: Path, tmp_path: Path, busybox_tar: Path) -> None:
    root = small_fs / "store"
    fl(root, "import", str(busybox_tar), "busybox")
    fl(root, "run", "--network", "none", "--name", "filler", "busybox", "sh", "-c",
       "/bin/busybox dd if=/dev/zero of=/big bs=1M count=12 2>/dev/null")
    before = _snapshot(root)
    free_before = _free(small_fs)

    # 1. import of a tarball bigger than the free space
    big = _big_tar(tmp_path / "big.tar", (free_before >> 20) // 2 + 4)
    proc = fl(root, "import", str(big), "big:1", check=False)
    assert_one_line_error(proc)
    assert proc.stderr.startswith("Error: no space left"), proc.stderr
    assert _snapshot(root) == before
    assert os.listdir(root / "tmp") == []
    assert _free(small_fs) >= free_before - (256 << 10)
    assert_clean(root)

    # 2. commit whose 12 MB layer does not fit in the ~6 MB left beside a host file
    hog = small_fs / "hog"
    with open(hog, "wb") as f:
        f.write(b"\0" * max(0, _free(small_fs) - (6 << 20)))
    proc = fl(root, "commit", "filler", "filled:1", check=False)
    hog.unlink()
    assert_one_line_error(proc)
    assert proc.stderr.startswith("Error: no space left"), proc.stderr
    assert _snapshot(root) == before
    assert os.listdir(root / "tmp") == []
    assert _free(small_fs) >= free_before - (256 << 10)
    assert_clean(root, full=True)

    # 3. everything that was there still works, and small work still succeeds
    verify_images_usable(root)
    assert fl(root, "diff", "filler").stdout.split() == ["A", "/big"]
    fl(root, "import", str(small_tar(tmp_path / "s.tar", 5)), "small:1")
    fl(root, "run", "--rm", "--network", "none", "busybox", "true")
    assert_clean(root)


def test_metadata_writes_on_a_full_disk(small_fs: Path, tmp_path: Path, busybox_tar: Path) -> None:
    """With not a byte left, tag/import/create fail cleanly (or succeed) and nothing breaks."""
    root = small_fs / "store"
    fl(root, "import", str(busybox_tar), "busybox")
    before = _snapshot(root)
    filler = small_fs / "filler"
    with open(filler, "wb") as f:
        block = b"\0" * (1 << 20)
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    small = small_tar(tmp_path / "s.tar", 9)
    for argv in (["tag", "busybox", "more:1"], ["import", str(small), "small:1"],
                 ["create", "--network", "none", "--name", "c", "busybox", "true"],
                 ["rmi", "busybox"]):
        proc = fl(root, *argv, check=False)
        if proc.returncode != 0:
            assert_one_line_error(proc)
    filler.unlink()
    fl(root, "images")
    fl(root, "system", "check", "--repair", "--grace", "0", check=False)
    assert_clean(root)
    verify_images_usable(root)
    assert before[0]  # the store had content; whatever remains is consistent
