"""resolve_user follows Docker's (runc's) --user rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forklift.errors import InvalidArgument
from forklift.runtime.user import resolve_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment line
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
nohome:x:1002:1002:::/bin/sh
"""

GROUP = """\
root:x:0:
wheel:x:10:root,alice
users:x:100:bob
alice:x:1000:
staff:x:50:alice,bob
audio:x:29:alice
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return str(tmp_path)


def test_default_is_root(rootfs: str) -> None:
    assert resolve_user(rootfs, "") == (0, 0, [0, 10], "/root")
    assert resolve_user(rootfs, "0") == (0, 0, [0, 10], "/root")


def test_root_supplementary_groups(rootfs: str) -> None:
    # the primary gid first, then the groups that list the user by name
    assert resolve_user(rootfs, "root") == (0, 0, [0, 10], "/root")


def test_by_name(rootfs: str) -> None:
    assert resolve_user(rootfs, "alice") == (1000, 1000, [1000, 10, 50, 29], "/home/alice")
    assert resolve_user(rootfs, "bob") == (1001, 100, [100, 50], "/home/bob")


def test_by_uid(rootfs: str) -> None:
    assert resolve_user(rootfs, "1000") == (1000, 1000, [1000, 10, 50, 29], "/home/alice")


def test_unknown_numeric_uid_is_allowed(rootfs: str) -> None:
    assert resolve_user(rootfs, "4242") == (4242, 0, [0], "/")
    assert resolve_user(rootfs, "4242:4343") == (4242, 4343, [4343], "/")


def test_explicit_group_is_the_only_group(rootfs: str) -> None:
    assert resolve_user(rootfs, "alice:staff") == (1000, 50, [50], "/home/alice")
    assert resolve_user(rootfs, "alice:29") == (1000, 29, [29], "/home/alice")
    assert resolve_user(rootfs, "1001:12345") == (1001, 12345, [12345], "/home/bob")
    assert resolve_user(rootfs, "4242:wheel") == (4242, 10, [10], "/")


def test_empty_home_is_slash(rootfs: str) -> None:
    assert resolve_user(rootfs, "nohome")[3] == "/"


def test_unknown_name(rootfs: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        resolve_user(rootfs, "mallory")
    assert str(e.value) == "unable to find user mallory: no matching entries in passwd file"


def test_unknown_group(rootfs: str) -> None:
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        resolve_user(rootfs, "alice:nogroup")


def test_out_of_range(rootfs: str) -> None:
    with pytest.raises(InvalidArgument, match="range"):
        resolve_user(rootfs, "99999999999")


def test_missing_files(tmp_path: Path) -> None:
    assert resolve_user(str(tmp_path), "") == (0, 0, [0], "/")
    assert resolve_user(str(tmp_path), "123:456") == (123, 456, [456], "/")
    with pytest.raises(InvalidArgument):
        resolve_user(str(tmp_path), "alice")


def test_passwd_symlink_cannot_escape(tmp_path: Path) -> None:
    # A rootfs whose /etc/passwd points outside it must not read the outside file.
    (tmp_path / "outside").write_text("mallory:x:7:7::/:/bin/sh\n")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    os.symlink("../../outside", rootfs / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="unable to find user mallory"):
        resolve_user(str(rootfs), "mallory")
    (rootfs / "outside").write_text("mallory:x:8:8::/m:/bin/sh\n")
    assert resolve_user(str(rootfs), "mallory") == (8, 8, [8], "/m")
