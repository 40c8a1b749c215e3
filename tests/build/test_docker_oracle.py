"""Docker's classic builder as the oracle: the same contexts of the buildah conformance suite
(/work/shared/peer-tests/buildah-bud/tests/bud, read in place) built by both engines on
the same local busybox (tagged ``busybox`` and ``alpine`` in both) must give the same config,
layer count and file tree (path, type, mode, owner, size, link target)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest
from support import Forklift
from support.peers import peer_path

pytestmark = [pytest.mark.root, pytest.mark.docker]

BUD = peer_path("buildah-bud/tests/bud")

# Contexts whose base images are busybox/alpine/scratch only and that need nothing
# alpine-specific (apk, adduser, /usr/local) or BuildKit-only (--chmod, --start-interval)
# from Docker 20.10.
CASES = [
    ("add-file", "Dockerfile"),
    ("dest-final-slash", "Dockerfile"),
    ("copy-from", "Dockerfile2"),
    ("copy-workdir", "Dockerfile"),
    ("volume-perms", "Dockerfile"),
    ("preserve-volumes", "Dockerfile"),
    ("env", "Dockerfile.env-same-file"),
    ("symlink", "Dockerfile.relative-symlink"),
    ("multi-stage-builds", "Dockerfile.index"),
    ("multi-stage-builds", "Dockerfile.name"),
    ("multi-stage-builds", "Dockerfile.extended"),
    ("multi-stage-builds", "Dockerfile.reused"),
    ("symlink", "Dockerfile.replace-symlink"),
    ("symlink", "Containerfile.add-tar-with-link"),
    ("symlink", "Containerfile.add-tar-gz-with-link"),
    ("symlink", "Dockerfile.multiple-symlinks"),
    ("onbuild", "Dockerfile"),
    ("onbuild", "Dockerfile1"),
    ("run-scenarios", "Dockerfile.entrypoint-cmd-run"),
    ("run-scenarios", "Dockerfile.args"),
    ("arg-scope", "Containerfile.multiple-args-one-step"),
    ("leading-args", "Dockerfile"),
]
# Images a context builds on, built first in both engines: (Dockerfile, tag).
PREREQUISITES = {("onbuild", "Dockerfile1"): [("Dockerfile", "onbuild")]}
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes")


@pytest.fixture(scope="module")
def engines(fl: Forklift, docker, tmp_path_factory):
    if BUD is None:
        pytest.skip("shared/peer-tests/buildah-bud is not beside the project")
    archive = tmp_path_factory.mktemp("bb") / "busybox.tar"
    fl("save", "-o", str(archive), "busybox")
    docker("load", "-i", str(archive))
    docker("tag", "busybox", "alpine")
    return fl, docker


def _flatten(archive: bytes) -> tuple[dict[str, tuple], dict]:
    """The file tree of a saved image (its layers applied in order, whiteouts honoured) and
    its config."""
    outer = tarfile.open(fileobj=io.BytesIO(archive))
    manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
    config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    tree: dict[str, tuple] = {}
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
    return tree, config


@pytest.mark.parametrize(("directory", "dockerfile"), CASES, ids=[f"{d}/{f}" for d, f in CASES])
def test_same_image_as_dockers_classic_builder(engines, directory, dockerfile, tmp_path):
    fl, docker = engines
    context = tmp_path / "ctx"
    assert BUD is not None  # the engines fixture skipped otherwise
    shutil.copytree(BUD / directory, context, symlinks=True)
    tag = f"oracle-{directory}-{dockerfile}".lower().replace(".", "-")
    for first, name in PREREQUISITES.get((directory, dockerfile), []):
        docker("build", "--network", "none", "-f", str(context / first), "-t", name, str(context))
        fl("build", "--network", "none", "-f", str(context / first), "-t", name, str(context))
    docker_res = docker("build", "--network", "none", "-f", str(context / dockerfile), "-t", tag,
                        str(context), check=False, timeout=300)
    if docker_res.code != 0:
        pytest.fail(f"Docker cannot build it (pick another context): {docker_res.err[-400:]}")
    fl("build", "--network", "none", "-f", str(context / dockerfile), "-t", tag, str(context))
    theirs, their_cfg = _flatten(docker("save", tag).data)
    ours, our_cfg = _flatten(fl("save", tag).data)
    for key in CONFIG_KEYS:
        assert (our_cfg["config"].get(key) or None) == (their_cfg["config"].get(key) or None), key
    assert len(our_cfg["rootfs"]["diff_ids"]) == len(their_cfg["rootfs"]["diff_ids"])
    assert [h.get("empty_layer", False) for h in our_cfg["history"]] == \
        [h.get("empty_layer", False) for h in their_cfg["history"]]
    differ = {p: (ours.get(p), theirs.get(p)) for p in sorted(set(ours) | set(theirs))
              if ours.get(p) != theirs.get(p)}
    assert not differ
