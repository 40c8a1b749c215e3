"""`system service --tcp … --tlsverify`: the docker CLI over TCP with TLS and a client
certificate (version, run, run -i with a pipe, exec), every other client refused at the
handshake, and the options that would open the API without a certificate refused."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Forklift
from support.cli import Result, one_line_error, run, wait_for
from support.registry import free_port
from support.service import DOCKER20, stop

pytestmark = pytest.mark.root


def _cert(subject: str, key: Any, issuer: tuple[Any, Any] | None, *, ca: bool = False) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_cert, issuer_key = issuer or (None, key)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False).add_extension(x509.ExtendedKeyUsage([
                ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, ca: Any, cert: Any, key: Any) -> Path:
    """``ca.pem``, ``cert.pem``, ``key.pem``: what DOCKER_CERT_PATH holds."""
    from cryptography.hazmat.primitives import serialization

    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return directory


def make_certs(top: Path) -> tuple[Path, Path, Path]:
    """The service's files, a client's from the same CA, and a client's from another CA
    (that client trusts the service's CA: the refusal is the service's)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    def key() -> Any:
        return ec.generate_private_key(ec.SECP256R1())

    ca_key, other_key = key(), key()
    ca = _cert("forklift test CA", ca_key, None, ca=True)
    other = _cert("another CA", other_key, None, ca=True)
    server_key, client_key, stranger_key = key(), key(), key()
    return (_write(top / "server", ca, _cert("localhost", server_key, (ca, ca_key)), server_key),
            _write(top / "client", ca, _cert("client", client_key, (ca, ca_key)), client_key),
            _write(top / "stranger", ca, _cert("client", stranger_key, (other, other_key)),
                   stranger_key))


@dataclass
class TlsService:
    port: int
    client: Path
    stranger: Path
    proc: subprocess.Popen[bytes]
    config: Path

    def docker(self, *args: str, input: str | None = None, check: bool = True,
               certs: Path | None = None) -> Result:
        env = dict(os.environ, DOCKER_HOST=f"tcp://127.0.0.1:{self.port}", DOCKER_TLS_VERIFY="1",
                   DOCKER_CERT_PATH=str(certs or self.client), DOCKER_CONFIG=str(self.config))
        return run([DOCKER20, *args], input=input, env=env, check=check, timeout=120)


def _tls_flags(server: Path) -> list[str]:
    return ["--tlsverify", "--tlscacert", str(server / "ca.pem"),
            "--tlscert", str(server / "cert.pem"), "--tlskey", str(server / "key.pem")]


def _wait_tcp(port: int, proc: subprocess.Popen[bytes]) -> None:
    def listening() -> bool:
        assert proc.poll() is None, f"the service exited {proc.returncode}"
        with contextlib.closing(socket.socket()) as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=30, what=f"the service listening on port {port}")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_service(fl: Forklift, certs: tuple[Path, Path, Path],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsService]:
    server, client, stranger = certs
    port = free_port()
    logs = tmp_path_factory.mktemp("tls-log") / "service.log"
    with open(logs, "wb") as out:
        proc = subprocess.Popen([*fl.argv, "system", "service", "--time", "0",
                                 "--tcp", f"127.0.0.1:{port}", *_tls_flags(server)],
                                env=fl.environ(), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        _wait_tcp(port, proc)
        yield TlsService(port, client, stranger, proc, tmp_path_factory.mktemp("docker-config"))
    finally:
        stop(proc)


@pytest.fixture
def need_docker() -> None:
    if not os.access(DOCKER20, os.X_OK):
        pytest.skip(f"{DOCKER20} missing: install the Debian package docker.io")


@pytest.mark.usefixtures("need_docker")
def test_docker_cli_over_tls(tls_service: TlsService, fl: Forklift, name: str) -> None:
    version = tls_service.docker("version", "--format", "{{.Server.APIVersion}}")
    assert version.out.strip() == "1.41"
    assert tls_service.docker("run", "--rm", "busybox", "echo", "hi").out == "hi\n"
    # stdin ends with a TCP half-close under the TLS: the output after it must still come
    piped = tls_service.docker("run", "--rm", "-i", "busybox", "sh", "-c",
                               "cat; sleep 0.2; echo done", input="one\ntwo\n")
    assert piped.out == "one\ntwo\ndone\n"
    cid = fl.out("run", "-d", "--name", name, "busybox", "sleep", "300")
    try:
        wait_for(lambda: fl.status(cid) == "running", what="the container running")
        assert tls_service.docker("exec", name, "echo", "in").out == "in\n"
        exec_i = tls_service.docker("exec", "-i", name, "sh", "-c", "wc -c; echo end",
                                    input="x" * 300_000)
        assert exec_i.out.split() == ["300000", "end"]
    finally:
        fl("rm", "-f", cid, check=False)


@pytest.mark.usefixtures("need_docker")
def test_docker_cli_with_another_ca_is_refused(tls_service: TlsService, fl: Forklift) -> None:
    before = fl.out("ps", "-aq")
    res = tls_service.docker("run", "--rm", "busybox", "true", check=False,
                             certs=tls_service.stranger)
    assert res.code != 0 and "certificate" in res.err.lower(), res
    assert fl.out("ps", "-aq") == before


def _tls_request(port: int, context: ssl.SSLContext) -> bytes:
    """A ping over TLS; what came back (the handshake's or the read's error raised)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _client_context(ca: Path, certs: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if certs is not None:
        context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    return context


def test_clients_without_a_good_certificate_are_refused(tls_service: TlsService) -> None:
    ca = tls_service.client / "ca.pem"
    assert _tls_request(tls_service.port, _client_context(ca, tls_service.client)) \
        .startswith(b"HTTP/1.1 200 ")
    for certs in (None, tls_service.stranger):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _tls_request(tls_service.port, _client_context(ca, certs))
    with socket.create_connection(("127.0.0.1", tls_service.port), timeout=30) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        out = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                out += chunk
        assert b"HTTP/" not in out and b"OK" not in out
    assert _tls_request(tls_service.port, _client_context(ca, tls_service.client)) \
        .startswith(b"HTTP/1.1 200 ")
    assert tls_service.proc.poll() is None


def test_large_body_over_tls(tls_service: TlsService, fl: Forklift) -> None:
    import io
    import tarfile

    payload = os.urandom(20 << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("big")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    body = buf.getvalue()
    context = _client_context(tls_service.client / "ca.pem", tls_service.client)
    with socket.create_connection(("127.0.0.1", tls_service.port), timeout=60) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"POST /images/create?fromSrc=-&repo=tls-big&tag=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200 "), out[:300]
    try:
        assert int(fl.out("image", "inspect", "-f", "{{.Size}}", "tls-big:1")) >= 20 << 20
    finally:
        fl("rmi", "tls-big:1", check=False)


def _listening_unix_sockets(pid: int) -> list[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    with open("/proc/net/unix") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    # Flags 00010000: __SO_ACCEPTCON, a listening socket
    return [r[7] if len(r) > 7 else "" for r in rows if r[6] in inodes and r[3] == "00010000"]


def test_tcp_alone_has_no_unix_socket_and_both_can_be_given(
        tls_service: TlsService, fl: Forklift, certs: tuple[Path, Path, Path]) -> None:
    assert _listening_unix_sockets(tls_service.proc.pid) == []
    home = Path(tempfile.mkdtemp(prefix="fl-tls-", dir="/tmp"))
    sock, port = home / "d.sock", free_port()
    proc = subprocess.Popen([*fl.argv, "system", "service", "--time", "0", "--socket",
                             f"unix://{sock}", "--tcp", f"127.0.0.1:{port}", *_tls_flags(certs[0])],
                            env=fl.environ(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_tcp(port, proc)
        assert _listening_unix_sockets(proc.pid) == [str(sock)]
        assert _tls_request(port, _client_context(certs[1] / "ca.pem", certs[1])) \
            .startswith(b"HTTP/1.1 200 ")
    finally:
        stop(proc)
        assert not sock.exists()
        home.rmdir()


# A flag combination refused exits 125 as every flag misuse of the CLI does (Docker's
# CLI's code); a file that will not do is bad input: 1.
@pytest.mark.parametrize("flags, status", [
    (["--tcp", "127.0.0.1:{port}"], 125),
    (["--tcp", "127.0.0.1:{port}", "--tlsverify", "--tlscacert", "{ca}"], 125),
    (["--tcp", "127.0.0.1:{port}", "--tlscacert", "{ca}", "--tlscert", "{cert}",
      "--tlskey", "{key}"], 125),
    (["--tlsverify", "--tlscacert", "{ca}", "--tlscert", "{cert}", "--tlskey", "{key}"], 125),
    (["--tcp", "127.0.0.1:{port}", "--tlsverify", "--tlscacert", "/nonexistent",
      "--tlscert", "{cert}", "--tlskey", "{key}"], 1),
    (["--tcp", "127.0.0.1:{port}", "--tlsverify", "--tlscacert", "{ca}",
      "--tlscert", "{key}", "--tlskey", "{key}"], 1),
    (["--tcp", "127.0.0.1:{port}", "--tlsverify", "--tlscacert", "{ca}",
      "--tlscert", "{cert}", "--tlskey", "{other_key}"], 1),
    (["--tcp", "nonsense", "--tlsverify", "--tlscacert", "{ca}",
      "--tlscert", "{cert}", "--tlskey", "{key}"], 1),
])
def test_bad_options_open_no_listener(fl: Forklift, certs: tuple[Path, Path, Path],
                                      flags: list[str], status: int) -> None:
    server, client, _ = certs
    port = free_port()
    values = {"port": port, "ca": server / "ca.pem", "cert": server / "cert.pem",
              "key": server / "key.pem", "other_key": client / "key.pem"}
    res = fl("system", "service", "--time", "1", *[f.format(**values) for f in flags],
             check=False, timeout=30)
    assert res.code == status, res
    assert one_line_error(res)
    assert "Traceback" not in res.err
    with contextlib.closing(socket.socket()) as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
