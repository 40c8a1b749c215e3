"""Chapter 7 of "Docker in Action", command by command, through the real CLI."""

from __future__ import annotations

import json
import re
import tarfile

import pytest

pytestmark = pytest.mark.root


def test_chapter_seven_walkthrough(fl, busybox, tmp_path):
    assert fl("container", "run", "--name", "hw_container", "busybox:latest", "touch", "/HelloWorld").code == 0
    diff = fl("container", "diff", "hw_container")
    assert diff.code == 0 and diff.lines == ["A /HelloWorld"]

    commit = fl("container", "commit", "-m", "add hello", "-a", "Packager <packager@example.org>",
                "hw_container", "hw_image")
    assert commit.code == 0, commit.err
    image_id = commit.out.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)

    flat = tmp_path / "flat.tar"
    assert fl("container", "export", "hw_container", "-o", str(flat)).code == 0
    assert fl("container", "rm", "-vf", "hw_container").code == 0
    assert fl("ps", "-a", "-q").out.strip() == ""

    ls = fl("container", "run", "--rm", "hw_image", "ls", "-l", "/HelloWorld")
    assert ls.code == 0 and "/HelloWorld" in ls.out
    assert fl("ps", "-aq").out.strip() == "", "--rm left the container behind"

    assert fl("image", "tag", "hw_image:latest", "hw_image:2.7").code == 0
    history = fl("image", "history", "hw_image")
    header, *rows = history.lines
    assert header.split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(rows) == 2
    assert rows[0].startswith(image_id[7:19]) and "touch /HelloWorld" in rows[0]
    assert rows[0].split()[-3:] == ["0B", "add", "hello"]
    assert rows[1].startswith(busybox[7:19])

    images = fl("image", "ls")
    assert images.lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    tags = {tuple(line.split()[:3]) for line in images.lines[1:]}
    assert ("hw_image", "latest", image_id[7:19]) in tags
    assert ("hw_image", "2.7", image_id[7:19]) in tags

    info = json.loads(fl("image", "inspect", "hw_image").out)[0]
    assert info["Id"] == image_id
    assert sorted(info["RepoTags"]) == ["hw_image:2.7", "hw_image:latest"]
    assert info["Parent"] == busybox
    assert info["Comment"] == "add hello"
    assert info["Author"] == "Packager <packager@example.org>"
    assert info["Config"]["Cmd"] == ["touch", "/HelloWorld"]
    assert len(info["RootFS"]["Layers"]) == 2, "an empty-file change still is a layer"
    assert info["Size"] > 1_000_000

    with tarfile.open(flat) as tf:
        names = tf.getnames()
    assert "HelloWorld" in names and "bin/busybox" in names
    imported = fl("image", "import", "-c", "ENV PATH=/bin", "-c", 'CMD ["sh"]', "-m", "flat",
                  str(flat), "flat:1")
    assert imported.code == 0, imported.err
    flat_info = json.loads(fl("image", "inspect", "flat:1").out)[0]
    assert len(flat_info["RootFS"]["Layers"]) == 1
    assert flat_info["Config"]["Env"] == ["PATH=/bin"] and flat_info["Config"]["Cmd"] == ["sh"]
    assert fl("image", "history", "flat:1").lines[1].split()[-1] == "flat"
    assert fl("run", "--rm", "flat:1", "ls", "/HelloWorld").out.strip() == "/HelloWorld"


def test_entrypoint_is_carried_into_commit(fl, busybox):
    assert fl("container", "run", "--name", "cmd-git", "--entrypoint", "echo", "busybox", "hi").code == 0
    assert fl("commit", "cmd-git", "ubuntu-git").code == 0
    cfg = json.loads(fl("inspect", "ubuntu-git").out)[0]["Config"]
    assert cfg["Entrypoint"] == ["echo"]
    assert cfg["Cmd"] == ["hi"]
    out = fl("run", "--rm", "ubuntu-git", "other", "args")
    assert out.out == "other args\n"


def test_classic_shortcuts_match_management_commands(fl, busybox):
    assert fl("run", "--name", "c1", "busybox", "touch", "/a").code == 0
    assert fl("diff", "c1").out == fl("container", "diff", "c1").out
    assert fl("commit", "c1", "x:1").code == 0
    assert fl("tag", "x:1", "x:2").code == 0
    assert fl("images", "-q").out == fl("image", "ls", "-q").out
    assert fl("history", "-q", "x:1").out == fl("image", "history", "-q", "x:1").out
    assert fl("rm", "c1").code == 0
    res = fl("rmi", "x:2")
    assert res.out.strip() == "Untagged: x:2"
