"""secure_join resolves paths inside a rootfs and never escapes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.errors import InvalidArgument
from forklift.runtime.fsutil import secure_join


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (r / "usr" / "lib").mkdir(parents=True)
    return r


def test_plain_paths(root: Path) -> None:
    assert secure_join(str(root), "/etc/passwd") == f"{root}/etc/passwd"
    assert secure_join(str(root), "etc/./passwd") == f"{root}/etc/passwd"
    assert secure_join(str(root), "/") == str(root)
    assert secure_join(str(root), "") == str(root)
    assert secure_join(str(root), "/missing/file") == f"{root}/missing/file"


def test_dotdot_clamps_at_root(root: Path) -> None:
    assert secure_join(str(root), "../../../etc/passwd") == f"{root}/etc/passwd"
    assert secure_join(str(root), "/usr/../../etc") == f"{root}/etc"


def test_absolute_symlink_is_rerooted(root: Path) -> None:
    os.symlink("/etc/passwd", root / "link")
    os.symlink("/etc", root / "usr" / "etc")
    assert secure_join(str(root), "/link") == f"{root}/etc/passwd"
    assert secure_join(str(root), "/usr/etc/passwd") == f"{root}/etc/passwd"


def test_relative_symlink_escape_is_clamped(root: Path) -> None:
    os.symlink("../../../../../../etc/shadow", root / "usr" / "lib" / "evil")
    os.symlink("../../..", root / "usr" / "lib" / "up")
    assert secure_join(str(root), "/usr/lib/evil") == f"{root}/etc/shadow"
    assert secure_join(str(root), "/usr/lib/up/etc/passwd") == f"{root}/etc/passwd"


def test_symlink_to_symlink_chain(root: Path) -> None:
    os.symlink("b", root / "a")
    os.symlink("/c", root / "b")
    os.symlink("etc", root / "c")
    assert secure_join(str(root), "/a/passwd") == f"{root}/etc/passwd"


def test_dotdot_after_symlink_uses_the_link_target(root: Path) -> None:
    # /usr/lib/x -> /etc ; /usr/lib/x/.. is / (the target's parent), not /usr/lib.
    os.symlink("/etc", root / "usr" / "lib" / "x")
    assert secure_join(str(root), "/usr/lib/x/../usr") == f"{root}/usr"


def test_symlink_loops_are_refused(root: Path) -> None:
    os.symlink("loop2", root / "loop1")
    os.symlink("/loop1", root / "loop2")
    os.symlink("self", root / "self")
    with pytest.raises(InvalidArgument, match="too many levels"):
        secure_join(str(root), "/loop1/x")
    with pytest.raises(InvalidArgument):
        secure_join(str(root), "/self")


def test_result_never_leaves_root(root: Path) -> None:
    os.symlink("/", root / "slash")
    os.symlink("..", root / "dotdot")
    for p in ("/slash/..", "/dotdot/dotdot/..", "/slash/slash/../etc", "..//..//"):
        result = secure_join(str(root), p)
        assert result == str(root) or result.startswith(f"{root}/"), (p, result)
