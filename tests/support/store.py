"""Test stores: made short-lived under /var/tmp and released without leaks; what a store
holds (to prove an operation changed nothing), and the store invariants checked after
every injected crash."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from forklift.engine import containers, images, system
from forklift.store import open_store
from forklift.store.check import Findings, check
from forklift.store.db import Store
from support.cli import Forklift
from support.mounts import unmount_and_remove

NewStore = Callable[[], Forklift]  # the new_store fixture: one more temporary store
TABLES = ("blobs", "layers", "images", "image_layers", "tags", "repo_digests", "compressed_blobs")


@contextlib.contextmanager
def temporary_store(**kw: Any) -> Iterator[Forklift]:
    """The CLI on a new, empty store, released afterwards. The path is short: unix socket
    paths and overlay mount options have length limits."""
    root = Path(tempfile.mkdtemp(prefix="fl-", dir="/var/tmp"))
    try:
        yield Forklift(root, **kw)
    finally:
        release(Forklift(root))


def _may_hold_host_state(root: Path) -> bool:
    """Whether a store may hold something outside its directory: a container process, or a
    network (bridge, iptables rules, address leases are host-wide)."""
    if any(Path(root, "networks").glob("*.json")) or any(Path(root, "netns").glob("*")):
        return True
    if not (root / "forklift.db").exists():
        return False
    conn = sqlite3.connect(f"file:{root}/forklift.db?mode=ro", uri=True)
    try:
        live = conn.execute("SELECT count(*) FROM containers"
                            " WHERE state NOT IN ('created', 'exited')").fetchone()[0]
    except sqlite3.Error:
        return True  # a damaged store: let the CLI find out
    finally:
        conn.close()
    return bool(live)


def release(fl: Forklift) -> None:
    """Stop and remove what a store runs (containers, networks), then unmount and remove it."""
    if _may_hold_host_state(fl.root):
        ids = fl("ps", "-aq", "--no-trunc", check=False).out.split()
        if ids:
            fl("rm", "-f", "-v", *ids, check=False)
        for net in fl("network", "ls", "-q", "--filter", "type=custom", check=False).out.split():
            fl("network", "rm", net, check=False)
    unmount_and_remove(fl.root)


def snapshot(root: Path) -> dict[str, dict[str, list[Any]]]:
    """Every metadata row (``rows``, by table) and every path under blobs/, layers/ and tmp/
    (``files``, by directory): what an operation that is refused or repeated must leave as
    it was."""
    rows: dict[str, list[Any]] = {}
    db = root / "forklift.db"
    if db.exists():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}")), key=repr)
                    for t in TABLES}
        finally:
            conn.close()
    files = {sub: sorted(str(p.relative_to(root)) for p in (root / sub).rglob("*"))
             if (root / sub).exists() else [] for sub in ("blobs", "layers", "tmp")}
    return {"rows": rows, "files": files}


def tmp_entries(root: Path) -> list[str]:
    return os.listdir(root / "tmp") if (root / "tmp").exists() else []


# ----------------------------------------------------------------------------- invariants

def is_leftover(problem: object) -> bool:
    """Leftovers a crash may leave until the next command or a repair; anything else that
    ``system check`` finds is corruption."""
    kind = getattr(problem, "kind", "")
    message = getattr(problem, "message", "")
    return kind == "tmp" or "has no record" in message or "still mounted" in message


def store_findings(root: Path | str, full: bool = False) -> Findings:
    """``system check``'s findings, on the store as a crash left it: opened without the
    recovery ``open_store`` runs."""
    store = Store(str(root)).open()
    store.conn.row_factory = sqlite3.Row
    try:
        return check(store, full=full, grace=0)
    finally:
        store.close()


def assert_no_corruption(root: Path | str, full: bool = False) -> list[str]:
    """No problem other than crash leftovers; returns the leftovers (as text)."""
    found = store_findings(root, full=full)
    corrupt = [str(p) for p in found.problems if not is_leftover(p)]
    assert not corrupt, "store corrupted:\n" + "\n".join(corrupt)
    return [str(p) for p in found.problems]


def assert_clean(root: Path | str, full: bool = False) -> None:
    found = store_findings(root, full=full)
    assert found.ok, "store not clean:\n" + "\n".join(str(p) for p in found.problems)


def repair(root: Path | str) -> list[str]:
    store = open_store(str(root))
    try:
        result = system.check(store, repair=True, grace=0)
    finally:
        store.close()
    assert not result.remaining, "repair left problems:\n" + "\n".join(result.remaining)
    return result.repaired


def image_ids(root: Path | str) -> list[str]:
    store = open_store(str(root))
    try:
        return [r[0] for r in store.conn.execute("SELECT id FROM images ORDER BY added")]
    finally:
        store.close()


def verify_images_usable(root: Path | str, limit: int | None = None, run: bool = True) -> int:
    """Every image can be inspected, its history read, and exported (flattened through a
    container); the last two holding busybox are also run through the CLI."""
    ids = image_ids(root)
    if limit is not None:
        ids = ids[-limit:]
    # one scratch dir per call: several stores (and threads) share a parent directory
    scratch = Path(tempfile.mkdtemp(prefix="verify-export-", dir=Path(root).parent))
    out_tar = scratch / "export.tar"
    runnable = []
    store = open_store(str(root))
    try:
        for image_id in ids:
            images.inspect(store, image_id)
            images.history(store, image_id)
            rec = containers.create(store, image_id, ["/bin/busybox", "true"],
                                    containers.CreateOptions(network="none"))
            try:
                with open(out_tar, "wb") as out:
                    containers.export(store, rec.id, out)
            finally:
                containers.remove(store, rec.id, force=True)
            with tarfile.open(out_tar) as tf:
                names = tf.getnames()
            assert names, f"export of {image_id} is empty"
            if "bin/busybox" in names:
                runnable.append(image_id)
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if run:
        fl = Forklift(root)
        for image_id in runnable[-2:]:
            res = fl("run", "--rm", "--network", "none", image_id, "/bin/busybox", "true",
                     check=False)
            assert res.code == 0, f"cannot run {image_id}: {res.err}"
    return len(ids)


def dead_pid() -> int:
    """A pid no process has (the highest free one below 4,000,000): what a killed
    forklift process leaves in the names of its scratch directories and markers."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
