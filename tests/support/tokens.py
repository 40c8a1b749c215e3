"""A token service for the real docker-registry's token auth (the distribution token
spec): RS256 JWTs the registry trusts (an x5c chain to its rootcertbundle), by a GET with
Basic auth (or anonymously, pull of ``public/`` only), with a refresh token when the
client asks for offline access, and by the OAuth2 refresh-token grant (a POST): what
``docker login`` stores as an identity token and Docker trades for access tokens."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.registry import Registry, b64url, running_registry


class TokenService:
    def __init__(self, directory: Path, user: str, password: str) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.user, self.password = user, password
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .sign(self.key, hashes.SHA256()))
        self.bundle = directory / "token-root.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        # each token request: {"user", "scopes", "grant": "basic" | "anonymous" |
        # "refresh_token", "offline": bool, "client_id"}
        self.requests: list[dict[str, Any]] = []
        self.refresh_tokens: dict[str, str] = {}   # refresh token -> user
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def sign(self, claims: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64url(sig)}"

    def grant(self, user: str | None, scopes: list[str], service: str) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            allowed = [a for a in actions.split(",")
                       if a == "pull" and (user or name.startswith("public/"))
                       or a == "push" and user]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        return self.sign({"iss": "forklift-test-issuer", "sub": user or "", "aud": service,
                          "exp": now + 300, "nbf": now - 10, "iat": now,
                          "jti": uuid.uuid4().hex, "access": access})

    def issue_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if (u, p) != (service.user, service.password):
                        self._answer(401, {"details": "incorrect username or password"})
                        return
                    user = u
                scopes = query.get("scope", [])
                offline = query.get("offline_token", [""])[0] == "true"
                service.requests.append({
                    "user": user, "scopes": scopes, "grant": "basic" if user else "anonymous",
                    "offline": offline, "client_id": query.get("client_id", [""])[0]})
                doc: dict[str, Any] = {
                    "token": service.grant(user, scopes, query.get("service", [""])[0]),
                    "expires_in": 300}
                if offline and user:
                    doc["refresh_token"] = service.issue_refresh_token(user)
                self._answer(200, doc)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                field = {k: v[-1] for k, v in form.items()}
                user = service.refresh_tokens.get(field.get("refresh_token", ""))
                scopes = field.get("scope", "").split()
                service.requests.append({
                    "user": user, "scopes": scopes, "grant": field.get("grant_type"),
                    "offline": False, "client_id": field.get("client_id", "")})
                if field.get("grant_type") != "refresh_token" or user is None:
                    self._answer(401, {"error": "invalid_grant"})
                    return
                self._answer(200, {"access_token": service.grant(user, scopes,
                                                                 field.get("service", "")),
                                   "expires_in": 300, "scope": " ".join(scopes)})

            def _answer(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@contextlib.contextmanager
def token_auth_registry(directory: Path, user: str,
                        password: str) -> Iterator[tuple[Registry, TokenService]]:
    """The real docker-registry configured for token auth, and its token service."""
    tokens = TokenService(directory, user, password)
    extra = (f"auth:\n  token:\n    realm: {tokens.realm}\n    service: forklift-test\n"
             f"    issuer: forklift-test-issuer\n    rootcertbundle: {tokens.bundle}\n")
    try:
        with running_registry(directory, extra=extra) as reg:
            yield reg, tokens
    finally:
        tokens.server.shutdown()
        tokens.server.server_close()
