"""Image commands: tag grammar, rmi rules, listings, history, inspect, lookups, --format."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.root


@pytest.mark.parametrize("bad, message", [
    ("UPPER:1", "must be lowercase"),
    ("has space", "invalid reference format"),
    ("x:" + "t" * 129, "invalid reference format"),
    ("a" * 64, "64-byte hexadecimal"),
    ("x@sha256:1234", "invalid reference format"),
    ("_lead", "invalid reference format"),
])
def test_tag_rejects_bad_names(fl, busybox, bad, message):
    res = fl("tag", "busybox", bad, check=False)
    assert res.code != 0
    assert res.err.startswith("Error: ") and message in res.err and res.err.count("\n") == 1


def test_tag_normalizes_like_docker(fl, busybox):
    for name in ("docker.io/library/alias:1", "localhost:5000/team/app:1.4.2", "me/app"):
        assert fl("tag", "busybox", name).code == 0
    repos = {(line.split()[0], line.split()[1]) for line in fl("images").lines[1:]}
    assert {("alias", "1"), ("localhost:5000/team/app", "1.4.2"), ("me/app", "latest")} <= repos
    assert fl("inspect", "-f", "{{.Id}}", "alias:1").out.strip() == busybox


def test_lookup_by_id_prefix_and_full_id(fl, busybox):
    for name in (busybox, busybox[7:], busybox[7:19], busybox[7:11]):
        res = fl("image", "inspect", "-f", "{{.Id}}", name)
        assert res.out.strip() == busybox, name
    missing = fl("image", "inspect", "nothere", check=False)
    assert missing.code != 0 and missing.err.strip() == "Error: No such image: nothere:latest"


def test_rmi_untags_then_deletes_and_frees_layers(fl, busybox):
    assert fl("run", "--name", "c", "busybox", "touch", "/x").code == 0
    image_id = fl("commit", "c", "img:1").out.strip()
    assert fl("tag", "img:1", "img:2").code == 0
    assert fl("rmi", "img:1").out.strip() == "Untagged: img:1"
    assert fl("create", "--name", "user", "img:2", "true").code == 0
    refused = fl("rmi", "img:2", check=False)
    assert refused.code != 0
    assert "container" in refused.err and "is using its referenced image" in refused.err
    assert fl("rm", "c", "user").code == 0
    layers_before = len(os.listdir(fl.root / "layers"))
    out = fl("rmi", "img:2").lines
    assert out == ["Untagged: img:2", f"Deleted: {image_id}"]
    assert len(os.listdir(fl.root / "layers")) == layers_before - 1
    assert fl("run", "--rm", "busybox", "true").code == 0, "the base image's layer must survive"


def test_rmi_by_id_with_several_tags_needs_force(fl, busybox):
    assert fl("tag", "busybox", "other:1").code == 0
    res = fl("rmi", busybox[7:19], check=False)
    assert res.code != 0 and "referenced in multiple repositories" in res.err
    forced = fl("rmi", "-f", busybox[7:19])
    assert forced.code == 0
    assert "Untagged: busybox:latest" in forced.lines and "Untagged: other:1" in forced.lines
    assert fl("images", "-qa").out == ""


def test_rmi_force_deletes_the_record_a_stopped_container_keeps_running(fl, busybox):
    # Docker: untagged and deleted; the container keeps the layers and runs on the ID
    assert fl("create", "--name", "c", "busybox", "true").code == 0
    res = fl("rmi", "-f", "busybox")
    assert res.code == 0 and res.lines == ["Untagged: busybox:latest", f"Deleted: {busybox}"]
    assert fl("start", "-a", "c").code == 0
    assert fl("images", "-aq").out == ""


def test_image_ls_size_is_sum_of_layers(fl, busybox):
    assert fl("run", "--name", "c", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /blob").code == 0
    assert fl("commit", "c", "big:1").code == 0
    sizes = {line.split()[0]: line.split()[-1] for line in fl("images").lines[1:]}
    base = int(json.loads(fl("inspect", "busybox").out)[0]["Size"])
    total = int(json.loads(fl("inspect", "big:1").out)[0]["Size"])
    assert total == base + 300_000
    from forklift.cli.format import human_size
    assert sizes["big"] == human_size(total)


def test_formats_quiet_and_no_trunc(fl, busybox):
    assert fl("images", "--format", "{{.Repository}}:{{.Tag}}").out == "busybox:latest\n"
    table = fl("images", "--format", "table {{.Repository}}\t{{.ID}}").lines
    assert table[0].split() == ["REPOSITORY", "IMAGE", "ID"]
    assert fl("images", "--no-trunc", "-q").out.strip() == busybox
    assert fl("images", "-q").out.strip() == busybox[7:19]
    row = json.loads(fl("images", "--format", "{{json .}}").out)
    assert row["Repository"] == "busybox" and row["Tag"] == "latest"
    assert fl("inspect", "-f", "{{.Config.Cmd}}", "busybox").out == "[sh]\n"


def test_history_of_an_image_with_metadata_steps(fl, busybox):
    assert fl("run", "--name", "c", "busybox", "true").code == 0
    assert fl("commit", "-c", "LABEL x=y", "c", "meta:1").code == 0
    assert fl("run", "--name", "d", "meta:1", "touch", "/f").code == 0
    assert fl("commit", "-m", "with file", "d", "meta:2").code == 0
    rows = fl("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "meta:2").lines
    assert len(rows) == 3
    assert rows[0].split("|")[1:] == ["touch /f", "0B", "with file"]
    assert rows[1].split("|")[1:3] == ["true", "0B"]
    assert rows[2].split("|")[2] != "0B"
    no_trunc = fl("history", "--no-trunc", "-q", "meta:2").lines
    assert no_trunc[0].startswith("sha256:")


def test_image_with_120_layers_runs(fl, busybox, busybox_tar, tmp_path):
    """Build 120 layers straight through the library and run the result."""
    from forklift import oci
    from forklift.store import images as image_store
    from forklift.store import layers as layer_store
    from forklift.store import open_store

    store = open_store(str(fl.root))
    base = image_store.layers(store, busybox)[0]
    prepared = [layer_store.reuse(store, base.diff_id)]
    for i in range(119):
        src = tmp_path / f"l{i}"
        (src / "layers").mkdir(parents=True)
        (src / "layers" / f"file{i:03d}").write_text(str(i))
        tar = tmp_path / f"l{i}.tar"
        subprocess.run(["tar", "-C", str(src), "-cf", str(tar), "layers"], check=True)
        with open(tar, "rb") as f:
            prepared.append(layer_store.ingest(store, f))
    created = oci.now_rfc3339()
    cfg = oci.new_image_config({"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                               [p.diff_id for p in prepared],
                               [{"created": created}] * 120, created)
    try:
        image_store.add(store, oci.canonical_json(cfg), prepared, tags=["docker.io/library/tall:120"])
    finally:
        for p in prepared:
            p.cleanup()
    store.close()
    res = fl("run", "--rm", "tall:120", "sh", "-c", "ls /layers | wc -l; cat /layers/file118")
    assert res.code == 0, res.err
    assert res.lines == ["119", "118"]
