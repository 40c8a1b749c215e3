"""Image operations: import, tag, remove, history, inspect, list."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from forklift import changes as changes_mod
from forklift import digest as dg
from forklift import faults, oci, reference
from forklift import limits as limits_mod
from forklift.engine import events
from forklift.engine.filters import Filters
from forklift.errors import Conflict, ForkliftError, InvalidArgument, NotFound
from forklift.store import containers as container_store
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store

# ----------------------------------------------------------------------------- import

@contextlib.contextmanager
def open_source(source: str) -> Iterator[IO[bytes]]:
    """A tarball source: a path, ``-`` for stdin, or an http(s) URL."""
    if source == "-":
        yield sys.stdin.buffer
        return
    if source.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310
                yield resp
        except urllib.error.URLError as exc:
            raise ForkliftError(f"cannot download {source}: {exc.reason}") from None
        return
    try:
        f = open(source, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise NotFound(f"open {source}: no such file or directory") from None
    except IsADirectoryError:
        raise InvalidArgument(f"{source} is a directory, not a tarball") from None
    except OSError as exc:
        raise ForkliftError(f"open {source}: {exc.strerror}") from None
    with f:
        yield f


def import_tarball(store: Store, source: str, repository: str | None = None,
                   changes: list[str] | None = None, message: str = "", *,
                   max_size: str | int | None = None) -> str:
    """``image import``: one flat tarball becomes a one-layer image.

    ``max_size`` (``--max-size``) overrides the store's layer size limit.
    """
    tag = str(reference.parse(repository)) if repository else None
    config = changes_mod.apply({}, changes or [])
    limits = limits_mod.for_store(store.root, max_size)
    with open_source(source) as raw:
        prepared = layer_store.ingest(store, raw, limits=limits)
    try:
        created = oci.now_rfc3339()
        comment = message or f"Imported from {source}"
        cfg = oci.new_image_config(config, [prepared.diff_id],
                                   [{"created": created, "comment": comment}], created,
                                   comment=comment)
        image_id = image_store.add(store, oci.canonical_json(cfg), [prepared],
                                   tags=[tag] if tag else [])
        events.emit(store.root, "image", "import", image_id, {"name": image_id})
        return image_id
    finally:
        prepared.cleanup()


# ----------------------------------------------------------------------------- tag

def tag(store: Store, source: str, target: str) -> str:
    image_id = image_store.resolve(store, source)
    ref = reference.parse(target)
    if ref.digest:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
    image_store.set_tag(store, str(ref), image_id)
    events.emit(store.root, "image", "tag", image_id, {"name": ref.familiar()})
    return image_id


# ----------------------------------------------------------------------------- remove

def _tag_to_familiar(name: str) -> str:
    return reference.parse(name).familiar()


def remove(store: Store, name: str, force: bool = False, prune: bool = True) -> list[str]:
    """``rmi``: untag and delete as Docker does. Returns the output lines.

    By reference: the tag goes; if it was the last one the image is deleted too, unless
    something still needs it (then it stays, untagged, quietly). By ID: every tag goes
    and the image is deleted. ``force`` deletes an image that stopped containers use:
    they keep its layers (``container_layers``) and run on its ID, as in Docker; an
    image a running container uses, or one with child images, is never deleted.
    """
    image_id = image_store.resolve(store, name)
    tags = image_store.tags_of(store, image_id)
    if _is_reference_to(store, name, image_id):
        ref = str(reference.parse(name))
        if not force and len(tags) == 1:
            users = container_store.users_of_image(store, image_id)
            if users:
                raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force)'
                               f" - container {users[0].short_id} is using its referenced image"
                               f" {dg.short_id(image_id)}")
        image_store.remove_tag(store, ref)
        events.emit(store.root, "image", "untag", image_id, {"name": image_id})
        lines = [f"Untagged: {_tag_to_familiar(ref)}"]
        if len(tags) > 1:
            return lines  # other references remain
        return lines + _delete_chain(store, image_id, force, prune, quiet=True)
    if len(tags) > 1 and not force:
        raise Conflict(
            f"conflict: unable to delete {dg.short_id(image_id)} (must be forced)"
            " - image is referenced in multiple repositories")
    _conflict(store, image_id, force)  # before untagging: a refused rmi changes nothing
    lines = []
    for t in tags:
        image_store.remove_tag(store, t)
        events.emit(store.root, "image", "untag", image_id, {"name": image_id})
        lines.append(f"Untagged: {_tag_to_familiar(t)}")
    return lines + _delete_chain(store, image_id, force, prune, quiet=False)


def _is_reference_to(store: Store, name: str, image_id: str) -> bool:
    try:
        ref = reference.parse(name)
    except InvalidArgument:
        return False
    return not ref.digest and image_store.lookup_tag(store, str(ref)) == image_id


def _conflict(store: Store, image_id: str, force: bool) -> None:
    """Docker's delete conflicts: children and running containers always refuse it,
    stopped containers unless forced."""
    short = dg.short_id(image_id)
    if image_store.children(store, image_id):
        raise Conflict(f"conflict: unable to delete {short} (cannot be forced)"
                       " - image has dependent child images")
    users = container_store.users_of_image(store, image_id)
    running = [c for c in users if c.state in ("running", "paused")]
    if running:
        raise Conflict(f"conflict: unable to delete {short} (cannot be forced)"
                       f" - image is being used by running container {running[0].short_id}")
    if users and not force:
        raise Conflict(f"conflict: unable to delete {short} (must be forced)"
                       f" - image is being used by stopped container {users[0].short_id}")


def _delete_chain(store: Store, image_id: str, force: bool, prune: bool,
                  quiet: bool) -> list[str]:
    """Delete the image, then untagged parents nothing else needs; free their layers.

    Each deletion re-checks its conflicts inside its transaction, so a concurrent
    ``run`` or ``tag`` wins; ``quiet`` (after an untag) leaves a needed image in place
    without an error, as Docker does."""
    lines = []
    current: str | None = image_id
    while current:
        record = image_store.get(store, current)
        if record is None:
            break
        with store.transaction():
            first = current == image_id
            try:
                if image_store.tags_of(store, current):
                    raise Conflict(f"conflict: unable to delete {dg.short_id(current)}"
                                   " - image is referenced by a tag")
                _conflict(store, current, force and first)
            except Conflict:
                if first and not quiet:
                    raise
                break
            container_store.detach_from_image(store, current)
            image_store.delete_record(store, current)
            faults.checkpoint("rmi-before-commit")
        lines.append(f"Deleted: {current}")
        events.emit(store.root, "image", "delete", current, {"name": current})
        current = record.parent if prune else None
    faults.checkpoint("rmi-before-gc")
    layer_store.collect_garbage(store)
    return lines


# ----------------------------------------------------------------------------- history

@dataclass
class HistoryRow:
    image: str            # image ID or "<missing>"
    created: float
    created_by: str
    size: int
    comment: str
    empty_layer: bool


def history(store: Store, name: str) -> list[HistoryRow]:
    image_id = image_store.resolve(store, name)
    cfg = image_store.config(store, image_id)
    entries = cfg.get("history") or []
    layer_sizes = [layer.size for layer in image_store.layers(store, image_id)]
    if not entries:
        entries = [{"created": cfg.get("created")} for _ in layer_sizes]
    ids_at = _ancestor_positions(store, image_id)
    rows: list[HistoryRow] = []
    layer_index = 0
    for position, entry in enumerate(entries):
        empty = bool(entry.get("empty_layer"))
        size = 0
        if not empty and layer_index < len(layer_sizes):
            size = layer_sizes[layer_index]
            layer_index += 1
        rows.append(HistoryRow(
            image=ids_at.get(position, "<missing>"),
            created=oci.parse_time(entry.get("created")),
            created_by=str(entry.get("created_by", "")),
            size=size,
            comment=str(entry.get("comment", "")),
            empty_layer=empty,
        ))
    rows.reverse()
    return rows


def _ancestor_positions(store: Store, image_id: str) -> dict[int, str]:
    """Map a history index to the local image whose history ends there."""
    out: dict[int, str] = {}
    current: str | None = image_id
    seen = set()
    while current and current not in seen:
        seen.add(current)
        record = image_store.get(store, current)
        if record is None:
            break
        try:
            count = len(image_store.config(store, current).get("history") or [])
        except ForkliftError:
            break
        out.setdefault(max(count - 1, 0), current)
        current = record.parent
    return out


# ----------------------------------------------------------------------------- inspect

_CONFIG_ORDER = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
                 "AttachStderr", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd",
                 "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint",
                 "OnBuild", "Labels", "StopSignal", "Shell")
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def docker_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """An image's config in the full shape ``docker inspect`` prints."""
    config = config or {}
    out: dict[str, Any] = {}
    for key in _CONFIG_ORDER:
        if key in config:
            out[key] = config[key]
        elif key in _CONFIG_DEFAULTS:
            out[key] = _CONFIG_DEFAULTS[key]
    for key, value in config.items():
        out.setdefault(key, value)
    return out


def inspect(store: Store, name: str) -> dict[str, Any]:
    image_id = image_store.resolve(store, name)
    record = image_store.get(store, image_id)
    assert record is not None
    cfg = image_store.config(store, image_id)
    layer_list = image_store.layers(store, image_id)
    tags = [reference.parse(t).familiar() for t in image_store.tags_of(store, image_id)]
    digests = []
    for item in image_store.digests_of(store, image_id):
        repo, _, dig = item.partition("@")
        digests.append(f"{reference.parse(repo).familiar_repository}@{dig}")
    return {
        "Id": image_id,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": record.parent or "",
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created", ""),
        "Container": cfg.get("container", ""),
        "ContainerConfig": docker_config(cfg.get("container_config")),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": docker_config(cfg.get("config")),
        "Architecture": cfg.get("architecture", ""),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Os": cfg.get("os", ""),
        "Size": record.size,
        "VirtualSize": record.size,
        "GraphDriver": {"Data": _graph_data(store, layer_list), "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": [layer.diff_id for layer in layer_list]},
        "Metadata": {"LastTagTime": ""},
    }


def _graph_data(store: Store, layer_list: list[Any]) -> dict[str, str]:
    """Docker's overlay2 GraphDriver.Data of an image: its top layer's directories (merged
    and work as Docker names them, though an image is never mounted) below the others."""
    if not layer_list:
        return {}
    top = layer_list[-1].path(store)
    base = os.path.dirname(top)
    data = {"MergedDir": os.path.join(base, "merged"), "UpperDir": top,
            "WorkDir": os.path.join(base, "work")}
    if len(layer_list) > 1:
        data = {"LowerDir": ":".join(layer.path(store) for layer in reversed(layer_list[:-1])),
                **data}
    return data


# ----------------------------------------------------------------------------- list

@dataclass
class ImageRow:
    repository: str
    tag: str
    id: str
    digest: str
    created: float
    size: int


LIST_FILTERS = ("before", "dangling", "label", "reference", "since")


def list_images(store: Store, show_all: bool = False,
                filters: Filters | None = None) -> list[ImageRow]:
    """``images``: one row per tag (``<none>`` for dangling images), newest first.

    Filters (Docker's): ``dangling=true|false``, ``label=k[=v]`` (all must hold),
    ``before=``/``since=IMAGE`` (created strictly before/after it; the last value counts),
    ``reference=PATTERN`` (alternatives; matches tagged references only, so dangling images
    never pass it; the REPOSITORY argument is one). Raises InvalidFilter for another key or
    a dangling value other than true/false, NotFound for a before/since image. Reads only.
    """
    filters = filters or Filters()
    filters.validate(LIST_FILTERS)
    dangling = filters.boolean("dangling", true=("true",), false=("false",))
    records = {r.id: r for r in image_store.all_images(store)}
    tags_by_image: dict[str, list[str]] = {}
    for name, image_id in image_store.all_tags(store):
        tags_by_image.setdefault(image_id, []).append(name)
    parents = {r.parent for r in records.values() if r.parent}
    digests: dict[str, dict[str, str]] = {}
    for row in store.conn.execute("SELECT repository, digest, image_id FROM repo_digests"):
        digests.setdefault(row[2], {})[row[0]] = row[1]
    patterns = filters.get("reference")
    in_window = _created_window(store, filters)
    rows: list[ImageRow] = []
    for image_id, rec in records.items():
        if not in_window(rec.created):
            continue
        if "label" in filters and not filters.labels(labels(store, image_id)):
            continue
        names = sorted(tags_by_image.get(image_id, []))
        if dangling is True and names:
            continue
        shown = [ref for ref in map(reference.parse, names)
                 if not patterns or any(_matches(ref, p) for p in patterns)]
        if not names:
            if dangling is False or patterns:
                continue
            if image_id in parents and (dangling is True or not show_all):
                continue  # an intermediate image: hidden as Docker hides it
            rows.append(ImageRow("<none>", "<none>", image_id, "<none>", rec.created, rec.size))
            continue
        for ref in shown:
            dig = digests.get(image_id, {}).get(ref.repository, "<none>")
            rows.append(ImageRow(ref.familiar_repository, ref.tag or "<none>", image_id, dig,
                                 rec.created, rec.size))
    rows.sort(key=lambda r: (-r.created, r.repository, r.tag))
    return rows


def _created_window(store: Store, filters: Filters) -> Callable[[float], bool]:
    """``before=IMAGE`` / ``since=IMAGE``: created strictly before / after that image
    (the last value of each counts, as in Docker)."""
    bounds: dict[str, float] = {}
    for key in ("before", "since"):
        for value in filters.get(key):
            found = image_store.get(store, image_store.resolve(store, value))
            assert found is not None
            bounds[key] = found.created
    before, since = bounds.get("before"), bounds.get("since")
    return lambda created: (before is None or created < before) and (
        since is None or created > since)


_LABELS: dict[str, dict[str, str]] = {}  # image ID -> labels: an ID is its config's digest


def labels(store: Store, image_id: str) -> dict[str, str]:
    """The image config's labels ({} when none, or its config cannot be read). Kept once
    read (a listing reads every image's again): the ID names the config's bytes."""
    known = _LABELS.get(image_id)
    if known is None:
        try:
            config = image_store.config(store, image_id)
        except ForkliftError:
            return {}
        if len(_LABELS) >= 4096:
            _LABELS.clear()
        known = _LABELS[image_id] = dict((config.get("config") or {}).get("Labels") or {})
    return dict(known)


def _matches(ref: reference.Reference, pattern: str) -> bool:
    """Docker's reference.FamiliarMatch: ``path.Match`` on ``name:tag``, then on ``name``."""
    rx = _path_pattern(pattern)
    return bool(rx.fullmatch(ref.familiar()) or rx.fullmatch(ref.familiar_repository))


def _path_pattern(pattern: str) -> Any:
    """Go's path.Match as a regex: ``*`` and ``?`` never cross a ``/``."""
    import re

    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern: {pattern}")
            body = pattern[i + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))

