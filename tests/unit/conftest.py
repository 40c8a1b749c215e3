"""The fast tier's shared fixture: an empty store opened through the library (no root)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.store import open_store
from forklift.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "store"))
    try:
        yield s
    finally:
        s.close()
