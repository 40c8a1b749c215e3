"""BuildKit as the oracle for ``RUN --mount`` (cache, bind, tmpfs, secret) and ``build
--secret``: the same Dockerfile built by Docker 20.10's BuildKit (the daemon's built-in
frontend, no ``# syntax=`` line, offline) and by forklift on the same busybox must give the
same config, the same steps changing files, the same file tree and the same content in what
the RUN commands wrote — with one deliberate difference:

BuildKit 0.8 (Docker 20.10's) leaves in the layer the directories it made as mount points
(empty, root's, 0755; the file stubs of file mounts it removes). BuildKit 0.11 and later
remove them too (moby/buildkit#3307 and #3314, parents included), and so does forklift. Each
case names them (``stubs``): they must be in BuildKit's image as such directories and not
in forklift's at all.

Not comparable with 20.10's frontend: ``RUN --network`` ("Unknown flag: network": it needs
a ``# syntax=`` image, so the network) and a tmpfs ``size=`` ("unexpected key"), which
forklift takes as newer BuildKit does (test_heredoc_mount.py covers both); a secret's
``env=`` both refuse."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest
from support import Forklift, one_line_error
from support.docker import Docker
from support.oracle import BuildKit, at_once, find_buildkit, flatten, layer_trees, share_busybox
from support.peers import peer_path

pytestmark = [pytest.mark.root, pytest.mark.docker]

BUD = peer_path("buildah-bud/tests/bud")
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "Volumes")
STUB = (tarfile.DIRTYPE, 0o755, 0, 0, 0, "")   # a mount point as flatten() sees it
SECRET = "s3cr3t-value"


@pytest.fixture(scope="module")
def engines(fl: Forklift, docker: Docker,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Forklift, BuildKit]:
    buildkit = find_buildkit(docker, tmp_path_factory.mktemp("probe"))
    share_busybox(fl, docker, tmp_path_factory.mktemp("bb"))
    return fl, buildkit


def context(root: Path, dockerfile: str, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _archive_parts(archive: bytes) -> tuple[tarfile.TarFile, dict, list[str]]:
    outer = tarfile.open(fileobj=io.BytesIO(archive))
    manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
    config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    return outer, config, manifest["Layers"]


def _path(member: tarfile.TarInfo) -> str:
    name = member.name[2:] if member.name.startswith("./") else member.name
    return "/" + name.strip("/")


def changed_steps(archive: bytes, stubs: tuple[str, ...]) -> list[bool]:
    """Per history entry, whether it changed the file tree (``stubs`` left out). (BuildKit
    0.8 gives a RUN that changes nothing a layer — empty, or with /etc's entry —, forklift an
    ``empty_layer`` entry as the classic builder.)"""
    trees, config = layer_trees(archive)
    before: dict[str, tuple] = {}
    pending, out = iter(trees), []
    for entry in config["history"]:
        if entry.get("empty_layer"):
            out.append(False)
            continue
        after = next(pending)
        out.append({p: v for p, v in after.items() if p not in stubs}
                   != {p: v for p, v in before.items() if p not in stubs})
        before = after
    return out


def written(archive: bytes) -> dict[str, bytes]:
    """The regular files directly under / in the image's layers (what the RUNs wrote)."""
    outer, _, layers = _archive_parts(archive)
    out = {}
    for layer in layers:
        with tarfile.open(fileobj=outer.extractfile(layer)) as tf:
            for m in tf.getmembers():
                if m.isfile() and _path(m).count("/") == 1:
                    out[_path(m)[1:]] = tf.extractfile(m).read()  # type: ignore[union-attr]
    return out


def same_as_buildkit(engines: tuple[Forklift, BuildKit], root: Path, tag: str, *args: str,
                     stubs: tuple[str, ...] = ()) -> tuple[dict[str, bytes], bytes]:
    """Build ``root`` in both; assert the images agree but for ``stubs``; return what the
    RUNs wrote and forklift's saved image."""
    fl, buildkit = engines
    argv = ["--network", "none", "-t", tag, *args, str(root)]
    theirs, ours = at_once(lambda: buildkit.build(*argv, check=False),
                           lambda: fl("build", *argv, check=False))
    assert theirs.code == 0, theirs
    assert ours.code == 0, ours
    their_archive, our_archive = buildkit.docker("save", tag).data, fl("save", tag).data
    (their_tree, their_cfg), (our_tree, our_cfg) = flatten(their_archive), flatten(our_archive)
    for key in CONFIG_KEYS:
        assert (our_cfg["config"].get(key) or None) == (their_cfg["config"].get(key) or None), key
    assert changed_steps(our_archive, stubs) == changed_steps(their_archive, stubs)
    differ = {p for p in set(our_tree) | set(their_tree) if our_tree.get(p) != their_tree.get(p)}
    assert differ == set(stubs), {p: (our_tree.get(p), their_tree.get(p)) for p in differ}
    assert all(their_tree[p] == STUB and p not in our_tree for p in stubs)
    files = written(our_archive)
    assert files == written(their_archive)
    return files, our_archive


def test_cache_mounts_persist_and_stay_out_of_the_layers(engines, tmp_path):
    run = uuid.uuid4().hex[:12]   # cache ids of this run only: both engines keep them
    root = context(tmp_path / "ctx", f"""\
FROM busybox AS src
RUN mkdir /s && echo seed > /s/f
FROM busybox
ARG N=1
RUN --mount=type=cache,target=/var/cache/app,id=app-{run} echo $N >> /var/cache/app/log && cp /var/cache/app/log /seen
RUN --mount=type=cache,target=/tmp/c2,sharing=locked,id=app-{run} cat /tmp/c2/log > /seen-by-id
RUN --mount=type=cache,target=/opt/own,id=own-{run},uid=7,gid=8,mode=0750 stat -c '%a %u %g' /opt/own > /own && touch /opt/own/f-$N && ls /opt/own > /own-list
RUN --mount=type=cache,target=/seeded,id=seed-{run},from=src,source=/s cat /seeded/f > /seed-seen && echo $N >> /seeded/f
RUN --mount=type=cache,target=/c/ro,id=app-{run},ro (touch /c/ro/x 2>/dev/null && echo writable || echo ro) > /cache-ro
RUN --mount=type=cache,target=/tmp/p,id=p-{run},sharing=private cat /tmp/p/n > /private 2>&1; echo $N > /tmp/p/n
""")
    stubs = ("/var/cache", "/var/cache/app", "/tmp/c2", "/opt", "/opt/own", "/seeded", "/c",
             "/c/ro", "/tmp/p")
    first, _ = same_as_buildkit(engines, root, "bk-mount-cache", stubs=stubs)
    assert (first["seen"], first["own"], first["cache-ro"]) == (b"1\n", b"750 7 8\n", b"ro\n")
    again, _ = same_as_buildkit(engines, root, "bk-mount-cache", "--build-arg", "N=2", stubs=stubs)
    assert again["seen"] == again["seen-by-id"] == b"1\n2\n"     # the second build sees the first's
    assert (again["own-list"], again["seed-seen"]) == (b"f-1\nf-2\n", b"seed\n1\n")
    assert again["private"] == b"1\n"


def test_bind_mounts_of_the_context_a_stage_and_an_image(engines, tmp_path):
    root = context(tmp_path / "ctx", """\
FROM busybox AS src
RUN mkdir /s && echo stage > /s/f
FROM busybox
RUN --mount=type=bind,target=/ctx cat /ctx/data/f /ctx/top > /from-ctx && ls -a /ctx > /ctx-list
RUN --mount=type=bind,source=data,target=/mnt/d (touch /mnt/d/x 2>/dev/null && echo writable || echo ro) > /ro && cat /mnt/d/f > /from-src
RUN --mount=type=bind,from=src,source=/s,target=/st cat /st/f > /from-stage
RUN --mount=type=bind,source=data,target=/w,rw echo changed > /w/f && touch /w/new && cat /w/f > /rw-seen
RUN --mount=type=bind,source=data,target=/w2,readonly=false touch /w2/y && ls /w2 > /w2-list
RUN --mount=type=bind,source=top,target=/tmp/deep/er/top cat /tmp/deep/er/top > /deep
RUN --mount=type=bind,from=busybox,source=/etc/passwd,target=/pw head -n 1 /pw > /from-image
""", **{"data/f": "data\n", "top": "top\n", "hidden.txt": "ignored\n", ".dockerignore": "hidden.txt\n"})
    files, _ = same_as_buildkit(engines, root, "bk-mount-bind", stubs=(
        "/ctx", "/mnt", "/mnt/d", "/st", "/w", "/w2", "/tmp/deep", "/tmp/deep/er"))
    assert files["ctx-list"] == b".\n..\n.dockerignore\nDockerfile\ndata\ntop\n"   # .dockerignore'd
    assert (files["ro"], files["rw-seen"], files["w2-list"]) == (b"ro\n", b"changed\n", b"f\ny\n")
    assert (files["from-stage"], files["deep"]) == (b"stage\n", b"top\n")
    assert (root / "data" / "f").read_text() == "data\n" and sorted(p.name for p in (root / "data").iterdir()) == ["f"]


def test_tmpfs_mounts(engines, tmp_path):
    root = context(tmp_path / "ctx", """\
FROM busybox
RUN --mount=type=tmpfs,target=/tmp/t echo x > /tmp/t/f && cat /tmp/t/f > /tmpfs-seen
RUN --mount=type=tmpfs,target=/fresh/t ls -a /fresh/t > /fresh-list && echo y > /fresh/t/y
""")
    files, _ = same_as_buildkit(engines, root, "bk-mount-tmpfs", stubs=("/tmp/t", "/fresh", "/fresh/t"))
    assert (files["tmpfs-seen"], files["fresh-list"]) == (b"x\n", b".\n..\n")


def test_secret_mounts_leave_no_trace(engines, tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_text(SECRET)
    monkeypatch.setenv("BK_ORACLE_SECRET", SECRET + "-env")
    root = context(tmp_path / "ctx", """\
FROM busybox
RUN --mount=type=secret,id=tok md5sum /run/secrets/tok | cut -c1-32 > /got && stat -c '%a %u %g' /run/secrets/tok > /perm
RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=5,gid=6 md5sum /etc/tok | cut -c1-32 > /got2 && stat -c '%a %u %g' /etc/tok > /perm2
RUN --mount=type=secret,id=fromenv,required wc -c < /run/secrets/fromenv > /got3
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo none > /absent
""")
    files, archive = same_as_buildkit(
        engines, root, "bk-mount-secret", "--secret", f"id=tok,src={tmp_path / 'secret.txt'}",
        "--secret", "id=fromenv,env=BK_ORACLE_SECRET", stubs=("/run", "/run/secrets"))
    assert (files["perm"], files["perm2"], files["absent"]) == (b"400 0 0\n", b"440 5 6\n", b"none\n")
    assert files["got3"].strip() == str(len(SECRET) + 4).encode()
    assert SECRET.encode() not in archive     # no layer, no history entry, no config


def test_secret_refusals_as_buildkit(engines, tmp_path):
    fl, buildkit = engines
    for i, mount in enumerate(("type=secret,id=nope,required", "type=secret,id=x,env=X")):
        root = context(tmp_path / str(i), f"FROM busybox\nRUN --mount={mount} true\n")
        args = ("--network", "none", str(root))
        theirs, ours = at_once(lambda: buildkit.build(*args, check=False),  # noqa: B023
                               lambda: fl("build", *args, check=False))  # noqa: B023
        assert theirs.code != 0, theirs
        assert ("required" if i == 0 else "unexpected key 'env'") in one_line_error(ours)


def test_buildahs_bind_mounts_from_stages(engines, tmp_path):
    if BUD is None:
        pytest.skip("shared/peer-tests/buildah-bud is not beside the project")
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "Dockerfile").write_text((BUD / "cache-stages" / "Dockerfile.3").read_text())
    same_as_buildkit(engines, root, "bk-cache-stages-3", "--build-arg", "NONCE=1",
                     stubs=("/buildA", "/buildB"))
