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
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h11

from forklift.api import build, containers, execs, images, networks, plain, system, volumes
from forklift.api.server import (
    RAW_STREAM,
    ApiError,
    Context,
    Handler,
    Hijack,
    Reply,
    Request,
    Stream,
    answers_inline,
    bind_unix,
    call,
    error_reply,
    headers_for,
    inherited_socket,
    reply_headers,
    resolve,
    takes_upload,
)
from forklift.api.tls import TcpOptions, TlsPeer, bind_tcp, server_context
from forklift.errors import ForkliftError


def _linear_header_lines() -> bool:
    """Make h11's header-line pattern linear; True when mended (or already).

    h11 reads a header line with ``name:[ \t]*(value)?[ \t]*``: a line of n spaces and
    one bad byte costs n**2 steps, as each split of the spaces between the two
    ``[ \t]*`` is tried (a 60 KB head held the service's loop for 30 s). A value never
    starts with a space, so a leading ``[ \t]*+`` that keeps every space it takes reads
    the same lines the same way, in one pass. Checked by ``tests/unit/test_plain_http.py``."""
    import re

    from h11 import _readers

    pattern = _readers.header_field_re.pattern
    mended = pattern.replace(rb":[ \t]*(?P<field_value>", rb":[ \t]*+(?P<field_value>", 1)
    if mended != pattern:
        _readers.header_field_re = re.compile(mended)
    return rb":[ \t]*+(?P<field_value>" in _readers.header_field_re.pattern


_linear_header_lines()
ENDPOINTS = (build, containers, execs, images, networks, system, volumes)  # imported for their routes
MAX_HEADERS = 64 * 1024
MAX_BODY = 16 * 1024 * 1024  # a JSON body's cap; an upload route's body has none
RECV_SIZE = 256 * 1024
WORKERS = 128  # wait, logs -f and attach each hold a thread for as long as they last
STOP_GRACE = 5.0
log = logging.getLogger("forklift.api")


class Service:
    """A unix socket (``path``), a TCP one with TLS (``tcp``), or both, and their
    connections; `serve` returns after ``idle`` seconds without a connection (0: never) or
    on SIGTERM/SIGINT. A socket systemd passed is used instead of ``path`` and left where
    it is (systemd owns it)."""

    def __init__(self, root: str | None, path: str | None, *, idle: float = 5.0,
                 group: str | None = None, tcp: TcpOptions | None = None) -> None:
        # Until the loop handles them (`_main`), SIGTERM and SIGINT wait: a client may
        # connect, and a supervisor signal, as soon as the socket exists.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        self.ctx = Context(root)
        self.path = path
        self.idle = idle
        self.tls = server_context(tcp) if tcp is not None else None  # files first: no listener on a bad one
        self.tcp_listener = bind_tcp(tcp.address) if tcp is not None else None
        self.listener: socket.socket | None = None
        self.inode = None
        if path is not None:
            try:
                inherited = inherited_socket()
                self.listener = inherited or bind_unix(path, group)
            except BaseException:
                self.close()
                raise
            self.inode = None if inherited else os.stat(path).st_ino
        self.active = 0
        self.last = time.monotonic()
        self.tasks: set[asyncio.Task[None]] = set()
        self.plain: dict[int, socket.socket] = {}  # the connections `_plain` serves, by descriptor
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="api")

    def serve(self) -> None:
        try:
            self.pool.submit(_remove_dead_builds, self.ctx).result()
            asyncio.run(self._main())
        finally:
            self.close()

    def close(self) -> None:
        self.ctx.stopping.set()
        for listener in (self.listener, self.tcp_listener):
            if listener is not None:
                listener.close()
        with contextlib.suppress(OSError):
            if self.path and self.inode is not None and os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        self.ctx.loop_thread = threading.get_ident()
        with contextlib.suppress(ForkliftError):  # an inline request reports it
            _ = self.ctx.store  # the loop's own, for inline requests: its recovery done now
        loops = [asyncio.create_task(self._idle_watch(stop))]
        if self.listener is not None:
            loops.append(asyncio.create_task(self._accept(self.listener, self._plain)))
        if self.tcp_listener is not None:
            loops.append(asyncio.create_task(self._accept(
                self.tcp_listener, lambda sock: self._spawn(self._tls_connection(sock)))))
        await stop.wait()
        log.info("stopping")
        for task in loops:
            task.cancel()
        self.ctx.stopping.set()
        for sock in list(self.plain.values()):
            self._close_plain(sock)
        tasks = set(self.tasks)
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

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _accept(self, listener: socket.socket, start: Callable[[socket.socket], None]) -> None:
        """Start serving each connection as it comes. The listener stays in the loop's poll set
        (``sock_accept`` adds and removes it around every connection: two system calls
        and a loop turn more before the first byte of each docker CLI command)."""
        loop = asyncio.get_running_loop()
        fd = listener.fileno()

        def ready() -> None:
            while True:
                try:
                    sock, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:  # out of descriptors, say: look again a bit later
                    log.warning("accept: %s", exc)
                    loop.remove_reader(fd)
                    loop.call_later(0.1, loop.add_reader, fd, ready)
                    return
                sock.setblocking(False)
                start(sock)

        listener.setblocking(False)
        loop.add_reader(fd, ready)
        try:
            await loop.create_future()  # until the service stops (cancelled)
        finally:
            loop.remove_reader(fd)

    async def _tls_connection(self, raw: socket.socket) -> None:
        """A TCP client: its TLS handshake (a certificate from the CA, or nothing), then
        its requests served over a socket pair exactly as a unix connection's are."""
        assert self.tls is not None
        self.active += 1
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # attach keystrokes
            peer = TlsPeer(raw, self.tls)
            try:
                await peer.handshake()
            except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
                log.info("TLS handshake refused: %s", exc)
                return
            inner, outer = socket.socketpair()
            inner.setblocking(False)
            outer.setblocking(False)
            serving = asyncio.create_task(self._connection(inner))
            try:
                await peer.relay(outer)
            except OSError:
                pass  # the client left; the service side sees its pair end close
            finally:
                outer.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
        except asyncio.CancelledError:
            pass
        finally:
            self.active -= 1
            self.last = time.monotonic()
            raw.close()

    def _plain(self, sock: socket.socket) -> None:
        """Serve a connection from a reader callback while its requests are plain
        (`plain.parse`) and answered inline: no task, no future, no h11, the descriptor
        polled from accept to close. The first request that is not, with the bytes read
        of it, goes to `_connection`'s task for the rest of the connection."""
        loop = asyncio.get_running_loop()
        fd = sock.fileno()
        self.active += 1
        self.plain[fd] = sock

        def readable() -> None:
            try:
                data = sock.recv(MAX_HEADERS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._close_plain(sock)
                return
            try:
                serve(data)
            except Exception:  # no traceback to the client, no connection left hanging
                log.exception("a plain request failed")
                if sock.fileno() in self.plain:
                    self._close_plain(sock)

        def serve(data: bytes) -> None:
            req = plain.parse(data)
            out = self._answer_plain(req) if req is not None else None
            if out is None:
                self._hand_over(sock, self._connection(sock, data))
                return
            try:
                sent = sock.send(out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close_plain(sock)
                return
            if sent < len(out):  # a long listing to a slow reader
                self._hand_over(sock, self._connection(sock, unsent=out[sent:]))

        loop.add_reader(fd, readable)

    def _answer_plain(self, req: Request) -> bytes | None:
        """The whole answer to a plain request, or None when it is not answered inline."""
        head = req.method == "HEAD"
        try:
            handler, req.params = resolve(req.method, req.path)
        except ApiError as exc:
            return plain.response(error_reply(exc.status, exc.message), head)
        if not answers_inline(handler, req):
            return None
        log.debug("%s %s", req.method, req.path)
        result = call(self.ctx, handler, req)
        if not isinstance(result, Reply):  # `route`: an inline endpoint answers a Reply
            log.error("%s %s: an inline endpoint answered %s", req.method, req.path, type(result).__name__)
            result = error_reply(500, "internal error: the endpoint cannot answer inline")
        return plain.response(result, head)

    def _hand_over(self, sock: socket.socket, work: Coroutine[Any, Any, None]) -> None:
        """``sock`` from `_plain` to a task (which counts it again)."""
        self._release_plain(sock)
        self._spawn(work)

    def _close_plain(self, sock: socket.socket) -> None:
        self._release_plain(sock)
        sock.close()

    def _release_plain(self, sock: socket.socket) -> None:
        asyncio.get_running_loop().remove_reader(sock.fileno())
        del self.plain[sock.fileno()]
        self.active -= 1
        self.last = time.monotonic()

    async def _connection(self, sock: socket.socket, data: bytes = b"", unsent: bytes = b"") -> None:
        """Serve a connection through h11: ``data`` was read of it already, ``unsent`` is
        the end of a plain answer still to send."""
        self.active += 1
        try:
            if unsent:
                await asyncio.get_running_loop().sock_sendall(sock, unsent)
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
            if data:
                conn.receive_data(data)  # (b"" would say the client is done)
            while True:
                req = await self._read_head(sock, conn)
                if req is None:
                    return
                try:
                    target: tuple[Handler, dict[str, str]] | ApiError = resolve(req.method, req.path)
                except ApiError as exc:
                    target = exc
                upload = (not isinstance(target, ApiError) and takes_upload(target[0])
                          and _has_body(req))
                try:
                    if not await self._read_body(sock, conn, req, upload):
                        return
                    if not await self._answer(sock, conn, req, target):
                        return
                finally:
                    if req.body_path is not None:
                        shutil.rmtree(os.path.dirname(req.body_path), ignore_errors=True)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.active -= 1
            self.last = time.monotonic()
            sock.close()

    async def _next_event(self, sock: socket.socket, conn: h11.Connection,
                          size: int = RECV_SIZE) -> Any:
        event = conn.next_event()
        while event is h11.NEED_DATA:
            conn.receive_data(await asyncio.get_running_loop().sock_recv(sock, size))
            event = conn.next_event()
        return event

    async def _read_head(self, sock: socket.socket, conn: h11.Connection) -> Request | None:
        try:
            # h11 bounds a head only while it is incomplete: no read may hold a whole
            # head longer than MAX_HEADERS
            event = await self._next_event(sock, conn, MAX_HEADERS)
        except h11.RemoteProtocolError as exc:
            await self._refuse(sock, conn, exc.error_status_hint, _bad_request(exc))
            return None
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed, or PAUSED
        if conn.they_are_waiting_for_100_continue:  # curl's way with a large upload
            data = conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
            await asyncio.get_running_loop().sock_sendall(sock, data)
        return _request(event)

    async def _read_body(self, sock: socket.socket, conn: h11.Connection, req: Request,
                         upload: bool) -> bool:
        """Read the request's body: an upload route's to a file as it arrives (no cap but
        the disk), any other's into memory up to MAX_BODY; False when refused or cut."""
        try:
            if upload:
                try:
                    req.body_path = await self._upload_file()
                except (ForkliftError, OSError) as exc:
                    await self._refuse(sock, conn, 500, f"cannot keep the request's body: {exc}")
                    return False
                with open(req.body_path, "wb") as out:
                    return await self._body_to(sock, conn, out.write, None)
            body = bytearray()
            if not await self._body_to(sock, conn, body.extend, MAX_BODY):
                return False
            req.body = bytes(body)
            return True
        except h11.RemoteProtocolError as exc:
            await self._refuse(sock, conn, exc.error_status_hint, _bad_request(exc))
            return False

    async def _body_to(self, sock: socket.socket, conn: h11.Connection,
                       write: Callable[[bytes], object], cap: int | None) -> bool:
        size = 0
        while True:
            event = await self._next_event(sock, conn)
            if isinstance(event, h11.EndOfMessage):
                return True
            if not isinstance(event, h11.Data):
                return False  # ConnectionClosed
            size += len(event.data)
            if cap is not None and size > cap:
                await self._refuse(sock, conn, 413, "request body too large")
                return False
            try:
                write(event.data)
            except OSError as exc:  # the disk, not the client: ENOSPC, EDQUOT, EIO
                await self._refuse(sock, conn, 500, f"cannot keep the request's body: {exc.strerror}")
                return False

    async def _upload_file(self) -> str:
        work = await asyncio.get_running_loop().run_in_executor(
            self.pool, lambda: self.ctx.store.make_tmp("api-upload"))
        return os.path.join(work, "body")

    async def _refuse(self, sock: socket.socket, conn: h11.Connection, status: int,
                      message: str) -> None:
        """Answer a request read only in part, then drain what the client still sends."""
        await self._send_error(sock, conn, status, message)
        await _linger(sock)

    async def _send_error(self, sock: socket.socket, conn: h11.Connection, status: int,
                          message: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.LocalProtocolError, OSError):
            await self._send_reply(sock, conn, error_reply(status, message), head=False)

    async def _send_reply(self, sock: socket.socket, conn: h11.Connection, reply: Reply,
                          head: bool) -> None:
        loop = asyncio.get_running_loop()
        data = conn.send(_response(reply.status, reply_headers(reply))) or b""
        if reply.body and not head:
            data += conn.send(h11.Data(data=reply.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await loop.sock_sendall(sock, data)

    async def _answer(self, sock: socket.socket, conn: h11.Connection, req: Request,
                      target: tuple[Handler, dict[str, str]] | ApiError) -> bool:
        """Answer one request; False when the connection is done with."""
        loop = asyncio.get_running_loop()
        log.debug("%s %s", req.method, req.path)
        if isinstance(target, ApiError):
            await self._send_reply(sock, conn, error_reply(target.status, target.message),
                                   head=req.method == "HEAD")
            return True
        handler, req.params = target
        if answers_inline(handler, req):
            result = call(self.ctx, handler, req)
        else:
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

        unwatch = _watch_close(loop, sock, stream.gone)
        try:
            await loop.run_in_executor(self.pool, produce)
        finally:
            unwatch()
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


def _watch_close(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 gone: threading.Event) -> Callable[[], object]:
    """Set ``gone`` when the client closes the connection (end of file or an error) while
    its stream runs, as Go's server cancels a request's context; returns the function that
    stops watching. Bytes the client sends meanwhile (a pipelined request) stay unread for
    the next cycle: the watch only peeks, and stops at the first byte."""
    fd = sock.fileno()

    def readable() -> None:
        try:
            peek = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            peek = b""
        loop.remove_reader(fd)
        if not peek:
            gone.set()

    loop.add_reader(fd, readable)
    return lambda: loop.remove_reader(fd)


def _remove_dead_builds(ctx: Context) -> None:
    """The RUN containers of builds whose process is gone (a service killed outright in
    the middle of a build leaves its step's container, mounted): removed at start, as
    dockerd does after a crash."""
    import sqlite3

    from forklift.build import running

    try:
        removed = running.remove_leftovers(ctx.store)
    except (ForkliftError, OSError, sqlite3.Error) as exc:   # the first build tries again
        log.warning("cannot remove the containers of killed builds: %s", exc)
        return
    if removed:
        log.info("removed the containers of killed builds: %s", " ".join(c[:12] for c in removed))


async def _linger(sock: socket.socket, limit: int = 4 << 20, timeout: float = 2.0) -> None:
    """After refusing a request part-read: say we are done, then read what the client still
    sends (up to a bound), so that closing does not reset the connection under our answer."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, TimeoutError):
        sock.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(timeout):
            while limit > 0 and (chunk := await loop.sock_recv(sock, 65536)):
                limit -= len(chunk)


_RESPONSES: dict[tuple[int, tuple[tuple[str, str], ...]], h11.Response] = {}


def _response(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    """The response head, made (and its headers checked) once for each status and headers
    seen: answers repeat (every ping's, a listing's of the same length), and h11's events
    are immutable."""
    key = (status, tuple(headers))
    head = _RESPONSES.get(key)
    if head is None:
        if len(_RESPONSES) >= 256:
            _RESPONSES.clear()
        head = _RESPONSES[key] = h11.Response(status_code=status, headers=headers)
    return head


def _bad_request(exc: h11.RemoteProtocolError) -> str:
    """h11's reason, cut short: it quotes the offending line, which may be 64 KiB."""
    text = str(exc)
    return f"bad request: {text[:200]}…" if len(text) > 200 else f"bad request: {text}"


def _has_body(req: Request) -> bool:
    """Whether a body follows the head (a pull, an upload route without one, needs no file)."""
    return "transfer-encoding" in req.headers or req.headers.get("content-length", "0") != "0"


def _request(head: h11.Request) -> Request:
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers]
    return plain.request(head.method.decode("latin-1"), head.target.decode("latin-1"), headers)
