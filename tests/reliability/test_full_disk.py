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
from support import Forklift, one_line_error
from support.images import small_tar
from support.mounts import unmount_and_remove
from support.store import assert_clean, verify_images_usable

pytestmark = [pytest.mark.root,
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
        unmount_and_remove(mnt)


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


def _listing(fl: Forklift) -> tuple[str, str, list[str]]:
    images = fl("images", "-a", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").out
    containers = fl("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}").out
    return images, containers, sorted(os.listdir(fl.root / "layers"))


def test_import_and_commit_on_full_disk(small_fs: Path, tmp_path: Path, busybox_tar: Path) -> None:
    fl = Forklift(small_fs / "store")
    root = fl.root
    fl("import", str(busybox_tar), "busybox")
    fl("run", "--network", "none", "--name", "filler", "busybox", "sh", "-c",
       "/bin/busybox dd if=/dev/zero of=/big bs=1M count=12 2>/dev/null")
    before = _listing(fl)
    free_before = _free(small_fs)

    # 1. import of a tarball bigger than the free space (written once: no tar is kept)
    big = _big_tar(tmp_path / "big.tar", (free_before >> 20) + 4)
    proc = fl("import", str(big), "big:1", check=False)
    one_line_error(proc)
    assert proc.err.startswith("Error: no space left"), proc.err
    assert _listing(fl) == before
    assert os.listdir(root / "tmp") == []
    assert _free(small_fs) >= free_before - (256 << 10)
    assert_clean(root)

    # 2. a stopped container's commit moves its 12 MB upper directory into the store:
    #    it needs no room for the data, even with ~6 MB left beside a host file
    hog = small_fs / "hog"
    with open(hog, "wb") as f:
        f.write(b"\0" * max(0, _free(small_fs) - (6 << 20)))
    fl("commit", "filler", "moved:1")
    hog.unlink()
    fl("rmi", "moved:1")  # the layer stays: the container sits on it
    fl("start", "-a", "filler")  # writes /big again: a later commit merges and copies
    before = _listing(fl)
    free_before = _free(small_fs)

    # 3. commit whose 12 MB layer must be copied and does not fit in the ~6 MB left
    with open(hog, "wb") as f:
        f.write(b"\0" * max(0, _free(small_fs) - (6 << 20)))
    proc = fl("commit", "filler", "filled:1", check=False)
    hog.unlink()
    one_line_error(proc)
    assert proc.err.startswith("Error: no space left"), proc.err
    assert _listing(fl) == before
    assert os.listdir(root / "tmp") == []
    assert _free(small_fs) >= free_before - (256 << 10)
    assert_clean(root, full=True)

    # 4. everything that was there still works, and small work still succeeds
    verify_images_usable(root)
    assert fl("diff", "filler").out.split() == ["A", "/big"]
    fl("import", str(small_tar(tmp_path / "s.tar", 5)), "small:1")
    fl("run", "--rm", "--network", "none", "busybox", "true")
    assert_clean(root)


def test_metadata_writes_on_a_full_disk(small_fs: Path, tmp_path: Path, busybox_tar: Path) -> None:
    """With not a byte left, tag/import/create fail cleanly (or succeed) and nothing breaks."""
    fl = Forklift(small_fs / "store")
    root = fl.root
    fl("import", str(busybox_tar), "busybox")
    before = _listing(fl)
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
        proc = fl(*argv, check=False)
        if proc.code != 0:
            one_line_error(proc)
    filler.unlink()
    fl("images")
    fl("system", "check", "--repair", "--grace", "0", check=False)
    assert_clean(root)
    verify_images_usable(root)
    assert before[0]  # the store had content; whatever remains is consistent
