"""The service: the listening socket's loop and its connections (asyncio + h11), with
every endpoint module's routes (`server` has the routing, replies and errors).

Sockets are used through ``loop.sock_*`` (no transport buffers bytes behind our back), so
a hijacked connection can be handed to a worker thread as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from forklift.api import build, containers, execs, images, networks, system, volumes
from forklift.api.server import (
    RAW_STREAM,
    ApiError,
    Context,
    Hijack,
    Reply,
    Request,
    Stream,
    bind_unix,
    call,
    error_reply,
    headers_for,
    inherited_socket,
    resolve,
)
from forklift.errors import ForkliftError

ENDPOINTS = (build, containers, execs, images, networks, system, volumes)  # imported for their routes
MAX_HEADERS = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
WORKERS = 128  # wait, logs -f and attach each hold a thread for as long as they last
STOP_GRACE = 5.0
log = logging.getLogger("forklift.api")


class Service:
    """One listening socket and its connections; `serve` returns after ``idle`` seconds
    without a connection (0: never) or on SIGTERM/SIGINT. A socket systemd passed is used
    instead of ``path`` and left where it is (systemd owns it)."""

    def __init__(self, root: str | None, path: str, *, idle: float = 5.0,
                 group: str | None = None) -> None:
        # Until the loop handles them (`_main`), SIGTERM and SIGINT wait: a client may
        # connect, and a supervisor signal, as soon as the socket exists.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        self.ctx = Context(root)
        self.path = path
        self.idle = idle
        inherited = inherited_socket()
        self.listener = inherited or bind_unix(path, group)
        self.inode = None if inherited else os.stat(path).st_ino
        self.active = 0
        self.last = time.monotonic()
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="api")

    def serve(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self.close()

    def close(self) -> None:
        self.ctx.stopping.set()
        self.listener.close()
        with contextlib.suppress(OSError):
            if self.inode is not None and os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        tasks: set[asyncio.Task[None]] = set()
        accept = asyncio.create_task(self._accept(tasks))
        watch = asyncio.create_task(self._idle_watch(stop))
        await stop.wait()
        log.info("stopping")
        accept.cancel()
        watch.cancel()
        self.ctx.stopping.set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE)
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _idle_watch(self, stop: asyncio.Event) -> None:
        if self.idle <= 0:
            return
        while True:
            await asyncio.sleep(min(1.0, self.idle / 4))
            if self.active == 0 and time.monotonic() - self.last >= self.idle:
                log.info("idle for %ss: exiting", self.idle)
                stop.set()
                return

    async def _accept(self, tasks: set[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(self.listener)
            sock.setblocking(False)
            task = asyncio.create_task(self._connection(sock))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _connection(self, sock: socket.socket) -> None:
        self.active += 1
        try:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
            while True:
                req = await self._read_request(sock, conn)
                if req is None or not await self._answer(sock, conn, req):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.active -= 1
            self.last = time.monotonic()
            sock.close()

    async def _read_request(self, sock: socket.socket, conn: h11.Connection) -> Request | None:
        loop = asyncio.get_running_loop()
        head: h11.Request | None = None
        body = bytearray()
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await loop.sock_recv(sock, 65536))
                elif isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        await self._send_error(sock, conn, 413, "request body too large")
                        await _linger(sock)
                        return None
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    return _request(head, bytes(body))
                else:  # ConnectionClosed, or PAUSED before a whole request
                    return None
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            await self._send_error(sock, conn, status, f"bad request: {exc}")
            await _linger(sock)
            return None

    async def _send_error(self, sock: socket.socket, conn: h11.Connection, status: int,
                          message: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.LocalProtocolError, OSError):
            await self._send_reply(sock, conn, error_reply(status, message), head=False)

    async def _send_reply(self, sock: socket.socket, conn: h11.Connection, reply: Reply,
                          head: bool) -> None:
        loop = asyncio.get_running_loop()
        headers = headers_for(reply.content_type, reply.headers)
        if reply.status != 204:
            headers.append(("Content-Length", str(len(reply.body))))
        data = conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
        if reply.body and not head:
            data += conn.send(h11.Data(data=reply.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await loop.sock_sendall(sock, data)

    async def _answer(self, sock: socket.socket, conn: h11.Connection, req: Request) -> bool:
        """Answer one request; False when the connection is done with."""
        loop = asyncio.get_running_loop()
        log.debug("%s %s", req.method, req.path)
        try:
            handler, req.params = resolve(req.method, req.path)
        except ApiError as exc:
            await self._send_reply(sock, conn, error_reply(exc.status, exc.message), False)
            return True
        result = await loop.run_in_executor(self.pool, call, self.ctx, handler, req)
        if isinstance(result, Reply):
            await self._send_reply(sock, conn, result, head=req.method == "HEAD")
            return True
        if isinstance(result, Stream):
            await self._stream(sock, conn, result)
            return True
        await self._hijack(sock, conn, req, result)
        return False

    async def _stream(self, sock: socket.socket, conn: h11.Connection, stream: Stream) -> None:
        loop = asyncio.get_running_loop()
        head = h11.Response(status_code=stream.status, headers=headers_for(stream.content_type, stream.headers))
        await loop.sock_sendall(sock, conn.send(head) or b"")

        def write(chunk: bytes) -> None:
            if chunk:
                data = conn.send(h11.Data(data=chunk)) or b""
                asyncio.run_coroutine_threadsafe(loop.sock_sendall(sock, data), loop).result()

        def produce() -> None:
            try:
                stream.produce(write)
            except ForkliftError as exc:  # too late for a status: the stream ends
                log.warning("stream ended: %s", exc)
            except OSError:
                pass  # the client left

        await loop.run_in_executor(self.pool, produce)
        with contextlib.suppress(h11.LocalProtocolError):
            await loop.sock_sendall(sock, conn.send(h11.EndOfMessage()) or b"")

    async def _hijack(self, sock: socket.socket, conn: h11.Connection, req: Request,
                      hijack: Hijack) -> None:
        loop = asyncio.get_running_loop()
        upgrade = req.headers.get("upgrade", "").lower() == "tcp"
        if upgrade:
            head = h11.InformationalResponse(status_code=101, reason=b"UPGRADED", headers=[
                ("Content-Type", RAW_STREAM), ("Connection", "Upgrade"), ("Upgrade", "tcp")])
            await loop.sock_sendall(sock, conn.send(head) or b"")
            trailing = conn.trailing_data[0]
        else:  # an old client: raw bytes after a 200 head, the connection closed at the end
            await loop.sock_sendall(sock, b"HTTP/1.1 200 OK\r\nContent-Type: " + RAW_STREAM.encode()
                                    + b"\r\nConnection: close\r\n\r\n")
            trailing = b""
        sock.setblocking(True)
        await loop.run_in_executor(self.pool, hijack.run, sock, trailing)


async def _linger(sock: socket.socket, limit: int = 4 << 20, timeout: float = 2.0) -> None:
    """After refusing a request part-read: say we are done, then read what the client still
    sends (up to a bound), so that closing does not reset the connection under our answer."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, TimeoutError):
        sock.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(timeout):
            while limit > 0 and (chunk := await loop.sock_recv(sock, 65536)):
                limit -= len(chunk)


def _request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("latin-1")
    parts = urlsplit(target)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
    query = parse_qs(parts.query, keep_blank_values=True)
    return Request(head.method.decode("latin-1"), unquote(parts.path), query, headers, body)
