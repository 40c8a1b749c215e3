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
def service(fl: Forklift, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The module's service, with client configuration of its own: a service started with
    root's environment would read and write root's ~/.docker."""
    home = tmp_path_factory.mktemp("api-config")
    isolated = Forklift(fl.root, env={**fl.env, "DOCKER_CONFIG": str(home / "docker"),
                                      "FORKLIFT_CONFIG_DIR": str(home / "forklift"),
                                      "FORKLIFT_CERTS_D": str(home / "certs.d")})
    with running_service(isolated) as svc:
        yield svc


@pytest.fixture
def docker_cli() -> None:
    if not os.access(DOCKER20, os.X_OK):
        pytest.skip(f"{DOCKER20} missing: install the Debian package docker.io")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A container name made from the test's."""
    return "api-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
