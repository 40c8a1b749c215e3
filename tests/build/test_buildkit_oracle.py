"""BuildKit as the oracle for what Docker 20.10's classic builder cannot build: the
``COPY --chmod`` / ``ADD --chmod`` contexts of the buildah conformance suite
(shared/peer-tests/buildah-bud/tests/bud, read in place) built by BuildKit (the daemon's
built-in Dockerfile frontend, no ``# syntax=`` line: nothing is fetched) and by forklift
on the same local busybox must give the same file tree (path, type, mode, owner, size,
link target) and config."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest
from support import Forklift, one_line_error
from support.docker import Docker
from support.oracle import find_buildkit, flatten, share_busybox
from support.peers import peer_path
from support.webserver import Server

pytestmark = [pytest.mark.root, pytest.mark.docker]

BUD = peer_path("buildah-bud/tests/bud")
CASES = [
    ("copy-chmod", "Dockerfile"),
    ("copy-chmod", "Dockerfile.combined"),
    ("add-chmod", "Dockerfile"),
    ("add-chmod", "Dockerfile.combined"),
    ("dockerignore6", "Dockerfile.succeed"),                # its own Dockerfile.….dockerignore
    ("symlink", "Dockerfile.symlink-points-to-itself"),     # VOLUME under a link loop: recorded
    # a bare RUN runs the empty command (BuildKit 0.8 then writes an empty layer, forklift an
    # empty_layer entry as the classic builder: only the tree and config are compared here)
    ("run-scenarios", "Dockerfile.cmd-empty-run"),
    ("run-scenarios", "Dockerfile.entrypoint-cmd-empty-run"),
    ("run-scenarios", "Dockerfile.entrypoint-empty-run"),
]
# What both refuse: a source the Dockerfile's own .dockerignore excludes.
REFUSED = [("dockerignore4", "Dockerfile.test"), ("dockerignore6", "Dockerfile")]
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels")


@pytest.fixture(scope="module")
def engines(fl: Forklift, docker: Docker, tmp_path_factory: pytest.TempPathFactory):
    if BUD is None:
        pytest.skip("shared/peer-tests/buildah-bud is not beside the project")
    buildkit = find_buildkit(docker, tmp_path_factory.mktemp("probe"))
    share_busybox(fl, docker, tmp_path_factory.mktemp("bb"))
    return fl, buildkit


@pytest.mark.parametrize(("directory", "dockerfile"), CASES, ids=[f"{d}/{f}" for d, f in CASES])
def test_same_image_as_buildkit(engines, directory, dockerfile, tmp_path):
    fl, buildkit = engines
    assert BUD is not None  # the engines fixture skipped otherwise
    context = tmp_path / "ctx"
    shutil.copytree(BUD / directory, context, symlinks=True)
    tag = f"bk-oracle-{directory}-{dockerfile}".lower().replace(".", "-")
    args = ["--network", "none", "-f", str(context / dockerfile), "-t", tag, str(context)]
    buildkit.build(*args)
    fl("build", *args)
    theirs, their_cfg = flatten(buildkit.docker("save", tag).data)
    ours, our_cfg = flatten(fl("save", tag).data)
    for key in CONFIG_KEYS:
        assert (our_cfg["config"].get(key) or None) == (their_cfg["config"].get(key) or None), key
    differ = {p: (ours.get(p), theirs.get(p)) for p in sorted(set(ours) | set(theirs))
              if ours.get(p) != theirs.get(p)}
    assert not differ
    if "chmod" in directory:   # the point of these contexts: --chmod applied
        chmodded = next(p for p in ours if p.startswith("/tmp/") and p.endswith("chmod.txt"))
        assert ours[chmodded][1] == 0o777


@pytest.mark.parametrize(("directory", "dockerfile"), REFUSED, ids=[f"{d}/{f}" for d, f in REFUSED])
def test_refused_by_both(engines, directory, dockerfile):
    fl, buildkit = engines
    assert BUD is not None
    args = ["--network", "none", "-f", str(BUD / directory / dockerfile), str(BUD / directory)]
    assert buildkit.build(*args, check=False).code != 0
    assert "excluded by .dockerignore" in one_line_error(fl("build", *args, check=False))


def test_a_chmod_without_equals_is_refused_by_both(engines, tmp_path):
    fl, buildkit = engines
    assert BUD is not None
    context = tmp_path / "ctx"
    shutil.copytree(BUD / "copy-chmod", context, symlinks=True)
    args = ["--network", "none", "-f", str(context / "Dockerfile.bad"), str(context)]
    assert buildkit.build(*args, check=False).code != 0
    assert "missing a value on flag: chmod" in one_line_error(fl("build", *args, check=False))


def _mtimes(archive: bytes, names: tuple[str, ...]) -> dict[str, int]:
    """The mtime of ``names`` (paths without the leading /) in a saved image's layers."""
    outer = tarfile.open(fileobj=io.BytesIO(archive))
    manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
    found = {}
    for layer in manifest["Layers"]:
        with tarfile.open(fileobj=outer.extractfile(layer)) as tf:
            found.update({m.name: int(m.mtime) for m in tf.getmembers() if m.name in names})
    return found


def test_add_of_a_url_as_both_docker_builders(engines, tmp_path):
    fl, buildkit = engines
    server = Server()
    try:
        server.routes["/dir/app.txt"] = (200, {"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
                                         b"from the web\n")
        server.routes["/plain"] = (200, {}, b"no date\n")
        context = tmp_path / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM busybox\nADD {server.base}/dir/app.txt /opt/\n"
                                            f"ADD --chown=7:8 {server.base}/plain /renamed\n")
        args = ["--network", "none", "-t", "bk-oracle-add-url", str(context)]
        buildkit.build(*args)
        fl("build", *args)
        buildkit.classic("-t", "classic-add-url", str(context))
    finally:
        server.close()
    ours, theirs = fl("save", "bk-oracle-add-url").data, buildkit.docker("save", "bk-oracle-add-url").data
    classic_image = buildkit.docker("save", "classic-add-url").data
    names = ("opt/app.txt", "renamed")
    assert flatten(ours)[0] == flatten(theirs)[0] == flatten(classic_image)[0]
    assert flatten(ours)[0]["/opt/app.txt"][1:4] == (0o600, 0, 0)
    assert _mtimes(ours, names) == _mtimes(classic_image, names) == {"opt/app.txt": 1445412480, "renamed": 0}
