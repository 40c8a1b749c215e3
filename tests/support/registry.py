"""Real registries (Debian's docker-registry, plain, TLS or with auth), TLS material, a
recording proxy that may rewrite answers, and raw pushes of hand-made blobs."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- TLS material

@dataclass
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_pki(directory: Path, name: str = "server") -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer_name: x509.Name | None, issuer_key: Any, public: Any,
              ca: bool) -> x509.Certificate:
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (x509.CertificateBuilder().subject_name(subj)
                   .issuer_name(issuer_name or subj).public_key(public)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            import ipaddress

            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = build("forklift test CA", None, ca_key, ca_key.public_key(), True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = build(name, ca_cert.subject, ca_key, key.public_key(), False)
    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.crt", directory / f"{name}.crt", directory / f"{name}.key")
    pki.ca_pem.write_bytes(ca_cert.public_bytes(pem))
    pki.cert_pem.write_bytes(cert.public_bytes(pem))
    pki.key_pem.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.NoEncryption()))
    return pki


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line (bcrypt, which the registry requires)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # libxcrypt's bcrypt ($2b$) through Python's crypt module

            hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
            if hashed and hashed.startswith("$2"):
                return f"{user}:{hashed}"
        except (ImportError, ValueError, OSError):
            pass
    with contextlib.suppress(ImportError):
        import bcrypt  # type: ignore[import-not-found]

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}"
    if shutil.which("htpasswd") is None:
        pytest.skip("no bcrypt for htpasswd: scripts/test.sh installs apache2-utils")
    out = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True,
                         check=True).stdout
    return out.strip()


# ----------------------------------------------------------------------------- registry

@dataclass
class Registry:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    data: Path
    log: Path
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_registry(directory: Path, *, tls: Pki | None = None,
                   extra: str = "") -> Registry:
    """Debian's docker-registry serving from ``directory`` on a free port (``extra``: more
    of its YAML configuration, e.g. an auth section). Skips without the package."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip(f"{REGISTRY_BIN} is missing: scripts/test.sh installs docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data = directory / "data"
    tls_block = ""
    if tls:
        tls_block = f"  tls:\n    certificate: {tls.cert_pem}\n    key: {tls.key_pem}\n"
    cfg = (f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
           f"storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n"
           f"http:\n  addr: 127.0.0.1:{port}\n  secret: forklift-tests\n{tls_block}{extra}")
    (directory / "config.yml").write_text(cfg)
    log = directory / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(directory / "config.yml")],
                                stdout=out, stderr=subprocess.STDOUT)
    reg = Registry(f"127.0.0.1:{port}", port, proc, data, log, "https" if tls else "http")
    _wait_port(reg)
    return reg


def _wait_port(reg: Registry) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            raise RuntimeError(f"registry exited: {reg.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", reg.port), timeout=1).close()
            return
        time.sleep(0.05)
    raise RuntimeError("registry did not start")


# ----------------------------------------------------------------------------- proxy

Mutator = Callable[[str, str, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes] | None]


@dataclass
class Proxy:
    """A recording HTTP proxy in front of a registry; ``mutate`` may rewrite answers."""

    upstream_port: int
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    mutate: Mutator | None = None
    server: http.server.ThreadingHTTPServer | None = None
    # an answer with the X-Test-Stall header sends that many body bytes, sets ``stalled``
    # and sends nothing more until ``release`` (at most 100 s), then closes
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.requests.clear()
        self.mutate = None
        self.release.set()
        self.stalled, self.release = threading.Event(), threading.Event()

    def uploads(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("PATCH", "PUT") and "/blobs/uploads/" in r[1]]


@contextlib.contextmanager
def running_registry(directory: Path, **kw: Any) -> Iterator[Registry]:
    reg = start_registry(directory, **kw)
    try:
        yield reg
    finally:
        reg.stop()


@contextlib.contextmanager
def running_proxy(upstream_port: int) -> Iterator[Proxy]:
    proxy = start_proxy(upstream_port)
    try:
        yield proxy
    finally:
        assert proxy.server is not None
        proxy.server.shutdown()
        proxy.server.server_close()  # a stopped proxy refuses connections instead of hanging them


def start_proxy(upstream_port: int) -> Proxy:
    proxy = Proxy(upstream_port)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                proxy.requests.append((self.command, self.path))
            conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            out_headers = {k: v for k, v in resp.getheaders()
                           if k.lower() not in ("content-length", "connection", "transfer-encoding")}
            conn.close()
            if proxy.mutate is not None:
                changed = proxy.mutate(self.command, self.path, status, out_headers, data)
                if changed is not None:
                    status, out_headers, data = changed
            self._reply(status, out_headers, data)

        def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
            truncate = headers.pop("X-Test-Truncate", None)
            stall = headers.pop("X-Test-Stall", None)
            if stall is not None:
                self._stall(status, headers, data, int(stall))
                return
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            if truncate is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data[: int(truncate)] if truncate is not None else data)
            if truncate is not None:
                self.wfile.flush()
                self.close_connection = True

        def _stall(self, status: int, headers: dict[str, str], data: bytes, send: int) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[:send])
            self.wfile.flush()
            release = proxy.release
            proxy.stalled.set()
            release.wait(100)
            self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.port = server.server_address[1]
    proxy.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return proxy


# ----------------------------------------------------------------------------- raw HTTP

def put_blob(base: str, repo: str, data: bytes, verify: bool | str = False) -> str:
    import httpx

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(verify=verify) as c:
        r = c.post(f"{base}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        loc = urllib.parse.urljoin(f"{base}/", r.headers["location"])
        sep = "&" if "?" in loc else "?"
        r = c.put(f"{loc}{sep}digest={digest}", content=data,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
    return digest


def put_manifest(base: str, repo: str, ref: str, data: bytes, media_type: str) -> str:
    import httpx

    r = httpx.put(f"{base}/v2/{repo}/manifests/{ref}", content=data,
                  headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
