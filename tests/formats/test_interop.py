"""Interop with real tools: skopeo and umoci always, Docker (a private dockerd) when marked."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support import Forklift, Result, run
from support.docker import Docker
from support.store import NewStore

pytestmark = pytest.mark.root


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def _run(*cmd: str) -> Result:
    return run(cmd, timeout=300)


def test_skopeo_oci_dir_to_docker_archive_to_forklift(source_store: Forklift, new_store: NewStore,
                                                      tmp_path: Path) -> None:
    _need("skopeo")
    layout = tmp_path / "hw-layout"
    source_store("save", "--format", "oci-dir", "-o", str(layout), "hw_image:2.7")
    _run("skopeo", "copy", "-q", f"oci:{layout}:2.7", f"docker-archive:{tmp_path}/x.tar:hw:1")
    dest = new_store()
    assert dest.out("load", "-i", str(tmp_path / "x.tar")) == "Loaded image: hw:1"
    want = source_store.inspect("hw_image:2.7")
    got = dest.inspect("hw:1")
    assert (got["Id"], got["RootFS"]) == (want["Id"], want["RootFS"])
    run = dest.out("run", "--rm", "hw:1", "sh", "-c", "ls /HelloWorld; ls /bin/cat || echo gone")
    assert run.splitlines() == ["/HelloWorld", "gone"]


def test_skopeo_reads_forklift_docker_archive_and_oci_archive(
        source_store: Forklift, new_store: NewStore, tmp_path: Path) -> None:
    _need("skopeo")
    source_store("save", "-o", str(tmp_path / "d.tar"), "other:1")
    source_store("save", "--format", "oci-archive", "-o", str(tmp_path / "o.tar"), "other:1")
    want = source_store.inspect("other:1")
    for ref in (f"docker-archive:{tmp_path}/d.tar", f"oci-archive:{tmp_path}/o.tar"):
        info = json.loads(_run("skopeo", "inspect", "--config", ref).out)
        assert info["rootfs"]["diff_ids"] == want["RootFS"]["Layers"]
    # and forklift reads what skopeo writes as an OCI layout (bare ref.name: loaded by ID;
    # skopeo re-serializes the config when converting, so the ID differs but no diffID does)
    _run("skopeo", "copy", "-q", f"docker-archive:{tmp_path}/d.tar", f"oci:{tmp_path}/sk:v1")
    dest = new_store()
    line = dest.out("load", "-i", str(tmp_path / "sk"))
    assert line.startswith("Loaded image ID: sha256:")
    got = dest.inspect(line.rsplit(" ", 1)[1])
    assert got["RootFS"]["Layers"] == want["RootFS"]["Layers"]


def test_umoci_unpacks_forklift_layout_with_whiteouts(source_store: Forklift,
                                                      tmp_path: Path) -> None:
    _need("umoci")
    layout = tmp_path / "hw-layout"
    source_store("save", "--format", "oci-dir", "-o", str(layout), "hw_image")
    bundle = tmp_path / "bundle"
    _run("umoci", "unpack", "--image", f"{layout}:latest", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "HelloWorld").is_file()
    assert (rootfs / "bin" / "busybox").is_file()
    assert not os.path.lexists(rootfs / "bin" / "cat")  # deleted by the upper layer
    assert os.path.islink(rootfs / "bin" / "ls")
    assert not list(rootfs.rglob(".wh.*"))


# ----------------------------------------------------------------------------- docker

@pytest.mark.docker
def test_forklift_save_docker_load_run(source_store: Forklift, tmp_path: Path,
                                       docker: Docker) -> None:
    archive = tmp_path / "hw.tar"
    source_store("save", "-o", str(archive), "hw_image:latest", "hw_image:2.7", "other:1")
    loaded = docker("load", "-i", str(archive)).out
    assert "Loaded image: hw_image:2.7" in loaded and "Loaded image: other:1" in loaded
    for name in ("hw_image:2.7", "other:1"):
        info = json.loads(docker("image", "inspect", name).out)[0]
        want = source_store.inspect(name)
        assert (info["Id"], info["RootFS"]["Layers"]) == (want["Id"], want["RootFS"]["Layers"])
    run = docker("run", "--rm", "--network", "none", "hw_image", "sh", "-c",
                 "ls -l /HelloWorld >/dev/null && echo ok; ls /bin/cat || echo gone")
    assert run.out.split() == ["ok", "gone"]


@pytest.mark.docker
def test_docker_save_forklift_load_run(source_store: Forklift, new_store: NewStore,
                                       docker: Docker) -> None:
    docker("load", input=source_store("save", "hw_image:2.7").data)
    docker("rm", "-f", "dk", check=False)
    docker("run", "--name", "dk", "--network", "none", "hw_image:2.7", "sh", "-c",
           "echo from-docker > /docker.txt && rm /bin/touch")
    docker("commit", "dk", "dockermade:1")
    docker("rm", "-f", "dk")
    saved = docker("save", "dockermade:1").data
    dest = new_store()
    assert dest.out("load", input=saved) == "Loaded image: dockermade:1"
    info = json.loads(docker("image", "inspect", "dockermade:1").out)[0]
    got = dest.inspect("dockermade:1")
    assert (got["Id"], got["RootFS"]["Layers"]) == (info["Id"], info["RootFS"]["Layers"])
    run = dest.out("run", "--rm", "dockermade:1", "sh", "-c", "read x </docker.txt; echo $x; ls /bin/touch || echo gone")
    assert run.splitlines() == ["from-docker", "gone"]
    # and back: forklift's re-save of Docker's image loads in Docker with the same ID
    docker("rmi", "dockermade:1")
    docker("load", input=dest("save", "dockermade:1").data)
    again = json.loads(docker("image", "inspect", "dockermade:1").out)[0]
    assert again["Id"] == info["Id"]


@pytest.mark.docker
@pytest.mark.parametrize("blocking", [None, "128"])
@pytest.mark.parametrize("compress", [False, True])
def test_import_diffid_matches_docker_import(busybox_tar: Path, new_store: NewStore, tmp_path: Path,
                                             docker: Docker, blocking: str | None,
                                             compress: bool) -> None:
    """GNU tar pads an archive to whole records after its end marker (10 KiB, or 64 KiB
    with -b 128) and Docker hashes that padding: import keeps it, so the diffIDs agree."""
    tree = tmp_path / "tree"
    tree.mkdir()
    _run("tar", "-xf", str(busybox_tar), "-C", str(tree))
    (tree / "hello.txt").write_text("hello\n")
    archive = tmp_path / ("gnu.tar.gz" if compress else "gnu.tar")
    flags = ["-czf" if compress else "-cf", str(archive)]
    if blocking:
        flags = ["-b", blocking, *flags]
    _run("tar", *flags, "-C", str(tree), ".")
    docker("import", str(archive), "gnutar:1")
    want = json.loads(docker("image", "inspect", "gnutar:1").out)[0]["RootFS"]["Layers"]
    docker("rmi", "gnutar:1")
    dest = new_store()
    dest("import", str(archive), "gnutar:1")
    assert dest.inspect("gnutar:1")["RootFS"]["Layers"] == want
