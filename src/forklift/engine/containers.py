"""Container operations: create, run, start, remove, diff, commit, export, list, inspect.

Running one is `forklift.engine.runner`'s start sequence (attached) or a monitor's
(`forklift.engine.monitor`, detached); its mounts are `forklift.engine.mounts`'.
The machinery of creating and starting containers (runner, mounts, network, …) is
imported by the functions that use it, so ``ps``, ``inspect`` or ``diff`` never load it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from forklift import digest as dg
from forklift import faults, oci, reference
from forklift import limits as limits_mod
from forklift.engine import events, names, rootfs
from forklift.errors import Conflict, ForkliftError, InvalidArgument, NotFound
from forklift.procs import pid_alive
from forklift.records import SlotRecord
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

    from forklift.engine.filters import Filters
    from forklift.engine.runflags import RunFlags

NETWORKS = ("bridge", "default", "host", "none")


# Every option's value when it is not given ([]: a new empty list).
_OPTION_DEFAULTS: dict[str, Any] = {
    "name": None, "entrypoint": None, "env": [], "env_files": [], "workdir": None, "user": None,
    "hostname": None, "expose": [], "volumes": [], "labels": [], "network": "bridge",
    "read_only": False, "stop_signal": None, "auto_remove": False, "tty": False,
    "interactive": False, "publish": [], "publish_all": False, "dns": [], "add_hosts": [],
    "memory": None, "memory_swap": None, "cpus": None, "cpu_shares": None, "cpuset_cpus": None,
    "pids_limit": None, "ulimits": [], "mounts": [], "tmpfs": [], "volumes_from": [],
    "privileged": False, "cap_add": [], "cap_drop": [], "security_opt": [], "init": False,
    "restart": None, "health_cmd": None, "health_interval": None, "health_timeout": None,
    "health_retries": None, "health_start_period": None, "no_healthcheck": False,
    "run_flags": None,
}


class CreateOptions(SlotRecord):
    """What ``create``/``run`` are asked for beyond the image and the command: keywords
    as a dataclass takes them (every one optional, an unknown one a TypeError), defaults in
    `_OPTION_DEFAULTS`. A slotted class, not a dataclass: generating this one's methods
    cost ~3 ms of every ``run``."""

    name: str | None
    entrypoint: str | list[str] | None  # None: the image's; "" or [] or [""]: reset it
    env: list[str]
    env_files: list[str]
    workdir: str | None
    user: str | None
    hostname: str | None
    expose: list[str]
    volumes: list[str]
    labels: list[str]
    network: str
    read_only: bool
    stop_signal: str | None
    auto_remove: bool
    tty: bool
    interactive: bool
    # issue 3: networking, limits, more mounts
    publish: list[str]
    publish_all: bool
    dns: list[str]
    add_hosts: list[str]
    memory: str | None
    memory_swap: str | None
    cpus: float | None
    cpu_shares: int | None
    cpuset_cpus: str | None
    pids_limit: int | None
    ulimits: list[str]
    mounts: list[str]
    tmpfs: list[str]
    volumes_from: list[str]
    # security
    privileged: bool
    cap_add: list[str]
    cap_drop: list[str]
    security_opt: list[str]
    # issue 13: the monitor's part
    init: bool
    restart: str | None
    health_cmd: str | None
    health_interval: str | None
    health_timeout: str | None
    health_retries: int | None
    health_start_period: str | None
    no_healthcheck: bool
    # issue 13: the rarer run/create flags (forklift.engine.runflags)
    run_flags: RunFlags | None

    __slots__ = tuple(_OPTION_DEFAULTS)

    def __init__(self, **given: Any) -> None:
        unknown = given.keys() - _OPTION_DEFAULTS.keys()
        if unknown:
            raise TypeError(f"CreateOptions got an unexpected keyword argument {min(unknown)!r}")
        for key, default in _OPTION_DEFAULTS.items():
            # a list default is a new list each time, as field(default_factory=list) gives
            value = given[key] if key in given else (
                [] if default.__class__ is list else default)
            setattr(self, key, value)

    def replace(self, **changes: Any) -> CreateOptions:
        """A copy with ``changes`` (dataclasses.replace)."""
        return CreateOptions(**{**{k: getattr(self, k) for k in self.__slots__}, **changes})




# ----------------------------------------------------------------------------- create

def _read_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label: {item!r}")
        out[key] = value
    return out


def _container_config(image_cfg: dict[str, Any], command: list[str], opts: CreateOptions,
                      hostname: str, image_name: str) -> dict[str, Any]:
    from forklift.engine import mounts, process  # start machinery (module docstring)

    cfg = dict(image_cfg.get("config") or {})
    if opts.entrypoint is not None:
        entry = [opts.entrypoint] if isinstance(opts.entrypoint, str) else list(opts.entrypoint)
        cfg["Entrypoint"] = entry if entry and entry != [""] else None
        cfg["Cmd"] = list(command) if command else None
    elif command:
        cfg["Cmd"] = list(command)
    env_extra = [line for path in opts.env_files for line in _read_env_file(path)] + opts.env
    if env_extra:  # Docker's order: the container's variables, then the image's others
        given = process.merge_env([], env_extra)
        keys = {item.partition("=")[0] for item in given}
        cfg["Env"] = given + [e for e in cfg.get("Env") or [] if e.partition("=")[0] not in keys]
    if opts.workdir:
        if not opts.workdir.startswith("/"):
            raise InvalidArgument(f"the working directory '{opts.workdir}' is invalid, it needs to be an absolute path")
        cfg["WorkingDir"] = opts.workdir
    if opts.user is not None:
        cfg["User"] = opts.user
    if opts.expose:
        from forklift import changes as changes_mod  # shlex: off the hot path of `run`

        cfg = changes_mod.apply(cfg, [f"EXPOSE {p}" for p in opts.expose])
    anonymous = [dest for src, dest, _ in map(mounts.parse_volume, opts.volumes) if src is None]
    if anonymous:
        cfg["Volumes"] = {**(cfg.get("Volumes") or {}), **{d: {} for d in anonymous}}
    if opts.labels:
        cfg["Labels"] = {**(cfg.get("Labels") or {}), **_labels(opts.labels)}
    if opts.stop_signal:
        cfg["StopSignal"] = opts.stop_signal
    cfg.update(Hostname=hostname, Image=image_name, Tty=opts.tty, OpenStdin=opts.interactive,
               AttachStdin=opts.interactive, AttachStdout=True, AttachStderr=True,
               StdinOnce=opts.interactive)
    if not (cfg.get("Entrypoint") or cfg.get("Cmd")):
        raise InvalidArgument("No command specified")
    return cfg


def create(store: Store, image: str, command: list[str], opts: CreateOptions,
           volumes: bool = False) -> ContainerRecord:
    """``container create``: a container record and its filesystem, not started.

    Every option is validated before anything is written (InvalidArgument; NotFound for a
    missing image, network or ``--volumes-from`` container; Conflict for a taken name).
    Atomic: the record commits in one transaction after the directory is made, and a
    failure removes the directory (a crash in between leaves one for ``system check``).

    ``volumes``: its named and anonymous volumes are made, attached and seeded now, as
    Docker's create does (`mounts.create_volumes`), so that ``volume ls``, ``inspect``
    and a ``cp`` into a volume's path see them before the first start; without it (a
    ``run``, a build step: a start follows at once) the start does it. A failure removes
    the anonymous ones made."""
    from forklift.engine import hostconfig, mounts, security  # (module docstring)

    if opts.network not in NETWORKS:
        from forklift.engine import network  # sockets & co.: only a named network needs it

        network.get(store, opts.network)  # raises NotFound
    name = opts.name
    if name is not None:
        name = name.lstrip("/")
        if not name or not all(c.isalnum() or c in "_.-" for c in name) or not name[0].isalnum():
            raise InvalidArgument(f'Invalid container name ({opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    for spec in opts.volumes:
        mounts.parse_volume(spec)
    rf = opts.run_flags if opts.run_flags and opts.run_flags.any() else None
    if rf is not None:
        opts = _with_run_flags(opts, rf)
    image_id = image_store.resolve(store, image)
    image_cfg = image_store.config(store, image_id)
    container_id = os.urandom(32).hex()
    hostname = opts.hostname or container_id[:12]
    cfg = _container_config(image_cfg, command, opts, hostname, image)
    _healthcheck(cfg, opts)
    host_cfg: dict[str, Any] = {
        "Binds": [v for v in opts.volumes if mounts.parse_volume(v)[0] is not None],
        "NetworkMode": "bridge" if opts.network == "default" else opts.network,
        "ReadonlyRootfs": opts.read_only,
        "AutoRemove": opts.auto_remove,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AnonymousVolumes": [],
    }
    if opts.restart:
        from forklift.engine.update import parse_restart

        host_cfg["RestartPolicy"] = parse_restart(opts.restart)
        if opts.auto_remove and host_cfg["RestartPolicy"]["Name"] != "no":
            raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    if opts.init:
        host_cfg["Init"] = True
    if opts.privileged or opts.cap_add or opts.cap_drop or opts.security_opt:
        host_cfg.update(security.host_config(opts.privileged, opts.cap_add, opts.cap_drop,
                                             opts.security_opt))
    if (opts.publish or opts.publish_all or opts.dns or opts.add_hosts or opts.memory
            or opts.memory_swap or opts.cpus or opts.cpu_shares or opts.cpuset_cpus
            or opts.pids_limit or opts.ulimits):
        host_cfg.update(hostconfig.extra(opts, cfg))
    if opts.mounts or opts.tmpfs or opts.volumes_from:
        host_cfg.update(mounts.host_config(store, opts.mounts, opts.tmpfs, opts.volumes_from))
    if rf is not None:
        from forklift.engine import runflags

        runflags.config(rf, cfg)
        host_cfg.update(runflags.host_config(rf, host_cfg))
        host_cfg.update(runflags.namespaces(rf, store, bool(opts.hostname)))
        host_cfg.update(runflags.networking(rf, store, host_cfg["NetworkMode"]))
        if host_cfg.get("IPv4Address"):  # --ip: in the subnet, and free
            from forklift.engine import network

            host_cfg["IPv4Address"] = network.check_address(
                store, host_cfg["NetworkMode"], host_cfg["IPv4Address"])
    rec = ContainerRecord(container_id, name or "", image_id, image, time.time(),
                          config=cfg, host_config=host_cfg)
    rootfs.create(store, container_id, hostname, host_cfg["NetworkMode"],
                  dns=host_cfg.get("Dns"), extra_hosts=host_cfg.get("ExtraHosts"))
    if rf is not None and (rf.dns_search or rf.dns_options):
        _rewrite_resolv(store, container_id, host_cfg)
    faults.checkpoint("create-after-rootfs")
    try:
        if volumes and mounts.has_volumes(rec):
            if name:  # refused before any volume is made, as Docker reserves it first
                container_store.check_name_free(store, name)
            mounts.create_volumes(store, rec)
        with store.transaction():
            if image_store.get(store, image_id) is None:
                raise NotFound(f"No such image: {image}")
            rec.name = name or _free_name(store)
            if host_cfg.get("Links"):  # Docker's form names this container: known only now
                from forklift.engine import runflags

                host_cfg["Links"] = runflags.docker_links(store, host_cfg["Links"], rec.name)
            container_store.insert(store, rec)
            faults.checkpoint("create-before-commit")
    except BaseException:
        if volumes:
            mounts.forget_volumes(store, container_id)
        rootfs.destroy(store, container_id)
        raise
    events.container_event(store.root, "create", rec)
    if rf is not None and rf.cidfile:
        from forklift.engine import runflags

        runflags.write_cidfile(rf.cidfile, rec.id)
    return rec


def _healthcheck(cfg: dict[str, Any], opts: CreateOptions) -> None:
    """The flags' healthcheck over the image's, in Config.Healthcheck (InvalidArgument)."""
    if not (opts.health_cmd is not None or opts.health_interval or opts.health_timeout
            or opts.health_retries is not None or opts.health_start_period
            or opts.no_healthcheck):
        return
    from forklift.engine import health

    cfg["Healthcheck"] = health.config(
        cfg.get("Healthcheck"), opts.health_cmd, opts.health_interval, opts.health_timeout,
        opts.health_retries, opts.health_start_period, opts.no_healthcheck)
def _with_run_flags(opts: CreateOptions, rf: RunFlags) -> CreateOptions:
    """Checks that come before anything is made; ``--label-file`` labels ahead of ``-l``'s."""
    from forklift.engine import runflags

    runflags.check_cidfile(rf.cidfile)
    if rf.label_files:
        opts = opts.replace(labels=runflags.read_label_files(rf.label_files) + opts.labels)
    return opts


def _rewrite_resolv(store: Store, container_id: str, host_cfg: dict[str, Any]) -> None:
    from forklift.engine import runflags

    path = rootfs.paths(store, container_id)["resolv.conf"]
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(runflags.resolv_conf(text, host_cfg.get("DnsSearch"), host_cfg.get("DnsOptions")))


def _free_name(store: Store) -> str:
    for _ in range(20):
        candidate = names.generate()
        if store.conn.execute("SELECT 1 FROM containers WHERE name=?", (candidate,)).fetchone() is None:
            return candidate
    return f"{names.generate()}_{os.urandom(3).hex()}"


# ----------------------------------------------------------------------------- start / run

def start(store: Store, name_or_id: str, *, stdin: IO[Any] | None = None,
          stdout: IO[Any] | None = None, stderr: IO[Any] | None = None) -> int:
    """Start a container attached (foreground) and return its exit code; see
    `runner.run_attached` (NotFound, Conflict if it runs, RuntimeFailure if it cannot
    start; 127/126 returned when its command cannot be run)."""
    from forklift.engine import runner  # start machinery (module docstring)

    rec = container_store.resolve(store, name_or_id)
    policy = (rec.host_config.get("RestartPolicy") or {}).get("Name") or "no"
    if policy != "no" and not rec.effective_state().up:
        from forklift.engine import restart

        restart.reset(store, rec.id)  # a user's start, as the detached one
    started = time.monotonic()
    code = runner.run_attached(store, rec.id, stdin=stdin, stdout=stdout, stderr=stderr)
    if policy != "no":
        _restart_after_attached(store, rec.id, code, time.monotonic() - started)
    return code


def _restart_after_attached(store: Store, container_id: str, code: int, ran_for: float) -> None:
    """``--restart`` of a foreground run: Docker's client returns with the first exit
    code while its daemon goes on restarting the container; a monitor does that here."""
    from forklift.engine import monitor, restart

    rec = container_store.get(store, container_id)
    if (rec is None or restart.stop_requested(store, rec.id)
            or not restart.should_restart(rec.host_config, code, 0)):
        return
    with contextlib.suppress(ForkliftError):  # started again meanwhile: its own business
        monitor.launch(store, rec, after=(code, ran_for))


def start_detached(store: Store, name_or_id: str) -> ContainerRecord:
    """Start a container in the background under its own monitor process; return once it
    runs. Raises what kept it from starting (it is then recorded as exited)."""
    from forklift.engine import monitor  # traceback & co.: off the hot path of `run --rm`

    rec = container_store.resolve(store, name_or_id)
    monitor.launch(store, rec)
    return rec


def run(store: Store, image: str, command: list[str], opts: CreateOptions, **stdio: Any) -> int:
    """``run`` in the foreground; a ``--rm`` container that fails to start is removed too."""
    rec = create(store, image, command, opts)
    try:
        return start(store, rec.id, **stdio)
    except ForkliftError:
        if opts.auto_remove:
            with contextlib.suppress(ForkliftError):
                remove(store, rec.id, force=True, volumes=True)
        raise


# ----------------------------------------------------------------------------- remove

def remove(store: Store, name_or_id: str, force: bool = False, volumes: bool = False) -> str:
    """``rm``: delete the container and its files (``volumes``: its anonymous volumes no
    other container uses); returns its name. Conflict for a running one unless ``force``
    (it is killed first). See `runner.discard` for what a crash leaves."""
    from forklift.engine import network, runner  # start machinery (module docstring)

    rec = container_store.resolve(store, name_or_id)
    state = rec.effective_state()
    if state.up:
        if not force:
            raise Conflict(
                f"You cannot remove a running container {rec.id}. Stop the container before"
                " attempting removal or force remove")
        _kill(store, rec)
    elif rec.state.up:
        # Its monitor died (kill -9, reboot): clean up what it left behind.
        _kill(store, rec)
        if rec.host_config.get("NetworkMode", "bridge") not in ("host", "none"):
            with contextlib.suppress(Exception):
                network.teardown(store, rec)
    runner.discard(store, rec, volumes=volumes)
    return rec.name


def _kill(store: Store, rec: ContainerRecord) -> None:
    """SIGKILL every process of the container, wait (10 s at most) for the process that
    waits for it to record its exit, and forget its runtime state."""
    from forklift import runtime  # subprocess & co.: off the ps/inspect path
    from forklift.engine import restart

    rt = runtime.for_container(store.runc_dir, rec.host_config)
    with restart.locked(store, rec.id), contextlib.suppress(ForkliftError, OSError):
        restart.request_stop(store, rec.id)
        rt.kill(rec.id, signal.SIGKILL, all=True)
    deadline = time.time() + 10
    while pid_alive(rec.pid) and time.time() < deadline:
        current = container_store.get(store, rec.id)
        if current is None or not current.state.up:
            break
        time.sleep(0.05)
    with contextlib.suppress(ForkliftError, OSError):
        rt.delete(rec.id, force=True)


# ----------------------------------------------------------------------------- diff

def diff(store: Store, name_or_id: str) -> list[tuple[str, str]]:
    """``diff``: (kind A/C/D, path) of every change in the container's own layer."""
    from forklift.engine import fsdiff  # (module docstring)

    rec = container_store.resolve(store, name_or_id)
    p = rootfs.paths(store, rec.id)
    own, image_view = rootfs.layer_dirs(store, rec.id, rec.image_id)
    return fsdiff.changes(p["upper"], image_view, own)


# ----------------------------------------------------------------------------- commit

def _created_by(cfg: dict[str, Any]) -> str:
    return " ".join(cfg.get("Cmd") or [])


def commit(store: Store, name_or_id: str, repository: str | None = None, *, message: str = "",
           author: str = "", changes: list[str] | None = None, pause: bool = True,
           config: dict[str, Any] | None = None) -> str:
    """``commit``: the container's layer on top of its image, its config carried over
    (``config``'s fields, the API's commit body, over it; then ``changes``)."""
    from forklift import changes as changes_mod  # shlex: off the hot path of `run`
    from forklift.engine import commitlayer  # off the hot path of `run` too

    rec = container_store.resolve(store, name_or_id)
    tag = str(reference.parse(repository)) if repository else None
    if container_store.image_deleted(store, rec):
        # Docker cannot commit such a container either: the parent config is gone.
        raise NotFound(f"failed to get digest {rec.image_id}: the image of container"
                       f" {rec.short_id} was deleted (rmi -f)")
    parent_cfg = image_store.config(store, rec.image_id)
    carried = {k: v for k, v in {**rec.config, **(config or {})}.items()
               if k in oci.CONFIG_FIELDS and v not in (None, "", [], {})}
    new_cfg = changes_mod.apply(carried, changes or [])
    parent_layers = image_store.layers(store, rec.image_id)
    limits_mod.load(store.root).check_layers(len(parent_layers) + 1, "the committed image")
    prepared = [layer_store.reuse(store, layer.diff_id) for layer in parent_layers]
    if any(p is None for p in prepared):
        raise NotFound(f"a layer of image {dg.short_id(rec.image_id)} is missing")
    plan = commitlayer.prepare(store, rec)
    faults.checkpoint("commit-after-layer")
    try:
        new_layer = commitlayer.take(store, plan)
        empty = new_layer.diff_id == oci.EMPTY_TAR_DIFF_ID
        created = oci.now_rfc3339()
        entry: dict[str, Any] = {"created": created, "created_by": _created_by(rec.config)}
        if author:
            entry["author"] = author
        if message:
            entry["comment"] = message
        if empty:
            entry["empty_layer"] = True
        layer_list = [p for p in prepared if p is not None] + ([] if empty else [new_layer])
        cfg = oci.new_image_config(new_cfg, [p.diff_id for p in layer_list],
                                   list(parent_cfg.get("history") or []) + [entry], created,
                                   author=author, comment=message)
        cfg["container"] = rec.id
        cfg["container_config"] = _container_config_of(rec)  # Docker's commit records it too
        image_id = image_store.add(store, oci.canonical_json(cfg), layer_list,
                                   parent=rec.image_id, tags=[tag] if tag else [])
        events.container_event(store.root, "commit", rec, comment=message,
                               **({"imageRef": tag} if tag else {}))
        return image_id
    finally:
        plan.cleanup()


def _container_config_of(rec: ContainerRecord) -> dict[str, Any]:
    """The committed container's Config as ``inspect`` shows it (the image's ContainerConfig)."""
    from forklift.engine.images import docker_config

    return {**docker_config(rec.config), "Labels": rec.config.get("Labels") or {}}


# ----------------------------------------------------------------------------- export

def export(store: Store, name_or_id: str, out: IO[bytes]) -> None:
    """``export``: the merged root filesystem as one tar stream."""
    from forklift import archive  # tarfile: not on the hot path of `run`

    rec = container_store.resolve(store, name_or_id)
    with rootfs.readonly_view(store, rec.id, rec.image_id) as root:
        archive.write_tree(root, out, write_behind=True)


# ----------------------------------------------------------------------------- list

class Status(SlotRecord):
    """A container's state and the times the CLI words ("Up 5 minutes", "Exited (0) 2 hours
    ago"): the engine gives facts, the CLI the words. (Slotted records, not dataclasses,
    as `CreateOptions`: this module is on the `run` path.)"""

    __slots__ = ("state", "exit_code", "started", "finished", "health")

    def __init__(self, state: str, exit_code: int, started: float, finished: float,
                 health: str = "") -> None:
        self.state = state          # effective: created, running, paused, restarting or exited
        self.exit_code = exit_code  # when exited: the recorded code; 255 when unknown or its monitor died
        self.started = started      # epoch seconds, 0 when unknown
        self.finished = finished    # epoch seconds, 0 when unknown
        self.health = health        # while running with a healthcheck: starting, healthy or unhealthy


class ContainerRow(SlotRecord):
    __slots__ = ("id", "image", "command", "created", "status", "ports", "names", "record")

    def __init__(self, id: str, image: str, command: str, created: float, status: Status,
                 ports: str, names: str, record: ContainerRecord) -> None:
        self.id, self.image, self.command, self.created = id, image, command, created
        self.status, self.ports, self.names, self.record = status, ports, names, record


def status(rec: ContainerRecord) -> Status:
    """The state ``ps`` shows: a container whose monitor is gone has exited (code 255)."""
    state = rec.effective_state()
    code = rec.exit_code if rec.exit_code is not None and rec.state == state else 255
    return Status(state, code, oci.parse_time(rec.started_at), oci.parse_time(rec.finished_at))


def _health_state(store: Store, rec: ContainerRecord) -> dict[str, Any]:
    """inspect's ``State.Health``, for a container with a healthcheck that ran."""
    from forklift.engine import health

    if health.test_command(rec.config.get("Healthcheck")) is None:
        return {}
    state = health.read(store, rec.id)
    return {"Health": state} if state is not None else {}


def _with_health(store: Store, rec: ContainerRecord, now: Status) -> Status:
    from forklift.engine import health

    if health.test_command(rec.config.get("Healthcheck")) is None:
        return now
    state = health.read(store, rec.id) or {}
    return Status(now.state, now.exit_code, now.started, now.finished,
                  str(state.get("Status") or "starting"))


def command_text(rec: ContainerRecord) -> str:
    args = list(rec.config.get("Entrypoint") or []) + list(rec.config.get("Cmd") or [])
    return " ".join(args)


def list_containers(store: Store, show_all: bool = False, filters: Filters | None = None,
                    records: Callable[[bool], list[ContainerRecord]] | None = None,
                    shown_images: dict[tuple[str, str], str] | None = None,
                    ) -> list[ContainerRow]:
    """``ps``: running and paused containers (every one with ``show_all``), newest first,
    kept by Docker's ``ps`` filters (``engine/psfilter``: InvalidFilter, NotFound for a
    ``before``/``since`` container). Reads only; raises nothing for a container whose
    image or network is gone. ``records(up_only)`` gives `container_store.all_containers`'
    answer when the caller keeps one (a service between two commits), and
    ``shown_images`` the image names shown (`image_text`) as well; the liveness of each
    container, its status and its files are read anew all the same."""
    from forklift.engine import psfilter  # (module docstring)

    wanted = psfilter.prepare(store, filters or psfilter.Filters(), show_all, inspect)
    # a container recorded as not up cannot be shown as up (`effective_state` only ever
    # says a dead one has exited): without -a (or a status filter, which implies it) only
    # those rows are read, unless before/since must find their container among the others
    up_only = not wanted.show_all and wanted.before is None and wanted.since is None
    rows = []
    shown_images = {} if shown_images is None else shown_images
    read = records or (lambda up: container_store.all_containers(store, up))
    for rec in read(up_only):
        now = status(rec)
        state = now.state
        keep = wanted.keep(store, rec, state)
        if keep is None:
            break
        if not keep:
            continue
        if state == "running" and rec.config.get("Healthcheck"):
            now = _with_health(store, rec, now)
        ports = ", ".join(sorted((rec.config.get("ExposedPorts") or {}).keys()))
        if state == "running" and rec.host_config.get("PortBindings") or rec.host_config.get("PublishAllPorts"):
            from forklift.engine import network as network_mod

            endpoint = network_mod.endpoint(store, rec.id) if state == "running" else None
            if endpoint and endpoint.get("Ports"):
                ports = ", ".join(
                    f"{m.get('hostIP', '0.0.0.0')}:{m['hostPort']}->{m['containerPort']}/{m['protocol']}"
                    for m in endpoint["Ports"])
        key = (rec.image_name, rec.image_id)  # many containers of one image: resolved once
        shown = shown_images.get(key)
        if shown is None:
            shown = shown_images[key] = image_text(store, rec)
        rows.append(ContainerRow(rec.id, shown, command_text(rec), rec.created,
                                 now, ports, rec.name, rec))
    return rows


def image_text(store: Store, rec: ContainerRecord) -> str:
    """``ps``'s IMAGE: the name it was created from while that name still means its image,
    else the image ID (Docker's rule; after ``rmi -f`` or a re-tag)."""
    try:
        if image_store.resolve(store, rec.image_name) == rec.image_id:
            return rec.image_name
    except ForkliftError:
        pass
    return rec.image_id


def inspect(store: Store, name_or_id: str) -> dict[str, Any]:
    """``inspect`` of a container in Docker's fields; NotFound, Conflict (ambiguous prefix)."""
    from forklift.engine import inspectdoc, mounts, restart  # (module docstring)

    rec = container_store.resolve(store, name_or_id)
    state = rec.effective_state()
    p = rootfs.paths(store, rec.id)
    args = list(rec.config.get("Entrypoint") or []) + list(rec.config.get("Cmd") or [])
    running = state.up
    exit_extra = rootfs.exit_info(store, rec.id) if state == State.EXITED else {}
    init_pid = 0
    if running:
        init_pid = rec.pid or 0
        with contextlib.suppress(OSError, ValueError), \
                open(os.path.join(store.container_path(rec.id), "init.pid")) as f:
            init_pid = int(f.read().strip())
    net_settings = network_settings(store, rec, running)
    return {
        "Id": rec.id,
        "Created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(rec.created))
        + f".{int((rec.created % 1) * 1e9):09d}Z",
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": str(state), "Running": state in ("running", "restarting"),
            "Paused": state == "paused", "Restarting": state == "restarting", "OOMKilled": bool(exit_extra.get("OOMKilled")), "Dead": False,
            "Pid": init_pid,
            "ExitCode": (rec.exit_code or 0) if rec.state == state else 255,
            "Error": "", "StartedAt": rec.started_at or "0001-01-01T00:00:00Z",
            "FinishedAt": rec.finished_at or "0001-01-01T00:00:00Z",
            **_health_state(store, rec),
        },
        "Image": rec.image_id,
        "ResolvConfPath": p["resolv.conf"],
        "HostnamePath": p["hostname"],
        "HostsPath": p["hosts"],
        "LogPath": _log_path(store, rec.id),
        "Name": "/" + rec.name,
        "RestartCount": restart.count(store, rec.id),
        "Driver": "overlay2",   # the name info gives: overlay2's layout rules (sizes, GraphDriver.Data)
        "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": inspectdoc.host_config(rec.host_config),
        "GraphDriver": {"Data": {
            "LowerDir": ":".join(rootfs.lowerdirs(store, rec.id, rec.image_id)),
            "MergedDir": p["merged"], "UpperDir": p["upper"], "WorkDir": p["work"]},
            "Name": "overlay2"},
        "Mounts": mounts.describe(store, rec),
        "Config": _container_config_of(rec),
        "NetworkSettings": inspectdoc.network_settings(net_settings),
    }


def network_settings(store: Store, rec: ContainerRecord, running: bool) -> dict[str, Any]:
    """inspect's NetworkSettings before `inspectdoc` completes it (the ``ps`` listing of
    the API summarises the same): the endpoint files of a running container, the names
    of its networks otherwise."""
    network_mode = rec.host_config.get("NetworkMode", "bridge")
    net_settings: dict[str, Any] = {"Bridge": "", "SandboxID": "", "HairpinMode": False,
                                    "Ports": {}, "SandboxKey": "", "IPAddress": "",
                                    "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
                                    "Networks": {network_mode: {}}}
    endpoint = None
    if running and network_mode not in ("host", "none"):
        from forklift.engine import network  # (module docstring)

        endpoint = network.endpoint(store, rec.id)
    if endpoint:
        net_settings.update(IPAddress=endpoint["IPAddress"], IPPrefixLen=endpoint["IPPrefixLen"],
                            Gateway=endpoint["Gateway"], MacAddress=endpoint["MacAddress"],
                            SandboxKey=endpoint["NetnsPath"])
        ports: dict[str, Any] = {}
        for m in endpoint.get("Ports") or []:
            ports.setdefault(f"{m['containerPort']}/{m['protocol']}", []).append(
                {"HostIp": m.get("hostIP", "0.0.0.0"), "HostPort": str(m["hostPort"])})
        net_settings["Ports"] = ports
        net_settings["Networks"] = {network_mode: {
            "NetworkID": endpoint["NetworkID"], "EndpointID": endpoint["EndpointID"],
            "Gateway": endpoint["Gateway"], "IPAddress": endpoint["IPAddress"],
            "IPPrefixLen": endpoint["IPPrefixLen"], "MacAddress": endpoint["MacAddress"],
            "Aliases": endpoint.get("Aliases")}}
    if rec.host_config.get("LinkLocalIPs"):  # --link-local-ip (engine/extraflags)
        net_settings["Networks"][network_mode]["IPAMConfig"] = {
            "LinkLocalIPs": rec.host_config["LinkLocalIPs"]}
    if endpoint is None and ":" not in network_mode \
            and network_mode not in ("bridge", "default", "host", "none"):
        # a user-defined network's names before the start, as Docker shows them (Compose
        # looks for the short ID there to know the container was created on it)
        net_settings["Networks"][network_mode]["Aliases"] = [
            *(rec.host_config.get("NetworkAliases") or []), rec.id[:12]]
    for extra in rec.host_config.get("ExtraNetworks") or []:  # added by `network connect`
        aliases = (rec.host_config.get("ExtraAliases") or {}).get(extra)
        net_settings["Networks"].setdefault(extra, {"Aliases": [*aliases, rec.id[:12]]}
                                            if aliases else {})
    if running and network_mode not in ("host", "none"):
        from forklift.engine import network  # (module docstring)

        for info in network.extra_endpoints(store, rec.id):
            net_settings["Networks"][info["Network"]] = {
                k: info[k] for k in ("NetworkID", "EndpointID", "Gateway", "IPAddress",
                                     "IPPrefixLen", "MacAddress", "Aliases")}
    _chosen(rec, network_mode, net_settings["Networks"])
    return net_settings


def _chosen(rec: Any, first: str, networks: dict[str, dict[str, Any]]) -> None:
    """The addresses (``--ip``, IPAMConfig) and connect's links given per network, where
    Docker shows them in the endpoint."""
    hc = rec.host_config
    addresses = {**({first: hc["IPv4Address"]} if hc.get("IPv4Address") else {}),
                 **(hc.get("ExtraIPs") or {})}
    for name, address in addresses.items():
        if name in networks:
            networks[name]["IPAMConfig"] = {**(networks[name].get("IPAMConfig") or {}),
                                            "IPv4Address": address}
    for name, links in (hc.get("ExtraLinks") or {}).items():
        if name in networks:
            networks[name]["Links"] = list(links)


def _log_path(store: Store, container_id: str) -> str:
    """The json-file log once the container has run (Docker's is empty until then)."""
    from forklift.engine.logfile import log_path

    path = log_path(store, container_id)
    return path if os.path.exists(path) else ""
