"""``ps --filter``: Docker 20.10's keys for containers, read and matched by its rules
(moby's ``daemon/list.go``).

:func:`prepare` validates the filters and resolves what they name (``before``/``since``
containers, ``ancestor`` images with the images built on them, port ranges) once;
:meth:`PsFilter.keep` then decides per container, newest first, as Docker walks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forklift.engine.filters import Filters
from forklift.errors import ForkliftError, InvalidFilter, NotFound
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

PS_FILTERS = ("ancestor", "before", "exited", "expose", "health", "id", "is-task", "label",
              "name", "network", "publish", "since", "status", "volume")
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


@dataclass
class PsFilter:
    filters: Filters
    show_all: bool = False
    exited: list[int] = field(default_factory=list)
    before: str | None = None       # skip containers until this one has been passed
    since: str | None = None        # stop at this one
    ancestors: set[str] | None = None
    publish: set[str] = field(default_factory=set)
    expose: set[str] = field(default_factory=set)
    no_tasks: bool = False          # is-task=true: forklift makes no swarm tasks
    inspect: Callable[[Store, str], dict[str, Any]] | None = None   # for health=

    def keep(self, store: Store, rec: ContainerRecord, state: str) -> bool | None:
        """True to list ``rec``, False to skip it, None to stop the listing (``since``)."""
        if self.before is not None:
            if rec.id == self.before:
                self.before = None
            return False
        if rec.id == self.since:
            return None
        if not self.filters:  # plain `ps` or `ps -a`: every check below holds but the first
            return self.show_all or state in ("running", "paused", "restarting")
        checks: list[Callable[[], bool]] = [
            lambda: self.show_all or state in ("running", "paused", "restarting"),
            lambda: self.filters.match("name", rec.name) or self.filters.match("name", "/" + rec.name),
            lambda: self.filters.match("id", rec.id),
            lambda: self.filters.labels(rec.config.get("Labels") or {}),
            lambda: not self.no_tasks,
            lambda: self._exit_ok(rec, state),
            lambda: self.filters.exact("status", state),
            lambda: "health" not in self.filters or self.filters.exact("health", self._health(store, rec)),
            lambda: self.ancestors is None or rec.image_id in self.ancestors,
            lambda: self._volume_ok(store, rec),
            lambda: self._network_ok(store, rec),
            lambda: not self.publish or bool(self.publish & _live_ports(rec, state, published=True)),
            lambda: not self.expose or bool(self.expose & _live_ports(rec, state, published=False)),
        ]
        return all(check() for check in checks)

    def _health(self, store: Store, rec: ContainerRecord) -> str:
        """The health status ``inspect`` shows; ``none`` without a check or a state yet."""
        test = (rec.config.get("Healthcheck") or {}).get("Test") or []
        if not test or test[0] == "NONE" or self.inspect is None:
            return "none"
        try:
            health = self.inspect(store, rec.id)["State"].get("Health") or {}
        except ForkliftError:
            return "none"
        return str(health.get("Status") or "none")

    def _exit_ok(self, rec: ContainerRecord, state: str) -> bool:
        if not self.exited:
            return True
        return state == "exited" and bool(rec.started_at) and (rec.exit_code or 0) in self.exited

    def _volume_ok(self, store: Store, rec: ContainerRecord) -> bool:
        if "volume" not in self.filters:
            return True
        from forklift.engine import mounts  # only when filtering on volumes

        points: set[str] = set()
        for m in mounts.describe(store, rec):
            points.update((m["Destination"], m.get("Name") or m["Source"]))
        # a container never started has its named volumes only in its HostConfig
        for src, dest, _ in map(mounts.parse_volume, rec.host_config.get("Binds") or []):
            points.update((dest, src or dest))
        for m in rec.host_config.get("Mounts") or []:
            points.update((m.get("Target", ""), m.get("Source") or m.get("Target", "")))
        return any(v in points for v in self.filters.get("volume"))

    def _network_ok(self, store: Store, rec: ContainerRecord) -> bool:
        if "network" not in self.filters:
            return True
        from forklift.engine import network  # only when filtering on networks

        mode = rec.host_config.get("NetworkMode", "bridge")
        names = ["bridge" if mode == "default" else mode, *(rec.host_config.get("ExtraNetworks") or [])]
        ids = []
        for name in names:
            try:
                ids.append(network.get(store, name)["Id"])
            except ForkliftError:
                continue
        return any(v in names or any(i.startswith(v) for i in ids)
                   for v in self.filters.get("network"))


def _live_ports(rec: ContainerRecord, state: str, *, published: bool) -> set[str]:
    """The ports of the container's live network settings, which Docker's ``publish=`` and
    ``expose=`` read: none unless it runs on a network with ports (not host or none)."""
    if state not in ("running", "paused") or rec.host_config.get("NetworkMode") in ("host", "none"):
        return set()
    exposed = set(rec.config.get("ExposedPorts") or {})
    bound = set(rec.host_config.get("PortBindings") or {})
    if not published:
        return exposed | bound
    return bound | (exposed if rec.host_config.get("PublishAllPorts") else set())


def prepare(store: Store, filters: Filters, show_all: bool,
            inspect: Callable[[Store, str], dict[str, Any]] | None = None) -> PsFilter:
    """Validate ``filters`` as Docker's daemon does and resolve what they name; ``inspect``
    (``containers.inspect``, which imports this module) reads a container's health."""
    filters.validate(PS_FILTERS)
    out = PsFilter(filters, show_all, inspect=inspect)
    for value in filters.get("exited"):
        try:
            out.exited.append(int(value, 10))
        except ValueError:
            raise InvalidFilter(f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    for value in filters.get("status"):
        if value not in STATES:
            raise InvalidFilter(f"Invalid filter 'status={value}'")
        out.show_all = True
    for value in filters.get("health"):
        if value not in HEALTH:
            raise InvalidFilter(f"Unrecognised filter value for health: {value}")
    out.no_tasks = filters.boolean("is-task", error=None) is True
    out.before = _container(store, filters, "before")
    out.since = _container(store, filters, "since")
    if "ancestor" in filters:
        out.ancestors = _ancestors(store, filters.get("ancestor"))
    out.publish = _ports(filters, "publish")
    out.expose = _ports(filters, "expose")
    return out


def _container(store: Store, filters: Filters, key: str) -> str | None:
    values = filters.get(key)
    if not values:
        return None
    try:
        return container_store.resolve(store, values[-1]).id
    except NotFound:
        raise NotFound(f"no such container {values[-1]}") from None


def _ancestors(store: Store, refs: list[str]) -> set[str]:
    """The named images and every image built on them (through the parent links)."""
    found: set[str] = set()
    todo = []
    for ref in refs:
        try:
            todo.append(image_store.resolve(store, ref))
        except ForkliftError:
            continue   # Docker only logs a name it cannot find
    while todo:
        image_id = todo.pop()
        if image_id not in found:
            found.add(image_id)
            todo.extend(image_store.children(store, image_id))
    return found


def _ports(filters: Filters, key: str) -> set[str]:
    """``port[/proto]`` or ``start-end[/proto]`` values as the set of ``port/proto`` keys."""
    out: set[str] = set()
    for value in filters.get(key):
        if ":" in value:
            raise InvalidFilter(f"filter for '{key}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        start, _, end = port.partition("-")
        try:
            first, last = int(start, 10), int(end or start, 10)
            if not (0 <= first <= 65535 and 0 <= last <= 65535) or last < first:
                raise ValueError(value)
        except ValueError:
            raise InvalidFilter(f"error while looking up for {key} {value}:"
                                f' strconv.ParseUint: parsing "{port}": invalid syntax') from None
        out.update(f"{p}/{proto or 'tcp'}" for p in range(first, last + 1))
    return out

