"""Real overlayfs and bind mounts (needs root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.errors import RuntimeFailure
from forklift.runtime.overlay import bind_mount, is_mounted, mount_overlay, unmount

pytestmark = pytest.mark.root


@pytest.fixture
def mounts() -> Iterator[list[str]]:
    """Targets to unmount at the end of the test, whatever happens."""
    targets: list[str] = []
    yield targets
    for t in reversed(targets):
        unmount(t, lazy=True)


def _layers(root: Path, n: int) -> list[str]:
    """n layers laid out like the store: layers/<12 chars>/diff; returned TOP FIRST."""
    dirs = []
    for i in range(n):
        d = root / "layers" / f"{i:012x}" / "diff"
        d.mkdir(parents=True)
        (d / f"file{i}").write_text(str(i))
        (d / "shared").write_text(str(i))
        dirs.append(str(d))
    dirs.reverse()  # layer n-1 is the top
    return dirs


def _upper(root: Path) -> tuple[str, str, str]:
    upper, work, merged = root / "c" / "upper", root / "c" / "work", root / "c" / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    return str(upper), str(work), str(merged)


def test_two_layers(tmp_path: Path, mounts: list[str]) -> None:
    lowers = _layers(tmp_path, 2)
    upper, work, merged = _upper(tmp_path)
    mount_overlay(lowers, upper, work, merged)
    mounts.append(merged)
    assert is_mounted(merged)
    assert sorted(os.listdir(merged)) == ["file0", "file1", "shared"]
    assert Path(merged, "shared").read_text() == "1"  # the top layer wins
    Path(merged, "new").write_text("x")
    assert Path(upper, "new").read_text() == "x"
    unmount(merged)
    assert not is_mounted(merged)
    unmount(merged)  # not mounted any more: no error


def test_130_layers(tmp_path: Path, mounts: list[str]) -> None:
    lowers = _layers(tmp_path, 130)
    upper, work, merged = _upper(tmp_path)
    cwd = os.getcwd()
    mount_overlay(lowers, upper, work, merged)
    mounts.append(merged)
    assert os.getcwd() == cwd  # the chdir used for relative lowerdirs is undone
    names = set(os.listdir(merged))
    assert names == {f"file{i}" for i in range(130)} | {"shared"}
    assert Path(merged, "shared").read_text() == "129"
    assert Path(merged, "file0").read_text() == "0"
    Path(merged, "file0").write_text("changed")  # copy-up into the container layer
    assert Path(upper, "file0").read_text() == "changed"
    assert Path(lowers[-1], "file0").read_text() == "0"


def test_volatile(tmp_path: Path, mounts: list[str]) -> None:
    lowers = _layers(tmp_path, 2)
    upper, work, merged = _upper(tmp_path)
    mount_overlay(lowers, upper, work, merged, volatile=True)
    mounts.append(merged)
    options = next(line for line in open("/proc/self/mountinfo") if f" {merged} " in line)
    assert "volatile" in options
    Path(merged, "x").write_text("y")
    assert Path(upper, "x").read_text() == "y"


def test_too_many_layers_is_a_clear_error(tmp_path: Path) -> None:
    lowers = [str(tmp_path / f"l{i}-{'x' * 40}") for i in range(200)]
    target = tmp_path / "m"
    target.mkdir()
    with pytest.raises(RuntimeFailure, match="limit of one page"):
        mount_overlay(lowers, None, None, str(target))


def test_readonly_without_upper(tmp_path: Path, mounts: list[str]) -> None:
    lowers = _layers(tmp_path, 3)
    merged = tmp_path / "ro"
    merged.mkdir()
    mount_overlay(lowers, None, None, str(merged))
    mounts.append(str(merged))
    assert sorted(os.listdir(merged)) == ["file0", "file1", "file2", "shared"]
    with pytest.raises(OSError):
        (merged / "new").write_text("x")


def test_single_layer_readonly_is_a_bind(tmp_path: Path, mounts: list[str]) -> None:
    lowers = _layers(tmp_path, 1)
    merged = tmp_path / "ro"
    merged.mkdir()
    mount_overlay(lowers, None, None, str(merged))
    mounts.append(str(merged))
    assert sorted(os.listdir(merged)) == ["file0", "shared"]
    with pytest.raises(OSError):
        (merged / "new").write_text("x")
    assert not Path(lowers[0], "new").exists()


def test_whiteout_hides_lower_file(tmp_path: Path, mounts: list[str]) -> None:
    lowers = _layers(tmp_path, 2)
    # In the top layer, a 0/0 character device named file0 deletes the lower's file0.
    os.mknod(os.path.join(lowers[0], "file0"), 0o600 | 0o020000, os.makedev(0, 0))
    upper, work, merged = _upper(tmp_path)
    mount_overlay(lowers, upper, work, merged)
    mounts.append(merged)
    assert not Path(merged, "file0").exists()
    assert Path(merged, "file1").exists()
    os.unlink(os.path.join(merged, "file1"))  # deleting through the overlay makes a whiteout
    st = os.lstat(os.path.join(upper, "file1"))
    assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0


def test_mount_error_is_runtime_failure(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    missing = [str(tmp_path / "nope1"), str(tmp_path / "nope2")]
    with pytest.raises(RuntimeFailure, match="overlay mount failed: "):
        mount_overlay(missing, None, None, str(target))
    assert not is_mounted(str(target))


def test_bind_mount_and_paths_with_spaces(tmp_path: Path, mounts: list[str]) -> None:
    src = tmp_path / "a dir, odd:name"
    src.mkdir()
    (src / "f").write_text("x")
    target = tmp_path / "t t"
    target.mkdir()
    bind_mount(str(src), str(target), readonly=True)
    mounts.append(str(target))
    assert is_mounted(str(target))
    assert (target / "f").read_text() == "x"
    with pytest.raises(OSError):
        (target / "g").write_text("y")
    # odd characters in layer paths survive the overlay option escaping
    other = tmp_path / "b dir, odd:name"
    other.mkdir()
    merged = tmp_path / "merged"
    merged.mkdir()
    mount_overlay([str(src), str(other)], None, None, str(merged))
    mounts.append(str(merged))
    assert (merged / "f").read_text() == "x"


def test_mounts_from_several_threads_each_get_their_own_layers(tmp_path: Path) -> None:
    """Relative lowerdirs resolve against the process-wide cwd: threads must not mix them."""
    import threading

    failures: list[str] = []

    def worker(k: int) -> None:
        root = tmp_path / f"store{k}"
        lowers = []
        for n in range(3):  # names unique to this thread: a mix-up shows as ENOENT
            d = root / "layers" / f"{k}{n}".rjust(12, "0") / "diff"
            d.mkdir(parents=True)
            (d / f"file{n}").write_text(str(n))
            (d / "shared").write_text(str(n))
            lowers.insert(0, str(d))
        for i in range(100):
            upper, work, merged = (str(root / f"c{i}" / n) for n in ("upper", "work", "merged"))
            for d in (upper, work, merged):
                os.makedirs(d)
            try:
                mount_overlay(lowers, upper, work, merged)
                if sorted(os.listdir(merged)) != ["file0", "file1", "file2", "shared"]:
                    failures.append(f"{k}/{i}: {sorted(os.listdir(merged))}")
                unmount(merged)
            except RuntimeFailure as exc:
                failures.append(f"{k}/{i}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
