"""Build tests share one store per module with busybox in it (also tagged ``alpine``, for the
peer contexts written against it); each test builds its own context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.images import import_busybox
from support.store import temporary_store


@pytest.fixture(scope="module")
def fl(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as store:
        import_busybox(store, busybox_tar)
        store("tag", "busybox", "alpine")
        yield store


@pytest.fixture
def ctx(tmp_path: Path) -> Callable[..., Path]:
    """``ctx("FROM busybox\\n…", **{"a.txt": "hello"})``: a context directory."""

    def make(dockerfile: str, **files: str | bytes) -> Path:
        root = tmp_path / "ctx"
        root.mkdir(exist_ok=True)
        (root / "Dockerfile").write_text(dockerfile)
        for name, data in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data)
        return root
    return make

