"""One repository on a registry: manifests and blobs, every body verified.

``Repository.get_manifest`` and ``open_blob`` check what the registry sends
against the digest that names it (and against any ``Docker-Content-Digest``
it claims); a blob stream refuses a byte more than the descriptor's size and
reports a short body as an error.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

import httpx

from forklift import digest as dg
from forklift.errors import (
    DigestMismatch,
    NotFound,
    RegistryError,
    RegistryTooLarge,
    RegistryUnreachable,
)
from forklift.registry.client import MANIFEST_ACCEPT, MAX_MANIFEST, RegistryClient

_PIECE = 1 << 20
Progress = Callable[[int], None]


class Sink(Protocol):
    """Where a blob's bytes go as they arrive (a ``BlobWriter``): it hashes them."""

    def write(self, data: bytes, /) -> int: ...

    @property
    def digest(self) -> str: ...


@dataclass
class Manifest:
    data: bytes
    media_type: str
    digest: str


def _claimed_digest(resp: httpx.Response) -> str | None:
    value = resp.headers.get("docker-content-digest")
    return value.strip() if value and value.startswith("sha256:") else None


class BlobReader:
    """A readable stream over a blob response, bounded by the expected size.

    ``read`` raises RegistryTooLarge at the first byte past ``size``, RegistryError
    for a body that ends short of it (unless not ``exact``), RegistryUnreachable
    when the connection breaks. Every byte is hashed on the way (``finish_digest``).
    """

    def __init__(self, resp: httpx.Response, size: int, what: str,
                 progress: Progress | None = None, exact: bool = True,
                 sink: Sink | None = None) -> None:
        self._resp = resp
        self._exact = exact
        # with a sink (a blob file that hashes what it is given) every byte is hashed
        # there, once, instead of here too
        self._sink = sink
        self._hash = hashlib.sha256() if sink is None else None
        self._chunks = resp.iter_raw()  # pieces as the socket gives them: no re-chunking copy
        self._buf = b""
        self._pos = 0
        self._size = size
        self._what = what
        self._progress = progress
        self.received = 0

    def _next_chunk(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            if self._exact and self.received < self._size:
                raise RegistryError(f"{self._what}: short read: got {self.received} of"
                                    f" {self._size} bytes") from None
            return b""
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(f"{self._what}: download interrupted after {self.received}"
                                f" bytes: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        self.received += len(chunk)
        if self.received > self._size:
            raise RegistryTooLarge(f"{self._what}: registry sent more than the {self._size}"
                                   " bytes its descriptor declares")
        if self._sink is not None:
            self._sink.write(chunk)
        else:
            self._hash.update(chunk)  # type: ignore[union-attr]
        if self._progress is not None:
            self._progress(len(chunk))
        return chunk

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = [self._buf[self._pos:]]
            while chunk := self._next_chunk():
                parts.append(chunk)
            self._buf, self._pos = b"", 0
            return b"".join(parts)
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._next_chunk(), 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def close(self) -> None:
        self._resp.close()

    def abort(self) -> None:
        """From another thread: make a ``read`` blocked on this download (a stalled
        registry) fail now. The socket is shut down, not closed: the reading thread
        still owns the response and closes it."""
        stream = self._resp.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:  # a caller's transport (tests): its stream's close ends the read
            self._resp.close()
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing is blocked on it

    def finish_digest(self) -> str:
        """Read what is left (bounded by the size) and return the digest of all bytes."""
        self._buf, self._pos = b"", 0
        while self._next_chunk():
            pass
        if self._sink is not None:
            return self._sink.digest
        return f"sha256:{self._hash.hexdigest()}"  # type: ignore[union-attr]


class Repository:
    """``/v2/<name>/…`` on one registry."""

    def __init__(self, client: RegistryClient, name: str, push: bool = False) -> None:
        self.client = client
        self.name = name
        self.scopes: tuple[str, ...] = (f"repository:{name}:{'pull,push' if push else 'pull'}",)

    def _url(self, kind: str, ref: str) -> str:
        return f"/v2/{self.name}/{kind}/{ref}"

    # -- manifests
    def get_manifest(self, ref: str, accept: str = MANIFEST_ACCEPT) -> Manifest:
        """Fetch by tag or digest, at most 4 MiB (else RegistryTooLarge).

        The bytes are checked against ``ref`` when it is a digest and against any
        ``Docker-Content-Digest`` the registry sends (DigestMismatch); a missing or
        non-sha256 header is not an error. NotFound for 404; see ``RegistryClient.check``.
        """
        what = f"manifest for {self.client.host}/{self.name}:{ref}" if not ref.startswith(
            "sha256:") else f"manifest {self.client.host}/{self.name}@{ref}"
        resp = self.client.request("GET", self._url("manifests", ref), scopes=self.scopes,
                                   headers={"Accept": accept}, stream=True)
        try:
            self.client.check(resp, what)
            data = BlobReader(resp, MAX_MANIFEST, what, exact=False).read()
        except RegistryTooLarge:
            raise RegistryTooLarge(f"{what}: manifest larger than {MAX_MANIFEST} bytes") from None
        finally:
            resp.close()
        actual = dg.of_bytes(data)
        if ref.startswith("sha256:"):
            dg.verify(ref, actual, what)
        claimed = _claimed_digest(resp)
        if claimed and claimed != actual:
            raise DigestMismatch(f"{what}: registry claims digest {claimed} but sent {actual}")
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        return Manifest(data, media_type, actual)

    def put_manifest(self, ref: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or digest; return its digest. DigestMismatch when
        the registry says it stored other bytes. Idempotent."""
        digest = dg.of_bytes(data)
        resp = self.client.request("PUT", self._url("manifests", ref), scopes=self.scopes,
                                   headers={"Content-Type": media_type}, content=data)
        self.client.check(resp, f"push manifest {self.name}:{ref}", ok=(200, 201, 202))
        claimed = _claimed_digest(resp)
        if claimed and claimed != digest:
            raise DigestMismatch(f"registry stored manifest {self.name}:{ref} as {claimed},"
                                 f" expected {digest}")
        return digest

    # -- blobs
    def has_blob(self, digest: str) -> bool:
        """HEAD the blob: False on 404, RegistryError for any other failure."""
        resp = self.client.request("HEAD", self._url("blobs", digest), scopes=self.scopes)
        if resp.status_code == 404:
            return False
        self.client.check(resp, f"blob {dg.short_id(digest)}")
        return True

    def open_blob(self, digest: str, size: int, progress: Progress | None = None,
                  sink: Sink | None = None) -> BlobReader:
        """A stream over the blob (redirects to blob storage followed); the caller closes
        it and verifies the digest of what it read (``finish_digest``). Every byte
        received also goes to ``sink``, which hashes it. NotFound for 404,
        DigestMismatch when the registry names another digest."""
        what = f"blob {dg.short_id(digest)}"
        resp = self.client.request("GET", self._url("blobs", digest), scopes=self.scopes,
                                   stream=True)
        try:
            self.client.check(resp, what)
        except NotFound:
            raise NotFound(f"{what} not found in {self.client.host}/{self.name}") from None
        claimed = _claimed_digest(resp)
        if claimed and claimed != digest:
            resp.close()
            raise DigestMismatch(f"{what}: registry claims digest {claimed}, expected {digest}")
        return BlobReader(resp, size, what, progress, sink=sink)

    def read_blob(self, digest: str, size: int, limit: int = 64 << 20) -> bytes:
        """A small blob (an image config) read whole and verified."""
        if size > limit:
            raise RegistryError(f"blob {dg.short_id(digest)} is too large ({size} bytes)")
        reader = self.open_blob(digest, size)
        try:
            data = reader.read()
        finally:
            reader.close()
        dg.verify(digest, dg.of_bytes(data), f"blob {dg.short_id(digest)}")
        return data

    def mount_blob(self, digest: str, source: str) -> str | None:
        """Cross-repository mount from ``source`` (another repository of this registry):
        None when the registry mounted it (201), else the upload location it opened
        instead (202) for the caller to upload to."""
        scopes = (*self.scopes, f"repository:{source}:pull")
        resp = self.client.request("POST", f"/v2/{self.name}/blobs/uploads/", scopes=scopes,
                                   params={"mount": digest, "from": source})
        self.client.check(resp, f"mount blob {dg.short_id(digest)}", ok=(201, 202))
        if resp.status_code == 201:
            return None
        return self._location(resp)

    def start_upload(self) -> str:
        """Open an upload session; return its absolute location."""
        resp = self.client.request("POST", f"/v2/{self.name}/blobs/uploads/", scopes=self.scopes)
        self.client.check(resp, f"start upload to {self.name}", ok=(202,))
        return self._location(resp)

    def _location(self, resp: httpx.Response) -> str:
        location = resp.headers.get("location")
        if not location:
            raise RegistryError(f"{self.client.host}: upload answer without a Location")
        return urljoin(str(resp.url), location)

    def upload(self, location: str, path: str, digest: str, size: int,
               chunk_size: int, progress: Progress | None = None) -> None:
        """Send ``size`` bytes of ``path``: one monolithic PUT up to ``chunk_size``, else
        PATCH chunks (each with its ``Content-Range``, to the location the previous
        answer gave) and a closing PUT with the digest. DigestMismatch when the
        registry says it stored another digest; nothing is retried."""
        if size <= chunk_size:
            self._put(location, digest, _file_body(path, 0, size, progress), size)
            return
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            resp = self.client.request(
                "PATCH", location, scopes=self.scopes, redirects=False,
                content=_file_body(path, offset, length, progress),
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(length),
                         "Content-Range": f"{offset}-{offset + length - 1}"})
            self.client.check(resp, f"upload blob {dg.short_id(digest)}", ok=(202, 204))
            location = self._location(resp)
            offset += length
        self._put(location, digest, None, 0)

    def _put(self, location: str, digest: str, body: Callable[[], Iterator[bytes]] | None,
             size: int) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        sep = "&" if "?" in location else "?"
        resp = self.client.request("PUT", f"{location}{sep}digest={digest}", scopes=self.scopes,
                                   content=body, headers=headers, redirects=False)
        self.client.check(resp, f"upload blob {dg.short_id(digest)}", ok=(201, 204))
        claimed = _claimed_digest(resp)
        if claimed and claimed != digest:
            raise DigestMismatch(f"registry stored blob {dg.short_id(digest)} as {claimed}")


def _file_body(path: str, offset: int, length: int,
               progress: Progress | None) -> Callable[[], Iterator[bytes]]:
    """A re-playable streaming body: ``length`` bytes of ``path`` from ``offset``."""
    def gen() -> Iterator[bytes]:
        with open(path, "rb") as f:
            f.seek(offset)
            left = length
            while left > 0:
                piece = f.read(min(_PIECE, left))
                if not piece:
                    raise RegistryError(f"{os.path.basename(path)} shrank while uploading")
                left -= len(piece)
                if progress is not None:
                    progress(len(piece))
                yield piece
    return gen
