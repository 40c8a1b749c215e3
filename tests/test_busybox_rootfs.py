"""scripts/make-busybox-rootfs.sh builds a deterministic, safe busybox rootfs tarball."""

from __future__ import annotations

import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from support.images import make_busybox_tar

pytestmark = pytest.mark.skipif(
    shutil.which("tar") is None or shutil.which("bash") is None,
    reason="needs bash and GNU tar",
)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("busybox-rootfs")
    a, b = d / "a.tar", d / "b.tar"
    make_busybox_tar(a)
    make_busybox_tar(b)
    return a, b


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def test_deterministic(rootfs: tuple[Path, Path]) -> None:
    a, b = rootfs
    assert a.read_bytes() == b.read_bytes()


def test_busybox_and_sh(rootfs: tuple[Path, Path]) -> None:
    members = _members(rootfs[0])
    bb = members["bin/busybox"]
    assert bb.isreg()
    assert bb.mode & 0o111
    sh = members["bin/sh"]
    assert sh.issym()
    assert sh.linkname == "busybox"


def test_every_applet_linked(rootfs: tuple[Path, Path]) -> None:
    members = _members(rootfs[0])
    applets = subprocess.run(
        ["/bin/busybox", "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        if applet == "busybox":
            continue
        m = members[f"bin/{applet}"]
        assert m.issym() and m.linkname == "busybox", applet


def test_member_names_safe(rootfs: tuple[Path, Path]) -> None:
    with tarfile.open(rootfs[0]) as tf:
        for m in tf.getmembers():
            assert not m.name.startswith("/"), m.name
            assert not m.name.startswith("./"), m.name
            assert ".." not in m.name.split("/"), m.name
            if m.issym() or m.islnk():
                assert not m.linkname.startswith("/"), (m.name, m.linkname)
                assert ".." not in m.linkname.split("/"), (m.name, m.linkname)
            assert m.uid == 0 and m.gid == 0, m.name
            assert m.mtime == 0, m.name


def test_tmp_sticky_world_writable(rootfs: tuple[Path, Path]) -> None:
    tmp = _members(rootfs[0])["tmp"]
    assert tmp.isdir()
    assert stat.S_IMODE(tmp.mode) == 0o1777


def test_layout_and_nothing_else(rootfs: tuple[Path, Path]) -> None:
    members = _members(rootfs[0])
    dirs = {n for n, m in members.items() if m.isdir()}
    assert dirs == {
        "bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp",
        "usr", "usr/bin", "usr/sbin", "var",
    }  # fmt: skip
    files = {n for n, m in members.items() if m.isreg()}
    assert files == {"bin/busybox", "etc/passwd", "etc/group"}
    others = {n for n, m in members.items() if not (m.isdir() or m.isreg())}
    assert all(n.startswith("bin/") and members[n].issym() for n in others)


def test_passwd_and_group(rootfs: tuple[Path, Path]) -> None:
    with tarfile.open(rootfs[0]) as tf:
        passwd = tf.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
        group = tf.extractfile("etc/group").read().decode()  # type: ignore[union-attr]
    lines = passwd.splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in lines
    assert "nobody:x:65534:65534:nobody:/home:/bin/false" in lines
    assert any(line.startswith("daemon:x:1:1:") for line in lines)
    gnames = {line.split(":")[0]: line.split(":")[2] for line in group.splitlines()}
    assert gnames["root"] == "0"
    assert gnames["daemon"] == "1"
    assert gnames["nogroup"] == "65534"
