"""The first push of a layer made here compresses it (formats/pgzip: pieces deflated in
parallel, incompressible ones stored): Docker pulls the result and finds its diffIDs, and
a second push reuses the same compressed blob."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.docker import Docker, private_dockerd
from support.registry import Registry

from forklift.formats import pgzip

pytestmark = [pytest.mark.root, pytest.mark.docker]


@pytest.fixture(scope="module")
def dockerd(registry: Registry) -> Iterator[Docker]:
    with private_dockerd("--insecure-registry", registry.host) as client:
        yield client


def _mixed_tar(path: Path) -> None:
    """Random data (stored pieces), text (deflated pieces) and a piece that holds both."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("noise", os.urandom(2 * pgzip.PIECE + 100)),
                           ("text", b"a line of text in a layer\n" * 60000),
                           ("more-noise", os.urandom(pgzip.PIECE // 3))):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))


def test_docker_pulls_a_first_push_and_a_second_push_reuses_it(
        source_store: Forklift, registry: Registry, dockerd: Docker, tmp_path: Path) -> None:
    tar = tmp_path / "mixed.tar"
    _mixed_tar(tar)
    ref = f"{registry.host}/compress/mixed:1"
    image_id = source_store.out("import", str(tar), ref)
    first = source_store("push", ref).out.split("digest: ")[1].split()[0]
    blobs = source_store.db_value("SELECT COUNT(*) FROM compressed_blobs")
    dockerd("pull", ref)  # Docker decompresses every layer and checks its diffID
    assert dockerd("image", "inspect", "--format", "{{.Id}}", ref).out.strip() == image_id
    again = source_store("push", ref).out.split("digest: ")[1].split()[0]
    assert again == first
    assert source_store.db_value("SELECT COUNT(*) FROM compressed_blobs") == blobs
