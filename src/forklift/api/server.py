"""What endpoints are made of: requests, replies, streams, hijacked connections, the
route table, errors in Docker's form, the shared context and the unix socket.

Every endpoint is a synchronous function run in a worker thread (`service`) with that
thread's own store connection: the engine is synchronous, and its store locks (SQLite
transactions, the write lock) make it safe beside the CLI and other threads.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import Conflict, ForkliftError, InvalidArgument, NotFound

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
RAW_STREAM = "application/vnd.docker.raw-stream"
log = logging.getLogger("forklift.api")


class ApiError(Exception):
    """A refusal the engine never words (a bad query parameter, an unknown path)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str                      # without the /vX.Y prefix
    query: dict[str, list[str]]
    headers: dict[str, str]        # names in lower case
    body: bytes                    # empty for an upload route: its body is in body_path
    params: dict[str, str] = field(default_factory=dict)
    body_path: str | None = None   # an upload route's body, streamed to the store's tmp/

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[-1]

    def flag(self, name: str, default: bool = False) -> bool:
        values = self.query.get(name)
        if not values:
            return default
        return values[-1].strip().lower() in ("1", "true", "yes")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        text = self.arg(name)
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            raise ApiError(400, f"invalid value for {name}: {text!r}") from None

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            doc = json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, f"invalid JSON body: {exc}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "invalid JSON body: an object is expected")
        return doc

    def filters(self) -> dict[str, list[str]]:
        """Docker's ``filters`` parameter: ``{"key": ["v", …]}`` or the older
        ``{"key": {"v": true}}``."""
        text = self.arg("filters")
        if not text:
            return {}
        try:
            doc = json.loads(text)
        except ValueError:
            raise ApiError(400, f"invalid filter: {text!r}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, f"invalid filter: {text!r}")
        out: dict[str, list[str]] = {}
        for key, values in doc.items():
            if isinstance(values, dict):
                values = [k for k, on in values.items() if on]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ApiError(400, f"invalid filter: {text!r}")
            out[str(key)] = values
        return out


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(doc: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(doc).encode() + b"\n")


def no_content() -> Reply:
    return Reply(204, b"", None)


@dataclass
class Stream:
    """Headers at once, then whatever ``produce`` writes, each write sent as it comes
    (``produce`` runs in a worker thread; ``write`` raises OSError once the client left).
    ``gone`` is set when the client closes its side while ``produce`` runs: a stream
    that writes nothing for long (a wait) ends on it instead of on a failed write."""

    produce: Callable[[Callable[[bytes], None]], None]
    content_type: str = "application/json"
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    gone: threading.Event = field(default_factory=threading.Event)


@dataclass
class Hijack:
    """``101 UPGRADED`` (or 200 to a client that did not ask to upgrade), then ``run`` in a
    worker thread with the raw, blocking socket and the bytes read past the request."""

    run: Callable[[socket.socket, bytes], None]


Result = Reply | Stream | Hijack
Handler = Callable[["Context", Request], Result]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
_UPLOADS: set[Handler] = set()
_INLINE: dict[Handler, Callable[[Request], bool]] = {}


def route(method: str, pattern: str, *, upload: bool = False,
          inline: Callable[[Request], bool] | None = None) -> Callable[[Handler], Handler]:
    """Register an endpoint: ``{id}`` matches one path segment, ``{name*}`` any (image
    names have slashes). An ``upload`` endpoint's body has no size cap: the service
    streams it to a file as it arrives, which the endpoint reads through `body_file`.

    A request for which ``inline(request)`` holds is answered on the service's event loop,
    without the hand-off to a worker thread and back (two thread wake-ups: the larger part
    of a short request's time on a busy machine). Only for what never waits: no network,
    no subprocess, no lock (the store's reads in WAL mode take none), no walk of a tree;
    the Python work itself holds the GIL, and so the loop, in a worker thread too. Such
    an endpoint answers a `Reply` (no stream, no hijack): a plain request for it is
    answered from the loop's reader callback, whole (`service.Service._plain`)."""
    regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)

    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, re.compile(f"^{regex}$"), handler))
        if upload:
            _UPLOADS.add(handler)
        if inline is not None:
            _INLINE[handler] = inline
        return handler

    return register


def always(req: Request) -> bool:
    """`route`'s ``inline`` for an endpoint that never waits, whatever it is asked."""
    return True


def takes_upload(handler: Handler) -> bool:
    return handler in _UPLOADS


def answers_inline(handler: Handler, req: Request) -> bool:
    inline = _INLINE.get(handler)
    return inline is not None and inline(req)


_VERSIONED = re.compile(r"^/v([0-9.]+)(/.*)$")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


_RESOLVED: dict[tuple[str, str], tuple[Handler, dict[str, str]]] = {}


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler of a path, versioned or not (ApiError 400 for a version out of range,
    404 for an unknown path, 405 for a known path with another method). Found once per
    method and path (the routes are fixed once the endpoint modules are imported)."""
    found = _RESOLVED.get((method, path))
    if found is None:
        found = _resolve(method, path)
        if len(_RESOLVED) >= 1024:
            _RESOLVED.clear()
        _RESOLVED[(method, path)] = found
    return found[0], dict(found[1])


def _resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    m = _VERSIONED.match(path)
    if m:
        version, path = m.group(1), m.group(2)
        if not re.fullmatch(r"\d+\.\d+", version):
            raise ApiError(404, "page not found")
        if _version_tuple(version) > _version_tuple(API_VERSION):
            raise ApiError(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
        if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
            raise ApiError(400, f"client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version")
    known = False
    for want, regex, handler in _ROUTES:
        match = regex.match(path)
        if match:
            known = True
            if want == method or (want == "GET" and method == "HEAD"):
                return handler, match.groupdict()
    if known:
        raise ApiError(405, f"method {method} not allowed on {path}")
    raise ApiError(404, "page not found")


def status_of(exc: ForkliftError) -> int:
    """Docker's status code for an engine error."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidArgument):
        return 400
    return 500


def error_reply(status: int, message: str) -> Reply:
    line = message.strip().splitlines()[0] if message.strip() else "error"
    return json_reply({"message": line}, status)


class Context:
    """What endpoints share: the store root, a store per worker thread, the attachments
    waiting for their container's start, and the flag that says the service is stopping."""

    def __init__(self, root: str | None) -> None:
        self.root = root
        self.stopping = threading.Event()
        self._local = threading.local()
        self.lock = threading.Lock()
        self.attachments: dict[str, Any] = {}  # container ID -> an attach waiting for start
        self.children: dict[str, Any] = {}     # container ID -> its `start -a` child
        self.exits: dict[str, int] = {}        # container ID -> that child's exit status
        self.loop_thread: int | None = None    # the service's event loop's thread

    @property
    def store(self) -> Any:
        store = getattr(self._local, "store", None)
        if store is None:
            from forklift.store import open_store

            store = self._local.store = open_store(self.root)
        return store

    def store_root(self) -> str:
        return str(self.store.root)

    def reader_memo(self) -> dict[str, Any] | None:
        """On the service's loop thread, a dict that lives beside its store, None on any
        other thread. The loop's connection only reads (inline requests), so whatever was
        read through it holds for as long as its ``data_version`` stays the same: SQLite
        changes that when another connection (a worker thread's, another process's)
        commits, never for the connection's own commits, which is why a worker thread
        gets no memo."""
        if threading.get_ident() != self.loop_thread:
            return None
        memo = getattr(self._local, "memo", None)
        if memo is None:
            memo = self._local.memo = {}
        return memo

    def data_version(self) -> int:
        return int(self.store.conn.execute("PRAGMA data_version").fetchone()[0])


def body_file(req: Request, what: str = "a tarball") -> str:
    """The path of an upload route's body (`route`'s ``upload``): the one way endpoints
    that take an archive (load, import, archive PUT, build) read it. The file is the
    service's, removed once the reply, or its stream, is over (so a `Stream` may read
    it); an empty or missing body is a 400."""
    if req.body_path is None or os.path.getsize(req.body_path) == 0:
        raise ApiError(400, f"the request's body ({what}) is empty")
    return req.body_path


def call(ctx: Context, handler: Handler, req: Request) -> Result:
    """Run one endpoint; every failure becomes Docker's error document (an unexpected one
    a 500 with one line, its traceback in the service's log only)."""
    try:
        return handler(ctx, req)
    except ApiError as exc:
        return error_reply(exc.status, exc.message)
    except ForkliftError as exc:
        return error_reply(status_of(exc), str(exc))
    except Exception as exc:
        log.exception("%s %s failed", req.method, req.path)
        return error_reply(500, f"internal error: {type(exc).__name__}: {exc}")


def reply_headers(reply: Reply) -> list[tuple[str, str]]:
    """A whole `Reply`'s headers, its Content-Length with them (none for a 204)."""
    headers = headers_for(reply.content_type, reply.headers)
    if reply.status != 204:
        headers.append(("Content-Length", str(len(reply.body))))
    return headers


def headers_for(content_type: str | None, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = [("Api-Version", API_VERSION), ("Docker-Experimental", "false"),
           ("Ostype", "linux"), ("Server", f"forklift/{API_VERSION} (linux)")]
    if content_type:
        out.append(("Content-Type", content_type))
    return out + extra


# ----------------------------------------------------------------------------- socket

def parse_address(address: str) -> str:
    """The path of ``unix:///path`` (or a bare absolute path); InvalidArgument otherwise."""
    if address.startswith("unix://"):
        path = address[len("unix://"):]
    else:
        path = address
    if not path.startswith("/"):
        raise InvalidArgument(f"unsupported socket address {address!r}: only unix:///absolute/path is supported")
    return path


def inherited_socket() -> socket.socket | None:
    """systemd's socket activation: one listening socket passed as fd 3 to this process
    (``LISTEN_PID``, ``LISTEN_FDS=1``); None when not started so."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for the children the service starts
    sock = socket.socket(fileno=3)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise InvalidArgument("the socket passed by systemd is not a unix stream socket")
    sock.setblocking(False)
    return sock


def bind_unix(path: str, group: str | None) -> socket.socket:
    """Listen on ``path``, mode 0660, owned by root (and ``group``): Conflict over a live
    socket, a stale one removed, InvalidArgument for a path that is not a socket."""
    gid = -1
    if group is not None:
        import grp

        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise InvalidArgument(f"group {group!r} not found") from None
    os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise InvalidArgument(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # stale: its service is gone
        else:
            raise Conflict(f"{path} is in use: another service listens on it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # never a moment with a wider mode than the one chmod sets
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise InvalidArgument(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(old)
    os.chown(path, 0 if os.geteuid() == 0 else -1, gid)
    os.chmod(path, 0o660)
    sock.listen(128)
    sock.setblocking(False)
    return sock
