"""Helpers of the oracle tests (tests/build/test_*_oracle.py): another engine builds the
same context and the images must agree."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support.cli import Forklift, Result, run
from support.docker import Docker


def share_busybox(fl: Forklift, docker: Docker, scratch: Path) -> None:
    """forklift's busybox loaded into Docker and tagged ``alpine`` there too (the peer
    contexts build FROM alpine; no registry is reachable)."""
    archive = scratch / "busybox.tar"
    fl("save", "-o", str(archive), "busybox")
    docker("load", "-i", str(archive))
    docker("tag", "busybox", "alpine")


def flatten(archive: bytes) -> tuple[dict[str, tuple], dict]:
    """The file tree of a saved image (its layers applied in order, whiteouts honoured) and
    its config."""
    trees, config = layer_trees(archive)
    return trees[-1] if trees else {}, config


def layer_trees(archive: bytes) -> tuple[list[dict[str, tuple]], dict]:
    """The file tree of a saved image after each of its layers, and its config."""
    outer = tarfile.open(fileobj=io.BytesIO(archive))
    manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
    config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    tree: dict[str, tuple] = {}
    trees = []
    for layer in manifest["Layers"]:
        with tarfile.open(fileobj=outer.extractfile(layer)) as tf:
            for m in tf.getmembers():
                name = "/" + m.name.strip("./").rstrip("/") if m.name.strip("./") else "/"
                base = name.rsplit("/", 1)
                if base[1] == ".wh..wh..opq":
                    prefix = base[0] + "/"
                    tree = {k: v for k, v in tree.items() if not k.startswith(prefix)}
                    continue
                if base[1].startswith(".wh."):
                    gone = base[0] + "/" + base[1][4:]
                    tree = {k: v for k, v in tree.items() if k != gone and not k.startswith(gone + "/")}
                    continue
                kind = "hardlink-as-file" if m.islnk() else m.type
                size = m.size if m.isfile() else 0
                tree[name] = (kind, m.mode & 0o7777, m.uid, m.gid, size,
                              m.linkname if m.issym() else "")
        trees.append(dict(tree))
    return trees, config


def at_once(theirs: Callable[[], Result], ours: Callable[[], Result]) -> tuple[Result, Result]:
    """Both commands run at the same time (an oracle build beside forklift's halves the
    wait); their results, in that order."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(theirs)
        mine = ours()
        return pending.result(), mine


class BuildKit:
    """``docker build`` with DOCKER_BUILDKIT=1 through ``cli`` on the test's dockerd."""

    def __init__(self, docker: Docker, cli: str) -> None:
        self.docker = docker
        self.argv = [cli, *docker.argv[1:]]

    def build(self, *args: str, check: bool = True) -> Result:
        return run([*self.argv, "build", *args], env={**os.environ, "DOCKER_BUILDKIT": "1"},
                   check=check, timeout=300)

    def classic(self, *args: str) -> Result:
        """The same dockerd's classic builder."""
        return run([*self.docker.argv, "build", *args], env={**os.environ, "DOCKER_BUILDKIT": "0"},
                   timeout=300)


def find_buildkit(docker: Docker, scratch: Path) -> BuildKit:
    """The first docker CLI that builds with BuildKit on this dockerd (Docker >= 23's CLI
    needs the buildx plugin for it, 20.10's has it built in); skips when none does."""
    (scratch / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /probe\n")
    why = "no docker CLI"
    for cli in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]):
        if cli is None or not os.path.exists(cli):
            continue
        res = BuildKit(docker, cli).build("-q", str(scratch), check=False)
        if res.code == 0:
            return BuildKit(docker, cli)
        why = f"{cli}: {(res.err.strip().splitlines() or ['?'])[0]}"
    pytest.skip(f"no docker CLI builds with BuildKit here ({why})")
