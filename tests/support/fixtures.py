"""The fixtures every test directory may use (tests/conftest.py registers this module).

* ``fl``: the CLI on a new, empty store of this test; ``busybox``: busybox:latest in it;
  ``new_store()``: one more such store (a source and a destination, say);
* ``busybox_tar`` and ``debian_tar``: root filesystem tarballs made once per session;
* ``docker``: a private dockerd; ``docker20``: the same through Docker 20.10's own client,
  ``docker_busybox``: busybox imported there; ``registry`` and ``proxy``: a plain-HTTP registry of the
  module and a recording proxy in front of it (reset around every test);
  ``empty_registry`` and ``empty_proxy``: the same, new for one test, for tests that count
  what a push uploads (pytest-xdist runs a module's tests in any order and split);
* every test runs with its own Docker and forklift client configuration (never the
  machine's ~/.docker or /etc/docker/certs.d).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.cli import Forklift
from support.docker import Docker, private_dockerd
from support.docker20 import docker20 as docker_20_client
from support.images import import_busybox, make_busybox_tar, make_debian_tar
from support.registry import Proxy, Registry, running_proxy, running_registry
from support.store import temporary_store


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_tar(tmp_path_factory.mktemp("busybox") / "busybox.tar")


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    return make_debian_tar()


@pytest.fixture
def fl() -> Iterator[Forklift]:
    with temporary_store() as store:
        yield store


@pytest.fixture
def busybox(fl: Forklift, busybox_tar: Path) -> str:
    """busybox:latest in this test's store; its image ID."""
    return import_busybox(fl, busybox_tar)


@pytest.fixture
def new_store() -> Iterator[Callable[[], Forklift]]:
    with contextlib.ExitStack() as stores:
        yield lambda: stores.enter_context(temporary_store())


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    with private_dockerd() as client:
        yield client


@pytest.fixture(scope="session")
def docker20(docker: Docker) -> Docker:
    """The private dockerd through Docker 20.10's own client (``support/docker20``)."""
    return docker_20_client(docker)


@pytest.fixture(scope="session")
def docker_busybox(docker20: Docker, busybox_tar: Path) -> str:
    """busybox imported into the private dockerd as ``fl-busybox:latest``."""
    docker20("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), "fl-busybox:latest")
    return "fl-busybox:latest"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def module_proxy(registry: Registry) -> Iterator[Proxy]:
    with running_proxy(registry.port) as p:
        yield p


@pytest.fixture
def proxy(module_proxy: Proxy) -> Iterator[Proxy]:
    """The module's proxy with no recorded requests and no answer rewriting of an earlier test."""
    module_proxy.reset()
    yield module_proxy
    module_proxy.reset()


@pytest.fixture
def empty_registry(tmp_path: Path) -> Iterator[Registry]:
    with running_registry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture
def empty_proxy(empty_registry: Registry) -> Iterator[Proxy]:
    with running_proxy(empty_registry.port) as p:
        yield p


@pytest.fixture(autouse=True)
def isolated_client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("FORKLIFT_CONFIG_DIR", str(tmp_path / "forklift-config"))
    monkeypatch.setenv("FORKLIFT_CERTS_D", str(tmp_path / "certs.d"))
    monkeypatch.delenv("FORKLIFT_INSECURE_REGISTRIES", raising=False)
