"""The Store object: paths, the SQLite connection, transactions, scratch space.

The bottom of the store package: it imports no other store module but ``layout``. Opening a
``Store`` runs no crash recovery; ``forklift.store.open_store`` does (see
``store/recovery.py``).
"""

from __future__ import annotations

# the extension sqlite3 re-exports: the package adds datetime's adapters (~2.5 ms)
import _sqlite3 as sqlite3
import atexit
import contextlib
import errno
import os

from forklift.errors import ForkliftError, NoSpace, StoreCorrupt
from forklift.procs import pid_alive
from forklift.store.layout import SCHEMA_VERSION
from forklift.store.layout import default_root as default_root  # its old home

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS blobs(
    digest TEXT PRIMARY KEY, size INTEGER NOT NULL, media_type TEXT, created REAL);
CREATE TABLE IF NOT EXISTS layers(
    diff_id TEXT PRIMARY KEY,
    dir TEXT UNIQUE NOT NULL,          -- short directory name under layers/
    size INTEGER NOT NULL,             -- content bytes, as Docker counts layer size
    blob TEXT NOT NULL,                -- blob that reproduces the layer tar exactly
    blob_media_type TEXT NOT NULL,
    created REAL);
CREATE TABLE IF NOT EXISTS images(
    id TEXT PRIMARY KEY,               -- config digest
    parent TEXT,
    created REAL,                      -- config 'created' as epoch seconds
    size INTEGER NOT NULL,
    added REAL);
CREATE TABLE IF NOT EXISTS image_layers(
    image_id TEXT NOT NULL, position INTEGER NOT NULL, diff_id TEXT NOT NULL,
    PRIMARY KEY(image_id, position));
CREATE INDEX IF NOT EXISTS image_layers_diff ON image_layers(diff_id);
CREATE TABLE IF NOT EXISTS tags(
    name TEXT PRIMARY KEY,             -- normalized: docker.io/library/busybox:latest
    image_id TEXT NOT NULL, added REAL);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests(
    repository TEXT NOT NULL, digest TEXT NOT NULL, image_id TEXT NOT NULL,
    PRIMARY KEY(repository, digest));
CREATE INDEX IF NOT EXISTS repo_digests_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS containers(
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    image_id TEXT NOT NULL,
    image_name TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL,               -- created | running | exited | paused | removing
    pid INTEGER,
    exit_code INTEGER,
    started_at TEXT,
    finished_at TEXT,
    config TEXT NOT NULL,              -- JSON: Docker's container Config
    host_config TEXT NOT NULL);        -- JSON: Docker's HostConfig subset
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS volumes(
    name TEXT PRIMARY KEY, anonymous INTEGER NOT NULL, created REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS container_volumes(
    container_id TEXT NOT NULL, volume TEXT NOT NULL, destination TEXT NOT NULL,
    PRIMARY KEY(container_id, destination));
CREATE INDEX IF NOT EXISTS container_volumes_volume ON container_volumes(volume);
CREATE TABLE IF NOT EXISTS compressed_blobs(
    diff_id TEXT NOT NULL,             -- the layer this blob reproduces when decompressed
    media_type TEXT NOT NULL,          -- e.g. application/vnd.oci.image.layer.v1.tar+gzip
    digest TEXT NOT NULL,              -- a row in blobs
    PRIMARY KEY(diff_id, media_type));
CREATE INDEX IF NOT EXISTS compressed_blobs_digest ON compressed_blobs(digest);
""" + """
CREATE TABLE IF NOT EXISTS container_layers(
    container_id TEXT NOT NULL,        -- a container whose image record was deleted (rmi -f):
    position INTEGER NOT NULL,         -- it keeps its layers, bottom first, until it is removed
    diff_id TEXT NOT NULL,
    PRIMARY KEY(container_id, position));
CREATE INDEX IF NOT EXISTS container_layers_diff ON container_layers(diff_id);
""" + """
CREATE TABLE IF NOT EXISTS build_cache(
    key TEXT PRIMARY KEY,              -- sha256 of a build step (see forklift.build.cache)
    image_id TEXT NOT NULL,            -- the image that step made
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
""" + """
CREATE TABLE IF NOT EXISTS layer_sources(
    diff_id TEXT NOT NULL,             -- a pulled layer, kept without its compressed blob:
    digest TEXT NOT NULL,              -- the registry blob it was pulled as (Docker's
    media_type TEXT NOT NULL,          -- "v2 metadata"), so a push can HEAD, mount or
    size INTEGER NOT NULL,             -- re-fetch that blob instead of recompressing
    repository TEXT NOT NULL,          -- where it came from: registry.example/team/app
    PRIMARY KEY(diff_id, digest, repository));
"""
# What each schema version adds to the one before (a store is migrated on open).
_MIGRATIONS = {
    2: _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS container_layers"):
               _SCHEMA.index("CREATE TABLE IF NOT EXISTS build_cache")],
    3: _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS build_cache"):
               _SCHEMA.index("CREATE TABLE IF NOT EXISTS layer_sources")],
    4: _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS layer_sources"):],
}


class Store:
    """Handle on one store root. Cheap to open: the run hot path opens one."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.blobs_dir = os.path.join(self.root, "blobs", "sha256")
        self.layers_dir = os.path.join(self.root, "layers")
        self.containers_dir = os.path.join(self.root, "containers")
        self.volumes_dir = os.path.join(self.root, "volumes")
        self.tmp_dir = os.path.join(self.root, "tmp")
        self.runc_dir = os.path.join(self.root, "runc")
        self._conn: sqlite3.Connection | None = None
        self._depth = 0
        self._dirty_marker: str | None = None

    # -- opening
    def open(self) -> Store:
        """Create the root's directories and database if missing, connect (WAL) and
        bring the schema up to SCHEMA_VERSION; returns self. Runs no crash recovery.

        Raises ForkliftError when the root cannot be created, StoreCorrupt for a
        database SQLite cannot read or a schema newer than this forklift, NoSpace when
        creating or migrating it fills the disk. Safe to run in many processes at once
        (schema creation and migration each run in one write transaction)."""
        try:
            for path in (self.blobs_dir, self.layers_dir, self.containers_dir,
                         self.volumes_dir, self.tmp_dir, self.runc_dir):
                os.makedirs(path, mode=0o700, exist_ok=True)
            conn = sqlite3.connect(os.path.join(self.root, "forklift.db"), timeout=60,
                                   isolation_level=None, check_same_thread=False)
        except OSError as exc:
            raise ForkliftError(f"cannot open store at {self.root}: {exc.strerror}") from None
        except sqlite3.Error as exc:
            raise StoreCorrupt(f"cannot open store database: {exc}") from None
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA foreign_keys = OFF")
        self._conn = conn
        try:
            self._init_schema()
        except sqlite3.OperationalError as exc:
            self._raise_if_full(exc)
            raise StoreCorrupt(f"cannot open store database: {exc}") from None
        return self

    def _init_schema(self) -> None:
        conn = self.conn
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        row = None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            pass
        if row is None:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreCorrupt(f"store schema {row[0]} is newer than this forklift understands")
        elif int(row[0]) < SCHEMA_VERSION:
            self._migrate(int(row[0]))

    def _migrate(self, version: int) -> None:
        """Bring an older store up to SCHEMA_VERSION, all in one transaction."""
        with self.transaction() as conn:
            current = int(conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])
            for target in range(max(current, version) + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "store not opened"
        return self._conn

    def close(self) -> None:
        """Close the connection and drop this process's dirty marker; idempotent. The
        store may be opened again."""
        self._clear_dirty()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- crash detection
    def mark_dirty(self) -> None:
        """Leave ``tmp/<pid>-dirty-…`` while this process may move files in or out of
        blobs/ and layers/. Removed at exit (or ``close``); if the process is killed it
        stays, and the next ``open_store`` (seeing a dead pid's leftover) sweeps orphan
        files. Idempotent; NoSpace on a full disk."""
        if self._dirty_marker is not None and os.path.exists(self._dirty_marker):
            return
        path = os.path.join(self.tmp_dir, f"{os.getpid()}-dirty-{os.urandom(4).hex()}")
        try:
            with open(path, "wb"):
                pass
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpace("no space left on device") from None
            raise
        if self._dirty_marker is None:
            atexit.register(self._clear_dirty)
        self._dirty_marker = path

    def _clear_dirty(self) -> None:
        marker, self._dirty_marker = self._dirty_marker, None
        if marker is not None and marker.split(os.sep)[-1].startswith(f"{os.getpid()}-"):
            with contextlib.suppress(OSError):
                os.unlink(marker)

    # -- transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): serialized across processes.

        Nested use joins the outer transaction. Commits when the block ends, rolls back
        if it raises (and re-raises; a full disk becomes NoSpace). Waits up to 60 s for
        another process's write lock (busy timeout), then raises sqlite3.OperationalError.
        Functions that must run inside one assert ``store.conn.in_transaction``."""
        conn = self.conn
        if self._depth:
            self._depth += 1
            try:
                yield conn
            finally:
                self._depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._raise_if_full(exc)
            raise
        self._depth = 1
        try:
            yield conn
        except BaseException as exc:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpace("no space left on device") from None
            if isinstance(exc, sqlite3.OperationalError):
                self._raise_if_full(exc)
            raise
        self._depth = 0
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._raise_if_full(exc)
            if "full" in str(exc):
                raise NoSpace("no space left on device while writing store metadata") from None
            raise

    def _raise_if_full(self, exc: sqlite3.Error) -> None:
        """SQLite reports a full disk as SQLITE_FULL, or as a disk I/O error when the
        WAL or its shared-memory file cannot grow: tell the user it is space."""
        text = str(exc)
        if "full" in text:
            raise NoSpace("no space left on device while writing store metadata") from None
        if "disk I/O error" in text:
            with contextlib.suppress(OSError):
                st = os.statvfs(self.root)
                if st.f_bavail * st.f_frsize < (1 << 20):
                    raise NoSpace("no space left on device while writing store metadata") from None

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """All rows of one statement, inside or outside a transaction."""
        cur = self.conn.execute(sql, params)
        return cur.fetchall()

    # -- scratch space
    def make_tmp(self, purpose: str = "work") -> str:
        """A new private scratch directory ``tmp/<pid>-<purpose>-<random>``, named after
        our pid so that it is swept once we are gone; the caller removes it when done.
        NoSpace on a full disk."""
        path = os.path.join(self.tmp_dir, f"{os.getpid()}-{purpose}-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise NoSpace("no space left on device") from None
            raise
        return path

    def sweep_tmp(self) -> list[str]:
        """Remove scratch entries whose owning process no longer exists; returns their
        paths. Idempotent, takes no lock (a live pid's entries are never touched)."""
        removed: list[str] = []
        try:
            names = os.listdir(self.tmp_dir)
        except FileNotFoundError:
            return removed
        for name in names:
            pid_text = name.split("-", 1)[0]
            if pid_text.isdigit() and pid_alive(int(pid_text)):
                continue
            path = os.path.join(self.tmp_dir, name)
            _unmount_below(path)
            remove_path(path)
            removed.append(path)
        return removed

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs_dir, digest.split(":", 1)[1])

    def layer_path(self, dir_name: str) -> str:
        return os.path.join(self.layers_dir, dir_name, "diff")

    def container_path(self, container_id: str) -> str:
        return os.path.join(self.containers_dir, container_id)


def _unmount_below(path: str) -> None:
    """A killed ``build`` may leave an overlay mounted in its scratch (COPY writes through
    one): detach it so that removing the scratch never walks into the image's files."""
    if not os.path.isdir(path) or os.path.islink(path):
        return
    from forklift.runtime import overlay  # ctypes: only when a dead process left scratch

    with contextlib.suppress(OSError, ForkliftError):
        for point in overlay.mounts_under(path):
            overlay.unmount(point, lazy=True)


def remove_path(path: str) -> None:
    """Remove a file or tree, unmounting nothing and following no symlink. A missing
    path is fine (idempotent); what a tree still holds that cannot be removed (a mount
    point, say) stays silently, a file that cannot be unlinked raises OSError."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            with contextlib.suppress(OSError, RecursionError):  # RecursionError: a deep tree
                _remove_tree(path)
            if not os.path.lexists(path):
                return
            # What the quick pass left (a mount point, an unusual entry): the thorough one.
            import shutil  # bz2 and lzma come with it: not on every command's path

            shutil.rmtree(path, ignore_errors=True)
            if os.path.exists(path):
                _force_rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_tree(path: str) -> None:
    """Delete a tree by descriptor, following no symlink and staying on its filesystem (a
    mount left inside is not emptied). Not `shutil.rmtree` first: its import (bz2, lzma)
    costs more than removing exec's scratch or a ``run --rm`` container's directory."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _empty_dir(fd, os.fstat(fd).st_dev)
    finally:
        os.close(fd)
    os.rmdir(path)


def _empty_dir(fd: int, dev: int) -> None:
    with os.scandir(fd) as it:
        entries = list(it)
    for entry in entries:
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.name, dir_fd=fd)
                continue
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            try:
                if os.fstat(sub).st_dev != dev:
                    continue
                _empty_dir(sub, dev)
            finally:
                os.close(sub)
            os.rmdir(entry.name, dir_fd=fd)


def _force_rmtree(path: str) -> None:
    # A layer may hold read-only directories (mode 0500): make them writable and retry.
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                with contextlib.suppress(OSError):
                    os.chmod(full, 0o700)
    import shutil

    shutil.rmtree(path, ignore_errors=True)
