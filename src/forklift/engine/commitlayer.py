"""The layer a ``commit`` adds, with its data written once.

A **stopped** container's upper directory is moved into the store as the new layer
(renamed, settled in place and hashed, never copied), and the container gets a fresh
empty upper directory over it: it then sits on its image's layers, the init layer and
that layer, its "own" layer (``container_layers`` from ``OWN_POSITION``, see
store/containers). ``diff``, sizes, ``export`` and the mounts see the own layer as part
of the container's changes; the image's layer is never anyone's upper directory again,
so it cannot change.

A later commit must hold every change since the image, as Docker's does: with nothing
changed since the last commit that is the own layer itself (reused, nothing written);
otherwise the own layer and the upper directory are merged into one new layer (a
copy, as before). A running, paused or restarting container keeps its upper directory
and is copied, as before: an upper directory in use by a mount cannot be moved.

The move happens under the store's write lock, after checking that the container is
still stopped and unmounted, in the transaction that records the layer and the
container's layer list (the image follows in its own): nothing can start the container
or mount its upper directory meanwhile. A marker (``recovery.MOVE_MARKER``) names the move, so a process killed
between the rename and the commit leaves a state that ``recovery.settle_moves`` puts
back (the directory becomes the upper directory again) before any orphan sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time

from forklift import faults, oci
from forklift.engine import rootfs
from forklift.engine.fsdiff import LowerView
from forklift.errors import Conflict, NotFound
from forklift.runtime import fsutil, overlay
from forklift.store import containers as container_store
from forklift.store import layers as layer_store
from forklift.store import recovery
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store, remove_path

OPAQUE_XATTR = "trusted.overlay.opaque"


class Plan:
    """What ``prepare`` decided: a layer made already (copied or reused), or a move that
    ``take`` does under the lock."""

    def __init__(self, store: Store, rec: ContainerRecord,
                 prepared: layer_store.PreparedLayer | None) -> None:
        self.store, self.rec, self.prepared = store, rec, prepared
        self.moved: str | None = None  # the layer directory name while a move is undone-able

    def cleanup(self) -> None:
        """Drop scratch space and, once the move is settled, its marker (a move not
        settled keeps it for ``recovery.settle_moves``). Idempotent."""
        if self.prepared is not None:
            self.prepared.cleanup()
        if self.moved is None:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(_marker(self.store, self.rec.id))


def prepare(store: Store, rec: ContainerRecord) -> Plan:
    """Decide how the container's changes become a layer, doing the copying (if any)
    outside the lock."""
    p = rootfs.paths(store, rec.id)
    _image, own = container_store.stack(store, rec)
    upper_empty = not os.listdir(p["upper"])
    if own and upper_empty and len(own) == 1:
        return Plan(store, rec, layer_store.reuse(store, own[0].diff_id))
    if own:
        image_view = rootfs.layer_dirs(store, rec.id, rec.image_id)[1]
        return Plan(store, rec, _merged(store, [la.path(store) for la in own], p["upper"],
                                        image_view))
    if rec.effective_state().up or upper_empty or overlay.is_mounted(p["merged"]):
        return Plan(store, rec, layer_store.from_directory(store, p["upper"]))
    plan = Plan(store, rec, None)
    plan.moved = ""
    return plan


def take(store: Store, plan: Plan) -> layer_store.PreparedLayer:
    """The layer to put in the image. A planned move happens now, in its own transaction
    (the layer row and the container's new layer list): the image is recorded after it,
    by ``images.add``; a crash between leaves the container on its own layer, unchanged
    to its user, and no image. If the move fails, the directory is put back."""
    if plan.moved is None:
        assert plan.prepared is not None
        return plan.prepared
    try:
        with store.transaction():
            layer = _move(store, plan)
    except BaseException:
        if plan.moved:
            upper = rootfs.paths(store, plan.rec.id)["upper"]
            recovery.finish_move(store, plan.moved, upper, _marker(store, plan.rec.id))
            plan.moved = None
        raise
    plan.moved = None  # committed: the marker may go
    return layer


def _marker(store: Store, container_id: str) -> str:
    return os.path.join(store.container_path(container_id), recovery.MOVE_MARKER)


def _move(store: Store, plan: Plan) -> layer_store.PreparedLayer:
    """Under the lock: the upper directory becomes a layer, the container sits on it."""
    rec = plan.rec
    current = container_store.get(store, rec.id)
    if current is None:
        raise NotFound(f"No such container: {rec.id}")
    p = rootfs.paths(store, rec.id)
    if (current.effective_state().up or current.started_at != rec.started_at
            or overlay.is_mounted(p["merged"])):
        raise Conflict(f"container {rec.short_id} was started while it was being committed;"
                       " try again")
    name = os.urandom(6).hex()
    layer_dir = os.path.join(store.layers_dir, name)
    target = os.path.join(layer_dir, "diff")
    store.mark_dirty()
    plan.moved = name
    with open(_marker(store, rec.id), "w") as f:
        json.dump({"pid": os.getpid(), "layer": name, "upper": p["upper"]}, f)
    os.mkdir(layer_dir, 0o700)
    os.mkdir(target, 0o755)
    try:
        fsutil.exchange(p["upper"], target)  # the container never lacks an upper directory
    except OSError:  # a filesystem without RENAME_EXCHANGE: recovery handles the gap too
        os.rmdir(target)
        os.rename(p["upper"], target)
        os.mkdir(p["upper"], 0o755)
    faults.checkpoint("layer-after-rename")
    return _record(store, plan, target, name)


def _record(store: Store, plan: Plan, target: str, name: str) -> layer_store.PreparedLayer:
    from forklift import archive  # tarfile: off the hot path

    try:
        archive.settle_in_place(target)
    except OSError:
        _undo(store, plan)  # rare (xattrs that cannot be removed): copy it, under the lock
        plan.prepared = layer_store.from_directory(store, rootfs.paths(store, plan.rec.id)["upper"])
        return plan.prepared
    diff_id, size = archive.hash_layer(target)
    faults.checkpoint("layer-extracted")
    if diff_id == oci.EMPTY_TAR_DIFF_ID or layer_store.get(store, diff_id) is not None:
        _undo(store, plan)  # nothing to keep, or the store has that layer already
        return layer_store.PreparedLayer(store, diff_id, size, existing=True)
    store.conn.execute(
        "INSERT INTO layers(diff_id, dir, size, blob, blob_media_type, created) VALUES(?,?,?,?,?,?)",
        (diff_id, name, size, diff_id, layer_store.UNSTORED, time.time()))
    container_store.adopt_layer(store, plan.rec, diff_id)
    return layer_store.PreparedLayer(store, diff_id, size, existing=True)


def _undo(store: Store, plan: Plan) -> None:
    """Put the moved directory back as the upper directory (the rows roll back)."""
    if plan.moved:
        upper = rootfs.paths(store, plan.rec.id)["upper"]
        layer_dir = os.path.join(store.layers_dir, plan.moved)
        recovery.put_back(os.path.join(layer_dir, "diff"), upper)
        remove_path(layer_dir)
    plan.moved = None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_marker(store, plan.rec.id))


# ----------------------------------------------------------------------------- merge

def _merged(store: Store, own: list[str], upper: str, image: list[str]) -> layer_store.PreparedLayer:
    """The container's own layers (bottom first) and its upper directory merged into one
    layer of every change since the image (``image``: its layers, top first)."""
    from forklift import archive  # tarfile: off the hot path

    scratch = store.make_tmp("commit-merge")
    try:
        target = os.path.join(scratch, "merged")
        os.mkdir(target, 0o755)
        for layer in [*own, upper]:
            layer_store.clear_opaque(layer, target)
            archive.copy_layer(layer, target)
        _drop_needless(target, LowerView(image))
        return layer_store.from_upper(store, target)
    finally:
        remove_path(scratch)


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _drop_needless(target: str, image: LowerView) -> None:
    """What the container's upper directory would hold had it never been moved: no
    whiteout of a path the image does not have, no opaque mark on a directory the image
    does not have (they hid what an own layer added, and the merge applied that)."""
    for dirpath, dirnames, filenames in os.walk(target):
        rel_dir = os.path.relpath(dirpath, target)
        rel_dir = "" if rel_dir == "." else rel_dir
        mtime = os.lstat(dirpath).st_mtime_ns
        touched = False
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and image.find(rel) is None:
                os.unlink(path)
                touched = True
        if touched:
            os.utime(dirpath, ns=(mtime, mtime))
        for name in dirnames:
            path = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            # overlayfs marks a directory opaque when it replaces something below
            if _is_opaque(path) and image.find(rel) is None:
                os.removexattr(path, OPAQUE_XATTR, follow_symlinks=False)
