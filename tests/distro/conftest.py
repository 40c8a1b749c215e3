"""Real-distribution tests: the private dockerd comes from tests/docker_support.py."""

from docker_support import docker  # noqa: F401
