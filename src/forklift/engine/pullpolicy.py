"""``run``/``create --pull always|missing|never`` and ``--platform``: whether the image
is pulled before the container is created. Apart from `forklift.engine.runflags` so the
plain ``run IMAGE`` (policy ``missing``, the image here) loads next to nothing."""

from __future__ import annotations

from forklift.errors import InvalidArgument

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

    from forklift.store.db import Store

PULL_POLICIES = ("always", "missing", "never")


def check_platform(text: str | None) -> None:
    """``--platform``: forklift runs the host's platform only (no emulation here)."""
    if not text:
        return
    from forklift import oci

    want, host = oci.parse_platform(text), oci.local_platform()
    if (want.os, want.architecture) != (host.os, host.architecture) or (
            want.variant and host.variant and want.variant != host.variant):
        raise InvalidArgument(f"image platform {want} cannot run on this host ({host}):"
                              " forklift runs only the host's platform")


def needs_pull(store: Store, image: str, policy: str, platform: str | None) -> bool:
    """``--pull``: whether ``image`` is to be pulled before the container is created
    (InvalidArgument for a bad policy or another platform; NotFound for a missing image
    under ``never``)."""
    from forklift.errors import NotFound
    from forklift.store import images as image_store

    if policy not in PULL_POLICIES:
        raise InvalidArgument(f"invalid pull option: '{policy}': must be one of \"always\","
                              " \"missing\" or \"never\"")
    check_platform(platform)
    if policy == "always":
        return True
    try:
        image_store.resolve(store, image)
        return False
    except NotFound:
        if policy == "never":
            raise
        return True


def familiar(image: str) -> str:
    """``busybox`` as Docker's messages name it: ``busybox:latest``."""
    from forklift import reference

    return reference.parse(image).familiar()


def pull(store: Store, image: str, platform: str | None, reporter: Any = None) -> None:
    """Pull ``image`` for ``run``/``create``; ``reporter`` (a
    `forklift.registry.progress.Reporter`) shows it, None: nothing shown."""
    from forklift.engine import distribution
    from forklift.registry.progress import Reporter

    distribution.pull(store, image, platform=platform, reporter=reporter or Reporter(quiet=True))
