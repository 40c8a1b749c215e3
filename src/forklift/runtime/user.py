"""Resolve Docker's ``--user`` forms against a container's /etc/passwd and /etc/group.

The rules are runc's ``user.GetExecUser`` (what Docker uses), so the same
``--user`` gives the same uid, gid, supplementary groups and HOME:

* the user part matches a passwd entry by uid when numeric, else by name;
  a numeric uid without an entry is allowed (gid 0, HOME ``/``);
* an explicit group matches by gid when numeric, else by name, and then no
  supplementary groups are added;
* without a group, the passwd entry's gid is used and every group whose member
  list names the user becomes a supplementary group;
* the primary gid is always the first supplementary group (Docker >= 20.10.18).
"""

from __future__ import annotations

from forklift.errors import InvalidArgument
from forklift.runtime.fsutil import secure_join

MAX_ID = 2**31 - 1


class _Passwd:
    # Plain slotted classes, not dataclasses: @dataclass costs ~1 ms of import
    # time each, and this module sits on the `run` fast path.
    __slots__ = ("name", "uid", "gid", "home")

    def __init__(self, name: str, uid: int, gid: int, home: str) -> None:
        self.name, self.uid, self.gid, self.home = name, uid, gid, home


class _Group:
    __slots__ = ("name", "gid", "members")

    def __init__(self, name: str, gid: int, members: tuple[str, ...]) -> None:
        self.name, self.gid, self.members = name, gid, members


def _read_lines(rootfs: str, path: str) -> list[list[str]]:
    """Colon-split, non-comment lines of a file in the rootfs; a missing file is empty."""
    try:
        with open(secure_join(rootfs, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _passwd(rootfs: str) -> list[_Passwd]:
    entries = []
    for f in _read_lines(rootfs, "/etc/passwd"):
        if len(f) >= 4 and f[2].isdigit() and f[3].isdigit():
            home = f[5] if len(f) > 5 else ""
            entries.append(_Passwd(f[0], int(f[2]), int(f[3]), home))
    return entries


def _groups(rootfs: str) -> list[_Group]:
    entries = []
    for f in _read_lines(rootfs, "/etc/group"):
        if len(f) >= 3 and f[2].isdigit():
            members = tuple(m for m in (f[3].split(",") if len(f) > 3 else []) if m)
            entries.append(_Group(f[0], int(f[2]), members))
    return entries


def _numeric(value: str) -> int | None:
    if not value.isdigit():
        return None
    n = int(value)
    if n > MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{MAX_ID}")
    return n


def _find_user(rootfs: str, user: str) -> _Passwd | None:
    uid = _numeric(user) if user else 0
    for entry in _passwd(rootfs):
        if (uid is not None and entry.uid == uid) or (uid is None and entry.name == user):
            return entry  # first match wins, as in runc
    if uid is None:
        raise InvalidArgument(f"unable to find user {user}: no matching entries in passwd file")
    return None


def _find_gid(rootfs: str, group: str) -> int:
    gid = _numeric(group)
    for entry in _groups(rootfs):
        if (gid is not None and entry.gid == gid) or (gid is None and entry.name == group):
            return entry.gid
    if gid is None:
        raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
    return gid


def find_gid(rootfs: str, group: str) -> int:
    """A group name or number as the container's /etc/group has it (``--group-add``)."""
    return _find_gid(rootfs, group)


def resolve_user(rootfs: str, user: str) -> tuple[int, int, list[int], str]:
    """Return (uid, gid, additional_gids, home) for a Docker ``--user`` value.

    additional_gids starts with the primary gid: Docker, Podman and containerd
    all add it since CVE-2022-36109, so a process cannot shed its primary group
    with setgroups() to slip past a "group may not read" permission.
    """
    user_part, _, group_part = user.partition(":")
    entry = _find_user(rootfs, user_part)
    if entry is not None:
        uid, gid, home = entry.uid, entry.gid, entry.home or "/"
    else:
        uid, gid, home = _numeric(user_part) or 0, 0, "/"
    if group_part:
        gid = _find_gid(rootfs, group_part)
        return uid, gid, [gid], home
    extra = [gid]
    if entry is not None:
        for g in _groups(rootfs):
            if entry.name in g.members and g.gid not in extra:
                extra.append(g.gid)
    return uid, gid, extra, home
