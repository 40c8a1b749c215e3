"""Save/load tests start from one store per module holding images made offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.store import temporary_store


def make_images(fl: Forklift, busybox_tar: Path) -> None:
    """busybox:latest; hw_image:latest/2.7 (adds /HelloWorld, deletes /bin/cat); other:1."""
    fl("import", "-c", "ENV PATH=/bin", str(busybox_tar), "busybox:latest")
    fl("run", "--name", "c1", "busybox", "sh", "-c", "touch /HelloWorld && rm /bin/cat")
    fl("commit", "c1", "hw_image:latest")
    fl("tag", "hw_image:latest", "hw_image:2.7")
    fl("run", "--name", "c2", "hw_image", "sh", "-c", "echo other > /other")
    fl("commit", "c2", "other:1")
    fl("rm", "c1", "c2")


@pytest.fixture(scope="module")
def source_store(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as store:
        make_images(store, busybox_tar)
        yield store
