"""The event log: what ``events`` / ``system events`` read, written by every forklift
process (there is no daemon to hold an event stream).

Each event is one JSON line in ``<root>/events.log`` in Docker's fields (Type, Action,
Actor.ID, Actor.Attributes, scope, time, timeNano, and the legacy status/id/from), written
with one ``write(2)`` on an ``O_APPEND`` descriptor: concurrent writers never interleave
(a line is kept under PIPE_BUF by shortening long attribute values), and no lock or
transaction is taken, so an event costs the hot path an open, a write and a close.

Bounded size: a writer that finds the log over `MAX_BYTES` after its write renames it to
``events.log.1`` (replacing the previous one) under a non-blocking ``flock`` of
``events.lock``; readers read ``.1`` then the log, so the last 1–2 MiB of events (some
5,000–10,000) stay readable. Writing an event never fails a command: any OSError is
swallowed (the command's work is done; its event is only lost).

Following (``events`` without ``--until``) polls the log every `POLL_SECONDS`: bounded
work (an ``fstat`` and a read of what is new), no busy loop; a rotation is noticed by the
inode of the path changing, and the old file is drained first.
"""

from __future__ import annotations

import os
import time

from forklift.fastjson import dumps, loads

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:  # the writer stays light: reading needs filters and timestamps
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

    from forklift.engine.filters import Filters

LOG = "events.log"
MAX_BYTES = 1 << 20
LINE_LIMIT = 4000          # < PIPE_BUF (4096): one atomic append
POLL_SECONDS = 0.2
FILTER_KEYS = ("container", "event", "image", "label", "type", "volume", "network", "scope")
_FUZZY_EVENTS = ("health_status", "exec_create", "exec_start")


def _paths(root: str) -> tuple[str, str]:
    log = os.path.join(root, LOG)
    return log, log + ".1"


def _line(type_: str, action: str, actor: str, attributes: Mapping[str, str],
          now_ns: int) -> bytes:
    attrs = {k: str(v) for k, v in attributes.items()}
    event: dict[str, Any] = {}
    if type_ == "container":  # Docker's legacy fields, kept in its JSON output
        event.update(status=action, id=actor, **({"from": attrs["image"]} if "image" in attrs else {}))
    event.update(Type=type_, Action=action, Actor={"ID": actor, "Attributes": attrs},
                 scope="local", time=now_ns // 1_000_000_000, timeNano=now_ns)
    data = dumps(event, separators=(",", ":")).encode() + b"\n"
    if len(data) > LINE_LIMIT:  # long labels or commands: shorten values, keep the event
        event["Actor"]["Attributes"] = {k: v[:64] for k, v in list(attrs.items())[:32]}
        data = dumps(event, separators=(",", ":")).encode()[:LINE_LIMIT - 1] + b"\n"
    return data


def emit(root: str, type_: str, action: str, actor: str,
         attributes: Mapping[str, str] | None = None) -> None:
    """Append one event to the store at ``root``. Never raises for I/O."""
    try:
        data = _line(type_, action, actor, attributes or {}, time.time_ns())
        fd = os.open(os.path.join(root, LOG),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            if os.fstat(fd).st_size > MAX_BYTES:
                _rotate(root)
        finally:
            os.close(fd)
    except (OSError, ValueError):
        pass


def _rotate(root: str) -> None:
    log, old = _paths(root)
    fd = os.open(os.path.join(root, "events.lock"), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    import fcntl  # once per MAX_BYTES of events: not on every command's path

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another writer rotates: fine
        if os.stat(log).st_size > MAX_BYTES:  # not rotated meanwhile
            os.replace(log, old)
    except OSError:
        pass
    finally:
        os.close(fd)


def container_event(root: str, action: str, rec: Any, **extra: str) -> None:
    """A container event with Docker's attributes: image, name, the labels, ``extra``."""
    attrs = dict(rec.config.get("Labels") or {})
    attrs.update(image=rec.image_name, name=rec.name, **extra)
    emit(root, "container", action, rec.id, attrs)


# ----------------------------------------------------------------------------- reading

class Query:
    """What ``events`` asked for: a time window (epoch seconds; ``since`` None: from now
    on, ``until`` None: follow) and filters. (A plain class: a dataclass would cost the
    `run` hot path, which imports this module to write events, its decoration time.)"""

    __slots__ = ("since", "until", "filters")

    def __init__(self, since: float | None, until: float | None, filters: Filters) -> None:
        self.since, self.until, self.filters = since, until, filters


def query(since: str | None, until: str | None, filters: Filters,
          now: float | None = None) -> Query:
    """Validate ``events``' flags before anything is read. Raises InvalidArgument (a
    time Docker cannot read) and InvalidFilter (a key Docker's events do not accept)."""
    from forklift.engine import timestamps

    filters.validate(FILTER_KEYS)
    now = time.time() if now is None else now
    start = timestamps.parse_timestamp(since, "since", now) if since else None
    end = timestamps.parse_timestamp(until, "until", now) if until else None
    return Query(start, end, filters)


def matches(event: Mapping[str, Any], filters: Filters) -> bool:
    """moby's event filter: every given key must match (type and event exactly, exec and
    health events by their prefix; container, volume and network by ID or name prefix;
    image by ID or name with or without its tag; labels from the attributes)."""
    attrs = event["Actor"]["Attributes"]
    actor = event["Actor"]["ID"]
    action = event["Action"]
    if any(v in _FUZZY_EVENTS for v in filters.get("event")):
        if not _fuzzy(filters, "event", action):
            return False
    elif not filters.exact("event", action):
        return False
    if not (filters.exact("type", event["Type"]) and filters.exact("scope", "local")):
        return False
    for key in ("container", "volume", "network"):
        if key in filters and not (_fuzzy(filters, key, actor)
                                   or _fuzzy(filters, key, attrs.get("name", ""))):
            return False
    return _image(event, filters) and filters.labels(attrs)


def _fuzzy(filters: Filters, key: str, source: str) -> bool:
    """Docker's FuzzyMatch: a value equal to ``source`` or a prefix of it."""
    values = filters.get(key)
    return not values or any(source.startswith(v) for v in values if v) or source in values


def _image(event: Mapping[str, Any], filters: Filters) -> bool:
    if "image" not in filters:
        return True
    attrs = event["Actor"]["Attributes"]
    name = attrs.get("name" if event["Type"] == "image" else "image", "")
    candidates = {event["Actor"]["ID"], name, _strip_tag(event["Actor"]["ID"]), _strip_tag(name)}
    return any(filters.exact("image", c) for c in candidates if c)


def _strip_tag(name: str) -> str:
    repo, sep, tag = name.rpartition(":")
    return repo if sep and "/" not in tag and "@" not in name else name


def read(root: str, q: Query, *, stop: Callable[[], bool] = lambda: False,
         now: Callable[[], float] = time.time) -> Iterator[dict[str, Any]]:
    """The events ``q`` asks for, oldest first: those logged in its window, then, without
    ``until`` (or until ``until`` passes), new ones as they are logged (polling every
    `POLL_SECONDS`; ``stop()`` ends it). Without ``since`` only events from now on."""
    # Docker: no --since and no --until is "from now on"; --until alone reads the log
    # from its start
    start = q.since if q.since is not None else (0.0 if q.until is not None else now())
    tail = _Tail(root)
    while True:
        for event in tail.new_events():
            when = event.get("timeNano", 0) / 1e9
            if when < start:
                continue
            if q.until is not None and when > q.until:
                return
            if matches(event, q.filters):
                yield event
        if (q.until is not None and now() >= q.until) or stop():
            return
        time.sleep(POLL_SECONDS)


class _Tail:
    """Reads the log's new complete lines across rotations: ``.1`` first, then the log."""

    def __init__(self, root: str) -> None:
        self.log, old = _paths(root)
        self.file: Any = None
        self.inode = -1
        self.pending = b""
        self.backlog = [old]  # read once, at the start

    def new_events(self) -> Iterator[dict[str, Any]]:
        for path in self.backlog:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            yield from _parse(data)
        self.backlog = []
        try:
            inode = os.stat(self.log).st_ino
        except FileNotFoundError:
            inode = -1
        if self.file is not None:
            yield from self._drain()
            if inode != self.inode:  # rotated: the old file is complete now
                self.file.close()
                self.file, self.pending = None, b""
        if self.file is None and inode != -1:
            self.file, self.inode = open(self.log, "rb"), inode
            yield from self._drain()

    def _drain(self) -> Iterator[dict[str, Any]]:
        data = self.pending + self.file.read()
        complete, _, self.pending = data.rpartition(b"\n")
        yield from _parse(complete)


def _parse(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        try:
            event = loads(line.decode())  # UnicodeDecodeError is a ValueError
        except ValueError:
            continue  # a line cut by a full disk: skip it
        if isinstance(event, dict) and isinstance(event.get("Actor"), dict):
            yield event


def line(event: Mapping[str, Any]) -> str:
    """Docker's default line: ``<time> <type> <action> <actor id> (k=v, …)``, the time in
    Go's RFC3339NanoFixed in local time, the attributes sorted by key."""
    ns = int(event.get("timeNano", 0))
    local = time.localtime(ns // 1_000_000_000)
    offset = local.tm_gmtoff
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:" \
                                   f"{abs(offset) % 3600 // 60:02d}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{ns % 1_000_000_000:09d}{zone}"
    text = f"{stamp} {event['Type']} {event['Action']} {event['Actor']['ID']}"
    attrs = event["Actor"].get("Attributes") or {}
    if attrs:
        text += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return text

