"""The registry client's protocol corner cases, driven through ``httpx.MockTransport``.

An in-memory registry (``FakeRegistry``) speaks enough of the distribution spec for
the client; each test bends one answer (a challenge, a redirect, a lying header, a
garbage body, a 429) and asserts the one result or the one error that follows. No
network, no root: the pulls write layers owned by the current user into a store
under pytest's tmp dir. Real registries are in tests/registry.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import random
import re
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from forklift import oci
from forklift.engine import distribution
from forklift.errors import (
    BadArchive,
    DigestMismatch,
    LimitExceeded,
    NotFound,
    RegistryAuthError,
    RegistryError,
    RegistryTooLarge,
    RegistryUnreachable,
)
from forklift.formats import layerblobs
from forklift.registry import auth
from forklift.registry.api import Repository
from forklift.registry.client import RegistryClient
from forklift.registry.config import Credentials
from forklift.registry.progress import Reporter
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store

HOST = "registry.test"
TOKEN_REALM = "https://auth.test/token"
USER, PASSWORD = "packager", "s3cret"
Hook = Callable[[httpx.Request], httpx.Response | None]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


# ----------------------------------------------------------------------------- the fake

@dataclass
class FakeRegistry:
    """A /v2/ registry in memory. ``auth``: None, "basic" or "bearer"; ``hook`` may
    answer any request first (return None to let the registry answer)."""

    auth: str | None = None
    hook: Hook | None = None
    mount_ok: bool = True
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)      # repo → digest → data
    manifests: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    token_requests: list[httpx.Request] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: as_stream(self.handle(request)))

    def client(self, **kw: Any) -> RegistryClient:
        return RegistryClient(HOST, transport=self.transport(), **kw)

    # -- content
    def put_blob(self, repo: str, data: bytes) -> str:
        self.blobs.setdefault(repo, {})[sha(data)] = data
        return sha(data)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        entries = self.manifests.setdefault(repo, {})
        entries[ref] = entries[sha(data)] = (data, media_type)
        return sha(data)

    # -- requests
    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            if request.url.host == "auth.test":
                self.token_requests.append(request)
                return self._token(request)
            self.requests.append(request)
            if self.hook is not None and (answer := self.hook(request)) is not None:
                return answer
            refused = self._refuse(request)
            if refused is not None:
                return refused
            return self._route(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        given = request.headers.get("authorization")
        if given is not None and given != _basic():
            return httpx.Response(401)
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return httpx.Response(200, json={"token": token, "expires_in": 300})

    def _refuse(self, request: httpx.Request) -> httpx.Response | None:
        given = request.headers.get("authorization", "")
        if self.auth == "basic" and given != _basic():
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="fake"'},
                                  content=errors_body("UNAUTHORIZED", "authentication required"))
        if self.auth == "bearer" and given.removeprefix("Bearer ") not in self.tokens:
            scope = _scope(request.url.path)
            challenge = f'Bearer realm="{TOKEN_REALM}",service="fake"'
            if scope:
                challenge += f',scope="{scope}"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge},
                                  content=errors_body("UNAUTHORIZED", "authentication required"))
        return None

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200, json={})
        m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/(.+)", path)
        if m is None:
            return httpx.Response(404, content=errors_body("NAME_UNKNOWN", "no route"))
        repo, kind, rest = m.groups()
        if kind == "manifests":
            return self._manifest(request, repo, rest)
        if rest == "uploads/" and request.method == "POST":
            return self._start_upload(request, repo)
        if rest.startswith("uploads/"):
            return self._upload(request, repo, rest.split("/", 1)[1])
        return self._blob(request, repo, rest)

    def _manifest(self, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
        if request.method == "PUT":
            digest = self.put_manifest(repo, ref, request.content,
                                       request.headers["content-type"])
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        found = self.manifests.get(repo, {}).get(ref)
        if found is None:
            return httpx.Response(404, content=errors_body("MANIFEST_UNKNOWN",
                                                           "manifest unknown"))
        data, media_type = found
        return httpx.Response(200, content=data, headers={
            "Content-Type": media_type, "Docker-Content-Digest": sha(data)})

    def _blob(self, request: httpx.Request, repo: str, digest: str) -> httpx.Response:
        data = self.blobs.get(repo, {}).get(digest)
        if data is None:
            return httpx.Response(404, content=errors_body("BLOB_UNKNOWN", "blob unknown"))
        headers = {"Docker-Content-Digest": digest, "Content-Length": str(len(data))}
        return httpx.Response(200, headers=headers,
                              content=b"" if request.method == "HEAD" else data)

    def _start_upload(self, request: httpx.Request, repo: str) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
        if mount and self.mount_ok and mount in self.blobs.get(source, {}):
            self.blobs.setdefault(repo, {})[mount] = self.blobs[source][mount]
            return httpx.Response(201, headers={"Location": f"/v2/{repo}/blobs/{mount}"})
        session = uuid.uuid4().hex
        self.uploads[session] = bytearray()
        return httpx.Response(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{session}"})

    def _upload(self, request: httpx.Request, repo: str, session: str) -> httpx.Response:
        buf = self.uploads.get(session)
        if buf is None:
            return httpx.Response(404, content=errors_body("BLOB_UPLOAD_UNKNOWN", "unknown"))
        if request.method == "PATCH":
            start, _, end = request.headers["content-range"].partition("-")
            if int(start) != len(buf) or int(end) != len(buf) + len(request.content) - 1:
                return httpx.Response(416, content=errors_body("BLOB_UPLOAD_INVALID",
                                                               "bad range"))
            buf += request.content
            # a relative location with fresh state, as distribution/registry answers
            return httpx.Response(202, headers={
                "Location": f"/v2/{repo}/blobs/uploads/{session}?_state={len(buf)}",
                "Range": f"0-{len(buf) - 1}"})
        buf += request.content
        digest = parse_qs(request.url.query.decode())["digest"][0]
        if sha(bytes(buf)) != digest:
            return httpx.Response(400, content=errors_body("DIGEST_INVALID",
                                                           "provided digest did not match"))
        del self.uploads[session]
        self.put_blob(repo, bytes(buf))
        return httpx.Response(201, headers={"Docker-Content-Digest": digest,
                                            "Location": f"/v2/{repo}/blobs/{digest}"})

    def calls(self, method: str, fragment: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and fragment in str(r.url)]


class _Chunks(httpx.SyncByteStream):
    def __init__(self, data: bytes, size: int = 4096) -> None:
        self.data, self.size = data, size

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), self.size):
            yield self.data[i:i + self.size]


def as_stream(resp: httpx.Response) -> httpx.Response:
    """A response built from bytes is read at once, and the client's ``iter_raw`` then
    refuses it: hand it over as a stream in pieces, as the network would."""
    if not hasattr(resp, "_content"):
        return resp  # already a stream (a test's own)
    return httpx.Response(resp.status_code, headers=resp.headers, stream=_Chunks(resp.content))


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _scope(path: str) -> str:
    m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/.*", path)
    return f"repository:{m.group(1)}:pull" if m else ""


# ----------------------------------------------------------------------------- images

@dataclass
class Image:
    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def id(self) -> str:
        return sha(self.config)


def make_image(text: str, arch: str | None = None) -> Image:
    """A one-layer image whose file is owned by the current user (extractable without root)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        info.uid, info.gid = os.getuid(), os.getgid()
        tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    layer = gzip.compress(plain, mtime=0)
    config = oci.canonical_json({
        "architecture": arch or oci.go_arch(), "os": "linux",
        "config": {"Cmd": ["cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(plain)]}})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST,
        "config": {"mediaType": oci.DOCKER_CONFIG, "size": len(config), "digest": sha(config)},
        "layers": [{"mediaType": oci.DOCKER_LAYER_GZIP, "size": len(layer),
                    "digest": sha(layer)}]}, indent=3).encode()
    return Image(config, layer, manifest)


def publish(reg: FakeRegistry, repo: str, tag: str, image: Image) -> str:
    reg.put_blob(repo, image.config)
    reg.put_blob(repo, image.layer)
    return reg.put_manifest(repo, tag, image.manifest, oci.DOCKER_MANIFEST)


def publish_index(reg: FakeRegistry, repo: str, tag: str,
                  entries: list[tuple[Image, dict[str, str]]]) -> str:
    manifests = []
    for image, platform in entries:
        digest = publish(reg, repo, sha(image.manifest), image)
        manifests.append({"mediaType": oci.DOCKER_MANIFEST, "size": len(image.manifest),
                          "digest": digest, "platform": platform})
    index = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                        "manifests": manifests}).encode()
    return reg.put_manifest(repo, tag, index, oci.OCI_INDEX)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stored login, insecure list or certs.d from the machine."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("FORKLIFT_CONFIG_DIR", str(tmp_path / "forklift-config"))
    monkeypatch.setenv("FORKLIFT_CERTS_D", str(tmp_path / "certs.d"))
    monkeypatch.delenv("FORKLIFT_INSECURE_REGISTRIES", raising=False)


@pytest.fixture
def reg() -> FakeRegistry:
    return FakeRegistry()


def repo_of(reg: FakeRegistry, name: str = "team/app", push: bool = False,
            **kw: Any) -> Repository:
    return Repository(reg.client(**kw), name, push)


def quiet() -> Reporter:
    return Reporter(out=io.StringIO())


# ----------------------------------------------------------------------------- auth

def test_basic_challenge_answered_with_credentials(reg: FakeRegistry) -> None:
    reg.auth = "basic"
    image = make_image("basic")
    publish(reg, "team/app", "1", image)
    got = repo_of(reg, creds=Credentials(USER, PASSWORD)).get_manifest("1")
    assert got.data == image.manifest
    assert reg.calls("GET", "/manifests/1")[-1].headers["authorization"] == _basic()
    with pytest.raises(RegistryAuthError, match="unauthorized: authentication required"):
        repo_of(reg, anonymous=True).get_manifest("1")


def test_bearer_token_scoped_and_cached(reg: FakeRegistry) -> None:
    reg.auth = "bearer"
    image = make_image("bearer")
    publish(reg, "team/app", "1", image)
    repo = repo_of(reg, creds=Credentials(USER, PASSWORD))
    repo.get_manifest("1")
    assert repo.read_blob(image.id, len(image.config)) == image.config
    assert len(reg.token_requests) == 1  # one token for the scope set, reused
    query = parse_qs(reg.token_requests[0].url.query.decode())
    assert query == {"service": ["fake"], "scope": ["repository:team/app:pull"]}
    assert reg.token_requests[0].headers["authorization"] == _basic()
    used = {r.headers.get("authorization") for r in reg.requests if "/team/app/" in r.url.path}
    assert len(used) == 1 and used.pop().startswith("Bearer ")  # /v2/ gave the challenge


def test_bearer_token_expiry_fetches_a_new_one(reg: FakeRegistry,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

    monkeypatch.setattr(auth, "time", Clock)
    reg.auth = "bearer"
    publish(reg, "team/app", "1", make_image("expiry"))
    repo = repo_of(reg, anonymous=True)
    repo.get_manifest("1")
    now[0] += 250  # expires_in 300, refreshed 10 s early
    repo.get_manifest("1")
    assert len(reg.token_requests) == 1
    now[0] += 50
    repo.get_manifest("1")
    assert len(reg.token_requests) == 2


def test_401_after_a_token_retries_once_then_fails(reg: FakeRegistry) -> None:
    reg.auth = "bearer"
    publish(reg, "team/app", "1", make_image("denied"))

    def revoke(request: httpx.Request) -> httpx.Response | None:
        if "/manifests/" in request.url.path:
            reg.tokens.clear()  # every token is rejected the moment it is used
        return None

    reg.hook = revoke
    with pytest.raises(RegistryAuthError, match="team/app:1: unauthorized"):
        repo_of(reg, anonymous=True).get_manifest("1")
    assert len(reg.calls("GET", "/manifests/1")) == 2  # with a token, then with a fresh one
    assert len(reg.token_requests) == 2


def test_token_service_refusal_and_garbage(reg: FakeRegistry) -> None:
    reg.auth = "bearer"
    publish(reg, "team/app", "1", make_image("tokens"))
    with pytest.raises(RegistryAuthError, match="authentication failed at https://auth.test"):
        repo_of(reg, creds=Credentials(USER, "wrong")).get_manifest("1")

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>maintenance</html>")

    client = RegistryClient(HOST, anonymous=True, transport=httpx.MockTransport(
        lambda r: html(r) if r.url.host == "auth.test" else as_stream(reg.handle(r))))
    with pytest.raises(RegistryError, match="token service .* sent a bad answer"):
        Repository(client, "team/app").get_manifest("1")


def test_login_checks_credentials_before_storing(reg: FakeRegistry, tmp_path: Path) -> None:
    reg.auth = "basic"
    with pytest.raises(RegistryAuthError, match="incorrect username or password"):
        distribution.login(HOST, USER, "wrong", transport=reg.transport())
    assert not (tmp_path / "docker-config" / "config.json").exists()
    assert distribution.login(HOST, USER, PASSWORD, transport=reg.transport()) == "Login Succeeded"
    stored = json.loads((tmp_path / "docker-config" / "config.json").read_text())
    assert base64.b64decode(stored["auths"][HOST]["auth"]).decode() == f"{USER}:{PASSWORD}"


# ----------------------------------------------------------------------------- blobs

def test_blob_redirect_to_storage_drops_the_registry_credentials(reg: FakeRegistry) -> None:
    reg.auth = "basic"
    image = make_image("redirected")
    publish(reg, "team/app", "1", image)
    storage: list[httpx.Request] = []
    where = f"https://storage.test/bucket/{sha(image.layer)[7:]}?sig=x"

    def redirect(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "storage.test":
            storage.append(request)
            return httpx.Response(200, content=image.layer)
        if "/blobs/" in request.url.path and request.method == "GET":
            return httpx.Response(307, headers={"Location": where})
        return None

    reg.hook = redirect
    repo = repo_of(reg, creds=Credentials(USER, PASSWORD))
    reader = repo.open_blob(sha(image.layer), len(image.layer))
    try:
        assert reader.read() == image.layer
        assert reader.finish_digest() == sha(image.layer)
    finally:
        reader.close()
    assert len(storage) == 1 and "authorization" not in storage[0].headers


def test_blob_body_checked_while_streaming(reg: FakeRegistry) -> None:
    image = make_image("hostile blob")
    publish(reg, "team/app", "1", image)
    digest, size = image.id, len(image.config)
    bodies = {
        "flipped": image.config[:-1] + bytes([image.config[-1] ^ 1]),
        "longer": image.config + b"x",
        "shorter": image.config[:-1],
    }
    for case, body in bodies.items():
        reg.hook = lambda r, body=body: (  # type: ignore[misc]
            httpx.Response(200, content=body) if "/blobs/" in r.url.path else None)
        expected: tuple[type[Exception], str] = {
            "flipped": (DigestMismatch, "digest mismatch"),
            "longer": (RegistryTooLarge, f"more than the {size} bytes"),
            "shorter": (RegistryError, f"short read: got {size - 1} of {size}"),
        }[case]
        with pytest.raises(expected[0], match=expected[1]):
            repo_of(reg).read_blob(digest, size)


class _Breaking(httpx.SyncByteStream):
    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset by peer")


def test_connection_breaking_mid_blob(reg: FakeRegistry) -> None:
    data = os.urandom(100_000)
    digest = reg.put_blob("team/app", data)
    reg.hook = lambda r: (httpx.Response(200, stream=_Breaking(data[:70_000]))
                          if "/blobs/" in r.url.path else None)
    reader = repo_of(reg).open_blob(digest, len(data))
    with pytest.raises(RegistryUnreachable, match="download interrupted after 70000 bytes:"
                                                  " connection reset by peer"):
        reader.read()
    reader.close()


def test_blob_digest_header(reg: FakeRegistry) -> None:
    image = make_image("headers")
    publish(reg, "team/app", "1", image)
    digest = image.id

    def header(value: str | None) -> Hook:
        def hook(request: httpx.Request) -> httpx.Response | None:
            if "/blobs/" not in request.url.path:
                return None
            headers = {"Docker-Content-Digest": value} if value is not None else {}
            return httpx.Response(200, content=image.config, headers=headers)
        return hook

    for ok in (None, "md5:1234", ""):  # missing or not a sha256 digest: the body decides
        reg.hook = header(ok)
        assert repo_of(reg).read_blob(digest, len(image.config)) == image.config
    reg.hook = header("sha256:" + "0" * 64)
    with pytest.raises(DigestMismatch, match="registry claims digest sha256:000"):
        repo_of(reg).read_blob(digest, len(image.config))


# ----------------------------------------------------------------------------- manifests

def test_manifest_digest_checks(reg: FakeRegistry) -> None:
    image = make_image("manifest")
    digest = publish(reg, "team/app", "1", image)
    repo = repo_of(reg)
    assert repo.get_manifest(digest).digest == digest
    lying = {"Docker-Content-Digest": "sha256:" + "1" * 64, "Content-Type": oci.DOCKER_MANIFEST}
    reg.hook = lambda r: httpx.Response(200, content=image.manifest, headers=lying)
    with pytest.raises(DigestMismatch, match="claims digest sha256:111"):
        repo.get_manifest("1")
    tampered = image.manifest + b" "
    reg.hook = lambda r: httpx.Response(200, content=tampered,
                                        headers={"Content-Type": oci.DOCKER_MANIFEST})
    assert repo.get_manifest("1").digest == sha(tampered)  # by tag: nothing to hold it to
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        repo.get_manifest(digest)


def test_put_manifest_stored_as_something_else(reg: FakeRegistry) -> None:
    image = make_image("put")
    reg.hook = lambda r: httpx.Response(201, headers={"Docker-Content-Digest": "sha256:" + "2" * 64})
    with pytest.raises(DigestMismatch, match="stored manifest team/app:1 as sha256:222"):
        repo_of(reg, push=True).put_manifest("1", image.manifest, oci.DOCKER_MANIFEST)


def test_manifest_over_the_limit(reg: FakeRegistry) -> None:
    reg.hook = lambda r: httpx.Response(200, content=b"{" + b" " * (4 << 20) + b"}")
    with pytest.raises(RegistryTooLarge, match="manifest larger than 4194304 bytes"):
        repo_of(reg).get_manifest("1")


@pytest.mark.parametrize("body, content_type, error, needle", [
    (b"<html><body>Welcome to nginx!</body></html>", "text/html", BadArchive, "not valid JSON"),
    (b"[1, 2]", oci.OCI_MANIFEST, BadArchive, "not a JSON object"),
    (b'{"mediaType": ["x"], "schemaVersion": 2}', oci.OCI_MANIFEST, RegistryError,
     "invalid mediaType"),
    (b'{"schemaVersion": 1, "fsLayers": []}', "application/json", RegistryError, "schema 1"),
    (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "", RegistryError,
     "unsupported manifest type 'text/plain'"),
    (b'{"schemaVersion": 2, "config": {"digest": "sha256:../../etc/passwd", "size": 1},'
     b' "layers": []}', oci.OCI_MANIFEST, BadArchive, "config: invalid digest"),
    (b'{"schemaVersion": 2, "config": {"digest": "sha256:' + b"a" * 64 + b'", "size": 1}}',
     oci.OCI_MANIFEST, BadArchive, "has no layers list"),
])
def test_garbage_manifests_are_one_clear_error(reg: FakeRegistry, store: Store, body: bytes,
                                               content_type: str, error: type[Exception],
                                               needle: str) -> None:
    reg.hook = lambda r: (httpx.Response(200, content=body, headers={"Content-Type": content_type})
                          if "/manifests/" in r.url.path else None)
    with pytest.raises(error, match=needle) as caught:
        distribution.pull(store, f"{HOST}/team/app:1", reporter=quiet(),
                          transport=reg.transport())
    assert "\n" not in str(caught.value)
    assert image_store.all_tags(store) == []


@pytest.mark.parametrize("status, body, error, needle", [
    (404, b"<html>not here</html>", NotFound, "manifest for registry.test/team/app:1: 404 Not Found"),
    (404, errors_body("MANIFEST_UNKNOWN", "manifest unknown"), NotFound,
     "manifest for registry.test/team/app:1: manifest unknown"),
    (403, b"", RegistryAuthError, "denied: requested access to the resource is denied"),
    (429, errors_body("TOOMANYREQUESTS", "You have reached your pull rate limit."),
     RegistryError, "toomanyrequests: You have reached your pull rate limit."),
    (503, b"<html>upstream down</html>", RegistryError, "503 Service Unavailable"),
])
def test_error_statuses(reg: FakeRegistry, status: int, body: bytes, error: type[Exception],
                        needle: str) -> None:
    reg.hook = lambda r: (httpx.Response(status, content=body)
                          if "/manifests/" in r.url.path else None)
    with pytest.raises(error, match=re.escape(needle)):
        repo_of(reg).get_manifest("1")
    assert len(reg.calls("GET", "/manifests/")) == 1  # not retried


def test_unreachable_and_broken_ping(reg: FakeRegistry) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client = RegistryClient(HOST, transport=httpx.MockTransport(refuse))
    with pytest.raises(RegistryUnreachable, match="cannot reach registry registry.test:"
                                                  " connection refused"):
        client.ping()
    reg.hook = lambda r: httpx.Response(500) if r.url.path == "/v2/" else None
    with pytest.raises(RegistryError, match="/v2/ answered 500"):
        reg.client().ping()


# ----------------------------------------------------------------------------- uploads

def test_chunked_upload_follows_each_location(reg: FakeRegistry, tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    repo = repo_of(reg, push=True)
    moved: list[int] = []
    repo.upload(repo.start_upload(), str(path), sha(data), len(data), 4096, moved.append)
    patches = reg.calls("PATCH")
    assert [p.headers["content-range"] for p in patches] == ["0-4095", "4096-8191", "8192-9999"]
    assert [len(p.content) for p in patches] == [4096, 4096, 1808]
    assert "_state=4096" in str(patches[1].url) and "_state=8192" in str(patches[2].url)
    final = reg.calls("PUT")[-1]
    assert final.content == b"" and f"_state=10000&digest={sha(data)}" in str(final.url)
    assert reg.blobs["team/app"][sha(data)] == data
    assert sum(moved) == len(data)


def test_upload_refusals(reg: FakeRegistry, tmp_path: Path) -> None:
    data = os.urandom(5000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    repo = repo_of(reg, push=True)
    with pytest.raises(RegistryError, match="upload blob .*: digest invalid"):
        repo.upload(repo.start_upload(), str(path), "sha256:" + "3" * 64, len(data), 1 << 20)
    reg.hook = lambda r: (httpx.Response(416, content=errors_body("BLOB_UPLOAD_INVALID", "range"))
                          if r.method == "PATCH" else None)
    with pytest.raises(RegistryError, match="blob upload invalid: range"):
        repo.upload(repo.start_upload(), str(path), sha(data), len(data), 1024)
    reg.hook = lambda r: httpx.Response(202) if r.method == "POST" else None
    with pytest.raises(RegistryError, match="upload answer without a Location"):
        repo.start_upload()


@pytest.mark.parametrize("mount_ok", [True, False])
def test_push_mounts_from_a_sibling_repository(reg: FakeRegistry, store: Store,
                                               mount_ok: bool) -> None:
    """201: mounted, nothing uploaded. 202: the registry opened an upload instead."""
    image = make_image("mounted")
    publish(reg, "team/source", "1", image)
    distribution.pull(store, f"{HOST}/team/source:1", reporter=quiet(), transport=reg.transport())
    with store.transaction():
        image_store.set_tag(store, f"{HOST}/team/target:1", image.id)
    reg.mount_ok = mount_ok
    reg.requests.clear()
    out = io.StringIO()
    result = distribution.push(store, f"{HOST}/team/target:1", reporter=Reporter(out=out),
                               transport=reg.transport())
    mounts = [r for r in reg.calls("POST") if "mount=" in str(r.url)]
    assert len(mounts) == 2  # the layer and the config
    assert all("from=team%2Fsource" in str(r.url) or "from=team/source" in str(r.url)
               for r in mounts)
    uploads = reg.calls("PUT", "/blobs/uploads/")
    if mount_ok:
        assert uploads == [] and "Mounted from team/source" in out.getvalue()
    else:
        assert len(uploads) == 2 and "Pushed" in out.getvalue()
    assert reg.blobs["team/target"] == reg.blobs["team/source"]
    assert result[0].digest == sha(image.manifest)  # the pulled manifest, pushed again


# ----------------------------------------------------------------------------- platforms

def _host(**extra: str) -> dict[str, str]:
    return {"os": "linux", "architecture": oci.go_arch(), **extra}


def test_pull_chooses_this_machine_from_an_index(reg: FakeRegistry, store: Store) -> None:
    native, foreign = make_image("native"), make_image("foreign", "s390x")
    if oci.go_arch() == "s390x":
        foreign = make_image("foreign", "ppc64le")
    foreign_arch = json.loads(foreign.config)["architecture"]
    index = publish_index(reg, "team/multi", "1", [
        (foreign, {"os": "linux", "architecture": foreign_arch}),
        (native, _host())])
    result = distribution.pull(store, f"{HOST}/team/multi:1", reporter=quiet(),
                               transport=reg.transport())
    assert result.image_id == native.id and result.digest == index
    again = distribution.pull(store, f"{HOST}/team/multi:1", platform=f"linux/{foreign_arch}",
                              reporter=quiet(), transport=reg.transport())
    assert again.image_id == foreign.id


def test_pull_prefers_the_exact_variant(reg: FakeRegistry, store: Store) -> None:
    loose, exact = make_image("no variant", "arm"), make_image("v7", "arm")
    publish_index(reg, "team/arm", "1", [
        (loose, {"os": "linux", "architecture": "arm"}),
        (exact, {"os": "linux", "architecture": "arm", "variant": "v7"})])
    result = distribution.pull(store, f"{HOST}/team/arm:1", platform="linux/arm/v7",
                               reporter=quiet(), transport=reg.transport())
    assert result.image_id == exact.id
    other = distribution.pull(store, f"{HOST}/team/arm:1", platform="linux/arm/v6",
                              reporter=quiet(), transport=reg.transport())
    assert other.image_id == loose.id


def test_pull_refuses_an_index_without_this_platform(reg: FakeRegistry, store: Store) -> None:
    image = make_image("elsewhere", "s390x")
    publish_index(reg, "team/foreign", "1", [
        (image, {"os": "linux", "architecture": "s390x"}),
        (image, {"os": "unknown", "architecture": "unknown"})])
    with pytest.raises(RegistryError, match=re.escape(
            "no matching manifest for linux/mips64 in the manifest list entries"
            " (available: linux/s390x)")):
        distribution.pull(store, f"{HOST}/team/foreign:1", platform="linux/mips64",
                          reporter=quiet(), transport=reg.transport())
    assert image_store.all_tags(store) == []
    assert reg.calls("GET", "/blobs/") == []  # refused before any blob


@pytest.mark.parametrize("want, offered, score", [
    ("linux/amd64", "linux/amd64", 2),
    ("linux/amd64", "linux/amd64/v3", 1),
    ("linux/arm64/v8", "linux/arm64", 1),
    ("linux/arm64/v8", "linux/arm64/v8", 2),
    ("linux/arm/v7", "linux/arm/v6", 0),
    ("linux/amd64", "linux/arm64", 0),
    ("linux/amd64", "windows/amd64", 0),
])
def test_platform_score(want: str, offered: str, score: int) -> None:
    assert oci.parse_platform(want).score(oci.parse_platform(offered)) == score


def test_best_match_takes_the_first_of_the_best() -> None:
    def entry(n: int, platform: str | None) -> oci.Descriptor:
        return oci.Descriptor(oci.OCI_MANIFEST, "sha256:" + str(n) * 64, 1,
                              platform=oci.parse_platform(platform) if platform else None)

    entries = [entry(1, None), entry(2, "linux/arm64"), entry(3, "linux/arm64/v8"),
               entry(4, "linux/arm64/v8")]
    assert oci.best_match(oci.parse_platform("linux/arm64/v8"), entries) == entries[2]
    assert oci.best_match(oci.parse_platform("linux/arm64"), entries) == entries[1]
    assert oci.best_match(oci.parse_platform("linux/riscv64"), entries) is None


# ----------------------------------------------------------------------------- descriptors

GOOD = "sha256:" + "a" * 64


@pytest.mark.parametrize("obj, needle", [
    ("not an object", "malformed descriptor"),
    ({"digest": "sha256:../../etc/passwd", "size": 1}, "invalid digest"),
    ({"digest": "md5:" + "a" * 32, "size": 1}, "invalid digest"),
    ({"digest": GOOD, "size": -1}, "invalid size"),
    ({"digest": GOOD, "size": True}, "invalid size"),
    ({"digest": GOOD, "size": "12"}, "invalid size"),
    ({"digest": GOOD, "size": 1, "mediaType": 7}, "invalid mediaType"),
    ({"digest": GOOD, "size": 1, "urls": "https://x"}, "invalid urls"),
    ({"digest": GOOD, "size": 1, "annotations": {"a": 1}}, "invalid annotations"),
    ({"digest": GOOD, "size": 1, "platform": "linux/amd64"}, "invalid platform"),
    ({"digest": GOOD, "size": 1, "platform": {"os": "linux", "architecture": 64}},
     "invalid platform"),
])
def test_descriptor_refusals(obj: object, needle: str) -> None:
    with pytest.raises(BadArchive, match=f"^layer 3: {needle}"):
        oci.Descriptor.parse(obj, "layer 3")


def test_descriptor_round_trip() -> None:
    raw = {"mediaType": oci.OCI_MANIFEST, "size": 7, "digest": GOOD,
           "urls": ["https://mirror.test/x"], "annotations": {"org.example": "yes"},
           "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}
    desc = oci.Descriptor.parse(raw, "entry")
    assert desc.platform == oci.Platform("linux", "arm", "v7")
    assert desc.to_json() == raw and list(desc.to_json()) == list(raw)
    bare = oci.Descriptor.parse({"digest": GOOD, "size": 0, "platform": {"os": "linux"}}, "x")
    assert (bare.media_type, bare.urls, bare.annotations, bare.platform) == ("", (), {}, None)


# ----------------------------------------------------------------------------- one pass, in parallel

def _layer_tar(name: str, data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        info.uid, info.gid = os.getuid(), os.getgid()
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def publish_layers(reg: FakeRegistry, repo: str, tag: str,
                   blobs: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """An image of these (plain tar, compressed blob) layers; returns (config, manifest digest)."""
    config = oci.canonical_json({
        "architecture": oci.go_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(plain) for plain, _ in blobs]}})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST,
        "config": {"mediaType": oci.DOCKER_CONFIG, "size": len(config), "digest": sha(config)},
        "layers": [{"mediaType": oci.DOCKER_LAYER_GZIP, "size": len(blob), "digest": sha(blob)}
                   for _, blob in blobs]}).encode()
    reg.put_blob(repo, config)
    for _, blob in blobs:
        reg.put_blob(repo, blob)
    return config, reg.put_manifest(repo, tag, manifest, oci.DOCKER_MANIFEST)


def _three_layers() -> list[tuple[bytes, bytes]]:
    out = []
    for n in range(3):
        plain = _layer_tar(f"file{n}", _content(n))
        # the middle layer in two gzip members with zero padding after each, as some
        # producers write them: the blob stays byte for byte what the registry holds
        blob = (gzip.compress(plain, mtime=0) if n != 1 else
                gzip.compress(plain[:1000], mtime=0) + b"\0" * 3 + gzip.compress(plain[1000:]) + b"\0")
        out.append((plain, blob))
    return out


def _content(n: int) -> bytes:
    return random.Random(n).randbytes(300_000) + b"x" * 200_000


def _flipped(blob: bytes) -> bytes:
    """One bit of the last compressed byte changed (the 8 after it are gzip's trailer)."""
    return blob[:-9] + bytes([blob[-9] ^ 0x40]) + blob[-8:]


def _store_files(store: Store) -> dict[str, list[str]]:
    """Blob files, layer directories and scratch entries (the process's dirty marker aside)."""
    return {sub: sorted(e for e in os.listdir(os.path.join(store.root, sub)) if "-dirty-" not in e)
            for sub in ("blobs/sha256", "layers", "tmp")}


def test_pulled_layers_keep_their_sources_and_push_back_unchanged(
        reg: FakeRegistry, store: Store) -> None:
    """The compressed bytes are only hashed: the layer is its directory and tar-split,
    and where its blob came from is recorded for a push."""
    layers = _three_layers()
    config, digest = publish_layers(reg, "team/three", "1", layers)
    result = distribution.pull(store, f"{HOST}/team/three:1", reporter=quiet(),
                               transport=reg.transport())
    assert result.image_id == sha(config)
    for n, (plain, blob) in enumerate(layers):
        row = store.conn.execute("SELECT dir, blob, blob_media_type FROM layers WHERE diff_id=?",
                                 (sha(plain),)).fetchone()
        assert row[1] == sha(plain) and row[2] == layer_store.TARSPLIT
        assert not Path(store.blob_path(sha(blob))).exists()
        assert (Path(store.layer_path(row[0])) / f"file{n}").read_bytes() == _content(n)
        source = store.conn.execute("SELECT digest, size, repository FROM layer_sources"
                                    " WHERE diff_id=?", (sha(plain),)).fetchall()
        assert [tuple(r) for r in source] == [(sha(blob), len(blob), f"{HOST}/team/three")]
        with layerblobs.open_uncompressed(store, layer_store.get(store, sha(plain))) as tar:  # type: ignore[arg-type]
            assert tar.read() == plain
    assert _store_files(store)["tmp"] == []
    distribution.push(store, f"{HOST}/team/three:1", reporter=quiet(), transport=reg.transport())
    assert reg.manifests["team/three"]["1"][0] == reg.manifests["team/three"][digest][0]
    assert sha(reg.manifests["team/three"]["1"][0]) == digest


def _pulled_and_tagged_for_elsewhere(reg: FakeRegistry, store: Store) -> tuple[list[tuple[bytes, bytes]], str]:
    """Three layers published and pulled from HOST, the image tagged for another registry
    (same transport), so that a push there must bring the blobs from the source."""
    layers = _three_layers()
    _, digest = publish_layers(reg, "team/three", "1", layers)
    distribution.pull(store, f"{HOST}/team/three:1", reporter=quiet(), transport=reg.transport())
    image_store.set_tag(store, "other.test/copy/three:1", image_store.resolve(store, f"{HOST}/team/three:1"))
    return layers, digest


def test_pushed_elsewhere_a_pulled_blob_is_fetched_again_from_its_source(
        reg: FakeRegistry, store: Store) -> None:
    layers, digest = _pulled_and_tagged_for_elsewhere(reg, store)
    reg.requests.clear()
    distribution.push(store, "other.test/copy/three:1", reporter=quiet(), transport=reg.transport())
    assert sha(reg.manifests["copy/three"]["1"][0]) == digest
    assert all(reg.blobs["copy/three"][sha(blob)] == blob for _, blob in layers)
    fetched = [r for r in reg.requests if r.method == "GET" and r.url.host == HOST
               and "/team/three/blobs/" in r.url.path]
    assert len(fetched) == 3
    assert store.conn.execute("SELECT COUNT(*) FROM compressed_blobs").fetchone()[0] == 0
    assert _store_files(store)["tmp"] == []


def test_a_source_answering_other_bytes_makes_the_push_compress_here(
        reg: FakeRegistry, store: Store) -> None:
    layers, digest = _pulled_and_tagged_for_elsewhere(reg, store)
    reg.hook = lambda r: (httpx.Response(200, content=_flipped(reg.blobs["team/three"][r.url.path.rsplit("/", 1)[1]]))
                          if r.method == "GET" and "/team/three/blobs/" in r.url.path else None)
    distribution.push(store, "other.test/copy/three:1", reporter=quiet(), transport=reg.transport())
    pushed = reg.manifests["copy/three"]["1"][0]
    assert sha(pushed) != digest  # the middle layer's two-member gzip is not what gzip makes
    made = store.conn.execute("SELECT digest FROM compressed_blobs").fetchall()
    assert len(made) == 3
    for (blob_digest,) in made:
        assert sha(reg.blobs["copy/three"][blob_digest]) == blob_digest
    diff_ids = [sha(plain) for plain, _ in layers]
    got = [sha(gzip.decompress(reg.blobs["copy/three"][d["digest"]]))
           for d in json.loads(pushed)["layers"]]
    assert got == diff_ids
    assert _store_files(store)["tmp"] == []


def _empty_store_state(store: Store) -> None:
    assert image_store.all_tags(store) == []
    for table in ("images", "layers", "blobs", "repo_digests"):
        assert store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    assert _store_files(store) == {"blobs/sha256": [], "layers": [], "tmp": []}
    from forklift.store import check
    findings = check.check(store, grace=0)
    assert findings.ok, [str(p) for p in findings.problems]


@pytest.mark.parametrize("bad", ["flipped", "short", "not gzip"])
def test_one_bad_layer_among_good_ones_leaves_nothing(reg: FakeRegistry, store: Store,
                                                      bad: str) -> None:
    layers = _three_layers()
    publish_layers(reg, "team/bad", "1", layers)
    victim = layers[1][1]
    body = {"flipped": _flipped(victim),
            "short": victim[:len(victim) // 2],
            "not gzip": b"\x1f\x8bnot really gzip".ljust(len(victim), b"!")}[bad]
    reg.hook = lambda r: (httpx.Response(200, content=body)
                          if r.url.path.endswith(sha(victim)) else None)
    with pytest.raises((DigestMismatch, RegistryError, BadArchive)) as caught:
        distribution.pull(store, f"{HOST}/team/bad:1", reporter=quiet(),
                          transport=reg.transport())
    assert victim and sha(victim)[7:19] in str(caught.value) or "digest mismatch" in str(caught.value)
    _empty_store_state(store)


class _Stall(httpx.SyncByteStream):
    """Sends a first piece, then nothing until the client closes the response."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = threading.Event()
        self.gave_up = False

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        # generous: only a pull that never cuts this download short waits it out
        if not self.closed.wait(120):
            self.gave_up = True
            raise httpx.ReadTimeout("stalled")

    def close(self) -> None:
        self.closed.set()


def test_a_failing_layer_cuts_a_stalled_one_short(reg: FakeRegistry, store: Store) -> None:
    layers = _three_layers()
    publish_layers(reg, "team/stall", "1", layers)
    stalled, bad = layers[0][1], layers[2][1]
    stall = _Stall(stalled[:1000])
    reg.hook = lambda r: (
        httpx.Response(200, stream=stall) if r.url.path.endswith(sha(stalled)) else
        httpx.Response(200, content=_flipped(bad)) if r.url.path.endswith(sha(bad)) else None)
    with pytest.raises((DigestMismatch, BadArchive), match=sha(bad)[7:19] + "|digest mismatch"):
        distribution.pull(store, f"{HOST}/team/stall:1", reporter=quiet(),
                          transport=reg.transport())
    assert stall.closed.is_set() and not stall.gave_up
    _empty_store_state(store)


def test_extraction_failures_in_the_pipeline_leave_nothing(reg: FakeRegistry, store: Store) -> None:
    """The extracting thread fails while the download goes on: over the size limit (the
    download stops), a hostile tar under the right digest (BadArchive once the blob is
    verified)."""
    layers = _three_layers()
    publish_layers(reg, "team/big", "1", layers)
    with pytest.raises(LimitExceeded, match="larger than the size limit"):
        distribution.pull(store, f"{HOST}/team/big:1", reporter=quiet(), max_size=400_000,
                          transport=reg.transport())
    _empty_store_state(store)
    hostile = _layer_tar("../escape", b"out")
    publish_layers(reg, "team/hostile", "1", [layers[0], (hostile, gzip.compress(hostile))])
    with pytest.raises(BadArchive, match="escapes the target"):
        distribution.pull(store, f"{HOST}/team/hostile:1", reporter=quiet(),
                          transport=reg.transport())
    _empty_store_state(store)
