"""The Engine API tests share one store (busybox in it) and one service on it per module:
each test removes the containers it made."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.images import import_busybox
from support.service import DOCKER20, Service, running_service
from support.store import temporary_store


@pytest.fixture(scope="module")
def fl(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as store:
        import_busybox(store, busybox_tar)
        yield store


@pytest.fixture(scope="module")
def service(fl: Forklift) -> Iterator[Service]:
    with running_service(fl) as svc:
        yield svc


@pytest.fixture
def docker_cli() -> None:
    if not os.access(DOCKER20, os.X_OK):
        pytest.skip(f"{DOCKER20} missing: install the Debian package docker.io")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A container name made from the test's."""
    return "api-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
