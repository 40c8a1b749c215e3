"""Helpers of the oracle tests (tests/build/test_*_oracle.py): another engine builds the
same context and the images must agree."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from support.cli import Forklift
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
