"""Container operations: create, run, start, remove, diff, commit, export, list."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import IO, Any

from forklift import digest as dg
from forklift import faults, oci
from forklift.engine import fsdiff, names, rootfs
from forklift.errors import Conflict, ForkliftError, InvalidArgument, NotFound
from forklift.procs import pid_alive
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store import volumes as volume_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store

NETWORKS = ("bridge", "default", "host", "none")


@dataclass
class CreateOptions:
    name: str | None = None
    entrypoint: str | None = None      # None: the image's; "": reset it
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    expose: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    network: str = "bridge"
    read_only: bool = False
    stop_signal: str | None = None
    auto_remove: bool = False
    tty: bool = False
    interactive: bool = False
    # issue 3: networking, limits, more mounts
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    dns: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    memory: str | None = None
    memory_swap: str | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    pids_limit: int | None = None
    ulimits: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)
    # security
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)


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


def _merge_env(base: list[str], extra: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for item in base:
        key, _, value = item.partition("=")
        env[key] = value
    for item in extra:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        if not sep:
            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label: {item!r}")
        out[key] = value
    return out


def _parse_volume(spec: str) -> tuple[str | None, str, bool]:
    """``-v``: (source or None for anonymous, destination, read_only)."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dest, mode = None, parts[0], ""
    elif len(parts) == 2:
        if parts[1] in ("ro", "rw") or not parts[1].startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{spec}'")
        src, dest, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dest, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if len(parts) > 1 and not src:
        raise InvalidArgument(f"invalid volume specification: '{spec}': empty source")
    if not dest.startswith("/") or dest == "/":
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mount path, must be absolute")
    opts = {o for o in mode.split(",") if o}
    if opts - {"ro", "rw", "z", "Z", "nocopy"}:
        raise InvalidArgument(f"invalid volume specification: '{spec}': invalid mode: {mode}")
    return src or None, os.path.normpath(dest), "ro" in opts


def _container_config(image_cfg: dict[str, Any], command: list[str], opts: CreateOptions,
                      hostname: str, image_name: str) -> dict[str, Any]:
    cfg = dict(image_cfg.get("config") or {})
    if opts.entrypoint is not None:
        cfg["Entrypoint"] = [opts.entrypoint] if opts.entrypoint else None
        cfg["Cmd"] = list(command) if command else None
    elif command:
        cfg["Cmd"] = list(command)
    env_extra = [line for path in opts.env_files for line in _read_env_file(path)] + opts.env
    if env_extra:
        cfg["Env"] = _merge_env(cfg.get("Env") or [], env_extra)
    if opts.workdir:
        if not opts.workdir.startswith("/"):
            raise InvalidArgument(f"the working directory '{opts.workdir}' is invalid, it needs to be an absolute path")
        cfg["WorkingDir"] = opts.workdir
    if opts.user is not None:
        cfg["User"] = opts.user
    if opts.expose:
        from forklift import changes as changes_mod

        cfg = changes_mod.apply(cfg, [f"EXPOSE {p}" for p in opts.expose])
    anonymous = [dest for src, dest, _ in map(_parse_volume, opts.volumes) if src is None]
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


def create(store: Store, image: str, command: list[str], opts: CreateOptions) -> ContainerRecord:
    """``container create``: a container record and its filesystem, not started."""
    if opts.network not in NETWORKS:
        from forklift.engine import network as network_mod

        network_mod.get(store, opts.network)  # raises NotFound
    name = opts.name
    if name is not None:
        name = name.lstrip("/")
        if not name or not all(c.isalnum() or c in "_.-" for c in name) or not name[0].isalnum():
            raise InvalidArgument(f'Invalid container name ({opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    for spec in opts.volumes:
        _parse_volume(spec)
    image_id = image_store.resolve(store, image)
    image_cfg = image_store.config(store, image_id)
    container_id = os.urandom(32).hex()
    hostname = opts.hostname or container_id[:12]
    cfg = _container_config(image_cfg, command, opts, hostname, image)
    host_cfg: dict[str, Any] = {
        "Binds": [v for v in opts.volumes if _parse_volume(v)[0] is not None],
        "NetworkMode": "bridge" if opts.network == "default" else opts.network,
        "ReadonlyRootfs": opts.read_only,
        "AutoRemove": opts.auto_remove,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AnonymousVolumes": [],
    }
    if opts.privileged or opts.cap_add or opts.cap_drop or opts.security_opt:
        from forklift.engine import security

        host_cfg.update(security.host_config(opts.privileged, opts.cap_add, opts.cap_drop,
                                             opts.security_opt))
    if (opts.publish or opts.publish_all or opts.dns or opts.add_hosts or opts.memory
            or opts.memory_swap or opts.cpus or opts.cpu_shares or opts.cpuset_cpus
            or opts.pids_limit or opts.ulimits or opts.mounts or opts.tmpfs or opts.volumes_from):
        from forklift.engine import hostconfig

        host_cfg.update(hostconfig.extra(store, opts, cfg))
    rec = ContainerRecord(container_id, name or "", image_id, image, time.time(),
                          config=cfg, host_config=host_cfg)
    rootfs.create(store, container_id, hostname, host_cfg["NetworkMode"],
                  dns=host_cfg.get("Dns"), extra_hosts=host_cfg.get("ExtraHosts"))
    faults.checkpoint("create-after-rootfs")
    try:
        with store.transaction():
            if image_store.get(store, image_id) is None:
                raise NotFound(f"No such image: {image}")
            rec.name = name or _free_name(store)
            container_store.insert(store, rec)
            faults.checkpoint("create-before-commit")
    except BaseException:
        rootfs.destroy(store, container_id)
        raise
    return rec


def _free_name(store: Store) -> str:
    for _ in range(20):
        candidate = names.generate()
        if store.conn.execute("SELECT 1 FROM containers WHERE name=?", (candidate,)).fetchone() is None:
            return candidate
    return f"{names.generate()}_{os.urandom(3).hex()}"


# ----------------------------------------------------------------------------- start / run

def _process_env(cfg: dict[str, Any], home: str) -> list[str]:
    env = list(cfg.get("Env") or [])
    keys = {item.partition("=")[0] for item in env}
    if "PATH" not in keys:
        env.insert(0, f"PATH={oci.DEFAULT_PATH}")
    env.append(f"HOSTNAME={cfg.get('Hostname', '')}")
    if cfg.get("Tty") and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={home}")
    return env


def _mounts(store: Store, rec: ContainerRecord, merged: str) -> list[Any]:
    from forklift.runtime.spec import MountSpec

    p = rootfs.paths(store, rec.id)
    mounts = [MountSpec(f"/etc/{name}", p[name], "bind", ["rbind", "rprivate"])
              for name in ("resolv.conf", "hostname", "hosts")]
    for src, dest, read_only in map(_parse_volume, rec.host_config.get("Binds", [])):
        assert src is not None
        if src.startswith("/"):
            if not os.path.lexists(src):  # Docker creates a missing host path as a directory
                os.makedirs(src)
            source = src
        else:
            vol, _ = volume_store.ensure(store, src)
            volume_store.attach(store, rec.id, vol.name, dest)
            source = vol.path(store)
            _copy_up(merged, dest, source)
        mounts.append(MountSpec(dest, source, "bind", ["rbind", "rprivate"] + (["ro"] if read_only else [])))
    taken = {m.destination for m in mounts}
    if rec.host_config.get("Mounts") or rec.host_config.get("Tmpfs") or rec.host_config.get("VolumesFrom"):
        from forklift.engine import hostconfig

        extra = hostconfig.mounts(store, rec, merged, taken)
        mounts.extend(extra)
        taken |= {m.destination for m in extra}
    for dest in sorted((rec.config.get("Volumes") or {}).keys()):
        if dest in taken:
            continue
        mounts.append(MountSpec(dest, _anonymous_volume(store, rec, dest, merged), "bind",
                                ["rbind", "rprivate"]))
    return mounts


def _anonymous_volume(store: Store, rec: ContainerRecord, dest: str, merged: str) -> str:
    for name, destination in volume_store.of_container(store, rec.id):
        if destination == dest:
            vol = volume_store.get(store, name)
            if vol is not None:
                return vol.path(store)
    vol, _ = volume_store.ensure(store, os.urandom(32).hex(), anonymous=True)
    volume_store.attach(store, rec.id, vol.name, dest)
    _copy_up(merged, dest, vol.path(store))
    return vol.path(store)


def _copy_up(merged: str, dest: str, volume_dir: str) -> None:
    """Seed an empty volume with the image's content at ``dest``, as Docker does."""
    from forklift.runtime.fsutil import secure_join

    if os.listdir(volume_dir):
        return
    source = secure_join(merged, dest)
    if not os.path.isdir(source) or os.path.islink(source):
        return
    import subprocess

    from forklift import programs

    subprocess.run([programs.find("cp"), "-a", "--no-dereference", "--", source + "/.", volume_dir],
                   check=False)


def _spec(store: Store, rec: ContainerRecord, merged: str,
          netns_path: str | None = None) -> dict[str, Any]:
    from forklift.runtime import spec as spec_mod
    from forklift.runtime.user import resolve_user

    cfg = rec.config
    uid, gid, groups, home = resolve_user(merged, cfg.get("User") or "")
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    from forklift.engine import security

    hc = rec.host_config
    process = spec_mod.ProcessConfig(
        args=args, env=_process_env(cfg, home), cwd=cfg.get("WorkingDir") or "/",
        uid=uid, gid=gid, additional_gids=groups, terminal=bool(cfg.get("Tty")),
        no_new_privileges=security.no_new_privileges(hc),
        capabilities=security.capabilities(hc))
    resources: dict[str, Any] | None = None
    rlimits: dict[str, tuple[int, int]] | None = None
    if any(hc.get(k) for k in ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus",
                               "PidsLimit", "Ulimits")):
        from forklift.engine import hostconfig

        resources, rlimits = hostconfig.resources(hc)
    network = hc.get("NetworkMode", "bridge")
    return spec_mod.build_spec(
        rootfs=merged, process=process, hostname=cfg.get("Hostname") or rec.id[:12],
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        mounts=_mounts(store, rec, merged), network="none" if network != "host" else "host",
        cgroups_path=f"/forklift/{rec.id}", resources=resources, rlimits=rlimits,
        netns_path=netns_path, privileged=bool(hc.get("Privileged")),
        seccomp=security.seccomp_profile(hc))


def _ensure_workdir(merged: str, workdir: str | None) -> None:
    """Docker creates a missing working directory; do it inside the rootfs, safely."""
    if not workdir or workdir == "/":
        return
    from forklift.runtime.fsutil import secure_join

    os.makedirs(secure_join(merged, workdir), mode=0o755, exist_ok=True)


def claim(store: Store, name_or_id: str, pid: int) -> ContainerRecord:
    """Mark the container running under ``pid`` (the process that will wait for it)."""
    rec = container_store.resolve(store, name_or_id)
    with store.transaction():
        current = container_store.get(store, rec.id)
        if current is None:
            raise NotFound(f"No such container: {name_or_id}")
        if current.state in ("running", "paused") and pid_alive(current.pid):
            raise Conflict(f"container {rec.id[:12]} is already running")
        container_store.update_state(store, rec.id, state="running", pid=pid,
                                     started_at=oci.now_rfc3339(), exit_code=None)
    _clear_exit_info(store, rec.id)
    return rec


def prepare(store: Store, rec: ContainerRecord, runc: Any) -> str:
    """Mount the rootfs, set up the network and write the bundle; returns the bundle dir."""
    from forklift.runtime import spec as spec_mod

    merged = rootfs.mount(store, rec.id, rec.image_id,
                          volatile=bool(rec.host_config.get("AutoRemove")))
    _ensure_workdir(merged, rec.config.get("WorkingDir"))
    netns_path = None
    if rec.host_config.get("NetworkMode", "bridge") not in ("host", "none"):
        from forklift.engine import network as network_mod

        netns_path = network_mod.setup(store, rec)
    bundle = store.container_path(rec.id)
    spec_mod.write_bundle(bundle, _spec(store, rec, merged, netns_path))
    _forget_runtime_state(store, runc, rec.id)
    return bundle


def finish(store: Store, rec: ContainerRecord, runc: Any, code: int,
           oom_killed: bool = False) -> None:
    """Everything after the container's process is gone: runtime state, network, mounts, record."""
    faults.checkpoint("start-after-runc")
    _forget_runtime_state(store, runc, rec.id)
    if rec.host_config.get("NetworkMode", "bridge") not in ("host", "none"):
        from forklift.engine import network as network_mod

        with contextlib.suppress(Exception):
            network_mod.teardown(store, rec)
    rootfs.unmount(store, rec.id)
    if oom_killed:
        _write_exit_info(store, rec.id, {"OOMKilled": True})
    if container_store.get(store, rec.id) is not None:
        container_store.update_state(store, rec.id, state="exited", pid=None, exit_code=code,
                                     finished_at=oci.now_rfc3339())
    if rec.host_config.get("AutoRemove"):
        with contextlib.suppress(ForkliftError):
            remove(store, rec.id, force=True, volumes=True)


def _exit_info_path(store: Store, container_id: str) -> str:
    return os.path.join(store.container_path(container_id), "exit.json")


def _write_exit_info(store: Store, container_id: str, info: dict[str, Any]) -> None:
    import json

    with contextlib.suppress(OSError), open(_exit_info_path(store, container_id), "w") as f:
        json.dump(info, f)


def _clear_exit_info(store: Store, container_id: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(_exit_info_path(store, container_id))


def exit_info(store: Store, container_id: str) -> dict[str, Any]:
    import json

    try:
        with open(_exit_info_path(store, container_id)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}


def start(store: Store, name_or_id: str, *, stdin: IO[Any] | None = None,
          stdout: IO[Any] | None = None, stderr: IO[Any] | None = None) -> int:
    """Start a container attached (foreground) and return its exit code.

    Its output goes to the caller's stdout/stderr and, as Docker's does, into the
    container's json-file log (``logs``); stdin stays connected directly."""
    from forklift.engine import logfile
    from forklift.runtime.runc import Runc

    runc = Runc(store.runc_dir)
    rec = claim(store, name_or_id, os.getpid())
    code = 255
    oom = False
    try:
        bundle = prepare(store, rec, runc)
        log = logfile.JsonLog(logfile.log_path(store, rec.id))
        faults.checkpoint("start-before-runc")
        if rec.config.get("Tty"):
            from forklift.engine import tty

            try:
                code = tty.run_foreground(runc, rec.id, bundle, stdin=stdin, stdout=stdout,
                                          tee=lambda data: log.write("stdout", data))
            finally:
                log.close()
        else:
            code = _run_teed(runc, rec, bundle, log, stdin, stdout, stderr)
        oom = oom_killed(rec)
        return code
    finally:
        finish(store, rec, runc, code, oom_killed=oom)


def _run_teed(runc: Any, rec: ContainerRecord, bundle: str, log: Any, stdin: IO[Any] | None,
              stdout: IO[Any] | None, stderr: IO[Any] | None) -> int:
    """``runc run`` with its stdout/stderr on pipes that a thread copies to ours and the log.

    A memory-limited container is kept in runc's state after it exits (``--keep``) so its
    cgroup, where the kernel counts OOM kills, can be read before it is deleted."""
    import threading

    from forklift.engine.logfile import Tee
    from forklift.runtime.runc import FORWARDED_SIGNALS

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    tee = Tee(log, {out_r: ("stdout", _fileno(stdout, 1)), err_r: ("stderr", _fileno(stderr, 2))})
    thread = threading.Thread(target=tee.run, name="output", daemon=True)
    # The thread inherits a mask that blocks the signals runc.run waits for with
    # sigwaitinfo: none of them may be delivered to it instead.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED_SIGNALS, signal.SIGCHLD})
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    logged = os.fstat(log.fd).st_size
    try:
        return int(runc.run(rec.id, bundle, stdin=stdin, stdout=out_w, stderr=err_w,
                            keep=bool(rec.host_config.get("Memory"))))
    finally:
        os.close(out_w)
        os.close(err_w)
        thread.join()
        _unlog_runc_failure(bundle, log.path, logged)


def _unlog_runc_failure(bundle: str, path: str, size: int) -> None:
    """runc prints why it could not start the process on the stderr it shares with the
    container: that is no output of the container (Docker's log stays empty), drop it."""
    from forklift.runtime.runc import _last_error

    if _last_error(os.path.join(bundle, "runc.log")) is not None:
        with contextlib.suppress(OSError):
            os.truncate(path, size)


def _fileno(stream: IO[Any] | None, default: int) -> int:
    return default if stream is None else stream.fileno()


def oom_killed(rec: ContainerRecord) -> bool:
    """Whether the kernel's OOM killer struck in the container's memory cgroup; call after
    the container exited and before runc's state (and so the cgroup) is deleted."""
    if not rec.host_config.get("Memory"):
        return False
    from forklift.engine import hostconfig

    return hostconfig.oom_killed(rec.id)


def start_detached(store: Store, name_or_id: str) -> ContainerRecord:
    """Start a container in the background under its own monitor process."""
    from forklift.engine import monitor

    rec = container_store.resolve(store, name_or_id)
    monitor.launch(store, rec)
    return rec


def _forget_runtime_state(store: Store, runc: Any, container_id: str) -> None:
    """Delete runc's record of a container, if any: `runc run` removes it itself on exit,
    so the extra process (~15 ms) is only spent after a crash."""
    if os.path.exists(os.path.join(store.runc_dir, container_id)):
        with contextlib.suppress(ForkliftError, OSError):
            runc.delete(container_id, force=True)


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


def effective_state(rec: ContainerRecord) -> str:
    """The state to show: a 'running' container whose monitor is gone has exited."""
    if rec.state in ("running", "paused") and not pid_alive(rec.pid):
        return "exited"
    return rec.state


# ----------------------------------------------------------------------------- remove

def remove(store: Store, name_or_id: str, force: bool = False, volumes: bool = False) -> str:
    rec = container_store.resolve(store, name_or_id)
    if effective_state(rec) in ("running", "paused"):
        if not force:
            raise Conflict(
                f"You cannot remove a running container {rec.id}. Stop the container before"
                " attempting removal or force remove")
        _kill(store, rec)
    elif rec.state in ("running", "paused"):
        # Its monitor died (kill -9, reboot): clean up what it left behind.
        _kill(store, rec)
        if rec.host_config.get("NetworkMode", "bridge") not in ("host", "none"):
            from forklift.engine import network as network_mod

            with contextlib.suppress(Exception):
                network_mod.teardown(store, rec)
    attached = volume_store.of_container(store, rec.id)
    held_layers = container_store.delete(store, rec.id)
    faults.checkpoint("rm-after-delete")
    rootfs.destroy(store, rec.id)
    if held_layers:  # the last user of a deleted image's layers frees them, as in Docker
        layer_store.collect_garbage(store)
    if volumes:
        for vol_name, _ in attached:
            vol = volume_store.get(store, vol_name)
            if vol and vol.anonymous and not volume_store.users(store, vol_name):
                volume_store.remove(store, vol_name)
    return rec.name


def _kill(store: Store, rec: ContainerRecord) -> None:
    from forklift.runtime.runc import Runc

    runc = Runc(store.runc_dir)
    with contextlib.suppress(ForkliftError, OSError):
        runc.kill(rec.id, signal.SIGKILL, all=True)
    deadline = time.time() + 10
    while pid_alive(rec.pid) and time.time() < deadline:
        current = container_store.get(store, rec.id)
        if current is None or current.state not in ("running", "paused"):
            break
        time.sleep(0.05)
    with contextlib.suppress(ForkliftError, OSError):
        runc.delete(rec.id, force=True)


# ----------------------------------------------------------------------------- diff

def diff(store: Store, name_or_id: str) -> list[tuple[str, str]]:
    rec = container_store.resolve(store, name_or_id)
    p = rootfs.paths(store, rec.id)
    return fsdiff.changes(p["upper"], rootfs.lowerdirs(store, rec.id, rec.image_id))


# ----------------------------------------------------------------------------- commit

def _created_by(cfg: dict[str, Any]) -> str:
    return " ".join(cfg.get("Cmd") or [])


def commit(store: Store, name_or_id: str, repository: str | None = None, *, message: str = "",
           author: str = "", changes: list[str] | None = None, pause: bool = True) -> str:
    """``commit``: the container's layer on top of its image, its config carried over."""
    from forklift import changes as changes_mod
    from forklift import limits as limits_mod
    from forklift import reference

    rec = container_store.resolve(store, name_or_id)
    tag = str(reference.parse(repository)) if repository else None
    if container_store.image_deleted(store, rec):
        # Docker cannot commit such a container either: the parent config is gone.
        raise NotFound(f"failed to get digest {rec.image_id}: the image of container"
                       f" {rec.short_id} was deleted (rmi -f)")
    parent_cfg = image_store.config(store, rec.image_id)
    carried = {k: v for k, v in rec.config.items() if k in oci.CONFIG_FIELDS and v not in (None, "", [], {})}
    new_cfg = changes_mod.apply(carried, changes or [])
    parent_layers = image_store.layers(store, rec.image_id)
    limits_mod.load(store.root).check_layers(len(parent_layers) + 1, "the committed image")
    prepared = [layer_store.reuse(store, layer.diff_id) for layer in parent_layers]
    if any(p is None for p in prepared):
        raise NotFound(f"a layer of image {dg.short_id(rec.image_id)} is missing")
    new_layer = layer_store.from_directory(store, rootfs.paths(store, rec.id)["upper"])
    faults.checkpoint("commit-after-layer")
    try:
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
        return image_store.add(store, oci.canonical_json(cfg), layer_list, parent=rec.image_id,
                               tags=[tag] if tag else [])
    finally:
        new_layer.cleanup()


# ----------------------------------------------------------------------------- export

def export(store: Store, name_or_id: str, out: IO[bytes]) -> None:
    """``export``: the merged root filesystem as one tar stream."""
    from forklift import archive

    rec = container_store.resolve(store, name_or_id)
    with rootfs.readonly_view(store, rec.id, rec.image_id) as root:
        archive.write_tree(root, out)


# ----------------------------------------------------------------------------- list

@dataclass(frozen=True)
class Status:
    """A container's state and the times the CLI words ("Up 5 minutes", "Exited (0) 2 hours
    ago"): the engine gives facts, the CLI the words."""
    state: str        # effective: created, running, paused or exited
    exit_code: int    # when exited: the recorded code; 255 when unknown or its monitor died
    started: float    # epoch seconds, 0 when unknown
    finished: float   # epoch seconds, 0 when unknown


@dataclass
class ContainerRow:
    id: str
    image: str
    command: str
    created: float
    status: Status
    ports: str
    names: str
    record: ContainerRecord


def status(rec: ContainerRecord) -> Status:
    """The state ``ps`` shows: a container whose monitor is gone has exited (code 255)."""
    state = effective_state(rec)
    code = rec.exit_code if rec.exit_code is not None and rec.state == state else 255
    return Status(state, code, oci.parse_time(rec.started_at), oci.parse_time(rec.finished_at))


def command_text(rec: ContainerRecord) -> str:
    args = list(rec.config.get("Entrypoint") or []) + list(rec.config.get("Cmd") or [])
    return " ".join(args)


def list_containers(store: Store, show_all: bool = False) -> list[ContainerRow]:
    """``ps``: running and paused containers (every one with ``show_all``), newest first.
    Reads only; raises nothing for a container whose image or network is gone."""
    rows = []
    for rec in container_store.all_containers(store):
        now = status(rec)
        state = now.state
        if not show_all and state not in ("running", "paused"):
            continue
        ports = ", ".join(sorted((rec.config.get("ExposedPorts") or {}).keys()))
        if state == "running" and rec.host_config.get("PortBindings") or rec.host_config.get("PublishAllPorts"):
            from forklift.engine import network as network_mod

            endpoint = network_mod.endpoint(store, rec.id) if state == "running" else None
            if endpoint and endpoint.get("Ports"):
                ports = ", ".join(
                    f"{m.get('hostIP', '0.0.0.0')}:{m['hostPort']}->{m['containerPort']}/{m['protocol']}"
                    for m in endpoint["Ports"])
        rows.append(ContainerRow(rec.id, image_text(store, rec), command_text(rec), rec.created,
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
    rec = container_store.resolve(store, name_or_id)
    state = effective_state(rec)
    p = rootfs.paths(store, rec.id)
    args = list(rec.config.get("Entrypoint") or []) + list(rec.config.get("Cmd") or [])
    mounts = []
    for name, dest in volume_store.of_container(store, rec.id):
        vol = volume_store.get(store, name)
        mounts.append({"Type": "volume", "Name": name, "Source": vol.path(store) if vol else "",
                       "Destination": dest, "Driver": "local", "Mode": "", "RW": True,
                       "Propagation": ""})
    for src, dest, ro in map(_parse_volume, rec.host_config.get("Binds", [])):
        if src and src.startswith("/"):
            mounts.append({"Type": "bind", "Source": src, "Destination": dest, "Mode": "",
                           "RW": not ro, "Propagation": "rprivate"})
    for m in rec.host_config.get("Mounts") or []:
        if m["Type"] == "bind":
            mounts.append({"Type": "bind", "Source": m["Source"], "Destination": m["Target"],
                           "Mode": "", "RW": not m.get("ReadOnly"), "Propagation": "rprivate"})
        elif m["Type"] == "tmpfs":
            mounts.append({"Type": "tmpfs", "Source": "", "Destination": m["Target"], "Mode": "",
                           "RW": not m.get("ReadOnly"), "Propagation": ""})
    for dest in rec.host_config.get("Tmpfs") or {}:
        mounts.append({"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "",
                       "RW": True, "Propagation": ""})
    from forklift.engine.images import docker_config

    running = state in ("running", "paused")
    exit_extra = exit_info(store, rec.id) if state == "exited" else {}
    init_pid = 0
    if running:
        init_pid = rec.pid or 0
        with contextlib.suppress(OSError, ValueError), \
                open(os.path.join(store.container_path(rec.id), "init.pid")) as f:
            init_pid = int(f.read().strip())
    network_mode = rec.host_config.get("NetworkMode", "bridge")
    net_settings: dict[str, Any] = {"Bridge": "", "SandboxID": "", "HairpinMode": False,
                                    "Ports": {}, "SandboxKey": "", "IPAddress": "",
                                    "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
                                    "Networks": {network_mode: {}}}
    endpoint = None
    if running and network_mode not in ("host", "none"):
        from forklift.engine import network as network_mod

        endpoint = network_mod.endpoint(store, rec.id)
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

    return {
        "Id": rec.id,
        "Created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(rec.created))
        + f".{int((rec.created % 1) * 1e9):09d}Z",
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": state, "Running": state == "running", "Paused": state == "paused",
            "Restarting": False, "OOMKilled": bool(exit_extra.get("OOMKilled")), "Dead": False,
            "Pid": init_pid,
            "ExitCode": (rec.exit_code or 0) if rec.state == state else 255,
            "Error": "", "StartedAt": rec.started_at or "0001-01-01T00:00:00Z",
            "FinishedAt": rec.finished_at or "0001-01-01T00:00:00Z",
        },
        "Image": rec.image_id,
        "ResolvConfPath": p["resolv.conf"],
        "HostnamePath": p["hostname"],
        "HostsPath": p["hosts"],
        "Name": "/" + rec.name,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": rec.host_config,
        "GraphDriver": {"Name": "overlay", "Data": {
            "UpperDir": p["upper"], "WorkDir": p["work"], "MergedDir": p["merged"]}},
        "Mounts": mounts,
        "Config": docker_config(rec.config),
        "NetworkSettings": net_settings,
    }
