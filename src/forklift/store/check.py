"""Store consistency check and repair (``forklift system check [--repair] [--full]``).

What is checked, one ``Problem`` (one line) per finding:

* blobs: every row has its file, of the recorded size, hashing to its digest;
  every file under ``blobs/sha256`` has a row (else an orphan left by a crash);
* layers: every row has its directory and its blob; an uncompressed layer blob's
  digest is its diffID; with ``full`` a compressed blob is decompressed and hashed,
  and every layer blob is re-extracted into scratch space and compared with the
  layer directory (types, modes, owners, sizes, content, link targets, whiteouts);
  every directory under ``layers/`` has a row;
* images: the config blob exists and parses, its diff_ids are the image's layer
  list, every layer exists, the recorded size is the sum of the layers, the parent
  exists; tags and repo digests point at existing images;
* containers: the image exists (or, for one that outlived its image through ``rmi -f``,
  every layer of its own layer list does), the directory (init/upper/work) exists, a stopped
  container's rootfs is not left mounted; every directory under ``containers/``
  has a row;
* volumes: rows have directories, attachments point at existing volumes and
  containers; directories under ``volumes/`` have rows;
* scratch: nothing under ``tmp/`` belongs to a dead process.

``repair`` removes what cannot be trusted (images with a missing/corrupt layer or
config, corrupt blobs and the layers built on them, orphans, dangling tags,
containers whose image is gone, dead processes' scratch) and returns one line per
action. Directories that a live process may be creating right now (a container
or volume directory appears just before its row) are left alone while younger
than ``grace`` seconds.

Structural checks (rows against files) run inside a write transaction so that a
concurrent import's half-registered layer is never mistaken for an orphan; the
hashing runs outside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from forklift import digest as dg
from forklift import oci
from forklift.errors import ForkliftError
from forklift.fswalk import walk_sorted
from forklift.procs import pid_alive
from forklift.runtime import overlay
from forklift.store import layers as layer_store
from forklift.store import recovery
from forklift.store.db import Store, remove_path
from forklift.store.layers import TAR_SPLIT, TARSPLIT, UNSTORED

DEFAULT_GRACE = 60.0
_CHUNK = 1 << 20


@dataclass
class Problem:
    """One finding, printed as one line: ``<kind> <subject>: <message>``."""

    kind: str       # blob | layer | image | tag | cache | container | volume | tmp
    subject: str    # digest, directory name, container id, path...
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.message}"


@dataclass
class Findings:
    """What a check found, keyed so that ``repair`` knows what to remove."""

    problems: list[Problem] = field(default_factory=list)
    bad_blobs: set[str] = field(default_factory=set)          # rows to drop (file missing/corrupt)
    bad_layers: set[str] = field(default_factory=set)         # diff_ids that cannot be trusted
    bad_images: set[str] = field(default_factory=set)
    wrong_size_images: dict[str, int] = field(default_factory=dict)
    dangling_parents: set[str] = field(default_factory=set)
    dangling_tags: set[str] = field(default_factory=set)
    dangling_cache: set[str] = field(default_factory=set)     # build cache keys of missing images
    dangling_repo_digests: set[tuple[str, str]] = field(default_factory=set)
    dangling_compressed: set[tuple[str, str]] = field(default_factory=set)
    orphan_files: bool = False                                 # blob files / layer dirs without rows
    bad_containers: set[str] = field(default_factory=set)     # image gone or directory gone
    stale_mounts: set[str] = field(default_factory=set)
    orphan_container_dirs: set[str] = field(default_factory=set)
    dangling_attachments: set[tuple[str, str]] = field(default_factory=set)
    dangling_container_layers: set[str] = field(default_factory=set)  # rows of missing containers
    missing_volume_dirs: set[str] = field(default_factory=set)
    orphan_volume_dirs: set[str] = field(default_factory=set)
    dead_tmp: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, subject: str, message: str) -> None:
        self.problems.append(Problem(kind, subject, message))

    @property
    def ok(self) -> bool:
        return not self.problems


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _older_than(path: str, grace: float) -> bool:
    if grace <= 0:
        return True
    try:
        return time.time() - os.lstat(path).st_mtime > grace
    except OSError:
        return True


def _hash_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return f"sha256:{h.hexdigest()}", size


# ----------------------------------------------------------------------------- check

def check(store: Store, full: bool = False, grace: float = DEFAULT_GRACE) -> Findings:
    """Everything that is wrong with the store (see the module docstring); changes
    nothing but scratch space of its own (``full`` re-extracts layers there).

    Takes the write lock only for the structural part (rows against files) and hashes
    outside it, so it should not be called inside a transaction. Safe while other
    processes use the store (orphan files are reported only when no other writer is
    alive). Raises what SQLite or the filesystem raise for a store it cannot read."""
    f = Findings()
    _check_structure(store, f, grace)
    _check_blob_content(store, f)
    _check_layer_content(store, f, full)
    _propagate(store, f)
    return f


def _check_structure(store: Store, f: Findings, grace: float) -> None:
    with store.transaction() as conn:
        blob_rows = {r[0]: r[1] for r in conn.execute("SELECT digest, size FROM blobs")}
        layer_rows = conn.execute(
            "SELECT diff_id, dir, size, blob, blob_media_type FROM layers").fetchall()
        image_rows = conn.execute("SELECT id, parent, size FROM images").fetchall()
        image_ids = {r[0] for r in image_rows}
        image_layers: dict[str, list[str]] = {}
        for image_id, _pos, diff_id in conn.execute(
                "SELECT image_id, position, diff_id FROM image_layers ORDER BY image_id, position"):
            image_layers.setdefault(image_id, []).append(diff_id)
        tags = conn.execute("SELECT name, image_id FROM tags").fetchall()
        repo_digests = conn.execute("SELECT repository, digest, image_id FROM repo_digests").fetchall()
        compressed = conn.execute("SELECT diff_id, media_type, digest FROM compressed_blobs").fetchall()
        containers = conn.execute("SELECT id, image_id, state, pid FROM containers").fetchall()
        held: dict[str, list[str]] = {}  # containers that outlived their image (rmi -f)
        for cid, diff_id in conn.execute(
                "SELECT container_id, diff_id FROM container_layers ORDER BY container_id, position"):
            held.setdefault(cid, []).append(diff_id)
        volume_names = {r[0] for r in conn.execute("SELECT name FROM volumes")}
        attachments = conn.execute("SELECT container_id, volume FROM container_volumes").fetchall()

        # blobs: rows against files
        blob_files = set(os.listdir(store.blobs_dir))
        for digest, size in blob_rows.items():
            hexpart = digest.split(":", 1)[-1]
            if hexpart not in blob_files:
                f.add("blob", digest, "recorded but its file is missing")
                f.bad_blobs.add(digest)
                continue
            actual = os.lstat(os.path.join(store.blobs_dir, hexpart))
            if not stat.S_ISREG(actual.st_mode) or actual.st_size != size:
                f.add("blob", digest, f"file has size {actual.st_size}, recorded {size}")
                f.bad_blobs.add(digest)
        # A live process between a GC's commit and its file removal shows orphans that
        # are not leftovers yet: report orphans only when no other writer is alive.
        busy = _other_writer_alive(store)
        known_hex = {d.split(":", 1)[-1] for d in blob_rows}
        for name in sorted(blob_files - known_hex):
            f.orphan_files = True
            if not busy:
                f.add("blob", name, "file has no record (left by an interrupted operation)")

        # layers: rows against directories and blobs
        layer_dirs = set(os.listdir(store.layers_dir))
        known_dirs = set()
        layer_sizes = {}
        for diff_id, name, size, blob, media_type in layer_rows:
            known_dirs.add(name)
            layer_sizes[diff_id] = size
            if not os.path.isdir(os.path.join(store.layers_dir, name, "diff")):
                f.add("layer", diff_id, f"directory layers/{name}/diff is missing")
                f.bad_layers.add(diff_id)
            if media_type == TARSPLIT and not os.path.isfile(
                    os.path.join(store.layers_dir, name, TAR_SPLIT)):
                f.add("layer", diff_id, f"its tar-split layers/{name}/{TAR_SPLIT} is missing")
                f.bad_layers.add(diff_id)
            elif media_type in (UNSTORED, TARSPLIT):
                pass  # its tar is re-made from the directory (and tar-split) on demand
            elif blob not in blob_rows:
                f.add("layer", diff_id, f"its blob {blob} is not in the store")
                f.bad_layers.add(diff_id)
            elif media_type in oci.LAYER_TYPES_PLAIN and blob != diff_id:
                f.add("layer", diff_id, f"uncompressed blob {blob} does not match the diffID")
                f.bad_layers.add(diff_id)
        for name in sorted(layer_dirs - known_dirs):
            f.orphan_files = True
            if not busy:
                f.add("layer", f"layers/{name}",
                      "directory has no record (left by an interrupted operation)")
        for diff_id, media_type, digest in compressed:
            if digest not in blob_rows or diff_id not in layer_sizes:
                f.add("blob", digest, f"compressed form ({media_type}) of a missing layer or blob")
                f.dangling_compressed.add((diff_id, media_type))

        # images
        for image_id, parent, size in image_rows:
            diff_ids = image_layers.get(image_id, [])
            if image_id not in blob_rows:
                f.add("image", image_id, "config blob is missing")
                f.bad_images.add(image_id)
            missing = [d for d in diff_ids if d not in layer_sizes]
            if missing:
                f.add("image", image_id, f"refers to missing layer {missing[0]}")
                f.bad_images.add(image_id)
            elif size != sum(layer_sizes[d] for d in diff_ids):
                f.add("image", image_id, f"recorded size {size} is not the sum of its layers")
                f.wrong_size_images[image_id] = sum(layer_sizes[d] for d in diff_ids)
            if parent and parent not in image_ids:
                f.add("image", image_id, f"parent {parent} does not exist")
                f.dangling_parents.add(image_id)
        for image_id in set(image_layers) - image_ids:
            f.add("image", image_id, "layer list of an image that does not exist")
            f.bad_images.add(image_id)
        for name, image_id in tags:
            if image_id not in image_ids:
                f.add("tag", name, f"points at missing image {image_id}")
                f.dangling_tags.add(name)
        for repository, digest, image_id in repo_digests:
            if image_id not in image_ids:
                f.add("tag", f"{repository}@{digest}", f"points at missing image {image_id}")
                f.dangling_repo_digests.add((repository, digest))
        for key, image_id in conn.execute("SELECT key, image_id FROM build_cache"):
            if image_id not in image_ids:
                f.add("cache", key[:12], f"build cache entry of missing image {image_id}")
                f.dangling_cache.add(key)

        # containers
        container_ids = set()
        for cid, image_id, state, pid in containers:
            container_ids.add(cid)
            base = store.container_path(cid)
            if image_id not in image_ids and cid not in held:
                f.add("container", cid[:12], f"its image {image_id} does not exist")
                f.bad_containers.add(cid)
            missing_layers = [d for d in held.get(cid, []) if d not in layer_sizes]
            if missing_layers:
                f.add("container", cid[:12], f"refers to missing layer {missing_layers[0]}")
                f.bad_containers.add(cid)
            if not all(os.path.isdir(os.path.join(base, d)) for d in ("init", "upper", "work")):
                f.add("container", cid[:12], "its directory is missing or incomplete")
                f.bad_containers.add(cid)
            running = state in ("running", "paused") and pid and pid_alive(int(pid))
            merged = os.path.join(base, "merged")
            if not running and _is_mountpoint(merged):
                f.add("container", cid[:12], "root filesystem still mounted but not running")
                f.stale_mounts.add(cid)
        for cid in sorted(set(held) - container_ids):
            f.add("container", cid[:12], "layer list of a container that does not exist")
            f.dangling_container_layers.add(cid)
        for name in sorted(os.listdir(store.containers_dir)):
            if name not in container_ids and _older_than(os.path.join(store.containers_dir, name), grace):
                f.add("container", f"containers/{name[:12]}",
                      "directory has no record (left by an interrupted operation)")
                f.orphan_container_dirs.add(name)

        # volumes
        for name in volume_names:
            if not os.path.isdir(os.path.join(store.volumes_dir, name, "_data")):
                f.add("volume", name, "directory is missing")
                f.missing_volume_dirs.add(name)
        for cid, vol in attachments:
            if vol not in volume_names or cid not in container_ids:
                f.add("volume", vol, f"attachment to {cid[:12]} refers to a missing volume or container")
                f.dangling_attachments.add((cid, vol))
        for name in sorted(os.listdir(store.volumes_dir)):
            if name not in volume_names and _older_than(os.path.join(store.volumes_dir, name), grace):
                f.add("volume", f"volumes/{name}", "directory has no record")
                f.orphan_volume_dirs.add(name)

        f.counts = {"blobs": len(blob_rows), "layers": len(layer_rows), "images": len(image_rows),
                    "tags": len(tags), "containers": len(containers), "volumes": len(volume_names)}

    # scratch (pid-named, no lock needed)
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(store.tmp_dir)):
            pid_text = name.split("-", 1)[0]
            if pid_text.isdigit() and pid_alive(int(pid_text)):
                continue
            f.add("tmp", f"tmp/{name}", "leftover of a process that is gone")
            f.dead_tmp.add(name)


def _other_writer_alive(store: Store) -> bool:
    """Whether another live process holds a ``tmp/<pid>-dirty-…`` marker (see Store.mark_dirty)."""
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(store.tmp_dir):
            pid_text, _, rest = name.partition("-")
            if rest.startswith("dirty-") and pid_text.isdigit() and int(pid_text) != os.getpid() \
                    and pid_alive(int(pid_text)):
                return True
    return False


def _is_mountpoint(path: str) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def _check_blob_content(store: Store, f: Findings) -> None:
    """Hash every blob (outside the lock); report only if its row still exists."""
    rows = store.conn.execute("SELECT digest FROM blobs").fetchall()
    for (digest,) in rows:
        if digest in f.bad_blobs:
            continue
        try:
            actual, _ = _hash_file(store.blob_path(digest))
        except FileNotFoundError:
            actual = None
        if actual == digest:
            continue
        still = store.conn.execute("SELECT 1 FROM blobs WHERE digest=?", (digest,)).fetchone()
        if still is None:
            continue  # collected meanwhile
        if actual is None:
            if not os.path.exists(store.blob_path(digest)):
                f.add("blob", digest, "recorded but its file is missing")
                f.bad_blobs.add(digest)
            continue
        f.add("blob", digest, f"content does not match its digest (hashes to {actual})")
        f.bad_blobs.add(digest)


def _check_layer_content(store: Store, f: Findings, full: bool) -> None:
    rows = store.conn.execute("SELECT diff_id, dir, blob, blob_media_type FROM layers").fetchall()
    for diff_id, name, blob, media_type in rows:
        if diff_id in f.bad_layers:
            continue
        if blob in f.bad_blobs:
            f.add("layer", diff_id, f"its blob {_short(blob)} is corrupt or missing")
            f.bad_layers.add(diff_id)
            continue
        if not full:
            continue
        try:
            message = _verify_layer(store, diff_id, name, blob, media_type)
        except FileNotFoundError:
            continue  # collected while we looked
        if message:
            f.add("layer", diff_id, message)
            f.bad_layers.add(diff_id)


def _verify_layer(store: Store, diff_id: str, name: str, blob: str, media_type: str) -> str | None:
    """Re-hash the decompressed blob and re-extract it; compare with the layer directory."""
    # only --full gets here: archive imports tarfile, which df and prune need not load
    from forklift import archive

    if media_type == UNSTORED:
        digest = archive.hash_layer(store.layer_path(name))[0]
        if digest != diff_id:
            return f"its directory tars to {digest}, not the diffID"
        return None
    scratch = store.make_tmp("check")
    try:
        target = os.path.join(scratch, "diff")
        os.mkdir(target, 0o755)
        what = "blob"
        if media_type == TARSPLIT:
            what = "directory with its tar-split"  # no blob: the tar is played back
        with _open_layer_tar(store, name, blob, media_type) as raw:
            stream, _ = archive.decompressed(raw)
            reader = dg.HashingReader(stream)
            try:
                archive.extract(reader, target)  # type: ignore[arg-type]
                reader.drain()
            except ForkliftError as exc:
                return f"its {what} no longer extracts: {exc}"
        if reader.digest != diff_id:
            return f"its {what} decompresses to {reader.digest}, not the diffID"
        difference = _compare_trees(target, store.layer_path(name))
        if difference:
            return f"directory differs from its blob: {difference}"
        return None
    finally:
        remove_path(scratch)


def _open_layer_tar(store: Store, name: str, blob: str, media_type: str) -> Any:
    if media_type == TARSPLIT:
        from forklift import tarsplit

        return tarsplit.TarStream(store.layer_path(name),
                                  os.path.join(store.layers_dir, name, TAR_SPLIT))
    return open(store.blob_path(blob), "rb")  # noqa: SIM115


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _compare_trees(expected_root: str, actual_root: str) -> str | None:
    expected = {rel: st for rel, _, st in walk_sorted(expected_root)}
    actual = {rel: st for rel, _, st in walk_sorted(actual_root)}
    for rel in sorted(expected.keys() - actual.keys()):
        return f"{rel} is missing"
    for rel in sorted(actual.keys() - expected.keys()):
        return f"{rel} is not in the layer tar"
    for rel in sorted(expected):
        a, b = expected[rel], actual[rel]
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
            return f"{rel} has the wrong file type"
        if not stat.S_ISLNK(a.st_mode) and stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
            return f"{rel} has mode {stat.S_IMODE(b.st_mode):o}, expected {stat.S_IMODE(a.st_mode):o}"
        if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
            return f"{rel} is owned by {b.st_uid}:{b.st_gid}, expected {a.st_uid}:{a.st_gid}"
        pa, pb = os.path.join(expected_root, rel), os.path.join(actual_root, rel)
        if stat.S_ISLNK(a.st_mode) and os.readlink(pa) != os.readlink(pb):
            return f"{rel} points elsewhere"
        if stat.S_ISCHR(a.st_mode) and a.st_rdev != b.st_rdev:
            return f"{rel} is a different device"
        if stat.S_ISDIR(a.st_mode) and _opaque(pa) != _opaque(pb):
            return f"{rel} differs in opacity"
        if stat.S_ISREG(a.st_mode):
            if a.st_size != b.st_size:
                return f"{rel} has size {b.st_size}, expected {a.st_size}"
            if _hash_file(pa)[0] != _hash_file(pb)[0]:
                return f"{rel} has different content"
    return None


def _propagate(store: Store, f: Findings) -> None:
    """Images on an untrusted layer are untrusted; containers on an untrusted image too.

    Under the lock: a concurrent rmi must not make a vanishing image look damaged."""
    with store.transaction():
        _propagate_locked(store, f)


def _propagate_locked(store: Store, f: Findings) -> None:
    conn = store.conn
    for diff_id in sorted(f.bad_layers):
        for (image_id,) in conn.execute(
                "SELECT DISTINCT image_id FROM image_layers WHERE diff_id=?", (diff_id,)):
            if image_id not in f.bad_images:
                f.add("image", image_id, f"uses layer {_short(diff_id)}, which cannot be trusted")
                f.bad_images.add(image_id)
    for image_id, in conn.execute("SELECT id FROM images").fetchall():
        if image_id in f.bad_blobs and image_id not in f.bad_images:
            f.add("image", image_id, "its config blob is corrupt")
            f.bad_images.add(image_id)
        elif image_id not in f.bad_images and image_id not in f.bad_blobs:
            try:
                data = open(store.blob_path(image_id), "rb").read()  # noqa: SIM115
                cfg = oci.loads_object(data, "image config")
                diff_ids = oci.image_diff_ids(cfg)
            except (ForkliftError, OSError) as exc:
                f.add("image", image_id, f"config cannot be read: {exc}")
                f.bad_images.add(image_id)
                continue
            recorded = [r[0] for r in conn.execute(
                "SELECT diff_id FROM image_layers WHERE image_id=? ORDER BY position", (image_id,))]
            if recorded != diff_ids:
                f.add("image", image_id, "layer list does not match its config's diff_ids")
                f.bad_images.add(image_id)
    for diff_id in sorted(f.bad_layers):
        for (cid,) in conn.execute(
                "SELECT DISTINCT container_id FROM container_layers WHERE diff_id=?", (diff_id,)):
            if cid not in f.bad_containers:
                f.add("container", cid[:12], f"uses layer {_short(diff_id)}, which cannot be trusted")
                f.bad_containers.add(cid)
    for image_id in sorted(f.bad_images):
        for (cid,) in conn.execute("SELECT id FROM containers WHERE image_id=?", (image_id,)):
            if cid not in f.bad_containers:
                f.add("container", cid[:12], f"its image {_short(image_id)} cannot be trusted")
                f.bad_containers.add(cid)


# ----------------------------------------------------------------------------- repair

def repair(store: Store, f: Findings, grace: float = DEFAULT_GRACE) -> list[str]:
    """Remove what ``f`` says cannot be trusted; one line per action.

    Every removal re-checks its condition inside the write transaction (a concurrent
    command may have fixed or started using something since ``check``), rows go
    before files, and a running container's image is kept. Must run outside any
    transaction (it ends with the garbage collection). Idempotent."""
    done: list[str] = []
    conn = store.conn
    # Containers first: they hold images (and their mounts hold layers).
    for cid in sorted(f.bad_containers | f.stale_mounts):
        with contextlib.suppress(OSError, ForkliftError):
            _unmount(os.path.join(store.container_path(cid), "merged"))
        if cid in f.stale_mounts and cid not in f.bad_containers:
            done.append(f"unmounted the root filesystem of container {cid[:12]}")
    store.mark_dirty()
    with store.transaction():
        for cid in sorted(f.bad_containers):
            row = conn.execute("SELECT state, pid FROM containers WHERE id=?", (cid,)).fetchone()
            if row is None:
                continue
            if row[0] in ("running", "paused") and row[1] and pid_alive(int(row[1])):
                continue
            conn.execute("DELETE FROM container_volumes WHERE container_id=?", (cid,))
            conn.execute("DELETE FROM container_layers WHERE container_id=?", (cid,))
            conn.execute("DELETE FROM containers WHERE id=?", (cid,))
            done.append(f"removed container {cid[:12]}")
        for cid in sorted(f.dangling_container_layers):
            if conn.execute("DELETE FROM container_layers WHERE container_id=? AND container_id"
                            " NOT IN (SELECT id FROM containers)", (cid,)).rowcount:
                done.append(f"removed the layer list of missing container {cid[:12]}")
        for key in sorted(f.dangling_cache):
            if conn.execute("DELETE FROM build_cache WHERE key=? AND image_id NOT IN"
                            " (SELECT id FROM images)", (key,)).rowcount:
                done.append(f"removed build cache entry {key[:12]}")
        for name in sorted(f.dangling_tags):
            if conn.execute("DELETE FROM tags WHERE name=? AND image_id NOT IN (SELECT id FROM images)",
                            (name,)).rowcount:
                done.append(f"removed tag {name}")
        for repository, digest in sorted(f.dangling_repo_digests):
            if conn.execute("DELETE FROM repo_digests WHERE repository=? AND digest=?"
                            " AND image_id NOT IN (SELECT id FROM images)",
                            (repository, digest)).rowcount:
                done.append(f"removed digest reference {repository}@{digest}")
        for image_id in sorted(f.bad_images):
            users = conn.execute(
                "SELECT COUNT(*) FROM containers WHERE image_id=?", (image_id,)).fetchone()[0]
            if users:
                continue  # a running container still uses it
            for (name,) in conn.execute("SELECT name FROM tags WHERE image_id=?", (image_id,)).fetchall():
                done.append(f"removed tag {name}")
            conn.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
            conn.execute("DELETE FROM repo_digests WHERE image_id=?", (image_id,))
            conn.execute("DELETE FROM image_layers WHERE image_id=?", (image_id,))
            conn.execute("DELETE FROM build_cache WHERE image_id=?", (image_id,))
            if conn.execute("DELETE FROM images WHERE id=?", (image_id,)).rowcount:
                done.append(f"removed image {image_id}")
            conn.execute("UPDATE images SET parent=NULL WHERE parent=?", (image_id,))
        for image_id in sorted(f.dangling_parents):
            conn.execute("UPDATE images SET parent=NULL WHERE id=? AND parent NOT IN"
                         " (SELECT id FROM images)", (image_id,))
            done.append(f"cleared the missing parent of image {_short(image_id)}")
        for image_id, size in sorted(f.wrong_size_images.items()):
            if image_id not in f.bad_images:
                conn.execute("UPDATE images SET size=? WHERE id=?", (size, image_id))
                done.append(f"corrected the size of image {_short(image_id)}")
        for diff_id in sorted(f.bad_layers):
            in_use = conn.execute(
                "SELECT (SELECT COUNT(*) FROM image_layers WHERE diff_id=?)"
                " + (SELECT COUNT(*) FROM container_layers WHERE diff_id=?)",
                (diff_id, diff_id)).fetchone()[0]
            if in_use:
                continue
            if conn.execute("DELETE FROM layers WHERE diff_id=?", (diff_id,)).rowcount:
                done.append(f"removed layer {diff_id}")
        for digest in sorted(f.bad_blobs):
            if conn.execute("DELETE FROM blobs WHERE digest=?", (digest,)).rowcount:
                done.append(f"removed blob {digest}")
        for diff_id, media_type in sorted(f.dangling_compressed):
            conn.execute("DELETE FROM compressed_blobs WHERE diff_id=? AND media_type=?",
                         (diff_id, media_type))
            done.append(f"removed the {media_type} record of layer {_short(diff_id)}")
        for cid, vol in sorted(f.dangling_attachments):
            conn.execute("DELETE FROM container_volumes WHERE container_id=? AND volume=?", (cid, vol))
            done.append(f"removed the attachment of volume {vol} to {cid[:12]}")
        for name in sorted(f.missing_volume_dirs):
            conn.execute("DELETE FROM container_volumes WHERE volume=?", (name,))
            if conn.execute("DELETE FROM volumes WHERE name=?", (name,)).rowcount:
                done.append(f"removed volume {name} (its directory was gone)")
    # Files after the rows: a crash here leaves only orphans for the next sweep.
    for cid in sorted(f.bad_containers):
        if conn.execute("SELECT 1 FROM containers WHERE id=?", (cid,)).fetchone() is None:
            remove_path(store.container_path(cid))
    for name in sorted(f.orphan_container_dirs):
        path = os.path.join(store.containers_dir, name)
        if conn.execute("SELECT 1 FROM containers WHERE id=?", (name,)).fetchone() is None \
                and _older_than(path, grace):
            with contextlib.suppress(OSError, ForkliftError):
                _unmount(os.path.join(path, "merged"))
            remove_path(path)
            done.append(f"removed orphan container directory containers/{name[:12]}")
    for name in sorted(f.orphan_volume_dirs):
        path = os.path.join(store.volumes_dir, name)
        data = os.path.join(path, "_data")
        if os.path.isdir(data) and os.listdir(data):
            continue  # holds someone's data: leave it, keep reporting it
        if conn.execute("SELECT 1 FROM volumes WHERE name=?", (name,)).fetchone() is None \
                and _older_than(path, grace):
            remove_path(path)
            done.append(f"removed orphan volume directory volumes/{name}")
    for path in layer_store.collect_garbage(store):
        done.append(f"removed {os.path.relpath(path, store.root)}")
    for path in recovery.sweep_orphans(store):
        done.append(f"removed orphan {os.path.relpath(path, store.root)}")
    for path in store.sweep_tmp():
        if not os.path.basename(path).startswith(f"{os.getpid()}-"):
            done.append(f"removed leftover {os.path.relpath(path, store.root)}")
    return done


def _unmount(path: str) -> None:
    if os.path.isdir(path) and overlay.is_mounted(path):
        overlay.unmount(path, lazy=True)
