"""End-to-end container tests share one store per module, with busybox in it: ``fl`` here
is module-scoped (each test removes what it made; the store's release at the end of the
module stops and removes anything left)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.images import import_busybox
from support.store import temporary_store


@pytest.fixture(scope="module")
def fl(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as store:
        import_busybox(store, busybox_tar)
        yield store


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A container name made from the test's."""
    return "t-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
