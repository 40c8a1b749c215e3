"""The fixtures of tests/support for every directory, and the two markers that skip:
``root`` (needs root and runc) and ``slow`` (long variants, run with FORKLIFT_SLOW=1)."""

from __future__ import annotations

import os
import shutil

import pytest

pytest_plugins = ["support.fixtures"]


def missing_root_or_runc() -> str | None:
    """Why tests marked ``root`` cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root and runc (mounts, mknod, chown, runc, iptables): not root"
    if shutil.which("runc") is None:
        return "needs root and runc (mounts, mknod, chown, runc, iptables): runc is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = missing_root_or_runc()
    slow = os.environ.get("FORKLIFT_SLOW") == "1"
    for item in items:
        if why and item.get_closest_marker("root"):
            item.add_marker(pytest.mark.skip(reason=why))
        if not slow and item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.skip(reason="long variant: set FORKLIFT_SLOW=1"))
