"""Many forklift processes on one store at once.

Every command must either succeed or fail with exactly one ``Error: …`` line,
within a timeout (no deadlock); afterwards the store checks clean, every image
works, and no layer was freed while a container was using it.

Size: FORKLIFT_STRESS_PROCS (default 6) processes × FORKLIFT_STRESS_OPS (default 20)
operations in the mixed test; the targeted races scale with them. Up to 8×50 is
supported (mark: set FORKLIFT_SLOW=1 for the 8×50 variant).
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
from pathlib import Path

import pytest
from support import Forklift, Result
from support.images import small_tar
from support.knobs import env_int
from support.store import assert_clean, verify_images_usable

pytestmark = pytest.mark.root

PROCS = env_int("FORKLIFT_STRESS_PROCS", 6)
OPS = env_int("FORKLIFT_STRESS_OPS", 20)
TIMEOUT = 90  # per command: longer means a deadlock


class Outcome:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: list[tuple[list[str], int, str, str]] = []
        self.bad: list[str] = []

    def record(self, argv: list[str], res: Result | None, note: str = "") -> None:
        with self.lock:
            if res is None:
                self.bad.append(f"{argv}: {note}")
                return
            self.results.append((argv, res.code, res.out, res.err))
            if res.code != 0:
                # `run` of an image that an rmi just removed pulls it first, as Docker's does:
                # its progress lines come before the one error line
                lines = [ln for ln in res.err.splitlines() if ln.strip() and not
                         re.match(r"Unable to find image '[^']+' locally$|\S+: Pulling from ", ln)]
                if (len(lines) != 1 or not lines[0].startswith("Error: ")
                        or "internal error" in res.err or "Traceback" in res.err):
                    self.bad.append(f"{argv} rc={res.code}: {res.err.strip()}"
                                    f" {res.out.strip()[-2000:]}")

    def ok(self, prefix: list[str]) -> list[tuple[list[str], str]]:
        return [(a, out) for a, rc, out, _ in self.results if rc == 0 and a[:len(prefix)] == prefix]

    def failed(self, prefix: list[str]) -> list[tuple[list[str], str]]:
        return [(a, err) for a, rc, _, err in self.results if rc != 0 and a[:len(prefix)] == prefix]


def _exec(fl: Forklift, argv: list[str], outcome: Outcome) -> None:
    try:
        res = fl(*argv, check=False, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        outcome.record(argv, None, f"timed out after {TIMEOUT}s (deadlock?)")
        return
    outcome.record(argv, res)


def run_parallel(fl: Forklift, scripts: list[list[list[str]]]) -> Outcome:
    """Each script (a list of commands) runs sequentially in its own thread."""
    outcome = Outcome()
    barrier = threading.Barrier(len(scripts))

    def worker(script: list[list[str]]) -> None:
        barrier.wait()
        for argv in script:
            _exec(fl, argv, outcome)

    threads = [threading.Thread(target=worker, args=(s,)) for s in scripts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT * (max(len(s) for s in scripts) + 1))
    assert not any(t.is_alive() for t in threads), "a worker never finished (deadlock)"
    assert not outcome.bad, "bad outcomes:\n" + "\n".join(outcome.bad[:20])
    return outcome


def settle(fl: Forklift) -> None:
    """After the storm: the store is consistent and every image works."""
    fl("images")
    assert_clean(fl.root)
    verify_images_usable(fl.root, limit=4)


def test_parallel_commits(fl: Forklift, busybox: str) -> None:
    n = min(PROCS, 8)
    for i in range(n):
        fl("run", "--network", "none", "--name", f"c{i}", "busybox", "sh", "-c", f"echo {i} > /mine")
    per = max(2, OPS // 4)
    out = run_parallel(fl, [[["commit", f"c{i}", f"img{i}:{k}"] for k in range(per)]
                              for i in range(n)])
    assert len(out.ok(["commit"])) == n * per  # no reason for any commit to fail
    for i in range(n):
        got = fl("run", "--rm", "--network", "none", f"img{i}:{per - 1}", "cat", "/mine").out.strip()
        assert got == str(i)
    # identical container layers are stored once
    layers = fl("system", "info").out
    assert f"Layers: {1 + n}" in layers, layers
    settle(fl)


def test_parallel_imports_same_tarball(fl: Forklift, busybox: str, tmp_path: Path) -> None:
    tar = small_tar(tmp_path / "same.tar", 7, files=20, size=8192)
    out = run_parallel(fl, [[["import", str(tar), f"same{i}"]] * max(1, OPS // 10)
                              for i in range(PROCS)])
    ids = {o.strip() for _, o in out.ok(["import"])}
    assert len(out.ok(["import"])) == PROCS * max(1, OPS // 10)
    assert len(ids) >= 1
    info = fl("system", "info").out
    assert "Layers: 2" in info, info  # busybox + the one shared layer
    settle(fl)


def test_same_tag_races(fl: Forklift, busybox: str, tmp_path: Path) -> None:
    for i in range(PROCS):
        fl("import", str(small_tar(tmp_path / f"t{i}.tar", 100 + i)), f"src{i}")
    out = run_parallel(fl, [[["tag", f"src{i}", "same:1"]] * max(2, OPS // 4) for i in range(PROCS)])
    assert len(out.ok(["tag"])) == PROCS * max(2, OPS // 4)
    listed = [ln for ln in fl("images").out.splitlines() if ln.startswith("same ")]
    assert len(listed) == 1, listed
    settle(fl)


def test_rmi_races_run(fl: Forklift, busybox: str) -> None:
    """Removing an image while containers start from it: either the run wins (and the
    image's layers stay until it is done) or the rmi wins (and the run fails cleanly)."""
    fl("create", "--network", "none", "--name", "hold", "busybox", "true")  # keeps busybox
    rounds = max(2, OPS // 6)
    for r in range(rounds):
        fl("run", "--network", "none", "--name", "mk", "busybox", "sh", "-c", f"echo racer{r} > /racer")
        fl("commit", "mk", "racer")
        fl("rm", "mk")
        runners = [[["run", "--rm", "--network", "none", "racer", "sh", "-c", "sleep 0.3; cat /racer; cat /bin/busybox >/dev/null"]]
                   for _ in range(max(1, PROCS - 2))]
        removers = [[["rmi", "racer"]], [["image", "prune", "-a", "-f"]]]
        out = run_parallel(fl, runners + removers)
        for _argv, text in out.ok(["run"]):
            assert text.strip() == f"racer{r}", text  # the layer was there all along
        for _argv, err in out.failed(["run"]):
            assert "No such image" in err or "image" in err.lower(), err
        fl("rmi", "-f", "racer", check=False)
    settle(fl)


def test_prune_during_commits(fl: Forklift, busybox: str) -> None:
    n = max(2, PROCS - 1)
    for i in range(n):
        fl("run", "--network", "none", "--name", f"p{i}", "busybox", "sh", "-c", f"echo {i} > /p")
    per = max(2, OPS // 5)
    scripts = [[["commit", f"p{i}", f"pc{i}"]] * per for i in range(n)]
    scripts.append([["image", "prune", "-a", "-f"], ["image", "prune", "-f"]] * per)
    out = run_parallel(fl, scripts)
    assert len(out.ok(["commit"])) == n * per, out.failed(["commit"])
    # the containers' own image was never pruned (they use it)
    fl("image", "inspect", "busybox")
    settle(fl)


def _mixed(fl: Forklift, tmp: Path, procs: int, ops: int, seed: int) -> None:
    rng = random.Random(seed)
    tars = [small_tar(tmp / f"m{i}.tar", 200 + i) for i in range(4)]
    for i in range(procs):
        fl("run", "--network", "none", "--name", f"m{i}", "busybox", "sh", "-c", f"echo {i} > /m")
    fl("commit", "m0", "tosave")
    saved = tmp / "saved.tar"
    fl("save", "-o", str(saved), "tosave", "busybox")
    scripts = []
    for i in range(procs):
        script: list[list[str]] = []
        for _ in range(ops):
            kind = rng.choice(["commit", "import", "tag", "rmi", "run", "create", "rm", "prune",
                               "sysprune", "df", "check", "load", "save"])
            script.append({
                "commit": ["commit", f"m{i}", f"mix{rng.randrange(4)}"],
                "import": ["import", str(rng.choice(tars)), f"mix{rng.randrange(4)}"],
                "tag": ["tag", "busybox", f"mix{rng.randrange(4)}"],
                "rmi": ["rmi", f"mix{rng.randrange(4)}"],
                "run": ["run", "--rm", "--network", "none", "busybox", "true"],
                "create": ["create", "--network", "none", "--name", f"x{i}{rng.randrange(3)}", "busybox", "true"],
                "rm": ["rm", "-f", f"x{i}{rng.randrange(3)}"],
                "prune": ["image", "prune", "-f"],
                "sysprune": ["image", "prune", "-a", "-f"],
                "df": ["system", "df"],
                "check": ["system", "check", "-q"],
                "load": ["load", "-i", str(saved)],
                "save": ["save", "-o", str(tmp / f"out{i}.tar"), "busybox"],
            }[kind])
        scripts.append(script)
    out = run_parallel(fl, scripts)
    # `system check` under load may only see work in progress, never damage
    for argv, rc, stdout, _ in out.results:
        if argv[:2] == ["system", "check"] and rc != 0:
            raise AssertionError(f"system check failed under load:\n{stdout}")
    settle(fl)


def test_mixed_stress(fl: Forklift, busybox: str, tmp_path: Path) -> None:
    _mixed(fl, tmp_path, PROCS, OPS, 1)


@pytest.mark.slow
def test_mixed_stress_large(fl: Forklift, busybox: str, tmp_path: Path) -> None:
    _mixed(fl, tmp_path, 8, 50, 2)
