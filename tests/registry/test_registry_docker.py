"""Docker engine interop through a local registry (dockerd started by the test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Forklift
from support.docker import Docker, private_dockerd
from support.registry import Registry
from support.store import NewStore

pytestmark = [pytest.mark.root, pytest.mark.docker]


@pytest.fixture(scope="module")
def dockerd(registry: Registry) -> Iterator[Docker]:
    """A private dockerd that may use the module's plain-HTTP registry."""
    with private_dockerd("--insecure-registry", registry.host) as client:
        yield client


def pushed_by_forklift(source_store: Forklift, registry: Registry, dockerd: Docker) -> tuple[str, str]:
    """Push app:1 from forklift and pull it into dockerd; return (reference, digest).

    Each test calls this itself: pytest-xdist may run the two tests on different workers,
    each with its own registry and dockerd."""
    ref = f"{registry.host}/docker/from-forklift:1"
    source_store("tag", "app:1", ref)
    digest = source_store("push", ref).out.split("digest: ")[1].split()[0]
    dockerd("pull", ref)
    return ref, digest


def test_docker_pulls_forklift_push(source_store: Forklift, registry: Registry,
                                    dockerd: Docker) -> None:
    ref, digest = pushed_by_forklift(source_store, registry, dockerd)
    assert dockerd("image", "inspect", "--format", "{{.Id}}", ref).out.strip() == \
        source_store.inspect("app:1")["Id"]
    assert digest in dockerd("image", "inspect", "--format", "{{json .RepoDigests}}", ref).out


def test_forklift_pulls_docker_push(source_store: Forklift, registry: Registry, dockerd: Docker,
                                    new_store: NewStore) -> None:
    src, _ = pushed_by_forklift(source_store, registry, dockerd)
    ref = f"{registry.host}/docker/from-docker:1"
    dockerd("tag", src, ref)
    out = dockerd("push", ref).out
    digest = out.split("digest: ")[1].split()[0]
    fresh = new_store()
    assert f"Digest: {digest}" in fresh("pull", ref).out
    assert fresh.inspect(ref)["Id"] == source_store.inspect("app:1")["Id"]
