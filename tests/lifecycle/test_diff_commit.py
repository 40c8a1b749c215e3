"""diff and commit semantics, checked against what Docker prints and stores."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

pytestmark = pytest.mark.root


def _run(fl, name, script, image="busybox"):
    res = fl("run", "--name", name, image, "sh", "-c", script)
    assert res.code == 0, res.err
    return fl("diff", name).lines


def _layer_members(fl, image):
    """The entries of the image's top layer tar, as save and push would send it."""
    from forklift.formats import layerblobs
    from forklift.store import layers, open_store

    top = json.loads(fl("image", "inspect", image).out)[0]["RootFS"]["Layers"][-1]
    store = open_store(str(fl.root))
    try:
        with layerblobs.open_uncompressed(store, layers.get(store, top)) as raw:
            data = raw.read()
    finally:
        store.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


@pytest.mark.parametrize("script, expected", [
    ("touch /tmp/new", ["C /tmp", "A /tmp/new"]),
    # a directory holding a change is reported too (Docker's rule), except /
    ("echo more >> /etc/passwd", ["C /etc", "C /etc/passwd"]),
    ("rm /etc/group", ["C /etc", "D /etc/group"]),
    ("chmod 600 /etc/passwd", ["C /etc", "C /etc/passwd"]),
    ("chown 1:1 /etc/passwd", ["C /etc", "C /etc/passwd"]),
    ("chmod 700 /etc", ["C /etc"]),
    ("ln -s /etc/passwd /tmp/link", ["C /tmp", "A /tmp/link"]),
    ("mkdir -p /opt/a/b && touch /opt/a/b/c", ["A /opt", "A /opt/a", "A /opt/a/b", "A /opt/a/b/c"]),
    ("rm -rf /var && touch /var", ["C /var"]),
    # copied up but not changed: not a change
    ("ln /etc/group /hard", ["A /hard"]),
    (": >> /etc/passwd", []),
    ("touch -r /etc/passwd /etc/group && chmod 644 /etc/group", []),
    ("true", []),
])
def test_diff_matches_docker(fl, busybox, script, expected):
    assert _run(fl, "c", script) == expected


def test_diff_of_a_deleted_tree_and_a_replaced_directory(fl, busybox):
    """One D for the top of a deleted tree, C for every directory above it; an opaque
    directory reports what the image had and the container no longer has."""
    _run(fl, "base", "mkdir -p /usr/share/doc/pkg /srv/old && touch /usr/share/doc/pkg/README"
                     " /srv/old/x /srv/keep")
    assert fl("commit", "base", "deep:1").code == 0
    assert _run(fl, "c1", "rm -rf /usr/share/doc", image="deep:1") == [
        "C /usr", "C /usr/share", "D /usr/share/doc"]
    assert _run(fl, "c2", "rm -rf /srv && mkdir /srv && echo k > /srv/keep && touch /srv/new",
                image="deep:1") == ["C /srv", "C /srv/keep", "A /srv/new", "D /srv/old"]
    assert _run(fl, "c3", "rm /srv/old/x && rmdir /srv/old", image="deep:1") == [
        "C /srv", "D /srv/old"]


def test_diff_reports_a_file_capability_change(fl, busybox):
    """security.capability is compared, as Docker does (set on the upper file by hand:
    busybox has no setcap)."""
    assert fl("run", "--name", "c", "busybox", "sh", "-c", "touch -r /bin/busybox /x").code == 0
    assert fl("commit", "c", "cap:1").code == 0
    assert fl("run", "--name", "d", "cap:1", "sh", "-c", "chmod 644 /x").code == 0
    assert fl("diff", "d").lines == []
    upper = _upper(fl, "d")
    # version 2 capability blob granting cap_net_raw (bit 13), effective
    os.setxattr(os.path.join(upper, "x"), "security.capability",
                bytes.fromhex("01000002") + (1 << 13).to_bytes(4, "little") + bytes(12))
    assert fl("diff", "d").lines == ["C /x"]


def _upper(fl, name):
    cid = json.loads(fl("inspect", name).out)[0]["Id"]
    return os.path.join(fl.root, "containers", cid, "upper")


def test_diff_ignores_hosts_files_and_mountpoints(fl, busybox):
    assert _run(fl, "c", "cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null; ls /proc /sys /dev >/dev/null") == []


def test_commit_roundtrip_of_every_kind_of_change(fl, busybox):
    script = ("echo hello > /root/file && chmod 640 /root/file && "
              "rm /etc/group && ln -s /root/file /root/link && ln /root/file /root/hard && "
              "mkdir /data && rm -rf /home && touch /home")
    _run(fl, "c", script)
    assert fl("commit", "c", "changed:1").code == 0
    check = ("cat /root/file; stat -c '%a %h' /root/file; readlink /root/link; "
             "test -e /etc/group && echo group-present || echo group-gone; "
             "test -f /home && echo home-is-file; test -d /data && echo data-dir")
    out = fl("run", "--rm", "changed:1", "sh", "-c", check)
    assert out.code == 0, out.err
    assert out.lines == ["hello", "640 2", "/root/file", "group-gone", "home-is-file", "data-dir"]
    members = _layer_members(fl, "changed:1")
    assert "etc/.wh.group" in members and members["etc/.wh.group"].size == 0
    assert members["root/hard"].islnk() or members["root/file"].islnk()
    assert members["root/link"].issym() and members["root/link"].linkname == "/root/file"


def test_opaque_directory_survives_commit(fl, busybox):
    _run(fl, "a", "mkdir -p /srv/old && touch /srv/old/x /srv/keep")
    assert fl("commit", "a", "base:1").code == 0
    lines = _run(fl, "b", "rm -rf /srv && mkdir /srv && touch /srv/new", image="base:1")
    assert lines == ["C /srv", "D /srv/keep", "A /srv/new", "D /srv/old"]
    assert fl("commit", "b", "base:2").code == 0
    assert "srv/.wh..wh..opq" in _layer_members(fl, "base:2")
    assert fl("run", "--rm", "base:2", "ls", "-A", "/srv").lines == ["new"]


def test_commit_is_deterministic(fl, busybox):
    _run(fl, "c", "mkdir -p /app/d && echo 1 > /app/d/f && rm /etc/group")
    assert fl("commit", "c", "one").code == 0
    assert fl("commit", "c", "two").code == 0
    one = json.loads(fl("inspect", "one").out)[0]["RootFS"]["Layers"]
    two = json.loads(fl("inspect", "two").out)[0]["RootFS"]["Layers"]
    assert one == two


def test_commit_without_changes_records_config(fl, busybox):
    _run(fl, "c", "true")
    res = fl("commit", "-c", "ENV A=1", "-m", "config only", "c", "cfg:1")
    assert res.code == 0, res.err
    info = json.loads(fl("inspect", "cfg:1").out)[0]
    base = json.loads(fl("inspect", "busybox").out)[0]
    assert info["RootFS"]["Layers"] == base["RootFS"]["Layers"]
    assert "A=1" in info["Config"]["Env"]
    history = fl("history", "--format", "{{.Size}} {{.Comment}}", "cfg:1").lines
    assert history[0] == "0B config only"


def test_container_keeps_working_after_commit(fl, busybox):
    _run(fl, "c", "echo run >> /log")
    assert fl("commit", "c", "snap:1").code == 0
    again = fl("start", "-a", "c")
    assert again.code == 0
    assert fl("run", "--rm", "snap:1", "cat", "/log").out == "run\n"
    assert fl("diff", "c").lines == ["A /log"]


def test_diff_walks_only_the_containers_layer(fl, busybox, monkeypatch):
    """Cost grows with the change: only the upper directory is listed, never an image layer."""
    from forklift.engine import containers, fsdiff
    from forklift.store import open_store

    _run(fl, "c", "touch /only /bin/new")
    listed = []
    original = os.scandir

    def recording(path):
        listed.append(str(path))
        return original(path)

    monkeypatch.setattr(fsdiff.os, "scandir", recording)
    store = open_store(str(fl.root))
    try:
        assert containers.diff(store, "c") == [("C", "/bin"), ("A", "/bin/new"), ("A", "/only")]
    finally:
        store.close()
    upper = _upper(fl, "c")
    assert listed == [upper, os.path.join(upper, "bin")]


def test_committed_layer_is_retarred_exactly_and_checked(fl, busybox, tmp_path):
    """A commit writes no tar; save re-makes it from the layer directory, byte-exact."""
    _run(fl, "c", "mkdir -p /app && echo x > /app/f && ln /app/f /app/g && ln -s f /app/s"
                  " && rm /etc/group && rm -rf /home && mkdir /home && touch /home/n")
    assert fl("commit", "c", "made:1").code == 0
    top = json.loads(fl("inspect", "made:1").out)[0]["RootFS"]["Layers"][-1]
    blob = os.path.join(fl.root, "blobs", "sha256", top.split(":")[1])
    assert not os.path.exists(blob), "commit should not have written a tar"
    assert fl("system", "check", "--full").code == 0
    assert fl("save", "-o", str(tmp_path / "a.tar"), "made:1").code == 0
    assert os.path.exists(blob)
    import hashlib
    with open(blob, "rb") as f:
        assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == top

    # a layer directory changed behind forklift's back is refused, never saved
    _run(fl, "d", "echo y > /tampered", image="busybox")
    assert fl("commit", "d", "made:2").code == 0
    top2 = json.loads(fl("inspect", "made:2").out)[0]["RootFS"]["Layers"][-1]
    from forklift.store import layers, open_store
    store = open_store(str(fl.root))
    layer_dir = layers.get(store, top2).path(store)
    store.close()
    with open(os.path.join(layer_dir, "tampered"), "a") as f:
        f.write("changed\n")
    res = fl("save", "-o", str(tmp_path / "b.tar"), "made:2", check=False)
    assert res.code != 0 and "no longer matches its diffID" in res.err
    assert not (tmp_path / "b.tar").exists()
    assert fl("system", "check", "--full", check=False).code != 0


def test_diff_prints_paths_as_their_bytes_on_both_command_paths(fl, busybox):
    """Docker prints a path's bytes as they are: an undecodable byte and an escape sequence
    reach the pipe unchanged, whether the line is read without click or by click (``--``)."""
    res = fl("run", "--name", "c", "busybox", "sh", "-c",
             "touch \"$(printf '/a\\377b')\" \"$(printf '/x\\033[31my')\"")
    assert res.code == 0, res.err
    want = sorted([b"A /a\xffb", b"A /x\x1b[31my"])
    assert sorted(fl("diff", "c").data.splitlines()) == want
    assert sorted(fl("diff", "--", "c").data.splitlines()) == want
