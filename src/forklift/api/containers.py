"""Container endpoints: list, inspect, create, start, stop, kill, restart, wait, delete,
logs, attach.

A container attached before its start (``docker run`` attaches, then starts) runs in a
``forklift start -a`` child process whose pipes the hijacked connection carries: a
foreground run needs a main thread of its own (the runtime waits for its child with
signals blocked in the calling thread), which a service's worker threads are not. A
start without a waiting attachment is the CLI's detached start (a monitor process).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forklift.api import detach
from forklift.api.server import (
    ApiError,
    Context,
    Hijack,
    Reply,
    Request,
    Stream,
    body_file,
    json_reply,
    no_content,
    route,
)
from forklift.errors import InvalidArgument

RAW = "application/vnd.docker.raw-stream"
POLL = 0.05


def _resolve(ctx: Context, name: str) -> Any:
    from forklift.store import containers as container_store

    return container_store.resolve(ctx.store, name)


def _get(ctx: Context, container_id: str) -> Any:
    from forklift.store import containers as container_store

    return container_store.get(ctx.store, container_id)


# ----------------------------------------------------------------------------- reading

def _unsized(req: Request) -> bool:
    """A listing without ``size`` reads only rows and small files; sizes walk each upper
    directory (a worker thread's work: the loop would wait on the disk)."""
    return not req.flag("size")


@route("GET", "/containers/json", inline=_unsized)
def list_containers(ctx: Context, req: Request) -> Reply:
    from forklift.engine import containers as engine
    from forklift.engine.filters import Filters

    store = ctx.store
    kept = _kept(ctx)
    rows = engine.list_containers(store, req.flag("all"), Filters(req.filters()),
                                  kept.records if kept else None, kept.images if kept else None)
    limit = req.int_arg("limit", -1) or -1
    if limit > 0:
        rows = rows[:limit]
    return json_reply(summaries(store, rows, req.flag("size"), kept))


class _Kept:
    """What the loop's listings read from the store's database, kept until another
    connection commits (`Context.reader_memo`): the containers' records (rows and JSON),
    the image names `ps` shows, the volumes' attachments. Each container's liveness,
    status and files are read anew for every listing."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.known: dict[bool, list[Any]] = {}
        self.images: dict[tuple[str, str], str] = {}
        self.attached: dict[str, list[Any]] | None = None

    def records(self, up_only: bool) -> list[Any]:
        if up_only not in self.known:
            from forklift.store import containers as container_store

            self.known[up_only] = container_store.all_containers(self.ctx.store, up_only)
        return self.known[up_only]

    def attachments(self) -> dict[str, list[Any]]:
        if self.attached is None:
            from forklift.store import volumes as volume_store

            self.attached = volume_store.attachments(self.ctx.store)
        return self.attached


def _kept(ctx: Context) -> _Kept | None:
    """On the loop, the `_Kept` of the store's current ``data_version``; None elsewhere."""
    memo = ctx.reader_memo()
    if memo is None:
        return None
    version = ctx.data_version()
    kept = memo.get("containers")
    if kept is None or kept[0] != version:
        kept = memo["containers"] = (version, _Kept(ctx))
    return kept[1]


def summaries(store: Any, rows: list[Any], size: bool = False,
              kept: _Kept | None = None) -> list[dict[str, Any]]:
    """Docker's ContainerSummary of each ``ps`` row, from the row's record (ports and
    networks as inspect's NetworkSettings has them, mounts as its Mounts), less the
    containers removed since the listing (another client's ``rm`` between the two reads
    is no error of this one's); with ``kept``, the rows are those of one database state,
    as are the attachments then."""
    from forklift.cli.format import status_text
    from forklift.engine import containers as engine
    from forklift.engine import inspectdoc, mounts
    from forklift.store import volumes as volume_store

    if not rows:
        return []
    attached = kept.attachments() if kept is not None else volume_store.attachments(store)
    out = []
    for row in rows:
        rec = row.record
        settings = engine.network_settings(store, rec, row.status.state.up)
        doc: dict[str, Any] = {
            "Id": rec.id, "Names": ["/" + rec.name], "Image": row.image,
            "ImageID": rec.image_id, "Command": row.command, "Created": int(row.created),
            "Ports": _ports(settings, rec), "Labels": rec.config.get("Labels") or {},
            "State": row.status.state, "Status": status_text(row.status),
            "HostConfig": {"NetworkMode": rec.host_config.get("NetworkMode", "bridge")},
            "NetworkSettings": {"Networks": inspectdoc.networks(settings["Networks"])},
            "Mounts": mounts.describe(store, rec, attached.get(rec.id, []))}
        if size:
            from forklift.engine.sizes import container_sizes

            doc["SizeRw"], doc["SizeRootFs"] = container_sizes(store, rec)
        out.append(doc)
    if kept is not None:
        return out
    present = {r[0] for r in store.conn.execute("SELECT id FROM containers")}  # one query
    return [doc for doc in out if doc["Id"] in present]


def _ports(settings: dict[str, Any], rec: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    published = settings.get("Ports") or {}
    for key in sorted(set(published) | set(rec.config.get("ExposedPorts") or {})):
        number, _, proto = key.partition("/")
        bindings = published.get(key) or []
        if not bindings:
            out.append({"PrivatePort": int(number), "Type": proto or "tcp"})
        for b in bindings:
            out.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(number),
                        "PublicPort": int(b.get("HostPort") or 0), "Type": proto or "tcp"})
    return out


@route("GET", "/containers/{id}/json")
def inspect_container(ctx: Context, req: Request) -> Reply:
    from forklift.engine import containers as engine

    doc = engine.inspect(ctx.store, req.params["id"])
    if req.flag("size"):
        from forklift.engine.sizes import container_sizes

        doc["SizeRw"], doc["SizeRootFs"] = container_sizes(ctx.store, _resolve(ctx, doc["Id"]))
    return json_reply(doc)


# ----------------------------------------------------------------------------- create

def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgument(f"{what}: a list of strings is expected")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what}: an object is expected")
    return value


def create_options(body: dict[str, Any], name: str | None) -> tuple[str, list[str], Any]:
    """The Docker create body as the engine's (image, command, CreateOptions): what
    ``docker create``'s flags would have given the CLI."""
    from forklift.engine.containers import CreateOptions

    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise InvalidArgument("Config cannot be empty in order to create a container")
    hc = _mapping(body.get("HostConfig"), "HostConfig")
    command = _strings(body.get("Cmd"), "Cmd")
    opts = CreateOptions(name=name or None)
    if body.get("Entrypoint") is not None:
        opts.entrypoint = _strings(body["Entrypoint"], "Entrypoint")
    opts.env = _strings(body.get("Env"), "Env")
    opts.workdir = body.get("WorkingDir") or None
    opts.user = body.get("User") or None
    opts.hostname = body.get("Hostname") or None
    opts.labels = [f"{k}={v}" for k, v in _mapping(body.get("Labels"), "Labels").items()]
    opts.expose = list(_mapping(body.get("ExposedPorts"), "ExposedPorts"))
    opts.volumes = list(_mapping(body.get("Volumes"), "Volumes")) + _strings(hc.get("Binds"), "Binds")
    opts.tty = bool(body.get("Tty"))
    opts.interactive = bool(body.get("OpenStdin"))
    opts.stop_signal = body.get("StopSignal") or None
    try:
        _host_options(opts, hc)
        _flag_options(opts, body, hc)
        _health_options(opts, _mapping(body.get("Healthcheck"), "Healthcheck"))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a value of another type
        raise InvalidArgument(f"invalid HostConfig: {exc}") from None
    _endpoint_options(opts, _mapping(body.get("NetworkingConfig"), "NetworkingConfig"))
    return image, command, opts


def _flag_options(opts: Any, body: dict[str, Any], hc: dict[str, Any]) -> None:
    """The rarer fields Compose sends (stop_grace_period, shm_size, sysctls, …) as the
    CLI's rarer flags (`engine.runflags`), checked there as the flags are."""
    from forklift.engine.runflags import RunFlags

    rf = opts.run_flags or RunFlags()
    if body.get("StopTimeout") is not None:
        rf.stop_timeout = int(body["StopTimeout"])
    if hc.get("ShmSize"):
        rf.shm_size = str(int(hc["ShmSize"]))
    rf.sysctls = [f"{k}={v}" for k, v in _mapping(hc.get("Sysctls"), "Sysctls").items()]
    rf.group_add = _strings(hc.get("GroupAdd"), "GroupAdd")
    rf.dns_search = _strings(hc.get("DnsSearch"), "DnsSearch")
    rf.dns_options = _strings(hc.get("DnsOptions"), "DnsOptions")
    rf.domainname = body.get("Domainname") or None
    rf.links = _strings(hc.get("Links"), "Links")
    opts.volumes_from = _strings(hc.get("VolumesFrom"), "VolumesFrom")
    opts.run_flags = rf
    opts.ulimits = [f"{u['Name']}={int(u['Soft'])}:{int(u['Hard'])}"
                    for u in hc.get("Ulimits") or []]


def _health_options(opts: Any, health: dict[str, Any]) -> None:
    """``Config.Healthcheck`` as the ``--health-*`` flags (a ``CMD`` test becomes its
    shell-quoted ``CMD-SHELL`` form: the flags take a shell command)."""
    import shlex

    test = _strings(health.get("Test"), "Healthcheck.Test")
    if test[:1] == ["NONE"]:
        opts.no_healthcheck = True
        return
    if test[:1] == ["CMD-SHELL"]:
        opts.health_cmd = " ".join(test[1:])
    elif test[:1] == ["CMD"]:
        opts.health_cmd = shlex.join(test[1:])
    for key, attr in (("Interval", "health_interval"), ("Timeout", "health_timeout"),
                      ("StartPeriod", "health_start_period")):
        if health.get(key):
            setattr(opts, attr, f"{int(health[key])}ns")
    if health.get("Retries"):
        opts.health_retries = int(health["Retries"])


def _endpoint_options(opts: Any, networking: dict[str, Any]) -> None:
    """The create's own network's ``Aliases`` (Compose names each container by its
    service there) as ``--network-alias``, its ``IPAMConfig.IPv4Address`` as ``--ip``;
    the engine refuses both on default networks."""
    from forklift.engine.runflags import RunFlags

    endpoints = _mapping(networking.get("EndpointsConfig"), "EndpointsConfig")
    endpoint = _mapping(endpoints.get(opts.network), f"EndpointsConfig.{opts.network}")
    aliases = _strings(endpoint.get("Aliases"), "Aliases")
    address = _mapping(endpoint.get("IPAMConfig"), "IPAMConfig").get("IPv4Address") or ""
    if not isinstance(address, str):
        raise InvalidArgument("invalid IPAMConfig.IPv4Address: a string is expected")
    if aliases or address:
        opts.run_flags = opts.run_flags or RunFlags()
        opts.run_flags.network_aliases = aliases
        opts.run_flags.ip = address or None


def _host_options(opts: Any, hc: dict[str, Any]) -> None:
    mode = hc.get("NetworkMode") or "bridge"
    opts.network = "bridge" if mode == "default" else mode
    opts.auto_remove = bool(hc.get("AutoRemove"))
    opts.read_only = bool(hc.get("ReadonlyRootfs"))
    opts.privileged = bool(hc.get("Privileged"))
    opts.cap_add = _strings(hc.get("CapAdd"), "CapAdd")
    opts.cap_drop = _strings(hc.get("CapDrop"), "CapDrop")
    opts.security_opt = _strings(hc.get("SecurityOpt"), "SecurityOpt")
    opts.dns = _strings(hc.get("Dns"), "Dns")
    opts.add_hosts = _strings(hc.get("ExtraHosts"), "ExtraHosts")
    opts.init = bool(hc.get("Init"))
    opts.publish_all = bool(hc.get("PublishAllPorts"))
    for port, bindings in _mapping(hc.get("PortBindings"), "PortBindings").items():
        for b in bindings or [{}]:
            host = (b or {}).get("HostIp") or ""
            opts.publish.append(f"{host}:{(b or {}).get('HostPort') or ''}:{port}"
                                if host else f"{(b or {}).get('HostPort') or ''}:{port}")
    if hc.get("Memory"):
        opts.memory = str(int(hc["Memory"]))
    if hc.get("NanoCpus"):
        opts.cpus = int(hc["NanoCpus"]) / 1e9
    if hc.get("CpuShares"):
        opts.cpu_shares = int(hc["CpuShares"])
    if hc.get("CpusetCpus"):
        opts.cpuset_cpus = str(hc["CpusetCpus"])
    if hc.get("PidsLimit"):
        opts.pids_limit = int(hc["PidsLimit"])
    opts.tmpfs = [f"{path}:{o}" if o else path for path, o in _mapping(hc.get("Tmpfs"), "Tmpfs").items()]
    policy = _mapping(hc.get("RestartPolicy"), "RestartPolicy")
    if policy.get("Name") and policy["Name"] != "no":
        count = policy.get("MaximumRetryCount") or 0
        opts.restart = f"{policy['Name']}:{count}" if count else policy["Name"]


@route("POST", "/containers/create")
def create(ctx: Context, req: Request) -> Reply:
    from forklift.engine import containers as engine

    image, command, opts = create_options(req.json(), req.arg("name") or None)
    rec = engine.create(ctx.store, image, command, opts, volumes=True)
    return json_reply({"Id": rec.id, "Warnings": []}, 201)


# ----------------------------------------------------------------------------- lifecycle

@dataclass
class Client:
    """One attach connection waiting for a start: the streams it asked for, and its socket
    once hijacked (the pump waits for it: a start can overtake the hijack's worker)."""

    stdin: bool
    streams: tuple[bool, bool]
    logs: bool = False  # what it logged so far, first
    escape: detach.Escape | None = None  # a TTY's detach keys, when it gives stdin
    sock: socket.socket | None = None
    early: bytes = b""
    ready: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Attachment:
    """The attaches waiting for a container's start (dockerpty, under Compose's ``run``,
    attaches stdin, stdout and stderr on three connections), then the child running it."""

    clients: list[Client] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def stdin(self) -> bool:
        return any(c.stdin for c in self.clients)


@route("POST", "/containers/{id}/start")
def start(ctx: Context, req: Request) -> Reply:
    rec = _resolve(ctx, req.params["id"])
    if rec.effective_state().up:
        return Reply(304, b"", None)
    with ctx.lock:
        waiting: Attachment | None = ctx.attachments.pop(rec.id, None)
    if waiting is None:
        _cli(ctx, "start", rec.id)
        return no_content()
    _forget_size(ctx, rec.id)
    argv = [sys.executable, "-m", "forklift", "--root", ctx.store_root(), "start", "-a",
            *(["-i"] if waiting.stdin else []), rec.id]
    waiting.proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE if waiting.stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    with ctx.lock:
        ctx.children[rec.id] = waiting.proc
    threading.Thread(target=_carry, daemon=True,
                     args=(ctx, rec.id, waiting, bool(rec.config.get("Tty")))).start()
    waiting.started.set()
    while waiting.proc.poll() is None and not ctx.stopping.is_set():
        cur = _get(ctx, rec.id)
        if cur is None or cur.started_at != rec.started_at:
            break  # it runs (or already ran and was removed)
        time.sleep(POLL / 5)
    return no_content()


@route("POST", "/containers/{id}/stop")
def stop(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    rec = _resolve(ctx, req.params["id"])
    if not rec.effective_state().up:
        return Reply(304, b"", None)
    lifecycle.stop(ctx.store, rec.id, req.int_arg("t"))
    return no_content()


@route("POST", "/containers/{id}/kill")
def kill(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    lifecycle.kill(ctx.store, req.params["id"], req.arg("signal") or None)
    return no_content()


@route("POST", "/containers/{id}/restart")
def restart(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    rec = lifecycle.stop(ctx.store, req.params["id"], req.int_arg("t"))
    _cli(ctx, "start", rec.id)
    return no_content()


def _cli(ctx: Context, *args: str) -> None:
    """A start in a CLI child: the engine forks the container's monitor, and a fork of a
    process whose other threads hold SQLite connections breaks the child's own (SQLite
    keeps per-process lock bookkeeping). The child's ``Error:`` line becomes the reply."""
    proc = subprocess.run([sys.executable, "-m", "forklift", "--root", ctx.store_root(), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if proc.returncode == 0:
        return
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    message = next((line.removeprefix("Error: ") for line in reversed(lines)
                    if line.startswith("Error: ")), lines[-1] if lines else "failed")
    status = 404 if message.startswith("No such") else 409 if "paused" in message else 500
    raise ApiError(status, message)


@route("DELETE", "/containers/{id}")
def delete(ctx: Context, req: Request) -> Reply:
    from forklift.engine import containers as engine

    engine.remove(ctx.store, req.params["id"], force=req.flag("force"), volumes=req.flag("v"))
    return no_content()


# ----------------------------------------------------------------------------- wait

@route("POST", "/containers/{id}/wait")
def wait(ctx: Context, req: Request) -> Stream:
    """Headers at once (the client starts the container after them), the body at exit."""
    condition = req.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise ApiError(400, f"invalid condition: {condition!r}")
    rec = _resolve(ctx, req.params["id"])

    def produce(write: Callable[[bytes], None]) -> None:
        import json

        code = _wait_for(ctx, rec, condition, stream.gone)
        if code is not None:
            write(json.dumps({"StatusCode": code}).encode() + b"\n")

    stream = Stream(produce)
    return stream


def _wait_for(ctx: Context, rec: Any, condition: str, gone: threading.Event) -> int | None:
    """The exit code ``condition`` waits for; None when the service stops or the client
    leaves first."""
    seen_up = rec.effective_state().up
    last = rec.exit_code
    while not (ctx.stopping.is_set() or gone.is_set()):
        cur = _get(ctx, rec.id)
        if cur is None:
            return _child_code(ctx, rec.id, last)
        up = cur.effective_state().up
        if cur.exit_code is not None and not up:
            last = cur.exit_code
        if not up and condition != "removed" and (seen_up or condition == "not-running"):
            return _child_code(ctx, rec.id, last if last is not None else 0)
        seen_up = seen_up or up
        gone.wait(POLL)
    return None


def _child_code(ctx: Context, container_id: str, known: int | None) -> int:
    """An attached run's code is its child's exit status (the record may be gone, --rm)."""
    with ctx.lock:
        child = ctx.children.get(container_id)
        if child is None:
            known = ctx.exits.get(container_id, known)
    if child is not None:
        return child.wait()
    return known if known is not None else 0


# ----------------------------------------------------------------------------- logs

class _Framed:
    """A file-like writer for `lifecycle.logs`: each write one frame of Docker's
    multiplexed stream (or raw bytes for a TTY), sent at once."""

    def __init__(self, write: Callable[[bytes], None], kind: int | None, wanted: bool) -> None:
        self._write, self._kind, self._wanted = write, kind, wanted

    def write(self, data: bytes) -> int:
        if self._wanted and data:
            self._write(frame(self._kind, data))
        return len(data)

    def flush(self) -> None:
        pass


def frame(kind: int | None, data: bytes) -> bytes:
    """Docker's 8-byte header (stream, 0, 0, 0, big-endian length); raw for a TTY."""
    if kind is None:
        return data
    return struct.pack(">BxxxI", kind, len(data)) + data


@route("GET", "/containers/{id}/logs")
def logs(ctx: Context, req: Request) -> Stream:
    from forklift.engine import lifecycle

    want_out, want_err = req.flag("stdout"), req.flag("stderr")
    if not (want_out or want_err):
        raise ApiError(400, "Bad parameters: you must choose at least one stream")
    rec = _resolve(ctx, req.params["id"])
    tty = bool(rec.config.get("Tty"))

    def produce(write: Callable[[bytes], None]) -> None:
        lifecycle.logs(ctx.store, rec.id, follow=req.flag("follow"),
                       tail=req.arg("tail") or "all", since=_time(req.arg("since")),
                       until=_time(req.arg("until")), timestamps=req.flag("timestamps"),
                       stdout=_Framed(write, None if tty else 1, want_out),  # type: ignore[arg-type]
                       stderr=_Framed(write, None if tty else 2, want_err),  # type: ignore[arg-type]
                       stop=lambda: ctx.stopping.is_set() or stream.gone.is_set())

    stream = Stream(produce, RAW)
    return stream


def _time(text: str) -> str | None:
    """Docker's client sends 0 for an unset since/until."""
    return None if text in ("", "0") else text


# ----------------------------------------------------------------------------- attach

@route("POST", "/containers/{id}/attach")
def attach(ctx: Context, req: Request) -> Reply | Hijack:
    """Attach before start (``docker run``): the connection carries the run's streams. As
    Docker's, an attach to a container that is not running waits for its next start (and
    ``docker start -a`` relies on it). ``logs=1`` replays what it logged first; without
    ``stream=1`` that is all."""
    rec = _resolve(ctx, req.params["id"])
    tty = bool(rec.config.get("Tty"))
    stdin = req.flag("stdin") and bool(rec.config.get("OpenStdin"))
    keys = detach.parse(req.arg("detachKeys"))
    client = Client(stdin=stdin, streams=(req.flag("stdout"), req.flag("stderr")),
                    logs=req.flag("logs"), escape=detach.Escape(keys) if tty and stdin else None)
    if not req.flag("stream"):
        return Hijack(lambda sock, early: _replay_only(ctx, rec.id, client, tty, sock))
    for _ in range(3):  # a restart policy may start it again while we look
        if not rec.effective_state().up:
            break
        conn = _monitor_connection(ctx, rec)
        if conn is not None:
            return _attach_running(ctx, rec.id, conn, client, tty)
        rec = _resolve(ctx, rec.id)
    # not running (or it ended between the looks): the next start carries it
    with ctx.lock:
        waiting = ctx.attachments.setdefault(rec.id, Attachment())
        waiting.clients.append(client)
    return Hijack(lambda sock, early: _await_start(ctx, rec.id, waiting, client, sock, early,
                                                   tty))


def _replay(ctx: Context, container_id: str, client: Client, tty: bool,
            sock: socket.socket) -> None:
    """``logs=1``: the container's log so far, framed as the stream that follows."""
    from forklift.engine import lifecycle
    from forklift.errors import ForkliftError

    if not client.logs:
        return
    # docker-py reads the 101's head through a buffered file, then the raw socket: bytes
    # that arrive with the head are lost to it (dockerd's log read gives it the time)
    time.sleep(0.1)
    with contextlib.suppress(ForkliftError, OSError):  # removed meanwhile, or the client left
        lifecycle.logs(ctx.store, container_id,
                       stdout=_Framed(sock.sendall, None if tty else 1,  # type: ignore[arg-type]
                                      client.streams[0]),
                       stderr=_Framed(sock.sendall, None if tty else 2,  # type: ignore[arg-type]
                                      client.streams[1]))


def _replay_only(ctx: Context, container_id: str, client: Client, tty: bool,
                 sock: socket.socket) -> None:
    _replay(ctx, container_id, client, tty, sock)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _await_start(ctx: Context, container_id: str, waiting: Attachment, client: Client,
                 sock: socket.socket, early: bytes, tty: bool) -> None:
    """Hand the socket to the start's pump (`_carry`) and hold it until that is done. A
    client that hangs up before the start leaves the group."""
    _replay(ctx, container_id, client, tty, sock)  # before the pump may write to it
    client.sock, client.early = sock, early
    client.ready.set()
    while not waiting.started.wait(0.2):
        if ctx.stopping.is_set() or _hung_up(sock):
            with ctx.lock:  # unless the start took it already (then it is carried on)
                if ctx.attachments.get(container_id) is waiting:
                    waiting.clients.remove(client)
                    if not waiting.clients:
                        del ctx.attachments[container_id]
                    return
    client.done.wait()


def _carry(ctx: Context, container_id: str, waiting: Attachment, tty: bool) -> None:
    """Copy the attached clients' bytes to the child's stdin (the first that gives stdin,
    to its end: its half-close closes it) and the child's output to every client that
    asked for that stream, framed unless a TTY's; then close them."""
    proc = waiting.proc
    assert proc is not None
    for c in waiting.clients:
        c.ready.wait(10)  # its hijack runs right after the 101; one that failed is left out
    clients = [c for c in waiting.clients if c.sock is not None]
    feeder = next((c for c in clients if c.stdin), None)
    outs = ([c.sock for c in clients if c.streams[0]], [c.sock for c in clients if c.streams[1]])
    try:
        fan_out(proc, None if feeder is None else (feeder.sock, feeder.early), outs,  # type: ignore[arg-type]
                framed=not tty, escape=None if feeder is None else feeder.escape)
        proc.wait()
    finally:
        for c in clients:
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        for c in waiting.clients:
            c.done.set()
    with ctx.lock:
        ctx.exits[container_id] = proc.returncode
        if ctx.children.get(container_id) is proc:
            del ctx.children[container_id]


def _hung_up(sock: socket.socket) -> bool:
    """The client closed its connection (both ways: a unix socket's POLLHUP; a half-close,
    the end of its stdin, is not one). An attach abandoned before the start must not make
    that start an attached one."""
    import select

    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


def pump_child(proc: Any, sock: socket.socket, early: bytes, streams: tuple[bool, bool],
               framed: bool, escape: detach.Escape | None = None) -> None:
    """Copy the client's bytes to the child's stdin, if it has one (to the client's
    half-close, or its detach keys with ``escape``), and the child's stdout and stderr to
    the client (the wanted ones; framed unless a TTY's) until both end."""
    fan_out(proc, (sock, early), ([sock] if streams[0] else [], [sock] if streams[1] else []),
            framed, escape)


def fan_out(proc: Any, source: tuple[socket.socket, bytes] | None,
            outs: tuple[list[socket.socket], list[socket.socket]], framed: bool,
            escape: detach.Escape | None = None) -> None:
    """`pump_child` for several clients: stdin from ``source``, stdout and stderr to each
    socket of ``outs`` (stdout's, stderr's) until both end."""
    assert proc.stdout is not None and proc.stderr is not None
    lock = threading.Lock()
    if proc.stdin is not None and source is not None:
        threading.Thread(target=_feed, args=(*source, proc.stdin, escape), daemon=True).start()
    elif proc.stdin is not None:
        proc.stdin.close()
    pumps = [threading.Thread(target=_drain, daemon=True,
                              args=(pipe, socks, lock, kind if framed else None))
             for pipe, kind, socks in ((proc.stdout, 1, outs[0]), (proc.stderr, 2, outs[1]))]
    for p in pumps:
        p.start()
    for p in pumps:
        p.join()


def _feed(sock: socket.socket, early: bytes, stdin: Any, escape: detach.Escape | None) -> None:
    def put(data: bytes) -> None:
        stdin.write(data)
        stdin.flush()

    close = True   # the end of the client's input is the end of the child's
    try:
        if relay(sock, early, escape, put):
            close = False
        else:
            # a TTY's client that left (not a half-close) detached, as Docker's CLI does
            # after catching the detach keys itself
            close = escape is None or not _hung_up(sock)
    except OSError:
        pass
    finally:
        if close:
            with contextlib.suppress(OSError):
                stdin.close()


def relay(sock: socket.socket, early: bytes, escape: detach.Escape | None,
           put: Callable[[bytes], None]) -> bool:
    """The client's bytes (``early`` first) to ``put`` until the client's end; with
    ``escape`` held back at a possible detach sequence and never passed on. True when it
    ended on the detach keys (the client's connection is then shut)."""
    data = early
    while True:
        detached = False
        if escape is not None:
            data, detached = escape.feed(data)
        if data:
            put(data)
        if detached:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return True
        data = sock.recv(65536)
        if not data:
            return False


def _drain(pipe: Any, socks: list[socket.socket], lock: threading.Lock,
           kind: int | None) -> None:
    fd = pipe.fileno()
    alive = list(socks)
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        for sock in list(alive):
            try:
                with lock:
                    sock.sendall(frame(kind, data))
            except OSError:
                alive.remove(sock)  # that client left: drain on, so the container is not blocked
    pipe.close()


def _attach_running(ctx: Context, container_id: str, conn: socket.socket, client: Client,
                    tty: bool) -> Hijack:
    """``docker attach``: through the container's monitor (its attach socket and frames:
    kind, 4-byte length, payload), as the CLI's `lifecycle.attach`."""

    def run(sock: socket.socket, early: bytes) -> None:
        _replay(ctx, container_id, client, tty, sock)
        if client.stdin:
            threading.Thread(target=_feed_monitor, args=(sock, early, conn, client.escape),
                             daemon=True).start()
        try:
            _from_monitor(conn, sock, tty, client.streams)
        finally:
            conn.close()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    return Hijack(run)


def _monitor_connection(ctx: Context, rec: Any) -> socket.socket | None:
    """A connection the running container's monitor took; None once the run is over, its
    record settled (dockerpty looks at the state after its attaches, and starts the
    container again if it is not running: that start must find them waiting). Its socket may
    be a moment behind its state; a container with no monitor (an attached run's) is a
    Conflict."""
    from forklift.engine import monitor
    from forklift.engine import tty as tty_mod
    from forklift.errors import Conflict

    deadline = time.monotonic() + 2
    while True:
        try:
            conn = tty_mod.connect_in_dir(ctx.store.container_path(rec.id), monitor.ATTACH_SOCKET)
        except ConnectionRefusedError:
            break  # its process ended: the monitor is finishing the run
        except OSError:
            cur = _get(ctx, rec.id)
            if cur is None or not cur.effective_state().up:
                return None
            if time.monotonic() > deadline:
                raise Conflict(f"cannot attach to container {rec.id[:12]}:"
                               " it was not started detached") from None
            time.sleep(POLL)
            continue
        if _taken(conn):
            return conn
        conn.close()  # refused while it waited to be taken: the process had ended
        break
    _until_finished(ctx, rec)
    return None


def _taken(conn: socket.socket) -> bool:
    """The monitor took the connection (its first frame, OUT_ATTACHED, came) rather than
    closing it unseen because the container's process had ended."""
    from forklift.engine import monitor

    head = b""
    conn.settimeout(10)
    try:
        while len(head) < 5:
            chunk = conn.recv(5 - len(head))
            if not chunk:
                return False
            head += chunk
    except OSError:  # reset, or no answer at all
        return False
    conn.settimeout(None)
    return head[0] == monitor.OUT_ATTACHED


def _until_finished(ctx: Context, rec: Any) -> None:
    """Until the monitor has recorded the end of the run ``rec`` saw (or it is gone)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ctx.stopping.is_set():
        cur = _get(ctx, rec.id)
        if cur is None or not cur.effective_state().up or cur.started_at != rec.started_at:
            return
        time.sleep(POLL / 5)


def _feed_monitor(sock: socket.socket, early: bytes, conn: socket.socket,
                  escape: detach.Escape | None) -> None:
    """The client's bytes to the monitor; on the detach keys both connections end (the
    monitor keeps the container's stdin open for the next attach)."""
    from forklift.engine import monitor

    def put(data: bytes) -> None:
        conn.sendall(struct.pack(">BI", monitor.IN_STDIN, len(data)) + data)

    try:
        if relay(sock, early, escape, put):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        else:
            conn.sendall(struct.pack(">BI", monitor.IN_CLOSE, 0))
    except OSError:
        pass


def _from_monitor(conn: socket.socket, sock: socket.socket, tty: bool,
                  streams: tuple[bool, bool]) -> None:
    from forklift.engine import monitor

    buf = b""
    while True:
        try:
            data = conn.recv(65536)
        except ConnectionResetError:
            data = b""  # the monitor is done: the container exited
        if not data:
            return
        frames, buf = monitor.split_frames(buf + data)
        for kind, payload in frames:
            err = kind == monitor.OUT_STDERR
            if streams[1 if err else 0]:
                sock.sendall(frame(None if tty else (2 if err else 1), payload))


# ----------------------------------------------------------------------------- extras

@route("POST", "/containers/{id}/rename")
def rename(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    name = req.arg("name")
    if not name:
        raise ApiError(400, "rename needs a new name: the name parameter is empty")
    lifecycle.rename(ctx.store, req.params["id"], name)
    return no_content()


@route("POST", "/containers/{id}/pause")
def pause(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    lifecycle.pause(ctx.store, req.params["id"])
    return no_content()


@route("POST", "/containers/{id}/unpause")
def unpause(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    lifecycle.unpause(ctx.store, req.params["id"])
    return no_content()


@route("GET", "/containers/{id}/top")
def top(ctx: Context, req: Request) -> Reply:
    from forklift.engine import lifecycle

    args = req.arg("ps_args").split()
    titles, rows = lifecycle.top(ctx.store, req.params["id"], args or None)
    return json_reply({"Titles": titles, "Processes": rows})


_CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


@route("GET", "/containers/{id}/changes")
def changes(ctx: Context, req: Request) -> Reply:
    from forklift.engine import containers as engine

    found = engine.diff(ctx.store, req.params["id"])
    return json_reply([{"Path": path, "Kind": _CHANGE_KINDS[kind]} for kind, path in found])


class _Writer:
    """A file-like object over a Stream's ``write``."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write

    def write(self, data: bytes) -> int:
        if data:
            self._write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


@route("GET", "/containers/{id}/export")
def export(ctx: Context, req: Request) -> Stream:
    from forklift.engine import containers as engine

    rec = _resolve(ctx, req.params["id"])
    return Stream(lambda write: engine.export(ctx.store, rec.id, _Writer(write)),  # type: ignore[arg-type]
                  "application/x-tar")


@route("GET", "/containers/{id}/stats")
def stats(ctx: Context, req: Request) -> Reply | Stream:
    """One document (``stream=false``; a second's samples apart unless ``one-shot``) or one
    per second, each with the sample before as ``precpu_stats``."""
    from forklift.engine import stats as stats_mod

    rec = _resolve(ctx, req.params["id"])
    before = stats_mod.sample(ctx.store, rec)
    before_at = time.time()
    if not req.flag("stream", True):
        if not req.flag("one-shot"):
            time.sleep(1)
        else:
            before, before_at = stats_mod.Sample(), 0.0
        now = stats_mod.sample(ctx.store, _get(ctx, rec.id) or rec)
        return json_reply(_stats_doc(rec, before, before_at, now, time.time()))

    def produce(write: Callable[[bytes], None]) -> None:
        import json

        nonlocal before, before_at
        while not ctx.stopping.is_set():
            time.sleep(1)
            cur = _get(ctx, rec.id)
            if cur is None or not cur.effective_state().up:
                return  # Docker ends the stream when its container stops
            now, now_at = stats_mod.sample(ctx.store, cur), time.time()
            write(json.dumps(_stats_doc(cur, before, before_at, now, now_at)).encode() + b"\n")
            before, before_at = now, now_at

    return Stream(produce)


def _stats_doc(rec: Any, before: Any, before_at: float, now: Any, now_at: float) -> dict[str, Any]:
    """Docker's stats document (cgroup v1 shape) from two engine samples."""
    from forklift.engine.logfile import rfc3339nano

    def rfc3339(at: float) -> str:
        return rfc3339nano(int(at * 1e9))

    doc: dict[str, Any] = {
        "id": rec.id, "name": "/" + rec.name,
        "read": rfc3339(now_at) if now.system_ns else "0001-01-01T00:00:00Z",
        "preread": rfc3339(before_at) if before_at else "0001-01-01T00:00:00Z",
        "pids_stats": {"current": now.pids} if now.system_ns else {},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "Read", "value": now.block_read},
            {"major": 0, "minor": 0, "op": "Write", "value": now.block_write},
            {"major": 0, "minor": 0, "op": "Total", "value": now.block_read + now.block_write}]},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": _cpu(now), "precpu_stats": _cpu(before),
        "memory_stats": {"usage": now.memory, "limit": now.memory_limit, "stats": {}}
        if now.system_ns else {}}
    if now.system_ns and rec.host_config.get("NetworkMode") != "host":
        doc["networks"] = {"eth0": {"rx_bytes": now.net_rx, "rx_packets": 0, "rx_errors": 0,
                                    "rx_dropped": 0, "tx_bytes": now.net_tx, "tx_packets": 0,
                                    "tx_errors": 0, "tx_dropped": 0}}
    return doc


def _cpu(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0,
                                         "usage_in_usermode": 0},
                           "throttling_data": {"periods": 0, "throttled_periods": 0,
                                               "throttled_time": 0}}
    if s.system_ns:
        out["system_cpu_usage"], out["online_cpus"] = s.system_ns, s.online_cpus
    return out


# ----------------------------------------------------------------------------- archive

def _path_stat(ctx: Context, req: Request) -> tuple[str, str, list[tuple[str, str]]]:
    """(container ID, path, the X-Docker-Container-Path-Stat header) of an archive request."""
    import base64
    import json

    from forklift.engine import copy

    path = req.arg("path")
    if not path:
        raise ApiError(400, "path is required: the path parameter is empty")
    rec = _resolve(ctx, req.params["id"])
    doc = copy.stat_path(ctx.store, rec.id, path)
    value = base64.b64encode(json.dumps(doc).encode()).decode()
    return rec.id, path, [("X-Docker-Container-Path-Stat", value)]


@route("GET", "/containers/{id}/archive")
def get_archive(ctx: Context, req: Request) -> Reply | Stream:
    """A tar of the path (HEAD: its stat header only)."""
    from forklift.engine import copy

    container_id, path, headers = _path_stat(ctx, req)
    if req.method == "HEAD":
        return Reply(200, b"", None, headers)
    return Stream(lambda write: copy.cp(ctx.store, f"{container_id}:{path}", "-",
                                        stdout=_Writer(write)),  # type: ignore[arg-type]
                  "application/x-tar", headers=headers)


@route("PUT", "/containers/{id}/archive", upload=True)
def put_archive(ctx: Context, req: Request) -> Reply:
    """Extract a tar into a directory of the container (the CLI's ``cp -``: through
    scratch space and directory fds, so the tar cannot write outside it)."""
    from forklift.engine import copy
    from forklift.errors import BadArchive

    path = req.arg("path")
    if not path:
        raise ApiError(400, "path is required: the path parameter is empty")
    rec = _resolve(ctx, req.params["id"])
    copy.stat_path(ctx.store, rec.id, path)  # a missing directory is a 404, as Docker's
    try:
        with open(body_file(req), "rb") as tar:
            copy.cp(ctx.store, "-", f"{rec.id}:{path}", archive=req.flag("copyUIDGID"),
                    stdin=tar)
    except BadArchive as exc:  # the client's tar: bad input, not a fault of ours
        raise ApiError(400, str(exc)) from None
    return Reply(200, b"", None)


@route("POST", "/containers/{id}/resize")
def resize(ctx: Context, req: Request) -> Reply:
    """A TTY container's terminal size: an attached run's child (`start -a`) reads it
    from its size file on SIGWINCH, a detached one's monitor takes it on its socket."""
    from forklift.engine import monitor
    from forklift.engine import tty as tty_mod
    from forklift.errors import Conflict

    height, width = req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0
    if not (0 <= height < 65536 and 0 <= width < 65536):
        raise ApiError(400, f"invalid terminal size {height}x{width}")
    rec = _resolve(ctx, req.params["id"])
    with ctx.lock:
        child = ctx.children.get(rec.id)
    if child is not None and child.poll() is None:  # Docker's CLI resizes right after
        if rec.config.get("Tty"):                   # the start: it may not be up yet
            _resize_child(ctx, rec.id, child, height, width)
        return Reply(200, b"", None)
    if not rec.effective_state().up:
        raise Conflict(f"Container {rec.id} is not running")
    try:
        conn = tty_mod.connect_in_dir(ctx.store.container_path(rec.id), monitor.ATTACH_SOCKET)
    except OSError:
        return Reply(200, b"", None)
    try:
        conn.sendall(struct.pack(">BIHH", monitor.IN_RESIZE, 4, height, width))
    finally:
        conn.close()
    return Reply(200, b"", None)


def _resize_child(ctx: Context, container_id: str, child: subprocess.Popen[bytes],
                  height: int, width: int) -> None:
    """Tell an attached run's child its terminal's new size (`tty.shuttle` reads the file
    on SIGWINCH, or when it starts if the size came first)."""
    import signal

    from forklift.engine import tty as tty_mod

    path = os.path.join(ctx.store.container_path(container_id), tty_mod.SIZE_FILE)
    with contextlib.suppress(OSError):  # the container was removed meanwhile
        tty_mod.write_size_file(path, height, width)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGWINCH)


def _forget_size(ctx: Context, container_id: str) -> None:
    """An earlier run's last size is not this one's."""
    from forklift.engine import tty as tty_mod

    with contextlib.suppress(OSError):
        os.unlink(os.path.join(ctx.store.container_path(container_id), tty_mod.SIZE_FILE))
