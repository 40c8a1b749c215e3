"""An OCI distribution (``/v2/``) client over httpx, one per registry host.

Transport policy, as Docker's: HTTPS verified with the system CAs plus any CA
under ``certs.d/HOST/``; loopback registries may fall back to plain HTTP;
registries listed as insecure (or ``tls_verify=False``) use HTTPS without
verification and fall back to plain HTTP. A caller may hand in its own httpx
transport instead (tests: ``httpx.MockTransport``); the scheme policy and
everything above it stay the same. Every body is checked against the digest
that names it by the callers (``forklift.registry.api``).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Callable, Iterable

import httpx

from forklift import oci
from forklift.errors import NotFound, RegistryAuthError, RegistryError, RegistryUnreachable
from forklift.registry import config
from forklift.registry.auth import Authenticator, parse_challenge
from forklift.registry.config import Credentials

MANIFEST_ACCEPT = ", ".join([
    oci.OCI_INDEX, oci.DOCKER_MANIFEST_LIST, oci.DOCKER_MANIFEST, oci.OCI_MANIFEST,
])
USER_AGENT = "forklift/0.1 (docker-compatible)"
MAX_MANIFEST = 4 << 20

Content = bytes | Callable[[], Iterable[bytes]] | None


def api_host(host: str) -> str:
    """The host that serves ``host``'s API (Docker Hub's names → registry-1.docker.io)."""
    return "registry-1.docker.io" if host in config.DOCKER_HUB_HOSTS else host


def _tls_context(host: str, verify: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
    if verify:
        _system_cas(ctx)
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


def _system_cas(ctx: ssl.SSLContext) -> None:
    """Trust the system's CAs, as ``ssl.create_default_context`` does, without parsing
    the whole bundle up front (~40-70 ms, paid by every pull even over plain HTTP).
    Where the bundle in effect (``SSL_CERT_FILE`` or OpenSSL's default) lies in the CA
    directory and that directory is hashed (``c_rehash``) — Debian's ca-certificates
    writes both from one list — OpenSSL reads a CA from the directory only when a
    certificate names it. Any other bundle is loaded as before."""
    paths = ssl.get_default_verify_paths()  # the environment's choices, existing ones only
    capath = paths.capath
    if capath and _hashed(capath) and (
            paths.cafile is None or os.path.dirname(os.path.realpath(paths.cafile))
            == os.path.realpath(capath)):
        ctx.load_verify_locations(capath=capath)
    else:
        ctx.set_default_verify_paths()


def _hashed(directory: str) -> bool:
    """Whether ``directory`` holds OpenSSL's subject-hash links (``1a2b3c4d.0``)."""
    try:
        with os.scandir(directory) as entries:
            return any(len(e.name) == 10 and e.name[8] == "." and e.name[9].isdigit()
                       and all(c in "0123456789abcdef" for c in e.name[:8]) for e in entries)
    except OSError:
        return False


def _is_cert_error(exc: BaseException) -> bool:
    """Whether a failed connection was a refused certificate (httpx wraps the ssl error)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def registry_errors(resp: httpx.Response) -> str | None:
    """The registry's error list as one line (``manifest unknown: …``); None when the
    body holds none (not JSON, no ``errors``, a closed or broken stream)."""
    try:
        data = json.loads(resp.read()[:65536])
        errors = data.get("errors") if isinstance(data, dict) else None
    except Exception:  # noqa: BLE001 - a closed or broken body: the caller uses the status
        errors = None
    if not errors or not isinstance(errors, list):
        return None
    parts = []
    for e in errors[:3]:
        if isinstance(e, dict):
            code = str(e.get("code", "")).lower().replace("_", " ")
            msg = str(e.get("message", "")).replace("\n", " ")
            parts.append(f"{code}: {msg}" if code and msg and msg != code else code or msg)
    return "; ".join(p for p in parts if p) or None


def _status_line(resp: httpx.Response) -> str:
    return f"{resp.status_code} {resp.reason_phrase}".strip()


_REFUSED = {401: "unauthorized: authentication required",
            403: "denied: requested access to the resource is denied"}


class RegistryClient:
    """Requests against one registry with auth, TLS policy and error mapping.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests); TLS
    files are then not read. ``creds`` default to the stored login for ``host``
    unless ``anonymous``. Thread-safe: pulls and pushes share one client across
    their worker threads. Close it (or use it as a context manager).
    """

    def __init__(self, host: str, *, tls_verify: bool | None = None,
                 creds: Credentials | None = None, anonymous: bool = False,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.host = host
        self._api = api_host(host)
        listed = tls_verify is False or config.is_listed_insecure(host)
        self._verify = not listed
        self._http_ok = listed or config.is_loopback(host)
        self.base: str | None = None
        self._lock = threading.Lock()
        timeout = httpx.Timeout(120.0, connect=20.0)
        headers = {"User-Agent": USER_AGENT}
        if transport is not None:
            self.client = httpx.Client(transport=transport, follow_redirects=False,
                                       timeout=timeout, headers=headers)
        else:
            # not an HTTPTransport of our own: httpx honours *_PROXY only for the transport
            # it builds itself
            self.client = httpx.Client(
                verify=_tls_context(host, self._verify), follow_redirects=False, timeout=timeout,
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
                headers=headers)
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
        """Find the scheme that works and record the auth challenge; return the base URL.

        Done once per client. Raises RegistryUnreachable when no scheme connects (a
        refused certificate is never retried over plain HTTP), RegistryError when
        ``/v2/`` answers an error other than 401 or 404.
        """
        with self._lock:
            if self.base is None:
                self.base = self._probe()
            return self.base

    def _probe(self) -> str:
        schemes = ["https", "http"] if self._http_ok else ["https"]
        last: Exception | None = None
        for scheme in schemes:
            base = f"{scheme}://{self._api}"
            try:
                resp = self.client.get(f"{base}/v2/")
            except httpx.HTTPError as exc:
                last = exc
                if scheme == "https" and self._verify and _is_cert_error(exc):
                    break  # the registry speaks TLS: never downgrade a failed verification
                continue
            if resp.status_code == 401:
                self.auth.challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            elif resp.status_code >= 400 and resp.status_code != 404:
                raise RegistryError(f"{self.host}: /v2/ answered {resp.status_code}")
            return base
        raise RegistryUnreachable(f"cannot reach registry {self.host}: {_oneline(last)}")

    # -- requests
    def request(self, method: str, target: str, *, scopes: tuple[str, ...],
                headers: dict[str, str] | None = None, content: Content = None,
                params: dict[str, str] | None = None, stream: bool = False,
                redirects: bool = True) -> httpx.Response:
        """Send with auth; on 401 take the new challenge and retry once.

        ``target`` is a path under the base URL or an absolute URL (an upload
        location). A callable ``content`` is called once per attempt, so a streamed
        body can be sent again. The response is returned whatever its status (see
        ``check``); a ``stream`` response must be closed by the caller. Raises
        RegistryUnreachable when the connection fails, RegistryAuthError when a
        token cannot be had.
        """
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
                raise RegistryUnreachable(f"{method} {self.host}: {_oneline(exc)}") from None
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
        """Return ``resp`` when its status is in ``ok``; else close it and raise one line
        naming ``what`` and the registry's own error list: NotFound for 404,
        RegistryAuthError for 401/403, RegistryError otherwise (429 and 5xx included:
        nothing is retried)."""
        if resp.status_code in ok:
            return resp
        listed = registry_errors(resp)
        resp.close()
        if resp.status_code == 404:
            raise NotFound(f"{what}: {listed or _status_line(resp)}")
        if resp.status_code in _REFUSED:
            raise RegistryAuthError(f"{what}: {listed or _REFUSED[resp.status_code]}")
        raise RegistryError(f"{what}: {listed or _status_line(resp)}")


def _oneline(exc: Exception | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text.splitlines() else text
