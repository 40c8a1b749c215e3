"""Several forklift processes on one store at once."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.root


def test_parallel_commits_of_different_containers(fl, busybox):
    names = [f"c{i}" for i in range(6)]
    for name in names:
        assert fl("run", "--name", name, "busybox", "sh", "-c", f"echo {name} > /who").code == 0
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(
            lambda n: fl("commit", n, f"img-{n}:1", check=False, timeout=180), names))
    assert all(r.code == 0 for r in results), [r.err for r in results]
    for name in names:
        out = fl("run", "--rm", f"img-{name}:1", "cat", "/who")
        assert out.out == f"{name}\n"
    ids = {r.out.strip() for r in results}
    assert len(ids) == len(names)
    check = fl("images", "--format", "{{json .}}").lines
    assert len(check) == len(names) + 1


def test_parallel_imports_of_the_same_tarball_share_one_layer(fl, busybox, busybox_tar):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(
            lambda i: fl("import", str(busybox_tar), f"same:{i}", check=False, timeout=180),
            range(4)))
    assert all(r.code == 0 for r in results), [r.err for r in results]
    assert len(os.listdir(fl.root / "layers")) == 1
    diff_ids = {json.dumps(json.loads(fl("inspect", f"same:{i}").out)[0]["RootFS"]) for i in range(4)}
    assert len(diff_ids) == 1
    assert os.listdir(fl.root / "tmp") == []
