"""Hostile archives through the real CLI: no hang, no unbounded growth, one-line errors.

Every reproduction of issue 10 runs ``forklift`` in a subprocess with a timeout and
an address-space bound (RLIMIT_AS), through ``import`` (file, gzip, stdin), ``load``
(plain, gzip, stdin, and as a layer inside a valid image) and ``pull`` (a real
registry serving the hostile layer). A refusal is one ``Error:`` line, no
traceback, the store unchanged, nothing written outside it; a legitimate input
(a 4 GiB sparse file, an empty tar followed by 3 GiB of zeros) gives the right
result at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from support import Forklift, Result, one_line_error
from support import tarcraft as tc
from support.registry import Registry, put_blob, put_manifest, running_proxy
from support.store import NewStore, assert_clean, snapshot

from forklift.tarsplit import TarStream

pytestmark = pytest.mark.root

MEM = 1 << 30        # address space allowed to each command under test
TIMEOUT = 60         # a hang shows as a timeout; every case here takes a second or two
MIB = 1 << 20


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Env:
    """A store with one image in it, an input directory and an empty working directory:
    ``refused`` checks the store and both directories are as they were. Every command runs
    with a memory bound and a timeout (a hang fails the test, it never stalls it)."""

    def __init__(self, store: Forklift, base: Path) -> None:
        self.root = store.root
        self.inputs = base / "in"
        self.cwd = base / "cwd"
        self.inputs.mkdir(parents=True)
        self.cwd.mkdir()
        config = base / "docker-config"
        self.fl = Forklift(self.root, cwd=self.cwd, memory=MEM, timeout=TIMEOUT,
                           env={"DOCKER_CONFIG": str(config),
                                "FORKLIFT_CONFIG_DIR": str(config / "fl")})
        seed = self.inputs / "seed.tar"
        seed.write_bytes(tc.member("seed", b"seed") + tc.end())
        self.fl("import", str(seed), "seed:1")

    def write(self, name: str, data: bytes) -> Path:
        path = self.inputs / name
        path.write_bytes(data)
        return path

    def cli(self, *args: str, stdin: bytes | Path | None = None, **kw: object) -> Result:
        """The CLI; ``stdin`` is bytes to pipe in or a file to read in place."""
        if isinstance(stdin, bytes):
            return self.fl(*args, input=stdin, check=False, **kw)  # type: ignore[arg-type]
        return self.fl(*args, stdin=stdin, check=False, **kw)  # type: ignore[arg-type]

    def refused(self, *args: str, expect: str = "", **kw: object) -> str:
        before = snapshot(self.root)
        inputs = sorted(os.listdir(self.inputs))
        started = time.monotonic()
        line = one_line_error(self.cli(*args, **kw))  # type: ignore[arg-type]
        assert time.monotonic() - started < 30, f"refusal took {time.monotonic() - started:.0f}s"
        assert expect in line, line
        assert snapshot(self.root) == before
        assert sorted(os.listdir(self.inputs)) == inputs
        assert os.listdir(self.cwd) == []
        return line

    def accepted(self, *args: str, **kw: object) -> str:
        res = self.cli(*args, **kw)  # type: ignore[arg-type]
        assert res.code == 0, res.err
        assert os.listdir(self.cwd) == []
        return res.out.strip()


@pytest.fixture
def env(new_store: NewStore, tmp_path: Path) -> Env:
    return Env(new_store(), tmp_path)


# ----------------------------------------------------------------------------- images

def image_config(diff_ids: list[str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def docker_archive(layers: list[bytes], diff_ids: list[str] | None = None,
                   layer_names: list[str] | None = None) -> bytes:
    """A docker-archive made by tarfile (benign outside; the layers may be anything)."""
    config = image_config(diff_ids if diff_ids is not None else [sha(x) for x in layers])
    names = layer_names or [f"l{i}/layer.tar" for i in range(len(layers))]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["hostile:1"],
                            "Layers": names}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        entries = [("manifest.json", manifest), ("config.json", config)]
        entries += list(zip(names, layers, strict=False))
        for name, data in dict(entries).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def push(reg: Registry, repo: str, layers: list[bytes], diff_ids: list[str],
         media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
         layer_list: list[dict] | None = None) -> str:
    """Push a hand-made image (blobs as given) to the registry; returns its reference."""
    base = f"http://{reg.host}"
    config = image_config(diff_ids)
    config_digest = put_blob(base, repo, config)
    descs = [{"mediaType": media_type, "digest": put_blob(base, repo, layer), "size": len(layer)}
             for layer in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": layer_list if layer_list is not None else descs}).encode()
    put_manifest(base, repo, "1", manifest, "application/vnd.oci.image.manifest.v1+json")
    return f"{reg.host}/{repo}:1"


VIAS = ("import", "import-gzip", "import-stdin", "load", "load-gzip", "load-stdin",
        "load-layer", "pull")


def deliver(env: Env, via: str, data: bytes, reg: Registry | None, *extra: str,
            expect: str = "") -> str:
    """Hand ``data`` (a tar) to forklift ``via`` one path; it must be refused."""
    name = f"case-{via}"
    if via == "import":
        return env.refused("import", *extra, str(env.write(name, data)), "x:1", expect=expect)
    if via == "import-gzip":
        return env.refused("import", *extra, str(env.write(name, gzip.compress(data))), "x:1",
                           expect=expect)
    if via == "import-stdin":
        return env.refused("import", *extra, "-", "x:1", stdin=data, expect=expect)
    if via == "load":
        return env.refused("load", *extra, "-i", str(env.write(name, data)), expect=expect)
    if via == "load-gzip":
        return env.refused("load", *extra, "-i", str(env.write(name, gzip.compress(data))),
                           expect=expect)
    if via == "load-stdin":
        return env.refused("load", *extra, stdin=data, expect=expect)
    if via == "load-layer":
        return env.refused("load", *extra, "-i", str(env.write(name, docker_archive([data]))),
                           expect=expect)
    assert via == "pull" and reg is not None
    ref = push(reg, f"hostile/{hashlib.sha256(data).hexdigest()[:12]}", [gzip.compress(data)],
               [sha(data)])
    return env.refused("pull", *extra, ref, expect=expect)


# ----------------------------------------------------------------------------- hangs

def _pax_digits(n: int) -> bytes:
    return tc.pax(b"1" * n) + tc.member("a", b"x") + tc.end()


HOSTILE: dict[str, tuple[bytes, str]] = {
    # CVE-2025-8194: tarfile seeks back to this header for ever, memory growing
    "negative-pax-size": (tc.member("pre") + tc.pax(tc.record("size", "-1536"))
                          + tc.member("manifest.json", b"[]") + tc.member("a", b"x" * 1000)
                          + tc.end(), "not a non-negative number"),
    # CVE-2024-6232: a 1 MiB PAX header of digits, quadratic in tarfile (~20 minutes)
    "pax-of-digits": (_pax_digits(tc.BLOCK * 2048), "malformed PAX record"),
    "pax-over-1mib": (_pax_digits(tc.BLOCK * 2048 + 1), "larger than 1048576 bytes"),
    # a header declaring 1 GiB: refused before a byte of it is read (it cost 3 GB of RSS)
    "pax-declares-1gib": (tc.header("PaxHeaders/x", type=b"x", size=1 << 30) + b"0" * 4096,
                          "larger than 1048576 bytes"),
    "gnu-longname-over-1mib": (tc.header("././@LongLink", type=b"L", size=(1 << 20) + 1,
                                         magic=tc.GNU) + b"a" * 8192, "larger than 1048576"),
    # GNU tar reports an error; tarfile silently ended the archive after the first member
    "zero-length-pax-record": (tc.member("first", b"1") + tc.pax(b"0 path=x\n")
                               + tc.member("second", b"2") + tc.end(), "bad length"),
    "negative-base256-size": (tc.member("m", size=tc.base256(-512, 12)) + tc.end(),
                              "invalid size"),
    # a sparse file declaring 1 PiB: far beyond any layer, refused before writing
    "sparse-1pib": (tc.old_gnu_sparse("big", 1 << 50, [(0, 4)], b"data") + tc.end(),
                    "size limit"),
}


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_are_refused_everywhere(env: Env, registry: Registry, case: str,
                                                via: str) -> None:
    data, expect = HOSTILE[case]
    if via == "load" and case == "sparse-1pib":
        expect = ""  # read in place, the archive is simply not an image: any refusal is right
    line = deliver(env, via, data, registry, expect=expect)
    if case == "sparse-1pib":
        assert "--max-size" in line or via == "load", line


# ----------------------------------------------------------------------------- sparse files

FRAGMENTS = [(0, 4096), (1 << 30, 4096), ((4 << 30) - 4096, 4096)]
SPARSE_DATA = b"a" * 4096 + b"b" * 4096 + b"c" * 4096
SPARSE_FORMATS: dict[str, Callable[..., bytes]] = {
    "old-gnu": tc.old_gnu_sparse, "pax-0.0": tc.pax_sparse_0_0,
    "pax-0.1": tc.pax_sparse_0_1, "pax-1.0": tc.pax_sparse_1_0}


def _layer_file(root: Path, name: str) -> Path:
    found = list((root / "layers").glob(f"*/diff/{name}"))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("fmt", sorted(SPARSE_FORMATS))
def test_sparse_4gib_file_is_written_with_holes(env: Env, fmt: str) -> None:
    data = SPARSE_FORMATS[fmt]("sparse", 4 << 30, FRAGMENTS, SPARSE_DATA) + tc.end()
    assert len(data) < 20_000
    path = env.write("sparse.tar", data)
    env.accepted("import", str(path), "sparse:1")
    st = os.stat(_layer_file(env.root, "sparse"))
    assert st.st_size == 4 << 30
    assert st.st_blocks * 512 < 1 * MIB, "holes were written out"
    with open(_layer_file(env.root, "sparse"), "rb") as f:
        for i, (offset, length) in enumerate(FRAGMENTS):
            f.seek(offset)
            assert f.read(length) == SPARSE_DATA[i * 4096:(i + 1) * 4096]
        f.seek(2 << 30)
        assert f.read(4096) == bytes(4096)
    assert sum(p.stat().st_size for p in (env.root / "blobs").rglob("*") if p.is_file()) < MIB
    # over the size limit: refused before a byte is written
    line = env.refused("import", "--max-size", "1g", str(path), "sparse:2", expect="1GiB")
    assert "--max-size" in line


def test_sparse_layer_through_load_and_pull(env: Env, registry: Registry, new_store: NewStore,
                                            tmp_path: Path) -> None:
    layer = tc.pax_sparse_1_0("sparse", 4 << 30, FRAGMENTS, SPARSE_DATA) + tc.end()
    env.accepted("load", "-i", str(env.write("img.tar", docker_archive([layer]))))
    assert os.stat(_layer_file(env.root, "sparse")).st_blocks * 512 < MIB
    other = Env(new_store(), tmp_path / "other")
    layer = tc.old_gnu_sparse("sparse", 4 << 30, FRAGMENTS, SPARSE_DATA) + tc.end()
    ref = push(registry, "sparse/old", [gzip.compress(layer)], [sha(layer)])
    other.refused("pull", "--max-size", "2g", ref, expect="2GiB")
    other.accepted("pull", ref)
    assert os.stat(_layer_file(other.root, "sparse")).st_blocks * 512 < MIB


# ----------------------------------------------------------------------------- end of archive

def _zeros_file(path: Path, head: bytes, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + size)
    return path


def _gzip_zeros(head: bytes, size: int, piece: int = 64 * MIB) -> bytes:
    """``head`` then ``size`` zero bytes, gzip'd as concatenated members (fast to make)."""
    chunk = gzip.compress(bytes(piece), 9)
    assert size % piece == 0
    return gzip.compress(head) + chunk * (size // piece)


EMPTY = tc.end()


def _stored_layer(root: Path) -> tuple[str, int]:
    conn = sqlite3.connect(f"file:{root}/forklift.db?mode=ro", uri=True)
    try:
        diff_id, blob, name = conn.execute(
            "SELECT l.diff_id, l.blob, l.dir FROM layers l JOIN image_layers il"
            " ON il.diff_id = l.diff_id"
            " JOIN tags t ON t.image_id = il.image_id WHERE t.name LIKE '%/empty:1'").fetchone()
    finally:
        conn.close()
    split = root / "layers" / name / "tar-split"
    if split.exists():  # no blob: the tar its directory and tar-split play back
        with TarStream(str(root / "layers" / name / "diff"), str(split)) as tar:
            return diff_id, len(tar.read())
    return diff_id, (root / "blobs" / "sha256" / blob.split(":")[1]).stat().st_size


@pytest.mark.parametrize("how", ["file", "gzip", "stdin"])
def test_empty_tar_then_3gib_of_zeros_stores_only_the_archive(env: Env, how: str) -> None:
    if how == "gzip":
        source = env.write("z.tar.gz", _gzip_zeros(EMPTY, 3 << 30))
        assert source.stat().st_size < 4 * MIB
    else:
        source = _zeros_file(env.inputs / "z.tar", EMPTY, 3 << 30)
    started = time.monotonic()
    if how == "stdin":
        env.accepted("import", "-", "empty:1", stdin=source)
    else:
        env.accepted("import", str(source), "empty:1")
    assert time.monotonic() - started < 15
    diff_id, size = _stored_layer(env.root)
    assert size == len(EMPTY)
    assert diff_id == sha(EMPTY)


def test_small_trailer_is_kept_as_docker_hashes_it(env: Env) -> None:
    """tarfile and GNU tar pad to 10 KiB records: the blob is the input, byte for byte."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    data = buf.getvalue()
    assert len(data) == tarfile.RECORDSIZE
    env.accepted("import", str(env.write("small.tar", data)), "empty:1")
    diff_id, size = _stored_layer(env.root)
    assert (diff_id, size) == (sha(data), len(data))


def test_load_hashes_the_whole_layer_within_the_size_limit(env: Env) -> None:
    """Where a config names the diffID, what follows the end marker is hashed too (the
    producer hashed it) and counts against the size limit."""
    layer = tc.member("f", b"x") + EMPTY + bytes(48 * MIB)
    archive = env.write("img.tar", docker_archive([layer]))
    env.refused("load", "--max-size", "16m", "-i", str(archive), expect="16MiB")
    env.refused("load", "--max-size", "16m", stdin=gzip.compress(archive.read_bytes(), 1),
                expect="16MiB")
    env.accepted("load", "-i", str(archive))
    assert json.loads(env.accepted("image", "inspect", "hostile:1"))[0]["RootFS"]["Layers"] \
        == [sha(layer)]


# ----------------------------------------------------------------------------- bombs

BOMB_SIZE = 1 << 30


def _bomb_tar_head(size: int) -> bytes:
    return tc.header("bomb", size=size)


def gzip_bomb() -> bytes:
    """A tar holding one 1 GiB file of zeros, gzip'd: ~1,000x."""
    piece = 64 * MIB
    return (gzip.compress(_bomb_tar_head(BOMB_SIZE)) + gzip.compress(bytes(piece), 9)
            * (BOMB_SIZE // piece) + gzip.compress(EMPTY))


def zstd_bomb() -> bytes:
    """The same with 4 GiB in zstd frames: ~30,000x."""
    size, piece = 4 << 30, 256 * MIB
    cctx = zstandard.ZstdCompressor(level=19)
    return (cctx.compress(_bomb_tar_head(size)) + cctx.compress(bytes(piece)) * (size // piece)
            + cctx.compress(EMPTY))


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    out = {"gzip": gzip_bomb(), "zstd": zstd_bomb()}
    assert BOMB_SIZE // len(out["gzip"]) > 900
    assert (4 << 30) // len(out["zstd"]) > 20_000
    return out


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_decompression_bombs_stop_at_the_limit(env: Env, registry: Registry,
                                               bombs: dict[str, bytes], kind: str) -> None:
    bomb = bombs[kind]
    path = env.write(f"bomb.{kind}", bomb)
    expect = "larger than the size limit of 64MiB (raise it with --max-size)"
    env.refused("import", "--max-size", "64m", str(path), "bomb:1", expect=expect)
    env.refused("import", "--max-size", "64m", "-", "bomb:1", stdin=bomb, expect=expect)
    # inside an image: a docker-archive layer (compression sniffed), or a registry blob
    env.refused("load", "--max-size", "64m", "-i",
                str(env.write("img.tar", docker_archive([bomb], [sha(b"unknown")]))),
                expect=expect)
    media = f"application/vnd.oci.image.layer.v1.tar+{'gzip' if kind == 'gzip' else 'zstd'}"
    ref = push(registry, f"bomb/{kind}", [bomb], [sha(b"unknown")], media)
    env.refused("pull", "--max-size", "64m", ref, expect=expect)
    # the store's own limit, named in the message
    (env.root / "config.toml").write_text('[limits]\nmax-layer-size = "64m"\n')
    line = env.refused("import", str(path), "bomb:1", expect="64MiB")
    assert f"max-layer-size in {env.root}/config.toml" in line


def test_compressed_archive_is_held_to_the_limit_while_unpacked(env: Env) -> None:
    """load of a compressed archive unpacks it to scratch first: a member larger than a
    layer may be is refused from its header, before it is written."""
    archive = _gzip_zeros(tc.member("manifest.json", b"[]") + tc.header("big.tar", size=1 << 30),
                          1 << 30) + gzip.compress(EMPTY)
    env.refused("load", "--max-size", "64m", stdin=archive, expect="a file in the archive")


# ----------------------------------------------------------------------------- layer counts

MANY = 10_000


def test_pull_of_10000_layers_is_refused_before_any_download(env: Env, registry: Registry) -> None:
    layer = gzip.compress(tc.member("f", b"x") + EMPTY)
    digest = put_blob(f"http://{registry.host}", "many/layers", layer)
    descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
              "size": len(layer)}] * MANY
    push(registry, "many/layers", [], [sha(b"x")] * MANY, layer_list=descs)
    with running_proxy(registry.port) as proxy:
        line = env.refused("pull", f"{proxy.host}/many/layers:1",
                           expect=f"has {MANY} layers, more than the limit of 125")
        assert "max-layers in" in line
        assert not [r for r in proxy.requests if "/blobs/" in r[1]], proxy.requests


def test_pull_of_a_blob_larger_than_the_limit_is_refused_before_download(
        env: Env, registry: Registry) -> None:
    layer = tc.member("noise", os.urandom(3 * MIB)) + EMPTY
    blob = gzip.compress(layer, 1)
    push(registry, "big/blob", [blob], [sha(layer)])
    with running_proxy(registry.port) as proxy:
        env.refused("pull", "--max-size", "1m", f"{proxy.host}/big/blob:1",
                    expect=f"({len(blob)} bytes) is larger than the size limit of 1MiB")
        assert not [r for r in proxy.requests if "/blobs/" in r[1]], proxy.requests


def test_load_of_10000_layers_is_refused_before_any_layer(env: Env) -> None:
    layer = tc.member("f", b"x") + EMPTY
    names = ["l/layer.tar"] * MANY
    archive = docker_archive([layer], [sha(layer)] * MANY, names)
    env.refused("load", "-i", str(env.write("many.tar", archive)),
                expect=f"has {MANY} layers, more than the limit of 125")
    # an OCI layout whose manifest lists the same layer 10,000 times
    config = image_config([sha(layer)] * MANY)
    desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
            "size": len(layer)}
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [desc] * MANY}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest)}]}).encode()
    layout = env.inputs / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_bytes(index)
    for blob in (config, manifest, layer):
        (layout / "blobs" / "sha256" / sha(blob)[7:]).write_bytes(blob)
    env.refused("load", "-i", str(layout), expect=f"has {MANY} layers")


def test_commit_on_an_image_at_the_layer_limit_is_refused(env: Env) -> None:
    (env.root / "config.toml").write_text("[limits]\nmax-layers = 1\n")
    env.accepted("create", "--network", "none", "--name", "c", "seed:1", "true")
    line = env.refused("commit", "c", "more:1", expect="has 2 layers, more than the limit of 1")
    assert "max-layers in" in line
    (env.root / "config.toml").write_text("[limits]\nmax-layers = 2\n")
    env.accepted("commit", "c", "more:1")


@pytest.mark.parametrize("text, expect", [
    ("[limits\n", "config.toml"),
    ("[limits]\nmax-layer-size = \"lots\"\n", "invalid max-layer-size"),
    ("[limits]\nmax-layers = 0\n", "max-layers must be"),
    ("[limits]\nmax-layer = 3\n", "unknown setting limits.max-layer"),
])
def test_bad_config_is_one_line_error(env: Env, text: str, expect: str) -> None:
    (env.root / "config.toml").write_text(text)
    env.refused("import", str(env.write("ok.tar", tc.member("f") + EMPTY)), "x:1", expect=expect)
    (env.root / "config.toml").unlink()
    env.refused("import", "--max-size", "12q", str(env.inputs / "ok.tar"), "x:1",
                expect="invalid --max-size")


# ----------------------------------------------------------------------------- save oci-dir

@pytest.mark.parametrize("link", ["blobs", "blobs/sha256", "index.json"])
def test_save_into_a_layout_with_a_symlink_is_refused(env: Env, tmp_path: Path, link: str) -> None:
    layout = tmp_path / "layout"
    env.accepted("save", "--format", "oci-dir", "-o", str(layout), "seed:1")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = layout / link
    os.rename(target, outside / "moved")
    os.symlink(outside / "moved", target)
    before = sorted(p.name for p in (outside / "moved").rglob("*")) if (outside / "moved").is_dir() \
        else (outside / "moved").read_bytes()
    env.refused("save", "--format", "oci-dir", "-o", str(layout), "seed:1",
                expect="contains a symlink")
    after = sorted(p.name for p in (outside / "moved").rglob("*")) if (outside / "moved").is_dir() \
        else (outside / "moved").read_bytes()
    assert after == before
    assert_clean(env.root)
