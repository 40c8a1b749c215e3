"""Registry authentication: WWW-Authenticate challenges, Basic, Bearer tokens.

A Bearer token is fetched from the challenge's realm for a set of scopes
(``repository:team/app:pull,push``) and cached per scope set until it expires.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from forklift.errors import RegistryAuthError, RegistryError, RegistryUnreachable
from forklift.registry.config import Credentials

_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass
class Challenge:
    scheme: str  # "basic" or "bearer" (lower case)
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """Parse one WWW-Authenticate header value (first scheme only); None when empty."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def basic_header(creds: Credentials) -> str:
    """``Basic <base64 user:password>``."""
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


Param = tuple[str, str | int | float | bool | None]   # a query parameter, as httpx types it
CLIENT_ID = "docker"   # the client_id Docker sends to token services


class Authenticator:
    """Turns the registry's challenge into an Authorization header, per scope set.

    Credentials that hold an identity token get their Bearer tokens by the OAuth2
    refresh-token grant (a POST to the realm), as Docker does; a username and password
    by a GET with Basic auth. ``offline`` (a login) asks the token service for a refresh
    token too: one it issues is kept in ``refresh_token``."""

    def __init__(self, client: httpx.Client, host: str, creds: Credentials | None) -> None:
        self._client = client
        self.host = host
        self.creds = creds
        self.challenge: Challenge | None = None
        self.offline = False
        self.refresh_token = creds.password if creds is not None and creds.identity else ""
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header(self, scopes: tuple[str, ...], refresh: bool = False) -> str | None:
        """The Authorization value for a request needing ``scopes``; None when the
        registry asked for nothing (or for Basic and there are no credentials).

        A Bearer token is fetched once per scope set and reused until shortly
        before it expires; ``refresh`` fetches a new one. Raises RegistryAuthError
        when the token service refuses, RegistryUnreachable when it cannot be
        reached, RegistryError for an unsupported scheme or a bad answer.
        """
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return basic_header(self.creds) if self.creds and not self.creds.identity else None
        if challenge.scheme != "bearer":
            raise RegistryError(f"{self.host}: unsupported authentication scheme {challenge.scheme!r}")
        key = tuple(sorted(set(scopes)))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and not refresh and cached[1] > time.monotonic():
                return f"Bearer {cached[0]}"
            token, lifetime = self._fetch_token(challenge, key)
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 5))
            return f"Bearer {token}"

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(f"{self.host}: bearer challenge without a realm")
        service = challenge.params.get("service")
        try:
            if self.refresh_token:
                resp = self._client.post(realm, data=self._refresh_form(service, scopes),
                                         follow_redirects=True)
            else:
                resp = self._client.get(realm, params=self._query(service, scopes),
                                        headers=self._basic(), follow_redirects=True)
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(f"cannot get a token from {realm}: {exc}") from None
        if resp.status_code in (401, 403):
            raise RegistryAuthError(f"{self.host}: unauthorized: authentication failed at {realm}")
        if resp.status_code != 200:
            raise RegistryError(f"{self.host}: token service {realm} answered {resp.status_code}")
        token, lifetime, refresh = _token_from(resp.content, realm)
        if refresh and (self.refresh_token or self.offline):
            self.refresh_token = refresh   # a service may rotate it with every grant
        return token, lifetime

    def _query(self, service: str | None, scopes: tuple[str, ...]) -> list[Param]:
        params: list[Param] = [("service", service)] if service else []
        params.extend(("scope", s) for s in scopes)
        if self.offline and self.creds is not None:
            params += [("offline_token", "true"), ("client_id", CLIENT_ID)]
        return params

    def _basic(self) -> dict[str, str]:
        return {"Authorization": basic_header(self.creds)} if self.creds else {}

    def _refresh_form(self, service: str | None, scopes: tuple[str, ...]) -> dict[str, str]:
        """The OAuth2 refresh-token grant (the distribution token spec's POST form)."""
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token,
                "client_id": CLIENT_ID, "scope": " ".join(scopes)}
        if service:
            form["service"] = service
        return form


def _token_from(body: bytes, realm: str) -> tuple[str, float, str]:
    """A token answer's (token, lifetime in seconds, refresh token or "")."""
    try:
        data: Any = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None  # an HTML error page with a 200, say
    if not isinstance(data, dict):
        raise RegistryError(f"token service {realm} sent a bad answer")
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token service {realm} sent no token")
    try:
        lifetime = float(data.get("expires_in") or 60)
    except (TypeError, ValueError):
        lifetime = 60.0
    refresh = data.get("refresh_token")
    return token, lifetime, refresh if isinstance(refresh, str) else ""
