"""An OCI distribution (``/v2/``) client over httpx, one per registry host.

Transport policy, as Docker's: HTTPS verified with the system CAs plus any CA
under ``certs.d/HOST/``; loopback registries may fall back to plain HTTP;
registries listed as insecure (or ``tls_verify=False``) use HTTPS without
verification and fall back to plain HTTP. Every body is checked against the
digest that names it by the callers (``forklift.registry.blobio``).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from forklift import oci
from forklift.errors import NotFound, RegistryError
from forklift.registry import config
from forklift.registry.auth import Authenticator, parse_challenge
from forklift.registry.config import Credentials

if TYPE_CHECKING:
    import httpx

MANIFEST_ACCEPT = ", ".join([
    oci.OCI_INDEX, oci.DOCKER_MANIFEST_LIST, oci.DOCKER_MANIFEST, oci.OCI_MANIFEST,
])
USER_AGENT = "forklift/0.1 (docker-compatible)"
MAX_MANIFEST = 4 << 20

Content = bytes | Callable[[], Iterable[bytes]] | None


def api_host(host: str) -> str:
    return "registry-1.docker.io" if host in config.DOCKER_HUB_HOSTS else host


def _tls_context(host: str, verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    cas, client_pair = config.ca_files(host)
    try:
        for path in cas:
            ctx.load_verify_locations(cafile=path)
        if client_pair:
            ctx.load_cert_chain(*client_pair)
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(f"cannot load TLS files for {host}: {exc}") from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _is_cert_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "certificate" in text and "verify" in text


def error_message(resp: httpx.Response) -> str:
    """The registry's error list as one line: ``manifest unknown: …``."""
    try:
        data = json.loads(resp.read()[:65536])
        errors = data.get("errors") if isinstance(data, dict) else None
    except Exception:  # noqa: BLE001 - a closed or broken body: fall back to the status
        errors = None
    if errors and isinstance(errors, list):
        parts = []
        for e in errors[:3]:
            if isinstance(e, dict):
                code = str(e.get("code", "")).lower().replace("_", " ")
                msg = str(e.get("message", "")).replace("\n", " ")
                parts.append(f"{code}: {msg}" if code and msg and msg != code else code or msg)
        if parts:
            return "; ".join(parts)
    return f"{resp.status_code} {resp.reason_phrase}".strip()


class RegistryClient:
    """Requests against one registry with auth, TLS policy and error mapping."""

    def __init__(self, host: str, *, tls_verify: bool | None = None,
                 creds: Credentials | None = None, anonymous: bool = False) -> None:
        import httpx

        self.host = host
        self._api = api_host(host)
        listed = tls_verify is False or config.is_listed_insecure(host)
        self._verify = not listed
        self._http_ok = listed or config.is_loopback(host)
        self.base: str | None = None
        self._lock = threading.Lock()
        self.client = httpx.Client(
            verify=_tls_context(host, self._verify), follow_redirects=False,
            timeout=httpx.Timeout(120.0, connect=20.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            headers={"User-Agent": USER_AGENT})
        if creds is None and not anonymous:
            creds = config.get_credentials(host)
        self.auth = Authenticator(self.client, host, creds)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection
    def ping(self) -> str:
        """Find the scheme that works and record the auth challenge; return the base URL."""
        with self._lock:
            if self.base is None:
                self.base = self._probe()
            return self.base

    def _probe(self) -> str:
        import httpx

        schemes = ["https", "http"] if self._http_ok else ["https"]
        last: Exception | None = None
        for scheme in schemes:
            base = f"{scheme}://{self._api}"
            try:
                resp = self.client.get(f"{base}/v2/")
            except httpx.HTTPError as exc:
                last = exc
                if scheme == "https" and _is_cert_error(exc) and self._verify:
                    break  # the registry speaks TLS: never downgrade a failed verification
                continue
            if resp.status_code == 401:
                self.auth.challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            elif resp.status_code >= 400 and resp.status_code != 404:
                raise RegistryError(f"{self.host}: /v2/ answered {resp.status_code}")
            return base
        raise RegistryError(f"cannot reach registry {self.host}: {_oneline(last)}")

    # -- requests
    def request(self, method: str, target: str, *, scopes: tuple[str, ...],
                headers: dict[str, str] | None = None, content: Content = None,
                params: dict[str, str] | None = None, stream: bool = False,
                redirects: bool = True) -> httpx.Response:
        """Send with auth; on 401 take the new challenge and retry once."""
        import httpx

        base = self.ping()
        url = target if target.startswith(("http://", "https://")) else base + target
        for attempt in range(2):
            hdrs = dict(headers or {})
            auth = self.auth.header(scopes, refresh=attempt > 0)
            if auth:
                hdrs["Authorization"] = auth
            body = content() if callable(content) else content
            try:
                req = self.client.build_request(method, url, headers=hdrs, content=body,
                                                params=params)
                resp = self._send(req, stream, redirects)
            except httpx.HTTPError as exc:
                raise RegistryError(f"{method} {self.host}: {_oneline(exc)}") from None
            if resp.status_code != 401 or attempt:
                return resp
            challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            resp.close()
            if challenge is None or (challenge.scheme == "basic" and not self.auth.creds):
                return resp
            self.auth.challenge = challenge
        raise AssertionError("unreachable")

    def _send(self, req: httpx.Request, stream: bool, redirects: bool) -> httpx.Response:
        resp = self.client.send(req, stream=True, follow_redirects=redirects)
        if not stream:
            try:
                resp.read()
            finally:
                resp.close()
        return resp

    def check(self, resp: httpx.Response, what: str, ok: Iterable[int] = (200,)) -> httpx.Response:
        """Raise a one-line RegistryError (NotFound for 404) unless the status is expected."""
        if resp.status_code in ok:
            return resp
        message = error_message(resp)
        resp.close()
        if resp.status_code == 404:
            raise NotFound(f"{what}: {message}")
        if resp.status_code in (401, 403):
            if message.startswith(str(resp.status_code)):
                message = ("unauthorized: authentication required" if resp.status_code == 401
                           else "denied: requested access to the resource is denied")
            raise RegistryError(f"{what}: {message}")
        raise RegistryError(f"{what}: {message}")


def _oneline(exc: Exception | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text.splitlines() else text
