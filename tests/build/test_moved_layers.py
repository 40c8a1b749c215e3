"""A build step's upper directory becomes its layer by a move, not a copy
(``layers.from_upper``): the layers must still tar to their diffIDs, survive save/load
unchanged, and never change afterwards, whatever a container on the image writes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from support import Forklift
from support.store import temporary_store

pytestmark = pytest.mark.root

DOCKERFILE = """\
FROM busybox
RUN rm -rf /etc/network && mkdir -p /etc/network && rm /bin/true && mkfifo /fifo
COPY src/ /app/
RUN echo run > /app/a && ln /app/b/c /app/hard
"""


def _layer_dirs(fl: Forklift, image: str) -> list[str]:
    data = json.loads(fl.out("image", "inspect", "--format", "{{json .GraphDriver.Data}}", image))
    return [data["UpperDir"], *data.get("LowerDir", "").split(":")]


def _digest_tree(top: str) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, top)} {st.st_mode} {st.st_uid} {st.st_size} "
                     f"{st.st_mtime_ns}\n".encode())
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def test_moved_layers_tar_to_their_diff_ids_and_never_change(fl, ctx, tmp_path: Path):
    root = ctx(DOCKERFILE, **{"src/a": "one", "src/b/c": "two"})
    image_id = fl.out("build", "-q", "-t", "moved", str(root))
    assert fl.out("run", "--rm", "moved", "cat", "/app/a", "/app/hard") == "run\ntwo"
    # --full re-makes each committed layer's tar from its directory and checks the diffID
    assert "store is consistent" in fl.out("system", "check", "--full")
    dirs = _layer_dirs(fl, "moved")
    before = {d: _digest_tree(d) for d in dirs}
    fl("run", "--name", "writer", "-u", "0", "moved", "sh", "-c",
       "echo changed > /app/a; echo changed > /app/hard; rm -rf /app/b; touch /etc/network/x")
    mounts = open("/proc/mounts").read()
    assert not any(d in mounts for d in dirs)  # a layer is never anyone's upperdir
    assert {d: _digest_tree(d) for d in dirs} == before
    assert fl.out("diff", "writer")
    fl("rm", "writer")
    archive_path = tmp_path / "moved.tar"
    fl("save", "-o", str(archive_path), "moved")
    with temporary_store() as other:
        other("load", "-i", str(archive_path))
        assert other.out("image", "inspect", "--format", "{{.Id}}", "moved") == image_id
        assert other.out("run", "--rm", "moved", "cat", "/app/a") == "run"
