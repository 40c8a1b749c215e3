"""ADD of an http(s) URL: the file downloaded as Docker's classic builder does.

The file is named after the URL's last path component (a URL with none is refused, as
Docker refuses it), written with mode 0600 and the mtime of the server's Last-Modified
(the Unix epoch without one). The download is bounded by the store's layer size limit
and by a timeout between two reads (``FORKLIFT_ADD_TIMEOUT`` seconds, default 60), so a
hostile server can neither fill the disk nor hang the build.
"""

from __future__ import annotations

import email.utils
import os
import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklift.errors import ForkliftError, InvalidArgument
from forklift.limits import Limits

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS = 10
DEFAULT_TIMEOUT = 60.0
_URL = re.compile(r"^https?://", re.IGNORECASE)
_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")


class DownloadError(ForkliftError):
    """An ADD URL could not be fetched: one line saying why."""


@dataclass(frozen=True)
class Download:
    url: str
    path: str       # the downloaded file, named as in the image
    digest: str     # sha256:… of its content
    mtime: int      # seconds since the epoch


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def file_name(url: str) -> str:
    """The name Docker gives the downloaded file: the URL path's last component."""
    name = posixpath.basename(urllib.parse.urlsplit(url).path.rstrip("/"))
    if not name or name in (".", ".."):
        raise InvalidArgument(f"cannot determine filename from url: {url}")
    return name


def check_checksum(text: str) -> str:
    if not _CHECKSUM.match(text):
        raise InvalidArgument(f"invalid ADD --checksum {text!r} (want sha256:<64 hex digits>)")
    return text


def timeout() -> float:
    text = os.environ.get("FORKLIFT_ADD_TIMEOUT", "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise InvalidArgument(f"invalid FORKLIFT_ADD_TIMEOUT {text!r}: a number of seconds") from None
    if value <= 0:
        raise InvalidArgument(f"invalid FORKLIFT_ADD_TIMEOUT {text!r}: must be more than 0")
    return value


def fetch(url: str, into: str, limits: Limits, checksum: str | None = None,
          wait: float | None = None) -> Download:
    """Download ``url`` into the new directory ``into``; DownloadError (one line) when the
    server fails, stalls, lies about the length or sends more than the size limit."""
    import httpx

    name = file_name(url)
    os.mkdir(into, 0o700)
    path = os.path.join(into, name)
    wait = timeout() if wait is None else wait
    try:
        with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS,
                          timeout=httpx.Timeout(wait)) as client, client.stream("GET", url) as resp:
            if resp.status_code >= 400:
                raise DownloadError(f"ADD {url}: the server answered {resp.status_code}"
                                    f" {resp.reason_phrase}".rstrip())
            digest = _save(resp, path, limits, url)
            mtime = _last_modified(resp.headers.get("last-modified"))
    except httpx.TimeoutException:
        raise DownloadError(f"ADD {url}: no answer from the server within {wait:g}s") from None
    except httpx.TooManyRedirects:
        raise DownloadError(f"ADD {url}: more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        raise DownloadError(f"ADD {url}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if checksum is not None and digest != checksum:
        raise DownloadError(f"ADD {url}: checksum mismatch: expected {checksum}, got {digest}")
    os.utime(path, (mtime, mtime))
    return Download(url, path, digest, mtime)


def _save(resp: httpx.Response, path: str, limits: Limits, url: str) -> str:
    import hashlib

    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_layer_size:
        raise limits.size_exceeded(f"ADD {url}")
    h = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in resp.iter_bytes(1 << 20):
            size += len(chunk)
            if size > limits.max_layer_size:
                raise limits.size_exceeded(f"ADD {url}")
            h.update(chunk)
            out.write(chunk)
    return "sha256:" + h.hexdigest()


def _last_modified(value: str | None) -> int:
    """Last-Modified as seconds since the epoch; an absent or unreadable one is 0, as Docker
    sets the zero time (clamped to the epoch)."""
    if not value:
        return 0
    try:
        return max(0, int(email.utils.parsedate_to_datetime(value).timestamp()))
    except (TypeError, ValueError, OverflowError):
        return 0
