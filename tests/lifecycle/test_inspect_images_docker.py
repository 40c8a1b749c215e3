"""``image inspect`` in Docker 20.10's shape, side by side with a private dockerd for an
imported, a committed and a built image, and valid against the Engine API's ``Image``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import Forklift, shapes, swagger
from support.docker import Docker
from support.docker20 import docker20
from support.images import PATH_ENV

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not swagger.available(),
                                 reason=f"{swagger.SWAGGER} missing ({swagger.PACKAGE})")]

# The private dockerd runs with --bridge=none, which marks a container's config (and so a
# commit's) "network disabled".
DOCKER_ONLY = {"Config": {"NetworkDisabled"}, "ContainerConfig": {"NetworkDisabled"}}
# fields Docker's JSON leaves out when empty, which its templates still find
IMAGE_TEMPLATES = [
    "{{.Variant}}|{{.Config.StopTimeout}}|{{json .Config.ExposedPorts}}|{{.Config.Healthcheck}}",
    "{{.ContainerConfig.Shell}}|{{json .ContainerConfig}}|{{.Config.ArgsEscaped}}",
    "{{range $k, $v := .GraphDriver.Data}} {{$k}}{{end}}|{{len .RootFS.Layers}}",
]
DOCKERFILE = 'FROM IMAGE\nRUN echo hi > /x\nLABEL a=b\nENTRYPOINT ["sh"]\n'


def make(cli: Forklift | Docker, tar: Path, context: Path, p: str) -> None:
    cli("import", "-c", f"ENV {PATH_ENV}", "-c", 'CMD ["sh"]', str(tar), f"{p}-imported")
    cli("run", "--name", f"{p}-c", "--network", "none", f"{p}-imported",
        "sh", "-c", "echo hi > /f")
    cli("commit", f"{p}-c", f"{p}-committed")
    (context / "Dockerfile").write_text(DOCKERFILE.replace("IMAGE", f"{p}-imported"))
    cli("build", "-q", "-t", f"{p}-built", str(context))


def inspect(cli: Forklift | Docker, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("image", "inspect", name).out)[0]
    return doc


def test_image_documents_are_dockers(fl: Forklift, docker: Docker, busybox_tar: Path,
                                     tmp_path: Path):
    docker, p = docker20(docker), "fl-iinsp"
    for cli, where in ((docker, tmp_path / "d"), (fl, tmp_path / "f")):
        where.mkdir()
        make(cli, busybox_tar, where, p)
    try:
        docs = {kind: (inspect(docker, f"{p}-{kind}"), inspect(fl, f"{p}-{kind}"))
                for kind in ("imported", "committed", "built")}
        for kind, (theirs, ours) in docs.items():
            swagger.validate(ours, "Image", as_docker=True)
            swagger.validate(theirs, "Image", as_docker=True)
            if kind == "committed":
                # Docker's commit copies the container's Config whole, with its empty
                # Labels map; forklift's keeps the fields that are set (Labels: null)
                assert (theirs["Config"]["Labels"], ours["Config"]["Labels"]) == ({}, None)
                ours["Config"]["Labels"] = {}
            if kind == "built":
                # forklift builds as BuildKit does: no step container, an empty
                # ContainerConfig; Docker's legacy builder records its last step's
                assert ours["ContainerConfig"]["Cmd"] is None and ours["Container"] == ""
                theirs["ContainerConfig"] = ours["ContainerConfig"]
            assert shapes.shape_differences(theirs, ours, docker_only=DOCKER_ONLY) == [], kind
            assert ours["GraphDriver"]["Name"] == theirs["GraphDriver"]["Name"], kind
            for key in ("Architecture", "Os", "RepoDigests"):
                assert ours[key] == theirs[key], (kind, key)
            assert ours["RepoTags"] == [f"{p}-{kind}:latest"]
        for template in IMAGE_TEMPLATES:
            args = ("image", "inspect", "-f", template, f"{p}-imported")
            assert fl.out(*args) == docker(*args).out.strip(), template
        theirs, ours = docs["imported"]
        assert ours["Config"] == theirs["Config"]
        assert ours["RootFS"] == theirs["RootFS"]    # the same tar: the same diffID
        assert ours["ContainerConfig"] == theirs["ContainerConfig"]
        theirs, ours = docs["committed"]
        assert ours["Container"] == fl.inspect(f"{p}-c")["Id"]
        assert ours["ContainerConfig"]["Cmd"] == theirs["ContainerConfig"]["Cmd"] \
            == ["sh", "-c", "echo hi > /f"]
        assert ours["Parent"] == docs["imported"][1]["Id"]
        theirs, ours = docs["built"]
        for key in ("Entrypoint", "Labels", "Cmd", "Env", "Volumes", "OnBuild"):
            assert ours["Config"][key] == theirs["Config"][key], key
        assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"]) == 2
    finally:
        for cli in (docker, fl):
            cli("rm", "-f", f"{p}-c", check=False)
            cli("rmi", f"{p}-built", f"{p}-committed", f"{p}-imported", check=False)


def links_tar(path: Path) -> Path:
    """Files, symlinks (relative, absolute, long) and hard links, some of them in one
    directory twice over."""
    import io
    import tarfile

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("bin/tool", b"#" * 4321), ("etc/conf", b"k=v\n"), ("empty", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, kind, target in (("bin/a", tarfile.SYMTYPE, "tool"),
                                   ("bin/b", tarfile.SYMTYPE, "/bin/tool"),
                                   ("lib/long", tarfile.SYMTYPE, "../" * 40 + "etc/conf"),
                                   ("bin/hard1", tarfile.LNKTYPE, "bin/tool"),
                                   ("bin/hard2", tarfile.LNKTYPE, "bin/tool")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return path


def test_image_sizes_are_dockers(fl: Forklift, docker: Docker, busybox_tar: Path,
                                 tmp_path: Path):
    """Docker's overlay2 size of a layer: st_size of every non-directory once per inode, so
    a symlink counts its target's length and a hard link adds nothing."""
    docker, p = docker20(docker), "fl-isize"
    tar = links_tar(tmp_path / "links.tar")
    script = "echo hello > /f; ln /f /f2; ln -s /bin/busybox /s; ln -s f /s2"
    for cli in (docker, fl):
        cli("import", "-c", f"ENV {PATH_ENV}", str(busybox_tar), f"{p}-busybox")
        cli("import", str(tar), f"{p}-links")
        cli("run", "--name", f"{p}-c", "--network", "none", f"{p}-busybox", "sh", "-c", script)
        cli("commit", f"{p}-c", f"{p}-committed")
    try:
        sizes = {}
        for image in ("busybox", "links", "committed"):
            fmt = ("image", "inspect", "--format", "{{.Size}} {{.VirtualSize}}", f"{p}-{image}")
            theirs, ours = docker(*fmt).out.strip(), fl.out(*fmt)
            assert ours == theirs, image
            listed = ("images", "--format", "{{.Size}}", f"{p}-{image}")
            assert fl.out(*listed) == docker(*listed).out.strip(), image
            sizes[image] = int(ours.split()[0])
        assert sizes["links"] == 4321 + 4 + len("tool") + len("/bin/tool") + 3 * 40 + 8
        assert sizes["committed"] - sizes["busybox"] == 6 + len("/bin/busybox") + len("f")
    finally:
        for cli in (docker, fl):
            cli("rm", "-f", f"{p}-c", check=False)
            cli("rmi", f"{p}-committed", f"{p}-busybox", f"{p}-links", check=False)
