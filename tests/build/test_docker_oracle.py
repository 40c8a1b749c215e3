"""Docker's classic builder as the oracle: the same contexts of the buildah conformance suite
(/work/shared/peer-tests/buildah-bud/tests/bud, read in place) built by both engines on
the same local busybox (tagged ``busybox`` and ``alpine`` in both) must give the same config,
layer count and file tree (path, type, mode, owner, size, link target)."""

from __future__ import annotations

import shutil

import pytest
from support import Forklift
from support.oracle import flatten as _flatten
from support.oracle import share_busybox
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
    share_busybox(fl, docker, tmp_path_factory.mktemp("bb"))
    return fl, docker


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
