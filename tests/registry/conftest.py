"""Registry tests push from one store per module holding busybox:latest and app:1 (two
layers), made without network; the ``registry`` and ``proxy`` fixtures are tests/support's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.images import derive
from support.store import temporary_store


@pytest.fixture(scope="module")
def source_store(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as store:
        store("import", "-c", "ENV PATH=/bin", str(busybox_tar), "busybox:latest")
        derive(store, "busybox", "app:1", "echo one > /one.txt")
        yield store
