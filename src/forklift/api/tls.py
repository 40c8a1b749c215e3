"""The TCP listener: TLS with client certificates only (as dockerd's ``--tlsverify``).

Each connection is decrypted on the loop into one end of a socket pair whose other end is
served exactly as a unix connection is, so a hijacked attach or exec gets a plain blocking
socket here too. The TLS is an `ssl.SSLObject` over memory buffers rather than asyncio's
SSL transport: the docker CLI ends its stdin by half-closing the TCP connection under its
TLS (Go's tls.Conn has no CloseWrite), and asyncio's transport closes both directions on
that EOF, losing the output still to come. Here an EOF from the client only ends the pair's
write direction, as it does on a unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass

from forklift.errors import Conflict, InvalidArgument

HANDSHAKE_TIMEOUT = 10.0
LINGER = 5.0  # how long the client side may still send once the service side has ended
RECV_SIZE = 256 * 1024
log = logging.getLogger("forklift.api")


@dataclass(frozen=True)
class TcpOptions:
    address: str   # HOST:PORT as given
    cacert: str
    cert: str
    key: str


def parse_tcp(address: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``tcp://`` before either; InvalidArgument otherwise."""
    text = address.removeprefix("tcp://")
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in text:
        raise InvalidArgument(f"invalid TCP address {address!r}: HOST:PORT is expected")
    return host, int(port)


def server_context(opts: TcpOptions) -> ssl.SSLContext:
    """TLS 1.2 or later, the service's certificate, and clients' certificates required and
    checked against the CA file; InvalidArgument for a file that will not do."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(opts.cert, opts.key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot use --tlscert {opts.cert} with --tlskey {opts.key}: "
                              f"{_reason(exc)}") from None
    try:
        context.load_verify_locations(cafile=opts.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot use --tlscacert {opts.cacert}: {_reason(exc)}") from None
    return context


def _reason(exc: OSError) -> str:
    return exc.strerror or getattr(exc, "reason", None) or str(exc)


def bind_tcp(address: str) -> socket.socket:
    """A listening, non-blocking TCP socket on ``address``; Conflict when the port is taken."""
    host, port = parse_tcp(address)
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise InvalidArgument(f"cannot listen on {address}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == 98:  # EADDRINUSE
            raise Conflict(f"cannot listen on {address}: the port is in use") from None
        raise InvalidArgument(f"cannot listen on {address}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class TlsPeer:
    """One client's TLS, fed from and flushed to its TCP socket on the loop."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext) -> None:
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.sending = asyncio.Lock()  # both pumps flush: records must go out in order
        self.eof = False

    async def handshake(self) -> None:
        """SSLError (a certificate refused, not TLS at all), OSError or TimeoutError when
        the client does not get through; what TLS has to say (an alert) is sent first."""
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                while True:
                    try:
                        self.tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        await self._flush()
                        if not await self._feed():
                            raise ConnectionResetError("the client left during the handshake") from None
        finally:
            with contextlib.suppress(OSError):
                await self._flush()

    async def relay(self, inner: socket.socket) -> None:
        """Client to ``inner`` and back until the service side ends (then the client side
        may still send for LINGER seconds: the service may be reading a refused body)."""
        upstream = asyncio.create_task(self._upstream(inner))
        try:
            await self._downstream(inner)
            with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
                await asyncio.wait_for(asyncio.shield(upstream), LINGER)
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ssl.SSLError):
                await upstream

    async def _flush(self) -> None:
        async with self.sending:
            data = self.outgoing.read()
            if data:
                await asyncio.get_running_loop().sock_sendall(self.raw, data)

    async def _feed(self) -> bool:
        data = await asyncio.get_running_loop().sock_recv(self.raw, RECV_SIZE)
        if not data:
            self.incoming.write_eof()
            self.eof = True
            return False
        self.incoming.write(data)
        return True

    async def _upstream(self, inner: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    data = self.tls.read(RECV_SIZE)
                except ssl.SSLWantReadError:
                    await self._flush()  # a post-handshake message may want an answer
                    if self.eof or not await self._feed():
                        return
                    continue
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return  # close_notify, or the TCP half-close the docker CLI sends
                if not data:
                    return
                await loop.sock_sendall(inner, data)
        finally:
            with contextlib.suppress(OSError):
                inner.shutdown(socket.SHUT_WR)  # the service sees the end of the request/stdin

    async def _downstream(self, inner: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while data := await loop.sock_recv(inner, RECV_SIZE):
            self.tls.write(data)
            await self._flush()
        with contextlib.suppress(ssl.SSLError):
            self.tls.unwrap()  # close_notify; the client's own is not waited for
        await self._flush()
        with contextlib.suppress(OSError):
            self.raw.shutdown(socket.SHUT_WR)
