"""commit of a stopped container moves its upper directory into the store as the layer
(engine/commitlayer): the layer's data is never copied, the container keeps behaving as
if nothing moved, and the layer never changes afterwards."""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest
from support.store import assert_no_corruption, dead_pid

pytestmark = pytest.mark.root

STEP1 = ("mkdir -p /data/d /srv && echo one > /data/d/f && echo keep > /data/k"
         " && echo gone > /data/g && rm /etc/group && chmod 600 /etc/passwd"
         " && touch /srv/x && mkdir /opt && echo o > /opt/o")
STEP2 = ("echo two >> /data/d/f && rm /data/g && ln /data/k /data/k2 && chmod 700 /data/d"
         " && rm -rf /srv && mkdir /srv && touch /srv/y && rm -rf /opt && echo z > /z"
         " && rm /etc/passwd")


def _script(tmp: Path, text: str) -> None:
    (tmp / "s.sh").write_text(text + "\n")


def _make(fl, tmp: Path, name: str, script: str) -> None:
    """A container whose command runs the host's s.sh, so each `start` runs the current one."""
    _script(tmp, script)
    res = fl("run", "--network", "none", "--name", name, "-v", f"{tmp}:/x", "busybox", "sh", "/x/s.sh")
    assert res.code == 0, res.err


def _again(fl, tmp: Path, name: str, script: str) -> None:
    _script(tmp, script)
    res = fl("start", "-a", name)
    assert res.code == 0, res.err


def _graph(fl, name: str) -> dict[str, str]:
    return json.loads(fl("inspect", name).out)[0]["GraphDriver"]["Data"]


def _top_layer(fl, image: str) -> tuple[str, str]:
    """(diffID, directory) of the image's top layer."""
    from forklift.store import layers, open_store

    diff_id = json.loads(fl("image", "inspect", image).out)[0]["RootFS"]["Layers"][-1]
    store = open_store(str(fl.root))
    try:
        layer = layers.get(store, diff_id)
        assert layer is not None
        return diff_id, layer.path(store)
    finally:
        store.close()


def _members(fl, image: str) -> set[str]:
    """Names in the image's top layer tar, as save and push would send it."""
    return set(_our_top_members(fl, image))


def _export(fl, name: str, tmp: Path) -> dict[str, tuple[int, bytes]]:
    out = tmp / f"{name}.tar"
    assert fl("export", name, "-o", str(out)).code == 0
    with tarfile.open(out) as tf:
        return {m.name: (m.mode, tf.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tf.getmembers()}


def _size_rw(fl, name: str) -> int:
    return int(json.loads(fl("inspect", "-s", name).out)[0]["SizeRw"])


def _check_full(fl) -> None:
    res = fl("system", "check", "--full", check=False)
    assert res.code == 0, res.out + res.err


def test_commit_moves_the_upper_directory_and_the_container_is_unchanged(fl, busybox, tmp_path):
    _make(fl, tmp_path, "c", STEP1)
    upper = _graph(fl, "c")["UpperDir"]
    inode = os.lstat(os.path.join(upper, "data/d/f")).st_ino
    before = (fl("diff", "c").lines, _export(fl, "c", tmp_path), _size_rw(fl, "c"))
    assert fl("commit", "c", "moved:1").code == 0
    diff_id, layer = _top_layer(fl, "moved:1")
    # moved, not copied: the same inode, now in the layer; the container has a fresh upper
    assert os.lstat(os.path.join(layer, "data/d/f")).st_ino == inode
    assert os.listdir(upper) == []
    graph = _graph(fl, "c")
    assert graph["UpperDir"] == upper and layer not in graph["UpperDir"]
    assert graph["LowerDir"].split(":")[0] == layer
    assert (fl("diff", "c").lines, _export(fl, "c", tmp_path), _size_rw(fl, "c")) == before
    assert fl("run", "--rm", "--network", "none", "moved:1", "cat", "/data/d/f").lines == ["one"]
    _check_full(fl)


def test_the_committed_layer_never_changes(fl, busybox, tmp_path):
    """The container writes, deletes, hardlinks and chmods files of the committed layer:
    the layer's tree still hashes to its diffID and `system check --full` is clean."""
    from forklift import archive

    _make(fl, tmp_path, "c", STEP1)
    assert fl("commit", "c", "moved:1").code == 0
    diff_id, layer = _top_layer(fl, "moved:1")
    before = {p: os.lstat(p) for p in (os.path.join(layer, "data/d/f"), os.path.join(layer, "data/k"))}
    _again(fl, tmp_path, "c", STEP2 + " && echo x > /data/k && chmod 777 /data/k && rm /data/d/f"
           " && : > /data/d/f2")
    assert archive.hash_layer(layer)[0] == diff_id
    for path, st in before.items():
        now = os.lstat(path)
        assert (now.st_ino, now.st_mode, now.st_nlink, now.st_size, now.st_mtime_ns) == (
            st.st_ino, st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns)
    assert _graph(fl, "c")["UpperDir"] != layer
    _check_full(fl)
    assert fl("run", "--rm", "--network", "none", "moved:1", "cat", "/data/k", "/data/d/f").lines == [
        "keep", "one"]


def test_diff_and_commit_after_a_commit_are_as_if_nothing_moved(fl, busybox, tmp_path):
    """Two containers make the same changes; one is committed in between. Their diffs,
    exports and second commits hold the same (every change since the image, in one layer:
    Docker's commit of a container committed before)."""
    twin = tmp_path / "twin"
    twin.mkdir()
    _make(fl, tmp_path, "c", STEP1)
    _make(fl, twin, "t", STEP1)
    assert fl("commit", "c", "first:1").code == 0
    assert fl("diff", "c").lines == fl("diff", "t").lines
    _again(fl, tmp_path, "c", STEP2)
    _again(fl, twin, "t", STEP2)
    diff = fl("diff", "c").lines
    assert diff == fl("diff", "t").lines
    assert "D /data/g" not in diff and "D /opt" not in diff and "A /data/k2" in diff
    assert _export(fl, "c", tmp_path) == _export(fl, "t", twin)
    assert fl("commit", "c", "second:1").code == 0
    assert fl("commit", "t", "twin:1").code == 0
    layers = json.loads(fl("image", "inspect", "second:1").out)[0]["RootFS"]["Layers"]
    assert len(layers) == len(json.loads(fl("image", "inspect", "busybox").out)[0]["RootFS"]["Layers"]) + 1
    # what was added after the first commit and deleted again leaves no trace
    assert _members(fl, "second:1") == _members(fl, "twin:1")
    assert not any(m in ("data/.wh.g", "opt", ".wh.opt") for m in _members(fl, "second:1"))
    show = "cat /data/d/f /data/k2 /z; ls /srv; ls /opt /data/g /etc/passwd 2>&1 | wc -l"
    assert (fl("run", "--rm", "--network", "none", "second:1", "sh", "-c", show).lines
            == fl("run", "--rm", "--network", "none", "twin:1", "sh", "-c", show).lines)
    _check_full(fl)


def test_a_commit_with_nothing_new_reuses_the_moved_layer(fl, busybox, tmp_path):
    _make(fl, tmp_path, "c", STEP1)
    assert fl("commit", "c", "a:1").code == 0
    assert fl("commit", "c", "b:1").code == 0
    assert _top_layer(fl, "a:1") == _top_layer(fl, "b:1")


def test_the_moved_layer_stays_while_the_container_uses_it(fl, busybox, tmp_path):
    """rmi of the committed image leaves the container its layer; rm of the container
    then frees it; an image that still uses it keeps it after the container is gone."""
    _make(fl, tmp_path, "c", STEP1)
    assert fl("commit", "c", "moved:1").code == 0
    _diff_id, layer = _top_layer(fl, "moved:1")
    diff = fl("diff", "c").lines
    assert fl("rmi", "moved:1").code == 0
    assert os.path.isdir(layer)
    _check_full(fl)
    _again(fl, tmp_path, "c", "cat /data/d/f")
    assert fl("diff", "c").lines == diff
    assert fl("rm", "c").code == 0
    assert not os.path.exists(layer)
    _make(fl, tmp_path, "d", STEP1)
    assert fl("commit", "d", "kept:1").code == 0
    _diff_id, layer = _top_layer(fl, "kept:1")
    assert fl("rm", "d").code == 0
    assert fl("system", "prune", "-f").code == 0
    assert os.path.isdir(layer)
    assert fl("run", "--rm", "--network", "none", "kept:1", "cat", "/data/d/f").lines == ["one"]
    _check_full(fl)


def test_rmi_force_of_the_image_keeps_the_container_on_its_stack(fl, busybox, tmp_path):
    assert fl("run", "--network", "none", "--name", "b", "busybox", "touch", "/b").code == 0
    assert fl("commit", "b", "base:1").code == 0
    assert fl("rm", "b").code == 0
    _script(tmp_path, STEP1)
    assert fl("run", "--network", "none", "--name", "c", "-v", f"{tmp_path}:/x", "base:1",
              "sh", "/x/s.sh").code == 0
    assert fl("commit", "c", "moved:1").code == 0
    diff = fl("diff", "c").lines
    assert fl("rmi", "-f", "base:1").code == 0
    assert fl("diff", "c").lines == diff
    _again(fl, tmp_path, "c", "cat /data/d/f")
    _check_full(fl)


def test_a_running_container_is_copied(fl, busybox):
    assert fl("run", "-d", "--network", "none", "--name", "r", "busybox", "sh", "-c",
              "echo r > /r && sleep 60").code == 0
    upper = _graph(fl, "r")["UpperDir"]
    for _ in range(200):
        if os.path.exists(os.path.join(upper, "r")):
            break
        time.sleep(0.05)
    assert fl("commit", "r", "live:1").code == 0
    assert os.listdir(upper) == ["r"]
    assert fl("rm", "-f", "r").code == 0
    assert fl("run", "--rm", "--network", "none", "live:1", "cat", "/r").lines == ["r"]


@pytest.mark.parametrize("checkpoint", ["layer-after-rename", "layer-extracted", "image-before-commit"])
def test_a_commit_killed_mid_move_leaves_the_container_as_it_was(fl, busybox, tmp_path, checkpoint):
    """Killed inside the move's transaction, the directory is put back by the next
    command; killed after it (the image not yet recorded), the container stays on its
    own layer: either way its diff and export are what they were and no image exists."""
    _make(fl, tmp_path, "c", STEP1)
    diff = fl("diff", "c").lines
    exported = _export(fl, "c", tmp_path)
    res = fl("commit", "c", "victim:1", env={"FORKLIFT_CRASH_AT": checkpoint}, check=False)
    assert res.code == -signal.SIGKILL
    assert_no_corruption(fl.root)
    assert fl("diff", "c").lines == diff  # the next command puts the directory back
    assert fl("image", "inspect", "victim:1", check=False).code != 0
    cid = json.loads(fl("inspect", "c").out)[0]["Id"]
    assert "commit-move" not in os.listdir(fl.root / "containers" / cid)
    assert _export(fl, "c", tmp_path) == exported
    _check_full(fl)
    assert fl("commit", "c", "victim:1").code == 0
    assert fl("diff", "c").lines == diff


def test_a_commit_killed_after_its_transaction_keeps_the_move(fl, busybox, tmp_path):
    _make(fl, tmp_path, "c", STEP1)
    diff = fl("diff", "c").lines
    res = fl("commit", "c", "done:1", env={"FORKLIFT_CRASH_AT": "image-after-commit"}, check=False)
    assert res.code == -signal.SIGKILL
    assert_no_corruption(fl.root)
    assert fl("diff", "c").lines == diff
    assert fl("run", "--rm", "--network", "none", "done:1", "cat", "/data/d/f").lines == ["one"]
    _check_full(fl)


def _docker_top_members(docker, image: str, tmp: Path) -> dict[str, str]:
    out = tmp / "docker-saved.tar"
    docker("save", "-o", str(out), image)
    with tarfile.open(out) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tf.extractfile(manifest[0]["Layers"][-1])
        assert layer is not None
        with tarfile.open(fileobj=io.BytesIO(layer.read())) as inner:
            return {m.name.rstrip("/"): m.type.decode() for m in inner.getmembers()}


def _our_top_members(fl, image: str) -> dict[str, str]:
    from forklift.formats import layerblobs
    from forklift.store import layers, open_store

    diff_id = json.loads(fl("image", "inspect", image).out)[0]["RootFS"]["Layers"][-1]
    store = open_store(str(fl.root))
    try:
        with layerblobs.open_uncompressed(store, layers.get(store, diff_id)) as raw:
            data = raw.read()
    finally:
        store.close()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.rstrip("/"): m.type.decode() for m in tf.getmembers()}


@pytest.mark.docker
def test_commit_change_commit_gives_the_layer_docker_gives(fl, docker, busybox, busybox_tar, tmp_path):
    """Docker's second commit of a container holds every change since the image in one
    layer; ours (the moved layer merged with the new changes) has the same entries."""
    docker("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), "fl-cm-busybox:latest")
    theirs = tmp_path / "docker"
    theirs.mkdir()
    try:
        _script(theirs, STEP1)
        docker("run", "--network", "none", "--name", "fl-cm", "-v", f"{theirs}:/x",
               "fl-cm-busybox", "sh", "/x/s.sh")
        docker("commit", "fl-cm", "fl-cm-first:1")
        _script(theirs, STEP2)
        docker("start", "-a", "fl-cm")
        docker("commit", "fl-cm", "fl-cm-second:1")
        expected = _docker_top_members(docker, "fl-cm-second:1", tmp_path)
        assert len(json.loads(docker("image", "inspect", "fl-cm-second:1").out)[0]["RootFS"]
                   ["Layers"]) == 2
    finally:
        docker("rm", "-f", "fl-cm", check=False)
        docker("rmi", "fl-cm-second:1", "fl-cm-first:1", "fl-cm-busybox:latest", check=False)
    _make(fl, tmp_path, "c", STEP1)
    assert fl("commit", "c", "first:1").code == 0
    _again(fl, tmp_path, "c", STEP2)
    assert fl("commit", "c", "second:1").code == 0
    assert _our_top_members(fl, "second:1") == expected


@pytest.mark.parametrize("state", ["marker-only", "before-swap", "swapped", "renamed-no-upper"])
def test_recovery_puts_back_an_upper_directory_from_any_point_of_the_move(fl, busybox, tmp_path, state):
    """Each state a killed move can leave between two system calls (the marker written,
    the fresh directory made, the two swapped, or renamed without RENAME_EXCHANGE): the
    next command gives the container its upper directory back."""
    _make(fl, tmp_path, "c", STEP1)
    diff = fl("diff", "c").lines
    cid = json.loads(fl("inspect", "c").out)[0]["Id"]
    base = fl.root / "containers" / cid
    upper, layer = base / "upper", fl.root / "layers" / "0badc0ffee00"
    dead = dead_pid()
    (base / "commit-move").write_text(json.dumps({"pid": dead, "layer": layer.name, "upper": str(upper)}))
    (fl.root / "tmp" / f"{dead}-dirty-x").write_text("")
    if state != "marker-only":
        (layer / "diff").mkdir(parents=True)
    if state == "swapped":
        os.rename(upper, tmp_path / "held")
        os.rename(layer / "diff", upper)
        os.rename(tmp_path / "held", layer / "diff")
    elif state == "renamed-no-upper":
        os.rmdir(layer / "diff")
        os.rename(upper, layer / "diff")
    assert fl("diff", "c").lines == diff
    assert not layer.exists() and not (base / "commit-move").exists()
    _check_full(fl)
