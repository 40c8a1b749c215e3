"""Several forklift processes on one store at once."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def _cli(root, *args):
    return subprocess.run([sys.executable, "-m", "forklift", "--root", root, *args],
                          capture_output=True, text=True, timeout=180)


def test_parallel_commits_of_different_containers(fl, busybox, store_root):
    names = [f"c{i}" for i in range(6)]
    for name in names:
        assert fl("run", "--name", name, "busybox", "sh", "-c", f"echo {name} > /who").code == 0
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: _cli(store_root, "commit", n, f"img-{n}:1"), names))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    for name in names:
        out = fl("run", "--rm", f"img-{name}:1", "cat", "/who")
        assert out.out == f"{name}\n"
    ids = {r.stdout.strip() for r in results}
    assert len(ids) == len(names)
    check = fl("images", "--format", "{{json .}}").lines
    assert len(check) == len(names) + 1


def test_parallel_imports_of_the_same_tarball_share_one_layer(fl, busybox, busybox_tar, store_root):
    import os

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: _cli(store_root, "import", str(busybox_tar), f"same:{i}"),
                                range(4)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len(os.listdir(os.path.join(store_root, "layers"))) == 1
    diff_ids = {json.dumps(json.loads(fl("inspect", f"same:{i}").out)[0]["RootFS"]) for i in range(4)}
    assert len(diff_ids) == 1
    assert os.listdir(os.path.join(store_root, "tmp")) == []
