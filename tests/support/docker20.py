"""Docker 20.10's own CLI (Debian's docker.io) on the private dockerd of the ``docker``
fixture: the CLI on PATH may be a newer one, whose ``--format`` rows and ``info`` differ,
and 20.10's CLI reference is forklift's spec."""

from __future__ import annotations

import os

import pytest

from support.docker import Docker

DOCKER_20 = "/usr/bin/docker"


def docker20(docker: Docker) -> Docker:
    """The same private dockerd through Docker 20.10's CLI; skips without it."""
    if not os.path.exists(DOCKER_20):
        pytest.skip("Debian's docker.io CLI is not installed")
    client = Docker.__new__(Docker)
    client.argv = [DOCKER_20, *docker.argv[1:]]
    return client
