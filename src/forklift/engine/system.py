"""Store-wide operations: ``system check``, ``system df``, the prune commands."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field

from forklift import reference
from forklift.errors import Conflict, ForkliftError, NotFound
from forklift.store import check as check_mod
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store import volumes as volume_store
from forklift.store.db import Store

# ----------------------------------------------------------------------------- check


@dataclass
class CheckResult:
    problems: list[str]            # found by the first pass
    repaired: list[str]            # actions taken (with repair)
    remaining: list[str]           # problems still there after repair (== problems without)
    counts: dict[str, int] = field(default_factory=dict)


def check(store: Store, repair: bool = False, full: bool = False,
          grace: float = check_mod.DEFAULT_GRACE) -> CheckResult:
    found = check_mod.check(store, full=full, grace=grace)
    problems = [str(p) for p in found.problems]
    if not repair or found.ok:
        return CheckResult(problems, [], problems, found.counts)
    actions = check_mod.repair(store, found, grace=grace)
    again = check_mod.check(store, full=False, grace=grace)
    return CheckResult(problems, actions, [str(p) for p in again.problems], again.counts)


# ----------------------------------------------------------------------------- sizes

def du(path: str) -> int:
    """Bytes of regular-file content under ``path`` (hardlinks once), never following links."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            it = os.scandir(current)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(st.st_mode):
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_size
    return total


# ----------------------------------------------------------------------------- df

@dataclass
class ImageUsage:
    id: str
    names: list[str]               # familiar repo:tag names
    created: float
    size: int
    shared_size: int
    containers: int


@dataclass
class ContainerUsage:
    id: str
    image: str
    command: str
    local_volumes: int
    size: int
    created: float
    status: str
    names: str
    active: bool


@dataclass
class VolumeUsage:
    name: str
    links: int
    size: int


@dataclass
class DiskUsage:
    images: list[ImageUsage]
    layers_size: int               # every layer once
    active_layers_size: int        # layers under images some container uses
    containers: list[ContainerUsage]
    volumes: list[VolumeUsage]
    build_cache_size: int = 0

    def summary(self) -> list[tuple[str, int, int, int, int]]:
        """(type, total, active, size, reclaimable) rows as ``docker system df`` prints."""
        images_active = sum(1 for i in self.images if i.containers)
        c_size = sum(c.size for c in self.containers)
        c_reclaim = sum(c.size for c in self.containers if not c.active)
        v_size = sum(v.size for v in self.volumes)
        v_reclaim = sum(v.size for v in self.volumes if not v.links)
        return [
            ("Images", len(self.images), images_active, self.layers_size,
             self.layers_size - self.active_layers_size),
            ("Containers", len(self.containers), sum(1 for c in self.containers if c.active),
             c_size, c_reclaim),
            ("Local Volumes", len(self.volumes), sum(1 for v in self.volumes if v.links),
             v_size, v_reclaim),
            ("Build Cache", 0, 0, self.build_cache_size, 0),
        ]


def disk_usage(store: Store) -> DiskUsage:
    from forklift.engine import containers as engine_containers

    conn = store.conn
    layer_size = {r[0]: r[1] for r in conn.execute("SELECT diff_id, size FROM layers")}
    image_layers: dict[str, list[str]] = {}
    for image_id, diff_id in conn.execute(
            "SELECT image_id, diff_id FROM image_layers ORDER BY image_id, position"):
        image_layers.setdefault(image_id, []).append(diff_id)
    users: dict[str, int] = {}
    for (image_id,) in conn.execute("SELECT image_id FROM containers"):
        users[image_id] = users.get(image_id, 0) + 1
    layer_refs: dict[str, int] = {}
    for diff_ids in image_layers.values():
        for d in set(diff_ids):
            layer_refs[d] = layer_refs.get(d, 0) + 1
    names: dict[str, list[str]] = {}
    for name, image_id in image_store.all_tags(store):
        with contextlib.suppress(ForkliftError):
            names.setdefault(image_id, []).append(reference.parse(name).familiar())
    images = []
    used_layers: set[str] = set()
    all_layers: set[str] = set()
    for rec in image_store.all_images(store):
        diff_ids = list(dict.fromkeys(image_layers.get(rec.id, [])))
        size = sum(layer_size.get(d, 0) for d in diff_ids)
        shared = sum(layer_size.get(d, 0) for d in diff_ids if layer_refs.get(d, 0) > 1)
        all_layers.update(diff_ids)
        if users.get(rec.id):
            used_layers.update(diff_ids)
        images.append(ImageUsage(rec.id, sorted(names.get(rec.id, [])), rec.created, size,
                                 shared, users.get(rec.id, 0)))
    images.sort(key=lambda i: -i.created)
    links: dict[str, int] = {}
    per_container_vols: dict[str, int] = {}
    for cid, vol in conn.execute("SELECT container_id, volume FROM container_volumes"):
        links[vol] = links.get(vol, 0) + 1
        per_container_vols[cid] = per_container_vols.get(cid, 0) + 1
    containers = []
    for crec in container_store.all_containers(store):
        state = crec.effective_state()
        containers.append(ContainerUsage(
            crec.id, crec.image_name, engine_containers.command_text(crec),
            per_container_vols.get(crec.id, 0),
            du(os.path.join(store.container_path(crec.id), "upper")), crec.created,
            engine_containers.status_text(crec), crec.name, state in ("running", "paused")))
    volumes = [VolumeUsage(v.name, links.get(v.name, 0), du(v.path(store)))
               for v in volume_store.all_volumes(store)]
    return DiskUsage(images, sum(layer_size.get(d, 0) for d in all_layers),
                     sum(layer_size.get(d, 0) for d in used_layers), containers, volumes)


# ----------------------------------------------------------------------------- prune

@dataclass
class PruneResult:
    deleted: list[str] = field(default_factory=list)   # lines to print under the heading
    reclaimed: int = 0


def prune_containers(store: Store) -> PruneResult:
    """Remove every stopped (created or exited) container."""
    from forklift.engine import containers as engine_containers

    result = PruneResult()
    for rec in container_store.all_containers(store):
        if rec.effective_state().up:
            continue
        size = du(os.path.join(store.container_path(rec.id), "upper"))
        try:
            engine_containers.remove(store, rec.id, force=False, volumes=False)
        except (NotFound, Conflict):
            continue  # removed or started meanwhile
        result.deleted.append(rec.id)
        result.reclaimed += size
    return result


def prune_volumes(store: Store, all_volumes: bool = False) -> PruneResult:
    """Remove volumes no container uses (anonymous ones only unless ``all_volumes``)."""
    result = PruneResult()
    for vol in volume_store.all_volumes(store):
        if not (vol.anonymous or all_volumes) or volume_store.users(store, vol.name):
            continue
        size = du(vol.path(store))
        try:
            volume_store.remove(store, vol.name)
        except (NotFound, Conflict):
            continue
        result.deleted.append(vol.name)
        result.reclaimed += size
    return result


def prune_images(store: Store, all_images: bool = False) -> PruneResult:
    """Delete dangling images (untagged, no children), or with ``all_images`` every image
    no container uses; repeated until nothing more goes, then free unused layers.

    Each deletion re-checks in its own transaction that no container and no child
    image appeared meanwhile (a concurrent ``run`` or ``commit`` wins the race).
    """
    result = PruneResult()
    conn = store.conn
    before = {r[0]: r[1] for r in conn.execute("SELECT diff_id, size FROM layers")}
    progress = True
    while progress:
        progress = False
        candidates = [r.id for r in image_store.all_images(store)]
        for image_id in candidates:
            lines: list[str] = []
            with store.transaction():
                if image_store.get(store, image_id) is None:
                    continue
                if container_store.users_of_image(store, image_id) or image_store.children(store, image_id):
                    continue
                tags = image_store.tags_of(store, image_id)
                if tags and not all_images:
                    continue
                for name in tags:
                    lines.append(f"untagged: {_familiar(name)}")
                image_store.delete_record(store, image_id)
                lines.append(f"deleted: {image_id}")
            result.deleted.extend(lines)
            progress = True
    if result.deleted:
        layer_store.collect_garbage(store)
    after = {r[0] for r in conn.execute("SELECT diff_id FROM layers")}
    result.reclaimed = sum(size for d, size in before.items() if d not in after)
    return result


def _familiar(name: str) -> str:
    try:
        return reference.parse(name).familiar()
    except ForkliftError:
        return name


@dataclass
class SystemPruneResult:
    containers: PruneResult
    volumes: PruneResult | None
    images: PruneResult

    @property
    def reclaimed(self) -> int:
        return (self.containers.reclaimed + self.images.reclaimed
                + (self.volumes.reclaimed if self.volumes else 0))


def prune_system(store: Store, all_images: bool = False, volumes: bool = False) -> SystemPruneResult:
    containers = prune_containers(store)
    vols = prune_volumes(store) if volumes else None
    images = prune_images(store, all_images)
    # also clear what crashed processes left behind
    with contextlib.suppress(ForkliftError, OSError):
        layer_store.sweep_orphans(store)
    return SystemPruneResult(containers, vols, images)

