"""Content digests (``sha256:<hex>``) and streams that verify them."""

from __future__ import annotations

import re

from forklift.errors import DigestMismatch, InvalidArgument

TYPE_CHECKING = False  # not typing's: its import is on the hot paths
if TYPE_CHECKING:
    from typing import IO, Protocol

    class Writable(Protocol):
        """Anything bytes can be written to (a file, a BlobWriter)."""

        def write(self, data: bytes, /) -> int: ...

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"\Asha256:[a-f0-9]{64}\Z")


def validate(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256 digest, else raise."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def hex_of(digest: str) -> str:
    return validate(digest).split(":", 1)[1]


def _sha256():  # type: ignore[no-untyped-def]
    # hashlib loads OpenSSL (~5 ms): keep it off the `run` hot path
    import hashlib

    return hashlib.sha256()


def of_bytes(data: bytes) -> str:
    import hashlib

    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def short_id(digest: str) -> str:
    """The 12-character form Docker prints in tables."""
    return digest.split(":", 1)[-1][:12]


class HashingReader:
    """Wraps a readable stream, hashing and counting every byte read through it.

    An optional ``sink`` receives a copy of each chunk: used to store a layer's
    exact bytes while the tar reader consumes them.
    """

    def __init__(self, raw: IO[bytes], sink: Writable | None = None) -> None:
        self._raw = raw
        self._sink = sink
        self._hash = _sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.size += len(data)
            if self._sink is not None:
                self._sink.write(data)
        return data

    def absorb(self, data: bytes) -> None:
        """Count ``data`` as read through this stream (bytes read around it, kept after all)."""
        self._hash.update(data)
        self.size += len(data)
        if self._sink is not None:
            self._sink.write(data)

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read to EOF so trailing padding is hashed too."""
        while self.read(chunk):
            pass

    @property
    def digest(self) -> str:
        return f"{ALGORITHM}:{self._hash.hexdigest()}"


class HashingWriter:
    """Wraps a writable stream, hashing and counting what is written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = _sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._raw.write(data)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    @property
    def digest(self) -> str:
        return f"{ALGORITHM}:{self._hash.hexdigest()}"


def verify(expected: str, actual: str, what: str) -> None:
    if expected != actual:
        raise DigestMismatch(f"{what}: digest mismatch (expected {expected}, got {actual})")
