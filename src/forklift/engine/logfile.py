"""Docker's json-file log: where a container's output is kept for ``logs``.

Written by the monitor of a detached container and, through ``Tee``, by the CLI
process of a foreground ``run``/``start -a`` (which also passes the output on to
the user's terminal or pipes).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import time

from forklift.store.db import Store

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from typing import Any

MAX_LINE = 16 * 1024  # Docker splits longer lines into partial entries


def log_path(store: Store, container_id: str) -> str:
    """The container's json-file log, where Docker keeps it (``<id>-json.log``)."""
    return os.path.join(store.container_path(container_id), f"{container_id}-json.log")


def rfc3339nano(ns: int | None = None) -> str:
    """A UTC time (nanoseconds since the epoch; now by default) as Docker's logs write it."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class JsonLog:
    """Docker's json-file log driver: one JSON object per line of output; with a
    ``max_size`` (``--log-opt max-size``) the file is rotated to ``<log>.1`` … once it
    grows past it, ``max_file`` files kept in all (``--log-opt max-file``)."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.partial: dict[str, bytes] = {}
        self.max_size, self.max_file = max_size, max(1, max_file)
        self.size = os.fstat(self.fd).st_size if max_size else 0

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 1, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.path}.{n - 1}", f"{self.path}.{n}")
            os.rename(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = 0

    def _entry(self, stream: str, data: bytes) -> None:
        line = json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                           "time": rfc3339nano()}, ensure_ascii=False)
        data = (line + "\n").encode()
        with contextlib.suppress(OSError):
            if self.max_size and self.size and self.size + len(data) > self.max_size:
                self._rotate()
            self.size += os.write(self.fd, data)

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial.get(stream, b"") + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            self._entry(stream, buf[: nl + 1])
            buf = buf[nl + 1:]
        while len(buf) >= MAX_LINE:
            self._entry(stream, buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        self.partial[stream] = buf

    def close(self) -> None:
        for stream, buf in self.partial.items():
            if buf:
                self._entry(stream, buf)
        self.partial.clear()
        os.close(self.fd)


class NoLog(JsonLog):
    """``--log-driver none``: output is passed on, nothing kept."""

    def __init__(self) -> None:
        super().__init__(os.devnull)  # an fd for whoever writes to it directly
        self.path = ""  # nothing for a failed start to truncate

    def write(self, stream: str, data: bytes) -> None:
        pass


def open_log(path: str, host_config: dict[str, Any]) -> JsonLog:
    """The container's log as its HostConfig.LogConfig asks (``local`` kept as json-file,
    with the local driver's default rotation: 20 MB, 5 files)."""
    cfg = host_config.get("LogConfig") or {}
    kind, opts = cfg.get("Type") or "json-file", cfg.get("Config") or {}
    if kind == "none":
        return NoLog()
    if kind == "local":
        opts = {"max-size": str(20 * 1024 * 1024), "max-file": "5", **opts}
    from forklift.engine.hostconfig import parse_bytes

    size = parse_bytes(opts["max-size"]) if opts.get("max-size") else 0
    return JsonLog(path, size, int(opts.get("max-file") or 1) if size else 1)


def rotated(path: str) -> list[str]:
    """The rotated files of a log, oldest first (the live one not included)."""
    out = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        out.append(f"{path}.{n}")
        n += 1
    return out[::-1]


class Tee:
    """Copy a foreground container's stdout/stderr pipes to the user's fds and the log.

    Runs in its own thread while the main thread waits for runc; it ends when every
    pipe reaches end of file (the container and runc are gone). A user-side fd that
    fails (a closed pipe: ``run … | head -1``) is dropped and logging goes on, as the
    container's writes never depended on the reader in Docker either.
    """

    def __init__(self, log: JsonLog, streams: dict[int, tuple[str, int | None]]) -> None:
        self.log = log
        self.streams = dict(streams)  # pipe read end -> (stream name, user fd or None)

    def run(self) -> None:
        try:
            while self.streams:
                try:
                    ready, _, _ = select.select(list(self.streams), [], [])
                except InterruptedError:
                    continue
                for fd in ready:
                    self._pump(fd)
        finally:
            self.log.close()

    def _pump(self, fd: int) -> None:
        stream, target = self.streams[fd]
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            del self.streams[fd]
            os.close(fd)
            return
        if target is not None:
            try:
                write_all(target, data)
            except OSError:
                self.streams[fd] = (stream, None)
        self.log.write(stream, data)


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd``, which may be non-blocking (a terminal shared with others)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]
