"""Registry endpoints: ``POST /images/create?fromImage=`` (pull), ``POST
/images/{name}/push``, ``POST /auth``.

Pull and push answer a JSON stream of Docker's progress messages as the engine reports
them; a failure after the headers is the stream's last message (``errorDetail`` and
``error``), as Docker's daemon does. Credentials come from the ``X-Registry-Auth`` header
and live only in memory: the service never stores a login (``/auth`` checks one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from forklift.api.server import ApiError, Context, Reply, Request, Stream, json_reply, route
from forklift.errors import ForkliftError, RegistryAuthError
from forklift.registry.progress import Reporter

Write = Callable[[bytes], None]
PROGRESS_EVERY = 0.2  # seconds between two progress messages of one layer


class StreamReporter(Reporter):
    """The engine's progress as Docker's JSON messages, one per line, sent at once."""

    def __init__(self, write: Write) -> None:
        super().__init__(quiet=False)
        self._write = write
        self._moved: dict[str, list[Any]] = {}  # short ID -> [verb, done, total, last sent]

    def send(self, doc: dict[str, Any]) -> None:
        with self._lock:  # the engine reports from its download threads too
            self._write(json.dumps(doc).encode() + b"\r\n")

    def message(self, text: str) -> None:
        head, sep, rest = text.partition(": Pulling from ")
        if sep:  # Docker sends the tag as the message's id
            self.send({"status": f"Pulling from {rest}", "id": head})
        else:
            self.send({"status": text})

    def layer(self, short: str, status: str) -> None:
        self._moved.pop(short, None)
        self.send({"status": status, "progressDetail": {}, "id": short})

    def start(self, short: str, total: int, verb: str) -> None:
        self._moved[short] = [verb, 0, total, 0.0]

    def advance(self, short: str, n: int) -> None:
        moved = self._moved.get(short)
        if moved is None:
            return
        moved[1] += n
        now = time.monotonic()
        if now - moved[3] >= PROGRESS_EVERY or moved[1] >= moved[2]:
            moved[3] = now
            self.send({"status": moved[0], "id": short,
                       "progressDetail": {"current": moved[1], "total": moved[2]}})

    def final(self, text: str) -> None:
        self.send({"status": text})


def error_message(text: str) -> dict[str, Any]:
    line = text.strip().splitlines()[0] if text.strip() else "error"
    return {"errorDetail": {"message": line}, "error": line}


def progress_stream(work: Callable[[StreamReporter], None]) -> Stream:
    """A JSON stream running ``work``; its failure becomes the stream's last message."""

    def produce(write: Write) -> None:
        reporter = StreamReporter(write)
        try:
            work(reporter)
        except ForkliftError as exc:
            reporter.send(error_message(str(exc)))
        except OSError:
            raise  # the client left
        except Exception as exc:  # noqa: BLE001 (one line to the client, not a traceback)
            import logging

            logging.getLogger("forklift.api").exception("stream failed")
            reporter.send(error_message(f"internal error: {type(exc).__name__}: {exc}"))

    return Stream(produce)


def registry_auth(req: Request) -> Any:
    """The ``X-Registry-Auth`` header's credentials (base64url JSON), None without any."""
    from forklift.registry.config import Credentials

    doc = _auth_doc(req.headers.get("x-registry-auth", ""))
    token = doc.get("identitytoken") or ""
    if token:  # what `docker login` stored from a token service: a refresh token
        return Credentials("<token>", str(token), identity=True)
    user, password = doc.get("username") or "", doc.get("password") or ""
    if not user and not password:
        return None
    return Credentials(str(user), str(password))


def _auth_doc(text: str) -> dict[str, Any]:
    import base64
    import binascii

    text = text.strip()
    if not text:
        return {}
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        try:  # some clients send standard base64
            doc = json.loads(base64.b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalid X-Registry-Auth header") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid X-Registry-Auth header")
    return doc


def pull_stream(ctx: Context, req: Request) -> Stream:
    """``POST /images/create?fromImage=&tag=`` (``images.create`` dispatches here)."""
    from forklift import reference
    from forklift.engine import distribution

    name = req.arg("fromImage")
    tag = req.arg("tag")
    if tag:
        name = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
    ref = str(reference.parse(name))  # a bad reference: 400 before the stream
    creds = registry_auth(req)
    platform = req.arg("platform") or None

    def work(reporter: StreamReporter) -> None:
        distribution.pull(ctx.store, ref, reporter=reporter, platform=platform, creds=creds)

    return progress_stream(work)


@route("POST", "/images/{name*}/push")
def push(ctx: Context, req: Request) -> Stream:
    from forklift import reference
    from forklift.engine import distribution

    name = req.params["name"]
    tag = req.arg("tag")
    if tag:
        name = f"{name}:{tag}"
    ref = str(reference.parse(name))
    creds = registry_auth(req)

    def work(reporter: StreamReporter) -> None:
        for result in distribution.push(ctx.store, ref, reporter=reporter, creds=creds):
            pushed = reference.parse(result.reference)
            reporter.send({"progressDetail": {}, "aux": {
                "Tag": pushed.tag or "", "Digest": result.digest, "Size": result.size}})

    return progress_stream(work)


@route("POST", "/auth")
def auth(ctx: Context, req: Request) -> Reply:
    from forklift.engine import distribution

    doc = req.json()
    server = str(doc.get("serveraddress") or "")
    token = str(doc.get("identitytoken") or "")
    user = "<token>" if token else str(doc.get("username") or "")
    password = token or str(doc.get("password") or "")
    if not user or not password:
        raise ApiError(400, "a username and a password (or an identitytoken) are required")
    try:
        _, _, issued = distribution.check_login(server or None, user, password,
                                                identity=bool(token), offline=True)
    except RegistryAuthError as exc:
        raise ApiError(401, str(exc)) from None
    # a refresh token the token service issued: the docker CLI stores it instead of the
    # password and sends it back as X-Registry-Auth's identitytoken
    return json_reply({"Status": "Login Succeeded", "IdentityToken": issued})
