"""``POST /build``: the body is the build context (a tar, plain or compressed), the answer
the classic builder's JSON stream (``build/classic.py``) as dockerd 20.10 sends it.

What can be refused before anything is built is refused before the stream, as a 400 in
one line with nothing left behind: bad query parameters, a context that is not a tar or
would escape its directory, a Dockerfile that is not in the context or does not parse, a
network, platform or tag the builder cannot use. Then the headers go out and the build
runs; its failure is the stream's last message (``errorDetail`` with the RUN's exit
status as ``code``: the docker CLI exits with it). A client that leaves, or the service
stopping, stops the build before its next step; a client that hangs up also kills the RUN
step that runs (as dockerd cancels the build with the request).
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forklift.api.server import ApiError, Context, Request, Stream, body_file, route
from forklift.errors import BadArchive, ForkliftError, LimitExceeded

Write = Callable[[bytes], None]


@route("POST", "/build", upload=True)
def build(ctx: Context, req: Request) -> Stream:
    from forklift.build import builder

    opts, quiet = options(req)
    builder.check_options(opts)
    stack = contextlib.ExitStack()
    try:
        context, data = _open_context(ctx, req, stack, req.arg("dockerfile") or "Dockerfile")
        builder.check_dockerfile(data, opts)   # a syntax error, no target: a 400 now
    except BaseException:
        stack.close()
        raise

    def produce(write: Write) -> None:
        try:
            _run(ctx, context, data, opts, _Messages(write, quiet, opts, ctx.stopping),
                 stream.gone)
        finally:
            release()

    stream = Stream(produce)
    # the scratch context goes when the build ends, or with the stream if it never starts
    # (the client left before the headers were sent)
    release = weakref.finalize(stream, stack.close)
    return stream


def options(req: Request) -> tuple[Any, bool]:
    """The query's build options (ApiError 400 for a malformed one) and ``q``."""
    from forklift.build.builder import BuildOptions

    if req.arg("remote"):
        raise ApiError(400, "remote build contexts are not supported: send the context as"
                       " the request's body")
    if req.arg("version") not in ("", "1"):
        raise ApiError(400, "only the classic builder (version=1) is supported, not BuildKit")
    name = posixpath.basename(req.arg("dockerfile") or "Dockerfile")
    opts = BuildOptions(
        tags=[t for t in req.query.get("t", []) if t],
        build_args={k: v for k, v in _json_map(req, "buildargs", "build args").items()
                    if v is not None},   # null: declared without a value (never our env)
        labels={k: v for k, v in _json_map(req, "labels", "labels").items() if v is not None},
        target=req.arg("target") or None, no_cache=req.flag("nocache"), pull=req.flag("pull"),
        network=_network(req.arg("networkmode")), platform=req.arg("platform") or None,
        add_hosts=[h for text in req.query.get("extrahosts", []) for h in text.split(",") if h],
        ulimits=_ulimits(req), dockerfile_name=name, squash=req.flag("squash"), jobs=1,
        shm_size=req.int_arg("shmsize") or None, registry_creds=registry_config(req))
    if opts.shm_size is not None and opts.shm_size < 0:
        raise ApiError(400, f"invalid value for shmsize: {opts.shm_size}")
    return opts, req.flag("q")


def _json_map(req: Request, key: str, what: str) -> dict[str, str | None]:
    text = req.arg(key)
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, f"error reading {what}: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(
            isinstance(v, str | None) for v in doc.values()):
        raise ApiError(400, f"error reading {what}: an object of strings is expected")
    return doc


def _network(mode: str) -> str:
    # the docker CLI sends "default" (what the builder calls bridge)
    return "bridge" if mode in ("", "default") else mode


def _ulimits(req: Request) -> list[str]:
    text = req.arg("ulimits")
    if not text:
        return []
    try:
        doc = json.loads(text)
        return [f"{u['Name']}={int(u['Soft'])}:{int(u['Hard'])}" for u in doc or []]
    except (ValueError, TypeError, KeyError):
        raise ApiError(400, "error reading ulimits: a list of {Name, Soft, Hard} is expected"
                       f" ({text})") from None


def registry_config(req: Request) -> dict[str, Any]:
    """``X-Registry-Config``: base64 JSON ``{registry: {username, password}}``, the
    credentials for the base images a build pulls (kept in memory only)."""
    import base64
    import binascii

    from forklift.registry.config import Credentials

    text = req.headers.get("x-registry-config", "").strip()
    if not text:
        return {}
    padded = text + "=" * (-len(text) % 4)
    try:
        doc = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        try:
            doc = json.loads(base64.b64decode(padded))
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalid X-Registry-Config header") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid X-Registry-Config header")
    out: dict[str, Any] = {}
    for host, entry in doc.items():
        if not isinstance(entry, dict):
            raise ApiError(400, "invalid X-Registry-Config header")
        user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        token = str(entry.get("identitytoken") or "")
        if token:
            user, password = "<token>", token
        if user or password:
            out[_registry_host(str(host))] = Credentials(user, password, identity=bool(token))
    return out


def _registry_host(key: str) -> str:
    """A config key as the builder looks it up: a bare host, Docker Hub's v1 URL as is."""
    if key.startswith(("http://", "https://")) and "index.docker.io" not in key:
        key = key.split("://", 1)[1].split("/", 1)[0]
    return key


def _open_context(ctx: Context, req: Request, stack: contextlib.ExitStack,
                  dockerfile: str) -> tuple[Any, bytes]:
    """The body unpacked into the store's scratch space (on ``stack``) and the
    Dockerfile's bytes (the body's upload file goes with the reply's stream)."""
    from forklift.build.context import is_archive, open_context
    from forklift.store.db import remove_path

    scratch = ctx.store.make_tmp("context")
    stack.callback(remove_path, scratch)
    with open(body_file(req, "a build context"), "rb") as body:
        if not is_archive(body.read(512)):
            raise ApiError(400, "the build context is not a tar archive")
        body.seek(0)
        try:
            return stack.enter_context(open_context("-", body, Path(scratch), dockerfile))
        except (BadArchive, LimitExceeded) as exc:   # the CLI's words are about `build -`
            raise ApiError(400, str(exc).replace("build context from stdin", "the build context", 1)) from None


class _Messages:
    """The stream's JSON messages: sent at once, or held back until the end when ``q``
    (then only the image ID, or everything and the error); a client that left cancels
    the build and gets nothing more."""

    def __init__(self, write: Write, quiet: bool, opts: Any, stopping: threading.Event) -> None:
        self._write = write
        self.stopping = stopping   # the service is stopping: the build stops too
        self.quiet = quiet
        self.held: list[dict[str, Any]] = []
        self.cancel = opts.cancel = threading.Event()
        self._lock = threading.Lock()

    def send(self, doc: dict[str, Any]) -> None:
        if self.quiet:
            self.held.append(doc)
        else:
            self.now(doc)

    def now(self, doc: dict[str, Any]) -> None:
        with self._lock:
            if self.stopping.is_set():
                self.cancel.set()
            if self.cancel.is_set():
                return
            try:
                self._write(json.dumps(doc, separators=(",", ":")).encode() + b"\r\n")
            except OSError:
                self.cancel.set()   # the client left: the builder stops at the next step

    def fail(self, message: str, code: int | None) -> None:
        for doc in self.held:
            self.now(doc)
        line = message.strip().splitlines()[0] if message.strip() else "error"
        detail: dict[str, Any] = {"message": line}
        if code:
            detail = {"code": code, **detail}
        self.now({"errorDetail": detail, "error": line})


def _run(ctx: Context, context: Any, data: bytes, opts: Any, messages: _Messages,
         gone: threading.Event) -> None:
    """The build, with a watcher that cancels it once the client hangs up (``gone``)."""
    opts.reporter, steps = _tracked_progress(messages.send)
    finished = threading.Event()
    watcher = threading.Thread(target=_cancel_on_leave, daemon=True,
                               args=(ctx, gone, finished, messages.cancel, steps))
    watcher.start()
    try:
        _build(ctx, context, data, opts, messages)
    finally:
        finished.set()
        gone.set()   # wakes the watcher, which sees the build finished
        watcher.join()


def _tracked_progress(emit: Callable[[dict[str, Any]], None]) -> tuple[Any, list[Any]]:
    """The classic builder's messages, and the list of the steps it began (a RUN step's
    ``running`` is its container's ID)."""
    from forklift.build.classic import ClassicProgress

    steps: list[Any] = []

    class Tracked(ClassicProgress):
        def step(self, label: str) -> Any:
            step = super().step(label)
            steps.append(step)
            return step

    return Tracked(emit), steps


def _cancel_on_leave(ctx: Context, gone: threading.Event, finished: threading.Event,
                     cancel: threading.Event, steps: list[Any]) -> None:
    """Once the client hangs up: cancel the build and SIGKILL its running RUN container
    (again until the build ends: a step may start one after the builder's last look)."""
    gone.wait()
    if finished.is_set():
        return
    cancel.set()
    while not finished.is_set():
        for step in list(steps):
            if step.running is not None:
                _kill_run(ctx, step.running)
        finished.wait(0.2)


def _kill_run(ctx: Context, container_id: str) -> None:
    import signal

    from forklift import runtime
    from forklift.store import containers as container_store

    rec = container_store.get(ctx.store, container_id)
    if rec is None or rec.state != container_store.State.RUNNING:
        return
    with contextlib.suppress(ForkliftError, OSError):
        runtime.for_container(ctx.store.runc_dir, rec.host_config).kill(
            rec.id, signal.SIGKILL, all=True)


def _build(ctx: Context, context: Any, data: bytes, opts: Any, messages: _Messages) -> None:
    from forklift.build import builder

    try:
        image_id = builder.build(ctx.store, context, data, opts)
    except builder.BuildError as exc:
        messages.fail(str(exc), exc.code)
    except ForkliftError as exc:
        messages.fail(str(exc), None)
    except Exception as exc:  # noqa: BLE001 (one line to the client, the traceback logged)
        import logging

        logging.getLogger("forklift.api").exception("build failed")
        messages.fail(f"internal error: {type(exc).__name__}: {exc}", None)
    else:
        if messages.quiet:
            messages.now({"stream": image_id + "\n"})
