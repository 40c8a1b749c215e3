"""Store-wide operations: ``system check``, ``system df``, the prune commands."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field

from forklift import reference
from forklift.engine import containers as engine_containers
from forklift.engine import events, sizes
from forklift.engine import images as engine_images
from forklift.engine import network as network_mod
from forklift.engine.filters import Filters
from forklift.errors import Conflict, ForkliftError, InvalidFilter, NotFound
from forklift.store import check as check_mod
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store import recovery
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
          grace: float | None = None) -> CheckResult:
    """``system check``: the store's problems; with ``repair``, what was done about them and
    what is left. ``grace`` (seconds, default ``store.check.DEFAULT_GRACE``) leaves younger
    container and volume directories alone. Raises nothing for a damaged store."""
    grace = check_mod.DEFAULT_GRACE if grace is None else grace
    found = check_mod.check(store, full=full, grace=grace)
    problems = [str(p) for p in found.problems]
    if not repair or found.ok:
        return CheckResult(problems, [], problems, found.counts)
    actions = check_mod.repair(store, found, grace=grace)
    again = check_mod.check(store, full=False, grace=grace)
    return CheckResult(problems, actions, [str(p) for p in again.problems], again.counts)


# ----------------------------------------------------------------------------- sizes

def du(path: str) -> int:
    """Bytes under ``path`` as Docker counts a volume or a container's layer (moby's
    ``directory.Size``): the size of every entry but directories (a symlink counts its
    target's length), a file with several links once. Never follows links; entries that
    vanish meanwhile count nothing."""
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
                    continue
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
    status: engine_containers.Status
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
    """``system df``: images (shared and unique sizes), containers (their layer's size),
    volumes (links, size), sizes counted by :func:`du`. Reads only, walking every container
    layer and volume; not one snapshot (a concurrent command may change what it counts)."""
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
        status = engine_containers.status(crec)
        containers.append(ContainerUsage(
            crec.id, crec.image_name, engine_containers.command_text(crec),
            per_container_vols.get(crec.id, 0),
            du(os.path.join(store.container_path(crec.id), "upper")) + sizes.own_size(store, crec),
            crec.created,
            status, crec.name, status.state in ("running", "paused")))
    volumes = [VolumeUsage(v.name, links.get(v.name, 0), du(v.path(store)))
               for v in volume_store.all_volumes(store)]
    return DiskUsage(images, sum(layer_size.get(d, 0) for d in all_layers),
                     sum(layer_size.get(d, 0) for d in used_layers), containers, volumes)


# ----------------------------------------------------------------------------- prune
#
# Every prune takes Docker's filters for it (validated before anything is removed) and
# removes objects one at a time, each removal checking again that its object is unused: a
# concurrent ``run``, ``commit`` or ``start`` wins the race, a prune killed midway leaves a
# consistent store. None is atomic as a whole; all are idempotent.

PRUNE_FILTERS = {
    "containers": ("label", "label!", "until"),
    "images": ("dangling", "label", "label!", "until"),
    "volumes": ("label", "label!"),
    "networks": network_mod.PRUNE_FILTERS,
    "system": ("label", "label!", "until"),
}


def check_prune_filters(kind: str, filters: Filters, volumes: bool = False) -> None:
    """Refuse, as Docker does, filters a prune of ``kind`` (a key of PRUNE_FILTERS) does not
    take: an unknown key, an unreadable ``until``, ``until`` in a system prune with
    ``volumes``. Every prune calls it before removing anything; the CLI calls it before
    asking the user. Raises InvalidFilter; reads nothing."""
    filters.validate(PRUNE_FILTERS[kind])
    filters.until()
    if kind == "system" and volumes and "until" in filters:
        raise InvalidFilter('The "until" filter is not supported with "--volumes"')


@dataclass
class PruneResult:
    deleted: list[str] = field(default_factory=list)   # lines to print under the heading
    reclaimed: int = 0


def prune_containers(store: Store, filters: Filters | None = None) -> PruneResult:
    """``container prune``: remove every stopped (created or exited) container; filters
    ``until=`` (created before), ``label=``/``label!=`` (its labels).

    Raises InvalidFilter for another key or an unreadable ``until``.
    """
    filters = filters or Filters()
    check_prune_filters("containers", filters)
    until = filters.until()
    result = PruneResult()
    for rec in container_store.all_containers(store):
        if rec.effective_state().up:
            continue
        if until is not None and rec.created >= until:
            continue
        if not filters.prune_labels(rec.config.get("Labels") or {}):
            continue
        size = du(os.path.join(store.container_path(rec.id), "upper")) + sizes.own_size(store, rec)
        try:
            engine_containers.remove(store, rec.id, force=False, volumes=False)
        except (NotFound, Conflict):
            continue  # removed or started meanwhile
        result.deleted.append(rec.id)
        result.reclaimed += size
    return result


def prune_volumes(store: Store, all_volumes: bool = False,
                  filters: Filters | None = None) -> PruneResult:
    """``volume prune``: remove volumes no container uses, anonymous ones only unless
    ``all_volumes``; filters ``label=``/``label!=``. The reclaimed size is :func:`du`'s.

    Raises InvalidFilter for another key.
    """
    filters = filters or Filters()
    check_prune_filters("volumes", filters)
    result = PruneResult()
    for vol in volume_store.all_volumes(store):
        if not (vol.anonymous or all_volumes) or volume_store.users(store, vol.name):
            continue
        if not filters.prune_labels(vol.labels):
            continue
        size = du(vol.path(store))
        try:
            volume_store.remove(store, vol.name)
        except (NotFound, Conflict):
            continue
        result.deleted.append(vol.name)
        result.reclaimed += size
    return result


def prune_images(store: Store, all_images: bool = False,
                 filters: Filters | None = None) -> PruneResult:
    """``image prune``: delete dangling images (untagged, no children), or with
    ``all_images`` every image no container uses; repeated until nothing more goes, then
    free unused layers. Filters ``until=`` (created before), ``label=``/``label!=`` (the
    config's labels), ``dangling=`` (``false``/``0`` among its values means every unused
    image, as Docker's daemon reads it; the flag itself is added as Docker's CLI adds it).

    Raises InvalidFilter for another key or an unreadable ``until``.
    """
    filters = filters.copy() if filters else Filters()
    check_prune_filters("images", filters)
    filters.add("dangling", "false" if all_images else "true")
    dangling_only = filters.boolean("dangling", prefer=False)
    until = filters.until()
    result = PruneResult()
    conn = store.conn
    before = {r[0]: r[1] for r in conn.execute("SELECT diff_id, size FROM layers")}
    progress = True
    while progress:
        progress = False
        for rec in image_store.all_images(store):
            if until is not None and rec.created >= until:
                continue
            if not filters.prune_labels(engine_images.labels(store, rec.id)):
                continue
            lines = _prune_image(store, rec.id, all_images=not dangling_only)
            result.deleted.extend(lines)
            progress = progress or bool(lines)
    if result.deleted:
        layer_store.collect_garbage(store)
    after = {r[0] for r in conn.execute("SELECT diff_id FROM layers")}
    result.reclaimed = sum(size for d, size in before.items() if d not in after)
    return result


def _prune_image(store: Store, image_id: str, all_images: bool) -> list[str]:
    """Delete one image if it is still unused (and untagged unless ``all_images``), in one
    transaction; returns the lines to print (none when it stays)."""
    lines: list[str] = []
    with store.transaction():
        if image_store.get(store, image_id) is None:
            return []
        if container_store.users_of_image(store, image_id) or image_store.children(store, image_id):
            return []
        tags = image_store.tags_of(store, image_id)
        if tags and not all_images:
            return []
        for name in tags:
            lines.append(f"untagged: {_familiar(name)}")
        image_store.delete_record(store, image_id)
        lines.append(f"deleted: {image_id}")
    events.emit(store.root, "image", "delete", image_id, {"name": image_id})
    return lines


def _familiar(name: str) -> str:
    try:
        return reference.parse(name).familiar()
    except ForkliftError:
        return name


def prune_networks(store: Store, filters: Filters | None = None) -> PruneResult:
    """``network prune``: remove every custom network no container uses; filters
    ``until=`` (created before), ``label=``/``label!=``. Names are the deleted lines.

    Raises InvalidFilter for another key or an unreadable ``until``.
    """
    return PruneResult(network_mod.prune(store, filters))


@dataclass
class SystemPruneResult:
    containers: PruneResult
    networks: PruneResult
    volumes: PruneResult | None
    images: PruneResult

    @property
    def reclaimed(self) -> int:
        return (self.containers.reclaimed + self.images.reclaimed
                + (self.volumes.reclaimed if self.volumes else 0))


def prune_system(store: Store, all_images: bool = False, volumes: bool = False,
                 filters: Filters | None = None) -> SystemPruneResult:
    """``system prune``: stopped containers, unused networks, (with ``volumes``) unused
    anonymous volumes, dangling (with ``all_images`` unused) images, in Docker's order, all
    with the same filters (``until=``, ``label=``, ``label!=``; ``until`` not with volumes).

    Raises InvalidFilter before anything is removed.
    """
    filters = filters or Filters()
    check_prune_filters("system", filters, volumes)
    containers = prune_containers(store, filters)
    networks = prune_networks(store, filters)
    vols = prune_volumes(store, filters=filters) if volumes else None
    images = prune_images(store, all_images, filters)
    # also clear what crashed processes left behind
    with contextlib.suppress(ForkliftError, OSError):
        recovery.sweep_orphans(store)
    return SystemPruneResult(containers, networks, vols, images)
