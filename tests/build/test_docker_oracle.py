"""Docker's classic builder as the oracle: the same contexts of the buildah conformance suite
(/work/shared/peer-tests/buildah-bud/tests/bud, read in place) built by both engines on
the same local busybox (tagged ``busybox`` and ``alpine`` in both) must give the same config,
layer count and file tree (path, type, mode, owner, size, link target); the contexts that
are mistakes must be refused by both. Every Dockerfile of the suite is accounted for: built
here, refused here, built by the BuildKit oracle, or in SKIPPED with the reason."""

from __future__ import annotations

import json
import shutil

import pytest
from support import Forklift, Result, one_line_error
from support.oracle import at_once, share_busybox
from support.oracle import flatten as _flatten
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
    ("arg-scope", "Containerfile.arg-mixed-defaults"),
    ("arg-scope", "Containerfile.from-arg"),
    ("arg-scope", "Containerfile.multiple-args-stage-only"),
    ("arg-scope", "Containerfile.multiple-args-stage-overrides-one"),
    ("arg-scope", "Containerfile.stage-overrides-header"),
    ("build-arg", "Dockerfile"),
    ("build-arg", "Dockerfile2"),
    ("build-arg", "Dockerfile3"),
    ("build-arg", "Dockerfile4"),
    ("cache-stages", "Dockerfile.1"),
    ("cache-stages", "Dockerfile.2"),
    ("copy-envvar", "Containerfile"),
    ("copy-from", "Dockerfile3"),
    ("copy-from", "Dockerfile4"),
    ("copy-workdir", "Dockerfile.2"),
    ("dest-symlink", "Dockerfile"),
    ("dockerignore", "Dockerfile.succeed"),
    ("dockerignore2", "Dockerfile"),
    ("dupe-arg-env-name", "Containerfile"),
    ("env", "Dockerfile.check-env"),
    ("hardlink", "Dockerfile"),
    ("multi-stage-builds", "Dockerfile.arg"),
    ("multi-stage-builds", "Dockerfile.arg_in_stage"),
    ("multi-stage-builds", "Dockerfile.mixed"),
    ("multi-stage-builds", "Dockerfile.rebase"),
    ("multi-stage-builds", "Dockerfile.reused2"),
    ("no-change", "Dockerfile"),
    ("onbuild", "Dockerfile2"),
    ("run-scenarios", "Dockerfile.cmd-run"),
    ("run-scenarios", "Dockerfile.entrypoint-run"),
    ("run-scenarios", "Dockerfile.multi-args"),
    ("shell", "Dockerfile"),
    ("shell", "Dockerfile.build-shell-default"),
    ("symlink", "Dockerfile"),
    ("use-layers", "Dockerfile.2"),
    ("use-layers", "Dockerfile.5"),
    ("use-layers", "Dockerfile.6"),
    ("use-layers", "Dockerfile.7"),
    ("use-layers", "Dockerfile.build-args"),
    ("workdir-symlink", "Dockerfile"),
    ("workdir-symlink", "Dockerfile-2"),
    ("workdir-symlink", "Dockerfile-3"),
]
# An image with no layer, which Docker 20.10 cannot save ("empty export"): compared by inspect.
NO_LAYER = ("from-scratch", "Containerfile2")
# Contexts that are mistakes (no match, missing file, bad flag, nothing to build): both
# builders refuse them.
REFUSED = [
    ("add-chmod", "Dockerfile.bad"),
    ("copy-from", "Dockerfile.bad"),
    ("copy-globs", "Containerfile"),
    ("copy-globs", "Containerfile.bad"),
    ("copy-globs", "Containerfile.missing"),
    ("copy-globs", "Dockerfile"),
    ("dockerignore", "Dockerfile"),
    ("dockerignore3", "Dockerfile"),
    ("from-scratch", "Containerfile"),
    ("from-scratch", "Dockerfile"),
    ("run-scenarios", "Dockerfile.noop-flags"),
    ("unrecognized", "Dockerfile"),
    ("use-layers", "Dockerfile.fail-case"),
]
_UBUNTU = "FROM ubuntu: no registry here, and busybox lacks what it runs (apt, bash)"
_WRITTEN = "needs files buildah's test writes into the context before building"
_DOLLAR_FROM = ("Docker 20.10's builders refuse a $ in --from (BuildKit expands it since); "
                "forklift expands it: test_build.py::test_copy_from_a_stage_named_by_an_arg")
_EMPTY_RUN = ("a bare RUN: the classic builder runs `/bin/sh -c` without its argument (exit 2); "
              "forklift runs the empty command, as BuildKit does: test_buildkit_oracle.py")
# Every other Dockerfile of the suite, and why it is not built above.
SKIPPED = {
    ("add-chmod", "Dockerfile"): "BuildKit-only (--chmod): test_buildkit_oracle.py",
    ("add-chmod", "Dockerfile.combined"): "BuildKit-only (--chmod): test_buildkit_oracle.py",
    ("copy-chmod", "Dockerfile"): "BuildKit-only (--chmod): test_buildkit_oracle.py",
    ("copy-chmod", "Dockerfile.combined"): "BuildKit-only (--chmod): test_buildkit_oracle.py",
    ("copy-chmod", "Dockerfile.bad"): "BuildKit-only (--chmod): test_buildkit_oracle.py",
    ("cache-stages", "Dockerfile.3"): "BuildKit-only (RUN --mount): test_buildkit_oracle.py",
    ("dockerignore4", "Dockerfile.test"): "a Dockerfile's own .dockerignore is BuildKit's: "
                                          "test_buildkit_oracle.py",
    ("dockerignore6", "Dockerfile"): "a Dockerfile's own .dockerignore is BuildKit's: "
                                     "test_buildkit_oracle.py",
    ("dockerignore6", "Dockerfile.succeed"): "a Dockerfile's own .dockerignore is BuildKit's: "
                                             "test_buildkit_oracle.py",
    ("symlink", "Dockerfile.symlink-points-to-itself"): (
        "the classic builder makes VOLUME's directory and fails on the link loop; BuildKit "
        "records it only, as forklift does: test_buildkit_oracle.py"),
    ("arg-scope", "Containerfile.copy-from-arg"): _DOLLAR_FROM,
    ("arg-scope", "Containerfile.stage-overrides-header-copy-from"): _DOLLAR_FROM,
    ("multi-stage-builds", "Dockerfile.arg_in_copy"): _DOLLAR_FROM,
    ("copy-from", "Dockerfile"): "FROM quay.io/libpod/testimage: a registry",
    ("copy-from", "Dockerfile2.bad"): "its refusal is a failed pull of `build`: a registry",
    ("use-layers", "Dockerfile.non-existent-registry"): "its refusal is a failed pull: a registry",
    ("env", "Dockerfile.env-precedence"): "FROM 0 (a stage index) is pulled as an image by "
                                          "Docker 20.10: a registry",
    ("env", "Dockerfile.env-from-image"): "FROM env-from-image: an image buildah's test makes "
                                          "with its own tools",
    ("env", "Dockerfile.special-chars"): _UBUNTU,
    ("copy-multistage-paths", "Dockerfile.absolute"): _UBUNTU,
    ("copy-multistage-paths", "Dockerfile.invalid_from"): _UBUNTU,
    ("copy-multistage-paths", "Dockerfile.relative"): _UBUNTU,
    ("copy-root", "Dockerfile"): _UBUNTU,
    ("shell", "Dockerfile.build-shell-custom"): _UBUNTU,
    ("symlink", "Dockerfile.absolute-dir-symlink"): _UBUNTU,
    ("symlink", "Dockerfile.absolute-symlink"): _UBUNTU,
    ("target", "Dockerfile"): _UBUNTU + " (stage 0, which every target copies from)",
    ("use-layers", "Dockerfile.3"): _WRITTEN,
    ("use-layers", "Dockerfile.4"): _WRITTEN,
    ("use-layers", "Dockerfile.multistage-copy"): _WRITTEN,
    ("use-layers", "Dockerfile.dangling-symlink"): _WRITTEN,
    ("use-layers", "Dockerfile"): "ADD http://0.0.0.0/README.md: a web server on port 80 "
                                  "(ADD of URLs: test_add_url.py, test_buildkit_oracle.py)",
    ("workdir-user", "Dockerfile"): "alpine's adduser (busybox here has none)",
    ("healthcheck", "Dockerfile"): "HEALTHCHECK --start-interval is newer than Docker 20.10 "
                                   "(both its builders refuse the flag)",
    ("heredoc", "Containerfile"): "heredocs are newer than Docker 20.10's builders: "
                                  "test_heredoc_mount.py",
    ("heredoc", "Containerfile.bash_file"): "heredocs are newer than Docker 20.10's builders",
    ("heredoc", "Containerfile.she_bang"): "heredocs are newer than Docker 20.10's builders",
    ("heredoc", "Containerfile.verify_mount_leak"): "heredocs are newer than Docker 20.10's "
                                                    "builders",
    ("run-scenarios", "Dockerfile.cmd-empty-run"): _EMPTY_RUN,
    ("run-scenarios", "Dockerfile.entrypoint-cmd-empty-run"): _EMPTY_RUN,
    ("run-scenarios", "Dockerfile.entrypoint-empty-run"): _EMPTY_RUN,
}
# Images a context builds on, built first in both engines: (Dockerfile, tag).
PREREQUISITES = {("onbuild", "Dockerfile1"): [("Dockerfile", "onbuild")]}
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes")


@pytest.fixture(scope="module")
def engines(fl: Forklift, docker, tmp_path_factory):
    if BUD is None:
        pytest.skip("shared/peer-tests/buildah-bud is not beside the project")
    scratch = tmp_path_factory.mktemp("bb")
    share_busybox(fl, docker, scratch)
    # alpine's /usr/local and /var/lib, which some contexts write into: the same image in both
    (scratch / "Dockerfile").write_text("FROM busybox\nRUN mkdir -p /usr/local /var/lib\n")
    fl("build", "-q", "--network", "none", "-t", "alpine", str(scratch))
    fl("save", "-o", str(scratch / "alpine.tar"), "alpine")
    docker("load", "-i", str(scratch / "alpine.tar"))
    return fl, docker


def build_both(fl: Forklift, docker, *args: str) -> tuple[Result, Result]:
    """``build ARGS`` by Docker and forklift at once: (docker's, ours)."""
    return at_once(lambda: docker("build", *args, check=False, timeout=300),
                   lambda: fl("build", *args, check=False))


def test_every_context_is_accounted_for():
    if BUD is None:
        pytest.skip("shared/peer-tests/buildah-bud is not beside the project")
    every = {(p.parent.name, p.name) for p in BUD.glob("*/*")
             if p.name.startswith(("Dockerfile", "Containerfile"))
             and not p.name.endswith(".dockerignore")}
    listed = [*CASES, *REFUSED, NO_LAYER, *SKIPPED]
    assert len(listed) == len(set(listed))   # nowhere twice
    assert every == set(listed)


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
    docker_res, ours_res = build_both(fl, docker, "--network", "none", "-f",
                                      str(context / dockerfile), "-t", tag, str(context))
    if docker_res.code != 0:
        pytest.fail(f"Docker cannot build it (pick another context): {docker_res.err[-400:]}")
    assert ours_res.code == 0, ours_res
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


@pytest.mark.parametrize(("directory", "dockerfile"), REFUSED, ids=[f"{d}/{f}" for d, f in REFUSED])
def test_refused_by_both(engines, directory, dockerfile):
    fl, docker = engines
    assert BUD is not None
    context = BUD / directory   # read only: a refused build writes nothing into it
    theirs, ours = build_both(fl, docker, "--network", "none", "-f", str(context / dockerfile),
                              str(context))
    assert theirs.code != 0, theirs
    one_line_error(ours)


def test_an_image_with_no_layer(engines):
    fl, docker = engines
    assert BUD is not None
    context = BUD / NO_LAYER[0]   # read only: nothing is written into it
    theirs, ours = build_both(fl, docker, "--network", "none", "-f", str(context / NO_LAYER[1]),
                              "-t", "oracle-no-layer", str(context))
    assert theirs.code == 0 and ours.code == 0, (theirs, ours)
    fmt = ["image", "inspect", "--format", "{{json .Config}}|{{json .RootFS}}", "oracle-no-layer"]
    theirs_cfg, theirs_fs = map(json.loads, docker(*fmt).out.strip().split("|"))
    our_cfg, our_fs = map(json.loads, fl(*fmt).out.strip().split("|"))
    for key in CONFIG_KEYS:
        assert (our_cfg.get(key) or None) == (theirs_cfg.get(key) or None), key
    assert our_cfg["User"] == "1001" and not our_fs.get("Layers") and not theirs_fs.get("Layers")
