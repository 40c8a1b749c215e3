"""Image endpoints: list, inspect, tag, remove, history, commit, prune, import, save and
load (pull and push are `distribution`'s; ``/images/create`` dispatches a pull there)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from forklift.api import distribution
from forklift.api.server import (
    ApiError,
    Context,
    Reply,
    Request,
    Result,
    Stream,
    always,
    body_file,
    json_reply,
    route,
)


@route("GET", "/images/json", inline=always)
def list_images(ctx: Context, req: Request) -> Reply:
    """Docker's ImageSummary list: one entry per image (the engine's rows are per tag).

    Everything in it comes from the store's database (the labels from configs, which an
    ID names for good), so on the loop an answer is kept for the same query until another
    connection commits (`Context.reader_memo`)."""
    memo = ctx.reader_memo()
    if memo is None:
        return _image_list(ctx, req)
    version = ctx.data_version()
    kept = memo.get("images")
    if kept is None or kept[0] != version:
        kept = memo["images"] = (version, {})
    answers: dict[str, bytes] = kept[1]
    key = repr(sorted(req.query.items()))
    body = answers.get(key)
    if body is None:
        body = answers[key] = _image_list(ctx, req).body
    return Reply(200, body)


def _image_list(ctx: Context, req: Request) -> Reply:
    from forklift.engine import images as images_mod
    from forklift.engine.filters import Filters
    from forklift.store import images as image_store

    store = ctx.store
    rows = images_mod.list_images(store, req.flag("all"), Filters(req.filters()))
    parents = {rec.id: rec.parent for rec in image_store.all_images(store)}
    summaries: dict[str, dict[str, Any]] = {}
    for row in rows:
        doc = summaries.get(row.id)
        if doc is None:
            doc = summaries[row.id] = {
                "Id": row.id, "ParentId": parents.get(row.id) or "",
                "RepoTags": [], "RepoDigests": [], "Created": int(row.created),
                "Size": row.size, "VirtualSize": row.size, "SharedSize": -1,
                "Labels": images_mod.labels(store, row.id), "Containers": -1}
        if row.repository != "<none>":
            doc["RepoTags"].append(f"{row.repository}:{row.tag}")
            if row.digest != "<none>":
                doc["RepoDigests"].append(f"{row.repository}@{row.digest}")
    for doc in summaries.values():
        if not doc["RepoTags"]:  # Docker's words for an untagged image
            doc["RepoTags"] = ["<none>:<none>"]
            doc["RepoDigests"] = doc["RepoDigests"] or ["<none>@<none>"]
    return json_reply(list(summaries.values()))


@route("GET", "/images/{name*}/json")
def inspect_image(ctx: Context, req: Request) -> Reply:
    from forklift.engine import images as images_mod

    doc = images_mod.inspect(ctx.store, req.params["name"])
    metadata = doc.get("Metadata") or {}
    if not metadata.get("LastTagTime"):  # Go's clients parse it: its zero time, as Docker's
        doc["Metadata"] = {**metadata, "LastTagTime": "0001-01-01T00:00:00Z"}
    return json_reply(doc)


@route("POST", "/images/{name*}/tag")
def tag_image(ctx: Context, req: Request) -> Reply:
    from forklift.engine import images as images_mod

    repo, tag = req.arg("repo"), req.arg("tag")
    if not repo:
        raise ApiError(400, "repository name must have at least one component")
    images_mod.tag(ctx.store, req.params["name"], f"{repo}:{tag}" if tag else repo)
    return Reply(201, b"", None)


@route("DELETE", "/images/{name*}")
def remove_image(ctx: Context, req: Request) -> Reply:
    from forklift.engine import images as images_mod

    lines = images_mod.remove(ctx.store, req.params["name"], force=req.flag("force"),
                              prune=not req.flag("noprune"))
    return json_reply([_deletion(line) for line in lines])


def _deletion(line: str) -> dict[str, str]:
    """``Untagged: x`` / ``deleted: sha256:…`` (the engine's lines) as Docker's item."""
    word, _, what = line.partition(": ")
    return {word.capitalize(): what}


@route("GET", "/images/{name*}/history")
def image_history(ctx: Context, req: Request) -> Reply:
    from forklift import reference
    from forklift.engine import images as images_mod
    from forklift.store import images as image_store

    store = ctx.store
    out = []
    for row in images_mod.history(store, req.params["name"]):
        tags = [] if row.image == "<missing>" else [
            reference.parse(t).familiar() for t in sorted(image_store.tags_of(store, row.image))]
        out.append({"Id": row.image, "Created": int(row.created), "CreatedBy": row.created_by,
                    "Tags": tags, "Size": row.size, "Comment": row.comment})
    return json_reply(out)


@route("POST", "/commit")
def commit(ctx: Context, req: Request) -> Reply:
    from forklift.engine import containers

    container = req.arg("container")
    if not container:
        raise ApiError(400, "container is required")
    repo, tag = req.arg("repo"), req.arg("tag")
    if tag and not repo:
        raise ApiError(400, "a tag needs a repository (repo)")
    image_id = containers.commit(
        ctx.store, container, f"{repo}:{tag}" if tag else (repo or None),
        message=req.arg("comment"), author=req.arg("author"),
        changes=[c for text in req.query.get("changes", []) for c in text.splitlines()],
        pause=req.flag("pause", True), config=_commit_config(req.body))
    return json_reply({"Id": image_id}, 201)


def _commit_config(body: bytes) -> dict[str, Any]:
    """The commit body: a container Config (or nothing, or ``null``)."""
    import json

    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid JSON body: an object is expected")
    for key, kind in _COMMIT_TYPES.items():
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            raise ApiError(400, f"invalid JSON body: {key} has the wrong type")
    return doc


_COMMIT_TYPES: dict[str, type | tuple[type, ...]] = {
    "Cmd": (list, str), "Entrypoint": (list, str), "Env": list, "Labels": dict,
    "ExposedPorts": dict, "Volumes": dict, "WorkingDir": str, "User": str, "StopSignal": str}


@route("POST", "/images/prune")
def prune_images(ctx: Context, req: Request) -> Reply:
    from forklift.engine import system
    from forklift.engine.filters import Filters

    result = system.prune_images(ctx.store, False, Filters(req.filters()))
    return json_reply({"ImagesDeleted": [_deletion(line) for line in result.deleted],
                       "SpaceReclaimed": result.reclaimed})


@route("POST", "/images/create", upload=True)
def create_image(ctx: Context, req: Request) -> Result:
    """Pull (``fromImage``) or import (``fromSrc=-``: the request's body)."""
    if req.arg("fromImage"):
        return distribution.pull_stream(ctx, req)
    source = req.arg("fromSrc")
    if source != "-":
        raise ApiError(400, "fromImage, or fromSrc=- with the tarball as the body, is required"
                       if not source else "only fromSrc=- (the request's body) is supported")
    from forklift.engine import images as images_mod

    repo, tag = req.arg("repo"), req.arg("tag")
    if tag and not repo:
        raise ApiError(400, "a tag needs a repository (repo)")
    changes = [c for text in req.query.get("changes", []) for c in text.splitlines()]
    image_id = images_mod.import_tarball(
        ctx.store, body_file(req), f"{repo}:{tag}" if tag else (repo or None), changes,
        req.arg("message") or "Imported from -")
    return _json_lines([{"status": image_id}])


def _json_lines(docs: list[dict[str, Any]]) -> Reply:
    return Reply(200, b"".join(json.dumps(d).encode() + b"\r\n" for d in docs))


@route("POST", "/images/load", upload=True)
def load_images(ctx: Context, req: Request) -> Reply:
    from forklift.engine import transfer

    lines = transfer.load(ctx.store, body_file(req))
    # ``quiet`` hides Docker's progress bars; there are none here, the lines stay
    return _json_lines([{"stream": line + "\n"} for line in lines])


@route("GET", "/images/get")
def save_images(ctx: Context, req: Request) -> Stream:
    names = req.query.get("names", [])
    if not names:
        raise ApiError(400, "names is required")
    return _save_stream(ctx, names)


@route("GET", "/images/{name*}/get")
def save_image(ctx: Context, req: Request) -> Stream:
    return _save_stream(ctx, [req.params["name"]])


class _Chunks:
    """A file-like ``write`` for the archive writer, sent to the client in large chunks."""

    SIZE = 1 << 20

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= self.SIZE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._write(bytes(self._buf))
            self._buf.clear()


def _save_stream(ctx: Context, names: list[str]) -> Stream:
    """A docker-archive of ``names``; a missing image is a 404 before any byte."""
    from forklift.engine import transfer

    images = transfer.collect(ctx.store, names)  # in this thread: errors get their status

    def produce(write: Callable[[bytes], None]) -> None:
        from forklift.formats import docker_archive
        from forklift.formats.sinks import TarSink

        out = _Chunks(write)
        sink = TarSink(out)  # type: ignore[arg-type]
        docker_archive.write(ctx.store, sink, images)
        sink.close()
        out.flush()

    return Stream(produce, "application/x-tar")
