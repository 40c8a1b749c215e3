"""Volumes (named, anonymous, copy-up, rm -v, prune, --mount/--tmpfs/--volumes-from) and cp."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support import wait_for
from support.images import small_tar

pytestmark = pytest.mark.root


def test_volume_commands(fl: Any) -> None:
    assert fl.out("volume", "create", "--label", "a=b", "vol1") == "vol1"
    assert "vol1" in fl.out("volume", "ls", "-q")
    info = json.loads(fl.out("volume", "inspect", "vol1"))[0]
    assert info["Name"] == "vol1" and info["Driver"] == "local" and info["Labels"] == {"a": "b"}
    assert os.path.isdir(info["Mountpoint"])
    fl("run", "--rm", "-v", "vol1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert fl.out("run", "--rm", "-v", "vol1:/data", "busybox", "cat", "/data/f") == "kept"
    fl("create", "--name", "user1", "-v", "vol1:/data", "busybox", "true")
    fl("run", "--name", "user1b", "-v", "vol1:/data", "busybox", "true")
    proc = fl("volume", "rm", "vol1", check=False)
    assert proc.code != 0 and "in use" in proc.err
    fl("rm", "user1b")
    fl("rm", "user1")
    fl("volume", "rm", "vol1")
    assert "vol1" not in fl.out("volume", "ls", "-q")
    assert fl("volume", "inspect", "vol1", check=False).code != 0


def test_anonymous_volume_copy_up_rm_v_and_prune(fl: Any, name: str) -> None:
    # /etc has content in the image: a fresh volume there is seeded with it
    fl("run", "--name", name, "-v", "/etc", "busybox", "true")
    mounts = fl.inspect(name)["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Destination"] == "/etc"
    vol = mounts[0]["Name"]
    assert os.path.exists(os.path.join(mounts[0]["Source"], "passwd"))
    fl("rm", "-v", name)
    assert vol not in fl.out("volume", "ls", "-q")
    # prune removes unused anonymous volumes only
    fl("run", "--name", name, "-v", "/data", "busybox", "true")
    anon = fl.inspect(name)["Mounts"][0]["Name"]
    fl("volume", "create", "named-keep")
    fl("rm", name)
    assert anon in fl.out("volume", "ls", "-q")
    out = fl.out("volume", "prune", "-f")
    assert anon in out and "Total reclaimed space" in out
    assert "named-keep" in fl.out("volume", "ls", "-q")
    fl("volume", "rm", "named-keep")


def test_mount_tmpfs_volumes_from(fl: Any, name: str, tmp_path: Path) -> None:
    (tmp_path / "hostfile").write_text("from-host\n")
    out = fl.out("run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/h,readonly",
                 "--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,target=/t2",
                 "busybox", "sh", "-c",
                 "cat /h/hostfile; touch /h/x 2>/dev/null || echo ro; grep -c ' /scratch tmpfs' /proc/mounts;"
                 " grep -c ' /t2 tmpfs' /proc/mounts")
    assert out.split() == ["from-host", "ro", "1", "1"]
    fl("run", "--name", name, "--mount", "type=volume,source=shared1,target=/shared",
       "busybox", "sh", "-c", "echo s > /shared/f")
    assert fl.out("run", "--rm", "--volumes-from", name, "busybox", "cat", "/shared/f") == "s"
    fl("rm", name)
    fl("volume", "rm", "shared1")


def test_cp_in_and_out(fl: Any, name: str, tmp_path: Path) -> None:
    fl("run", "-d", "--name", name, "-v", "cpdata:/srv", "busybox", "sh", "-c",
       "echo hi > /srv/index.html; mkdir -p /d/sub; echo f > /d/sub/f; ln -s /etc/passwd /srv/link;"
       " ln -s ../../../../../../../tmp /escape; exec sleep 1000")
    wait_for(lambda: fl("exec", name, "test", "-L", "/escape", check=False).code == 0,
             what="setup")
    fl("cp", f"{name}:/srv/index.html", str(tmp_path))
    assert (tmp_path / "index.html").read_text() == "hi\n"
    fl("cp", f"{name}:/d", str(tmp_path / "d2"))
    assert (tmp_path / "d2" / "sub" / "f").read_text() == "f\n"
    # symlinks are copied as links, not followed on the host
    fl("cp", f"{name}:/srv/link", str(tmp_path / "link"))
    assert os.readlink(tmp_path / "link") == "/etc/passwd"
    # -L resolves inside the container: the container's /etc/passwd, not the host's
    fl("cp", "-L", f"{name}:/srv/link", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text() == fl("exec", name, "cat", "/etc/passwd").out
    src = tmp_path / "x"
    src.write_text("new\n")
    fl("cp", str(src), f"{name}:/srv/")
    assert fl.out("exec", name, "cat", "/srv/x") == "new"
    # a symlink pointing out of the container: the copy lands inside it
    marker = f"forklift-cp-escape-{os.getpid()}"
    (tmp_path / marker).write_text("escape\n")
    fl("cp", str(tmp_path / marker), f"{name}:/escape/")
    assert not os.path.exists(f"/tmp/{marker}")
    assert fl.out("exec", name, "cat", f"/tmp/{marker}") == "escape"
    # copying a directory in, and into a stopped container
    (tmp_path / "tree" / "a").mkdir(parents=True)
    (tmp_path / "tree" / "a" / "b").write_text("b\n")
    fl("stop", "-t", "0", name)
    fl("cp", str(tmp_path / "tree"), f"{name}:/opt")
    fl("start", name)
    assert fl.out("exec", name, "cat", "/opt/a/b") == "b"
    assert fl("cp", f"{name}:/nonexistent", str(tmp_path), check=False).code != 0
    fl("rm", "-f", "-v", name)
    fl("volume", "rm", "cpdata")


def _volumes(fl: Any) -> set[str]:
    return set(fl.out("volume", "ls", "-q").split())


def test_create_makes_seeds_and_attaches_volumes_as_docker(fl: Any, name: str,
                                                          tmp_path: Path) -> None:
    """``create`` (not only the first start) makes the named and anonymous volumes,
    seeds them from the image and attaches them: ``volume ls``, ``inspect`` and a ``cp``
    into a volume's path see them, and the start uses those same volumes."""
    before = _volumes(fl)
    named = f"{name}-etc"
    fl("create", "--name", name, "-v", f"{named}:/etc", "-v", "/data", "busybox",
       "sh", "-c", "cat /data/note; test -f /etc/passwd")
    try:
        made = _volumes(fl) - before
        assert named in made and len(made) == 2, made
        mounts = {m["Destination"]: m for m in fl.inspect(name)["Mounts"]}
        assert mounts["/etc"]["Name"] == named and mounts["/data"]["Name"] in made
        seeded = json.loads(fl.out("volume", "inspect", named))[0]["Mountpoint"]
        assert os.path.isfile(os.path.join(seeded, "passwd"))  # the image's /etc, at create
        note = tmp_path / "note"
        note.write_text("copied before the start\n")
        fl("cp", str(note), f"{name}:/data/note")
        assert fl.out("start", "-a", name) == "copied before the start"
        assert {m["Name"] for m in fl.inspect(name)["Mounts"]} == made  # no new ones
        assert _volumes(fl) - before == made
    finally:
        fl("rm", "-v", name)
        fl("volume", "rm", named)
    assert _volumes(fl) == before  # rm -v took the anonymous one


def test_a_failed_create_leaves_no_volume_it_made(fl: Any, name: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A taken name is refused before any volume is made (Docker reserves the name
    first); a create that fails after its volumes (its image removed by another process
    between the volumes and the commit) removes the anonymous ones it made and leaves the
    named ones, unused."""
    from forklift.engine import containers as engine
    from forklift.engine import mounts
    from forklift.errors import NotFound
    from forklift.store import open_store

    fl("create", "--name", name, "busybox", "true")
    try:
        before = _volumes(fl)
        proc = fl("create", "--name", name, "-v", "/data", "-v", f"{name}-kept:/kept",
                  "busybox", "true", check=False)
        assert proc.code != 0 and "already in use" in proc.err
        assert proc.err.count("\n") <= 1 and "Traceback" not in proc.err
        assert _volumes(fl) == before
    finally:
        fl("rm", name)

    fl("import", str(small_tar(tmp_path / "s.tar", 1)), f"{name}-img")  # its own image
    made = mounts.create_volumes

    def then_the_image_goes(store: Any, rec: Any) -> None:
        made(store, rec)
        fl("rmi", "-f", f"{name}-img")

    monkeypatch.setattr(mounts, "create_volumes", then_the_image_goes)
    store = open_store(str(fl.root))
    try:
        with pytest.raises(NotFound):
            engine.create(store, f"{name}-img", ["true"], engine.CreateOptions(
                network="none", volumes=["/data", f"{name}-kept:/kept"]), volumes=True)
    finally:
        store.close()
    assert _volumes(fl) - before == {f"{name}-kept"}
    fl("volume", "rm", f"{name}-kept")  # nothing uses it
