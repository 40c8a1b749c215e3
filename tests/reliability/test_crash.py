"""Crash safety: SIGKILL at named checkpoints and after random delays never corrupts the store.

After every kill the store is checked (``forklift.store.check``): only crash
leftovers (dead processes' scratch, files whose rows never committed, container
directories) may show; the next forklift command sweeps scratch and orphan
files; ``system check --repair`` clears the rest; every image left can be
inspected, exported and (if it holds busybox) run.

FORKLIFT_CRASH_ROUNDS sets the number of random-delay rounds (default 1200,
about a minute on 2 cores; FORKLIFT_CRASH_SEED picks the random sequence); each round that kills a live process counts as a crash.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support import Forklift
from support.images import small_tar
from support.knobs import env_int
from support.registry import Registry
from support.store import (
    NewStore,
    assert_clean,
    assert_no_corruption,
    dead_pid,
    repair,
    store_findings,
    verify_images_usable,
)

pytestmark = pytest.mark.root

# (checkpoint, operation): every named crash point, reached through a real command.
CHECKPOINTS = [
    ("layer-extracted", "import"),
    ("blob-before-rename", "import"),
    ("blob-after-rename", "import"),
    ("layer-before-rename", "import"),
    ("layer-after-rename", "import"),
    ("image-before-commit", "import"),
    ("image-after-commit", "import"),
    ("layer-extracted", "commit"),
    ("commit-after-layer", "commit"),
    ("layer-after-rename", "commit"),
    ("image-before-commit", "commit"),
    ("image-after-commit", "commit"),
    ("tag-before-commit", "tag"),
    ("rmi-before-commit", "rmi"),
    ("rmi-before-gc", "rmi"),
    ("gc-after-commit", "rmi"),
    ("gc-mid-remove", "rmi"),
    ("gc-after-commit", "prune"),
    ("create-after-rootfs", "create"),
    ("create-before-commit", "create"),
    ("rm-after-delete", "rm"),
    ("start-before-runc", "run"),
    ("start-after-runc", "run"),
    ("sweep-mid", "sweep"),
    ("layer-extracted", "load"),
    ("blob-after-rename", "load"),
    ("layer-after-rename", "load"),
    ("image-before-commit", "load"),
    ("image-after-commit", "load"),
    ("tag-before-commit", "load"),
]

# What must be true after the crash: did the operation happen entirely, or not at all?
HAPPENED = {"image-after-commit": True, "image-before-commit": False, "rmi-before-gc": True,
            "gc-after-commit": True, "gc-mid-remove": True,
            "tag-before-commit": False, "create-before-commit": False,
            "create-after-rootfs": False, "rm-after-delete": True}


def _setup(fl: Forklift, op: str, tmp: Path) -> list[str]:
    """Prepare the store for ``op``; return the argv (after --root) to crash."""
    if op == "import":
        return ["import", str(small_tar(tmp / "s.tar", 1)), "victim:1"]
    if op == "commit":
        fl("run", "--network", "none", "--name", "src", "busybox", "sh", "-c", "echo hello > /hello")
        return ["commit", "src", "victim:1"]
    if op == "tag":
        return ["tag", "busybox", "victim:1"]
    if op in ("rmi", "prune"):
        fl("import", str(small_tar(tmp / "s.tar", 2)), "victim:1")
        if op == "prune":
            fl("import", str(small_tar(tmp / "s.tar", 2)))  # a dangling duplicate
            fl("tag", "busybox", "keep:1")
            fl("rmi", "keep:1")
            return ["image", "prune", "-a", "-f"]
        return ["rmi", "victim:1"]
    if op == "create":
        return ["create", "--network", "none", "--name", "victim", "busybox", "true"]
    if op == "rm":
        fl("create", "--network", "none", "--name", "victim", "busybox", "true")
        return ["rm", "victim"]
    if op == "run":
        return ["run", "--rm", "--network", "none", "--name", "victim", "busybox", "true"]
    if op == "load":
        fl("import", str(small_tar(tmp / "s.tar", 3)), "victim:1")
        fl("save", "-o", str(tmp / "saved.tar"), "victim:1", "busybox")
        fl("rmi", "victim:1")
        return ["load", "-i", str(tmp / "saved.tar")]
    if op == "sweep":
        root = fl.root
        (root / "tmp" / f"{dead_pid()}-layer-abc").mkdir(parents=True)
        for name in ("deadbeef0001", "deadbeef0002"):
            (root / "layers" / name / "diff").mkdir(parents=True)
        (root / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"orphan")
        return ["images"]
    raise AssertionError(op)


def _exists(fl: Forklift, op: str) -> bool | None:
    if op in ("import", "commit", "tag", "rmi"):
        return fl("image", "inspect", "victim:1", check=False).code == 0
    if op in ("create", "rm"):
        return fl("container", "inspect", "victim", check=False).code == 0
    return None


@pytest.mark.parametrize(("checkpoint", "op"), CHECKPOINTS, ids=[f"{c}@{o}" for c, o in CHECKPOINTS])
def test_named_checkpoint(fl: Forklift, busybox: str, tmp_path: Path, checkpoint: str,
                          op: str) -> None:
    root = fl.root
    argv = _setup(fl, op, tmp_path)
    proc = fl(*argv, env={"FORKLIFT_CRASH_AT": checkpoint}, check=False)
    assert proc.code == -signal.SIGKILL, (
        f"checkpoint {checkpoint} not reached by {argv}: rc={proc.code} {proc.err}")
    assert_no_corruption(root)
    # all-or-nothing
    existed = _exists(fl, op)
    if checkpoint in HAPPENED and existed is not None:
        expect = HAPPENED[checkpoint]
        if op in ("rmi", "rm"):
            expect = not expect  # the thing is gone when the removal happened
        assert existed == expect, f"after a crash at {checkpoint}, {op} half-happened"
    # the next command sweeps scratch and orphan files
    fl("images")
    left = store_findings(root).problems
    assert all(p.kind == "container" for p in left), "\n".join(map(str, left))
    if op == "sweep":
        assert not (root / "layers" / "deadbeef0001").exists()
        assert not (root / "blobs" / "sha256" / ("0" * 64)).exists()
    # the CLI repair clears the rest
    out = fl("system", "check", "--repair", "--grace", "0", check=False)
    assert out.code == 0, out.out + out.err
    assert_clean(root, full=True)
    verify_images_usable(root)
    # and the operation works again
    if op == "load":
        fl(*argv)
        fl("image", "inspect", "victim:1")
    elif op not in ("sweep", "rmi", "prune", "rm"):
        fl("rm", "-f", "victim", check=False)
        fl("rmi", "-f", "victim:1", check=False)
        argv = _setup(fl, op, tmp_path) if op not in ("commit",) else ["commit", "src", "victim:2"]
        fl(*argv)


PULL_CHECKPOINTS = ["layer-extracted", "layer-before-rename", "layer-after-rename",
                    "image-before-commit", "image-after-commit"]


@pytest.mark.parametrize("checkpoint", PULL_CHECKPOINTS)
def test_pull_checkpoint(fl: Forklift, busybox: str, registry: Registry, tmp_path: Path,
                         checkpoint: str) -> None:
    """A pull killed anywhere: all or nothing (the layer, its tar-split and where its blob
    came from together), and the next pull records it all."""
    ref = f"{registry.host}/crash/{checkpoint}:1"
    fl("import", str(small_tar(tmp_path / "s.tar", 40 + PULL_CHECKPOINTS.index(checkpoint))), ref)
    fl("push", ref)
    fl("rmi", ref)
    proc = fl("pull", ref, env={"FORKLIFT_CRASH_AT": checkpoint}, check=False)
    assert proc.code == -signal.SIGKILL, f"{checkpoint} not reached: rc={proc.code} {proc.err}"
    assert_no_corruption(fl.root)
    # image_store.add joins the pull's one transaction (image, tag, manifests, repo digest,
    # sources): its "after commit" is still before that commits, so nothing happened
    assert fl("image", "inspect", ref, check=False).code != 0
    assert fl.db_value("SELECT COUNT(*) FROM layer_sources") == 0
    fl("images")
    out = fl("system", "check", "--repair", "--grace", "0", check=False)
    assert out.code == 0, out.out + out.err
    assert_clean(fl.root, full=True)
    fl("pull", ref)
    diff_id = fl.inspect(ref)["RootFS"]["Layers"][-1]
    assert fl.db_value("SELECT blob_media_type FROM layers WHERE diff_id=?", diff_id) == \
        "application/vnd.forklift.layer.v1.tar+tarsplit"
    assert fl.db_value("SELECT repository FROM layer_sources WHERE diff_id=?", diff_id) == \
        f"{registry.host}/crash/{checkpoint}"
    assert_clean(fl.root, full=True)
    verify_images_usable(fl.root)


# ----------------------------------------------------------------------------- random delays

class Worker:
    """Drives one store: random cheap operations, each SIGKILLed after a random delay."""

    OPS = (("tag", 4), ("import", 4), ("commit", 3), ("rmi", 3), ("create", 2), ("rm", 2),
           ("prune", 1), ("run", 1), ("load", 2), ("save", 1))

    def __init__(self, fl: Forklift, tmp: Path, seed: int, busybox_tar: Path) -> None:
        self.fl = fl
        self.root = fl.root
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.crashes = 0
        self.completed = 0
        self.rounds = 0
        self.failures: list[str] = []
        self.left_something = 0   # kills after which the store held crash leftovers
        self.durations: dict[str, list[float]] = {}
        self.busybox_tar = busybox_tar
        self.tars = [small_tar(tmp / f"s{i}.tar", i) for i in range(6)]
        self.n = 0

    def setup(self) -> None:
        self.fl("import", str(self.busybox_tar), "busybox")
        for i in range(3):
            self.fl("run", "--network", "none", "--name", f"pool{i}", "busybox", "sh", "-c", f"echo {i} > /f{i}")
        # an archive for `load`: busybox and an image the store does not keep
        self.saved = self.tmp / f"{self.root.name}-saved.tar"
        self.fl("commit", "pool0", "saved:1")
        self.fl("save", "-o", str(self.saved), "saved:1", "busybox")
        self.fl("rmi", "saved:1")

    def argv(self, op: str) -> list[str]:
        r = self.rng
        self.n += 1
        if op == "tag":
            return ["tag", "busybox", f"t{r.randrange(8)}:v{r.randrange(3)}"]
        if op == "import":
            return ["import", str(r.choice(self.tars)), f"imp{r.randrange(6)}"]
        if op == "commit":
            return ["commit", f"pool{r.randrange(3)}", f"com{r.randrange(6)}"]
        if op == "rmi":
            return ["rmi", r.choice([f"t{r.randrange(8)}:v{r.randrange(3)}", f"imp{r.randrange(6)}",
                                     f"com{r.randrange(6)}", "saved:1"])]
        if op == "create":
            return ["create", "--network", "none", "--name", f"cr{r.randrange(6)}", "busybox", "true"]
        if op == "rm":
            return ["rm", f"cr{r.randrange(6)}"]
        if op == "prune":
            return ["image", "prune", "-f"]
        if op == "run":
            return ["run", "--rm", "--network", "none", "busybox", "true"]
        if op == "load":
            return ["load", "-i", str(self.saved)]
        if op == "save":
            return ["save", "-o", str(self.tmp / f"{self.root.name}-out.tar"), "busybox"]
        raise AssertionError(op)

    def pick(self) -> str:
        ops, weights = zip(*self.OPS, strict=True)
        return self.rng.choices(ops, weights)[0]

    def delay(self, op: str) -> float:
        seen = self.durations.get(op)
        typical = sorted(seen)[len(seen) // 2] if seen else 0.3
        # below ~30% of the run the process is still importing Python modules
        return self.rng.uniform(typical * 0.3, max(0.05, typical * 0.95))

    def round(self) -> None:
        op = self.pick()
        argv = self.argv(op)
        start = time.monotonic()
        proc = subprocess.Popen([*self.fl.argv, *argv], env=self.fl.environ(),
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        killed = False
        try:
            proc.wait(timeout=self.delay(op))
        except subprocess.TimeoutExpired:
            proc.kill()
            killed = True
        _, err = proc.communicate(timeout=60)
        self.rounds += 1
        if killed and proc.returncode == -signal.SIGKILL:
            self.crashes += 1
        else:
            self.completed += 1
            self.durations.setdefault(op, []).append(time.monotonic() - start)
            if proc.returncode != 0:
                lines = [ln for ln in err.splitlines() if ln.strip()]
                if len(lines) != 1 or not lines[0].startswith("Error: ") or "internal error" in err:
                    self.failures.append(f"{argv}: {err}")
        if assert_no_corruption(self.root) and killed:
            self.left_something += 1

    def run(self, rounds: int) -> None:
        try:
            self.setup()
            # calibrate: each operation once, to the end
            for op, _ in self.OPS:
                start = time.monotonic()
                self.fl(*self.argv(op), check=False)
                self.durations.setdefault(op, []).append(time.monotonic() - start)
            for i in range(rounds):
                self.round()
                if i % 60 == 59:
                    repair(self.root)
                    assert_clean(self.root)
                    verify_images_usable(self.root, limit=2)
        except BaseException as exc:  # reported by the test thread
            self.failures.append(f"{type(exc).__name__}: {exc}")


def test_random_crashes(new_store: NewStore, tmp_path: Path, busybox_tar: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    total = env_int("FORKLIFT_CRASH_ROUNDS", 1200)
    seed = env_int("FORKLIFT_CRASH_SEED", 1000)
    workers = [Worker(new_store(), tmp_path, seed + i, busybox_tar) for i in range(2)]
    threads = [threading.Thread(target=w.run, args=(total // len(workers),)) for w in workers]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
        assert not any(t.is_alive() for t in threads), "crash workers hung"
        failures = [f for w in workers for f in w.failures]
        assert not failures, "\n".join(failures[:20])
        for w in workers:
            w.fl("images")
            repair(w.root)
            assert_clean(w.root, full=True)
            verify_images_usable(w.root)
    finally:
        crashes = sum(w.crashes for w in workers)
        with capsys.disabled():
            print(f"\ncrash-injection: {crashes} processes SIGKILLed mid-operation"
                  f" ({sum(w.left_something for w in workers)} left leftovers to sweep),"
                  f" {sum(w.completed for w in workers)} completed, in"
                  f" {sum(w.rounds for w in workers)} rounds"
                  f" ({time.monotonic() - started:.0f}s), corruption found: "
                  f"{'none' if not any(w.failures for w in workers) else 'SEE FAILURE'}")
    # most rounds must really kill a live process
    assert crashes >= total * 0.6, f"only {crashes} of {total} rounds killed a live process"
