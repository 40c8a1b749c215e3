"""``pull``, ``push``, ``login``, ``logout``: images to and from OCI registries.

Pull: manifest (index → this machine's platform) → config → only the layers
whose diffID the store lacks, fetched in parallel, verified while streaming and
kept as the original compressed blobs; the image, its tag, its manifests and
its repo digest appear in one transaction, or not at all.

Push: HEAD every blob first, mount from another repository of the same
registry when one is known to hold it, otherwise upload (monolithic or
chunked); then PUT the manifest and record the repo digest.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from forklift import digest as dg
from forklift import limits as limits_mod
from forklift import oci, reference
from forklift.engine import events
from forklift.errors import (
    BadArchive,
    ForkliftError,
    InvalidArgument,
    NotFound,
    RegistryAuthError,
    RegistryError,
)
from forklift.limits import Limits
from forklift.oci import Descriptor
from forklift.registry import config
from forklift.registry import manifests as mf
from forklift.registry.api import BlobReader, Repository
from forklift.registry.client import RegistryClient
from forklift.registry.progress import Reporter
from forklift.store import blobs
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store

if TYPE_CHECKING:
    import httpx

PARALLEL = 3
T = TypeVar("T")


def _chunk_size() -> int:
    try:
        return max(int(os.environ.get("FORKLIFT_PUSH_CHUNK_SIZE", "")), 1024)
    except ValueError:
        return 64 << 20


def _parallel(items: list[T], work: Callable[[T], Any], limit: int,
              abort: Callable[[], None] | None = None) -> list[Any]:
    """Run ``work`` over ``items`` with at most ``limit`` threads; first error wins.

    At the first error (or an interrupt of the waiting thread) the items not started
    are dropped and ``abort`` makes the running ones fail now, so a stalled download
    does not hold up the error."""
    if not items:
        return []
    results: list[Any] = [None] * len(items)
    with ThreadPoolExecutor(max_workers=max(1, min(limit, len(items)))) as pool:
        futures: list[Future[Any]] = []
        error: BaseException | None = None
        try:
            for item in items:  # a SIGINT may come while the first ones already run
                futures.append(pool.submit(work, item))
            error = _first_error(futures)
        except BaseException as exc:  # noqa: BLE001 - SIGINT while waiting: re-raised below
            error = exc
        if error is not None:
            for other in futures:
                other.cancel()
            if abort is not None:
                abort()
        for i, fut in enumerate(futures):
            try:
                results[i] = fut.result()
            except BaseException as exc:  # noqa: BLE001 - re-raised below after cleanup
                if error is None:
                    error = exc
        if error is not None:
            for r in results:
                if isinstance(r, layer_store.PreparedLayer):
                    r.cleanup()
            raise error
    return results


def _first_error(futures: list[Future[Any]]) -> BaseException | None:
    """Wait until all are done or one fails; its error. Woken twice a second: a SIGINT
    that the kernel handed to a worker thread is only acted on when the main thread
    runs, and a wait without a timeout would never let it."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
        failed = [f.exception() for f in done if f.exception() is not None]
        if failed:
            return failed[0]
    return None


# ============================================================================ pull

@dataclass
class PullResult:
    image_id: str
    digest: str
    reference: str
    downloaded: bool


def pull(store: Store, name: str, *, tls_verify: bool | None = None,
         platform: str | None = None, reporter: Reporter | None = None,
         parallel: int = PARALLEL, max_size: str | int | None = None,
         transport: httpx.BaseTransport | None = None,
         creds: config.Credentials | None = None) -> PullResult:
    """Pull ``name``. ``max_size`` (``--max-size``) overrides the store's layer size
    limit; a manifest of more layers than the limit is refused before any download.
    ``transport`` replaces the network (tests); ``creds`` the stored login (the API's
    X-Registry-Auth)."""
    ref = reference.parse(name)
    limits = limits_mod.for_store(store.root, max_size)
    reporter = reporter or Reporter()
    want = oci.parse_platform(platform) if platform else oci.local_platform()
    with RegistryClient(ref.domain, tls_verify=tls_verify, transport=transport,
                        creds=creds) as client:
        repo = Repository(client, ref.path)
        reporter.message(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
        top = repo.get_manifest(ref.digest or ref.tag or "latest")
        manifests = [top]
        media_type, obj = mf.media_type_of(top.data, top.media_type, f"manifest {ref.familiar()}")
        if media_type in oci.INDEX_TYPES:
            chosen = mf.choose_platform(obj, want, f"manifest {ref.familiar()}")
            child = repo.get_manifest(chosen.digest)
            manifests.append(child)
            media_type, obj = mf.media_type_of(child.data, child.media_type,
                                               f"manifest {dg.short_id(chosen.digest)}")
            if media_type not in oci.MANIFEST_TYPES:
                raise RegistryError(f"{ref.familiar()}: nested index is not supported")
        config_desc, layer_descs = oci.image_parts(obj, f"manifest {ref.familiar()}")
        _check_limits(limits, layer_descs, ref)
        config_bytes = repo.read_blob(config_desc.digest, config_desc.size)
        diff_ids = oci.image_diff_ids(oci.loads_object(config_bytes, "image config"))
        if len(diff_ids) != len(layer_descs):
            raise RegistryError(f"{ref.familiar()}: manifest has {len(layer_descs)} layers but"
                                f" its config lists {len(diff_ids)}")
        existed = image_store.get(store, config_desc.digest) is not None
        prepared = _fetch_layers(store, repo, layer_descs, diff_ids, reporter, parallel, limits)
    image_id = _record_pull(store, ref, config_bytes, prepared, [m.data for m in manifests],
                            list(zip(diff_ids, layer_descs, strict=True)))
    events.emit(store.root, "image", "pull", ref.familiar(), {"name": ref.familiar()})
    reporter.message(f"Digest: {top.digest}")
    shown = ref.familiar() if not ref.digest else f"{ref.familiar_repository}@{ref.digest}"
    status = "Image is up to date for" if existed else "Downloaded newer image for"
    reporter.message(f"Status: {status} {shown}")
    return PullResult(image_id, top.digest, str(ref), not existed)


def _check_limits(limits: Limits, layers: list[Descriptor], ref: reference.Reference) -> None:
    """Before the config or any layer is fetched: layer count, and no compressed blob
    larger than a layer may be decompressed."""
    limits.check_layers(len(layers), f"image {ref.familiar()}")
    for desc in layers:
        if desc.size > limits.max_blob_size:
            raise limits.size_exceeded(f"layer {dg.short_id(desc.digest)} ({desc.size} bytes)")


def _fetch_layers(store: Store, repo: Repository, descs: list[Descriptor],
                  diff_ids: list[str], reporter: Reporter, parallel: int,
                  limits: Limits) -> list[layer_store.PreparedLayer]:
    """Reuse layers the store has (by diffID); download the others in parallel."""
    prepared: list[layer_store.PreparedLayer | None] = []
    todo: list[tuple[int, Descriptor, str]] = []
    for i, (desc, diff_id) in enumerate(zip(descs, diff_ids, strict=True)):
        found = layer_store.reuse(store, diff_id)
        prepared.append(found)
        if found is not None:
            reporter.layer(dg.short_id(desc.digest), "Already exists")
        elif not any(diff_id == d for _, _, d in todo):
            todo.append((i, desc, diff_id))
            reporter.layer(dg.short_id(desc.digest), "Pulling fs layer")

    downloads = _Downloads()

    def fetch(item: tuple[int, Descriptor, str]) -> layer_store.PreparedLayer:
        return _download_layer(store, repo, item[1], item[2], reporter, limits, downloads)

    fetched = _parallel(todo, fetch, parallel, downloads.abort)
    by_diff = {todo[n][2]: layer for n, layer in enumerate(fetched)}
    out = []
    for i, diff_id in enumerate(diff_ids):
        out.append(prepared[i] or by_diff[diff_id])
    return out


class _Downloads:
    """The layer downloads in flight, so that one failure cuts the others short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[BlobReader] = set()
        self._aborted = False

    def add(self, reader: BlobReader) -> None:
        with self._lock:
            self._open.add(reader)
            if self._aborted:
                reader.abort()

    def discard(self, reader: BlobReader) -> None:
        with self._lock:
            self._open.discard(reader)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            for reader in self._open:
                reader.abort()


def _download_layer(store: Store, repo: Repository, desc: Descriptor, diff_id: str,
                    reporter: Reporter, limits: Limits,
                    downloads: _Downloads) -> layer_store.PreparedLayer:
    short = dg.short_id(desc.digest)
    reporter.start(short, desc.size, "Downloading")
    # the reader hashes the compressed bytes as they arrive; they are not kept (the layer
    # keeps a tar-split, and layer_sources where the blob came from): each byte written once
    reader = repo.open_blob(desc.digest, desc.size, lambda n: reporter.advance(short, n))
    downloads.add(reader)
    try:
        layer = layer_store.ingest(store, reader, expected_diff_id=diff_id,  # type: ignore[arg-type]
                                   compressed_digest=desc.digest, media_type=desc.media_type,
                                   limits=limits, raw_digest=reader.finish_digest)
    except ForkliftError:
        raise
    except Exception as exc:  # a decompressor choking on bad bytes: say which is to blame
        dg.verify(desc.digest, reader.finish_digest(), f"blob {short}")
        raise BadArchive(f"blob {short}: invalid layer data: {exc}") from None
    finally:
        downloads.discard(reader)
        reader.close()
    reporter.layer(short, "Pull complete")
    return layer


def _record_pull(store: Store, ref: reference.Reference, config_bytes: bytes,
                 prepared: list[layer_store.PreparedLayer], manifests: list[bytes],
                 sources: list[tuple[str, Descriptor]]) -> str:
    """Image, tag, manifests, repo digest and where each layer's blob came from in one
    transaction."""
    tags = [str(ref)] if ref.tag and not ref.digest else []
    try:
        with store.transaction() as conn:
            for data in manifests:
                blobs.put_bytes(store, data)
            image_id = image_store.add(store, config_bytes, prepared, tags=tags)
            conn.execute("INSERT OR REPLACE INTO repo_digests(repository, digest, image_id)"
                         " VALUES(?,?,?)", (ref.repository, dg.of_bytes(manifests[0]), image_id))
            conn.executemany("INSERT OR IGNORE INTO layer_sources(diff_id, digest, media_type,"
                             " size, repository) VALUES(?,?,?,?,?)",
                             [(diff_id, d.digest, d.media_type, d.size, ref.repository)
                              for diff_id, d in sources])
    finally:
        for layer in prepared:
            layer.cleanup()
    return image_id


# ============================================================================ push

@dataclass
class PushResult:
    reference: str
    digest: str
    size: int


def push(store: Store, name: str, *, all_tags: bool = False, tls_verify: bool | None = None,
         reporter: Reporter | None = None, parallel: int = PARALLEL,
         transport: httpx.BaseTransport | None = None,
         creds: config.Credentials | None = None) -> list[PushResult]:
    """Push ``name`` (every tag of its repository with ``all_tags``). ``transport``
    replaces the network (tests); ``creds`` the stored login (the API's X-Registry-Auth)."""
    reporter = reporter or Reporter()
    targets = _push_targets(store, name, all_tags)
    first = targets[0][0]
    reporter.message(f"The push refers to repository [{first.repository}]")
    results = []
    done: set[str] = set()
    with RegistryClient(first.domain, tls_verify=tls_verify, transport=transport,
                        creds=creds) as client:
        repo = Repository(client, first.path, push=True)
        for ref, image_id in targets:
            results.append(_push_one(store, repo, ref, image_id, reporter, parallel, done,
                                      transport))
            events.emit(store.root, "image", "push", ref.familiar(), {"name": ref.familiar()})
    return results


def _push_targets(store: Store, name: str,
                  all_tags: bool) -> list[tuple[reference.Reference, str]]:
    if all_tags:
        repo_ref = reference.parse_repository(name)
        found = [(reference.parse(t), i) for t, i in sorted(image_store.all_tags(store))
                 if reference.parse(t).repository == repo_ref.repository]
        if not found:
            raise NotFound(f"An image does not exist locally with the tag: {repo_ref.familiar()}")
        return found
    ref = reference.parse(name)
    if ref.digest:
        return [(ref, image_store.resolve(store, str(ref)))]
    image_id = image_store.lookup_tag(store, str(ref))
    if image_id is None:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
    return [(ref, image_id)]


def _push_one(store: Store, repo: Repository, ref: reference.Reference, image_id: str,
              reporter: Reporter, parallel: int, done: set[str],
              transport: httpx.BaseTransport | None = None) -> PushResult:
    manifest = mf.for_push(store, image_id)
    sources = _mount_sources(store, ref)
    try:
        _send_blobs(store, repo, ref, manifest, sources, reporter, parallel, done, transport)
    except _Unavailable:
        # a pulled blob that is neither here, nor mountable, nor fetchable any more: its
        # layers are compressed here instead, as Docker does (a new manifest digest)
        manifest = mf.build(store, image_id)
        _send_blobs(store, repo, ref, manifest, sources, reporter, parallel, done, transport)
    tag_or_digest = ref.digest or ref.tag or "latest"
    digest = repo.put_manifest(tag_or_digest, manifest.data, manifest.media_type)
    with store.transaction() as conn:
        blobs.put_bytes(store, manifest.data, manifest.media_type)
        conn.execute("INSERT OR REPLACE INTO repo_digests(repository, digest, image_id)"
                     " VALUES(?,?,?)", (ref.repository, digest, image_id))
    reporter.final(f"{tag_or_digest}: digest: {digest} size: {len(manifest.data)}")
    return PushResult(str(ref), digest, len(manifest.data))


class _Unavailable(Exception):
    """A pulled layer's blob could not be had for a push (see ``_fetch_origin``)."""


def _send_blobs(store: Store, repo: Repository, ref: reference.Reference,
                manifest: mf.PushManifest, sources: dict[str, list[str]], reporter: Reporter,
                parallel: int, done: set[str], transport: httpx.BaseTransport | None) -> None:
    if ref.digest and manifest.digest != ref.digest:
        raise InvalidArgument(f"{ref.familiar()}: the local manifest of this image has digest"
                              f" {manifest.digest}")
    todo = [b for b in manifest.blobs if b.digest not in done]
    layers_first = [b for b in todo if b.diff_id] + [b for b in todo if not b.diff_id]
    lock = threading.Lock()

    def send(blob: mf.PushBlob) -> None:
        known = sources.get(blob.diff_id or blob.digest, [])
        _push_blob(store, repo, blob, known + _same_registry(ref, blob.origins, known), reporter,
                   transport)
        with lock:
            done.add(blob.digest)

    _parallel(layers_first, send, parallel)


def _same_registry(ref: reference.Reference, origins: list[str], known: list[str]) -> list[str]:
    """The repositories among ``origins`` on ``ref``'s registry, other than ``ref``'s own,
    as paths on it (a cross-repository mount source)."""
    prefix = f"{ref.domain}/"
    return [o[len(prefix):] for o in origins
            if o.startswith(prefix) and o != ref.repository and o[len(prefix):] not in known]


def _mount_sources(store: Store, ref: reference.Reference) -> dict[str, list[str]]:
    """diffID (or config digest) → other repositories of this registry that hold it."""
    prefix = f"{ref.domain}/"
    rows = store.query(
        "SELECT DISTINCT rd.repository, il.diff_id, rd.image_id FROM repo_digests rd"
        " LEFT JOIN image_layers il ON il.image_id = rd.image_id"
        " WHERE rd.repository >= ? AND rd.repository < ? AND rd.repository != ?",
        (prefix, prefix + "\x7f", ref.repository))
    out: dict[str, list[str]] = {}
    for repository, diff_id, image_id in rows:
        path = repository[len(prefix):]
        for key in (diff_id, image_id):
            if key and path not in out.setdefault(key, []):
                out[key].append(path)
    return out


def _push_blob(store: Store, repo: Repository, blob: mf.PushBlob, sources: list[str],
               reporter: Reporter, transport: httpx.BaseTransport | None = None) -> None:
    short = dg.short_id(blob.digest)
    show = blob.diff_id is not None
    if repo.has_blob(blob.digest):
        if show:
            reporter.layer(short, "Layer already exists")
        return
    location = None
    for source in sources[:3]:
        location = repo.mount_blob(blob.digest, source)
        if location is None:
            if show:
                reporter.layer(short, f"Mounted from {source}")
            return
        break
    fetched = None if blob.path is not None else _fetch_origin(store, repo, blob, transport)
    try:
        if location is None:
            location = repo.start_upload()
        if show:
            reporter.start(short, blob.size, "Pushing")
        path = blob.path if fetched is None else fetched.path
        assert path is not None
        repo.upload(location, path, blob.digest, blob.size, _chunk_size(),
                    (lambda n: reporter.advance(short, n)) if show else None)
    finally:
        if fetched is not None:
            fetched.discard()
    if show:
        reporter.layer(short, "Pushed")


def _fetch_origin(store: Store, repo: Repository, blob: mf.PushBlob,
                  transport: httpx.BaseTransport | None) -> blobs.BlobWriter:
    """A pulled layer's blob fetched again from a repository it came from, into scratch
    space, verified against its digest (the caller uploads and discards it).
    _Unavailable when no origin gives it."""
    for origin in blob.origins[:3]:
        src = reference.parse_repository(origin)
        writer = blobs.BlobWriter(store)
        try:
            if src.domain == repo.client.host:
                _copy_blob(Repository(repo.client, src.path), blob, writer)
            else:
                with RegistryClient(src.domain, transport=transport) as client:
                    _copy_blob(Repository(client, src.path), blob, writer)
            writer.finish(expected=blob.digest)
            return writer
        except (RegistryError, NotFound, BadArchive, InvalidArgument):  # BadArchive: DigestMismatch
            writer.discard()
        except BaseException:
            writer.discard()
            raise
    raise _Unavailable(blob.digest)


def _copy_blob(src: Repository, blob: mf.PushBlob, writer: blobs.BlobWriter) -> None:
    reader = src.open_blob(blob.digest, blob.size, sink=writer)
    try:
        while reader.read(1 << 20):
            pass
    finally:
        reader.close()


# ============================================================================ login

def registry_host(server: str | None) -> str:
    """``https://index.docker.io/v1/`` → docker.io; ``https://host:5000/`` → host:5000."""
    if not server:
        return "docker.io"
    host = server.split("://", 1)[-1].split("/", 1)[0].strip()
    if not host:
        raise InvalidArgument(f"invalid registry address {server!r}")
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def login(server: str | None, username: str, password: str,
          tls_verify: bool | None = None, transport: httpx.BaseTransport | None = None) -> str:
    """Check the credentials against the registry, then store them. ``transport``
    replaces the network (tests)."""
    host, creds, _ = check_login(server, username, password, tls_verify, transport)
    config.store_credentials(host, creds)
    return "Login Succeeded"


def check_login(server: str | None, username: str, password: str,
                tls_verify: bool | None = None, transport: httpx.BaseTransport | None = None,
                *, identity: bool = False,
                offline: bool = False) -> tuple[str, config.Credentials, str]:
    """The registry's host, the credentials it accepted (RegistryAuthError if it did
    not) and the identity token its token service issued ("" for none: only asked for
    when ``offline``, as Docker's login asks); nothing is stored (the API's ``/auth``
    checks only). ``identity``: ``password`` is an identity token."""
    host = registry_host(server)
    if not username or not password:
        raise InvalidArgument("login needs a username and a password")
    creds = config.Credentials(username, password, identity)
    with RegistryClient(host, tls_verify=tls_verify, creds=creds, transport=transport) as client:
        client.auth.offline = offline
        _verify_login(client)
        issued = client.auth.refresh_token if offline else ""
    return host, creds, issued if issued != password else ""


def _verify_login(client: RegistryClient) -> None:
    client.ping()
    challenge = client.auth.challenge
    if challenge is None:
        return
    if challenge.scheme == "bearer":
        client.auth.header(())
        return
    resp = client.request("GET", "/v2/", scopes=())
    if resp.status_code == 401:
        raise RegistryAuthError(f"login to {client.host} failed: unauthorized: incorrect"
                                " username or password")
    client.check(resp, f"login to {client.host}")


def logout(server: str | None) -> str:
    host = registry_host(server)
    if config.erase_credentials(host):
        return f"Removing login credentials for {host}"
    return f"Not logged in to {host}"

