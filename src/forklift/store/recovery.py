"""Crash recovery: the next forklift process cleans up after one that was killed.

A process works in scratch space named after its pid (``Store.make_tmp``) and,
before it moves files into or out of ``blobs/`` and ``layers/``, leaves a
``tmp/<pid>-dirty-…`` marker (``Store.mark_dirty``). Once that pid is gone its
scratch can go, and if it left anything there it may also have renamed a file into
place whose row never committed, or committed a garbage collection whose files
stayed: ``recover`` removes both. ``open_store`` runs it; ``Store.open`` does not,
so a test can look at a store exactly as a crash left it.
"""

from __future__ import annotations

# the extension sqlite3 re-exports: the package adds datetime's adapters (~2.5 ms)
import _sqlite3 as sqlite3
import contextlib
import errno
import json
import os

from forklift import faults
from forklift.errors import ForkliftError
from forklift.procs import pid_alive
from forklift.runtime import fsutil
from forklift.store.db import Store, remove_path

# containers/<id>/commit-move: a commit is moving the container's upper directory into
# layers/<layer>/diff (engine/commitlayer). JSON: {"pid", "layer", "upper"}.
MOVE_MARKER = "commit-move"


def recover(store: Store) -> None:
    """Remove dead processes' scratch and, if there was any, orphan files.

    Idempotent; takes the write lock only when a dead process left something. A
    failing orphan sweep is ignored (a later command sweeps again, ``system check``
    reports what stays), so opening a store never fails because of it."""
    if store.sweep_tmp():
        with contextlib.suppress(ForkliftError, OSError, sqlite3.Error):
            sweep_orphans(store)


def sweep_orphans(store: Store) -> list[str]:
    """Remove layer directories and blob files that have no row (left by a crash);
    returns their paths.

    Holds the write lock while it looks and removes (its own transaction, or the
    caller's): ``PreparedLayer.register`` and ``BlobWriter.commit`` rename into place
    inside theirs, so a file seen without a row under the lock is truly an orphan.
    Idempotent. Raises what the filesystem or SQLite raise (``NoSpace`` on a full disk).
    """
    removed: list[str] = []
    store.mark_dirty()
    with store.transaction() as conn:
        settle_moves(store)  # first: a moved upper directory is no orphan
        known_dirs = {r[0] for r in conn.execute("SELECT dir FROM layers")}
        known_blobs = {r[0].split(":", 1)[1] for r in conn.execute("SELECT digest FROM blobs")}
        for name in os.listdir(store.layers_dir):
            if name not in known_dirs:
                removed.append(os.path.join(store.layers_dir, name))
        for name in os.listdir(store.blobs_dir):
            if name not in known_blobs:
                removed.append(os.path.join(store.blobs_dir, name))
        for i, path in enumerate(removed):
            remove_path(path)
            if i == 0:
                faults.checkpoint("sweep-mid")
    return removed


def settle_moves(store: Store) -> None:
    """Finish or undo the upper-directory moves of commits whose process died.

    Under the caller's write lock (asserted). A move whose layer row committed keeps
    the layer (the container gets an empty upper directory if it has none yet); one
    whose row never committed is undone: the directory goes back to being the
    container's upper. Raises OSError if that cannot be done, so that the caller's
    orphan sweep stops before it could remove the directory."""
    assert store.conn.in_transaction, "settle_moves outside a transaction"
    for cid in os.listdir(store.containers_dir):
        marker = os.path.join(store.container_path(cid), MOVE_MARKER)
        try:
            with open(marker) as f:
                move = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except ValueError:
            os.unlink(marker)  # torn while written: nothing was moved yet
            continue
        if move["pid"] != os.getpid() and pid_alive(move["pid"]):
            continue  # a live commit: under this lock it has either not moved or committed
        finish_move(store, move["layer"], move["upper"], marker)


def finish_move(store: Store, layer: str, upper: str, marker: str) -> None:
    """Settle one move by what the store recorded (see ``settle_moves``); idempotent."""
    layer_dir = os.path.join(store.layers_dir, layer)
    moved = os.path.join(layer_dir, "diff")
    recorded = store.conn.execute("SELECT 1 FROM layers WHERE dir=?", (layer,)).fetchone()
    if recorded is None:
        put_back(moved, upper)
        remove_path(layer_dir)
    elif not os.path.isdir(upper):
        os.mkdir(upper, 0o755)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)


def put_back(moved: str, upper: str) -> None:
    """Make ``moved`` the upper directory again. An empty ``moved`` holds nothing (the
    fresh directory, not yet swapped in): it goes. The fresh, empty directory at
    ``upper`` goes too; one that is not empty was written to meanwhile: OSError, both
    kept for ``system check`` to report."""
    if not os.path.isdir(moved):
        return
    if not os.listdir(moved):
        os.rmdir(moved)
    elif not os.path.isdir(upper):
        os.rename(moved, upper)
    elif os.listdir(upper):
        raise OSError(errno.ENOTEMPTY, "the container's new upper directory is not empty", upper)
    else:
        fsutil.exchange(moved, upper)
        os.rmdir(moved)
