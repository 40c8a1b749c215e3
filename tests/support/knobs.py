"""Test sizes and seeds set from the environment (docs/reliability.md lists them)."""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default
