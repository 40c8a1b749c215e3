"""forklift's tar reader: every header form it reads, every limit it keeps, and proof that
it reads what ``tarfile`` reads wherever ``tarfile`` was right (hypothesis, benign archives)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import tarcraft as tc

from forklift import archive
from forklift.errors import BadArchive, ForkliftError, InvalidArgument, LimitExceeded
from forklift.formats.detect import TarSource
from forklift.formats.sinks import DirSink
from forklift.limits import DEFAULT_MAX_LAYERS, Limits, format_size, load, parse_size
from forklift.tarreader import MAX_SPECIAL, Member, TarReader, parse_pax

EXAMPLES = int(os.environ.get("FORKLIFT_HYPOTHESIS_EXAMPLES", "200"))


def members(data: bytes) -> list[tuple[Member, bytes]]:
    """Every member with its content as the file it stands for (sparse holes as zeros)."""
    reader = TarReader(io.BytesIO(data))
    out = []
    for m in reader:
        raw = b""
        while chunk := reader.read(7777):
            raw += bytes(chunk)
        out.append((m, expand(m, raw)))
    return out


def expand(m: Member, raw: bytes) -> bytes:
    if m.sparse is None:
        return raw
    buf = bytearray(m.realsize)
    at = 0
    for offset, length in m.sparse:
        buf[offset:offset + length] = raw[at:at + length]
        at += length
    return bytes(buf)


def refused(data: bytes) -> str:
    with pytest.raises(BadArchive) as err:
        members(data)
    return str(err.value)


# ----------------------------------------------------------------------------- header forms

def test_ustar_prefix_gnu_long_names_and_base256() -> None:
    data = (tc.member("name", b"abc", prefix=b"some/prefix", uid=1 << 40, gid=7, mtime=99)
            + tc.gnu_long(b"L", b"L" * 300 + b"\0") + tc.gnu_long(b"K", b"K" * 200)
            + tc.header("short", type=b"2", linkname="short-link", magic=tc.GNU)
            + tc.member("v7dir/", magic=b"", type=b"\0")
            + tc.member("dev", type=b"3", devmajor=4, devminor=64, size=77)  # size ignored
            + tc.member("after", b"x") + tc.end())
    got = members(data)
    (first, body), (link, _), (v7, _), (dev, _), (after, last) = got
    assert (first.name, first.uid, first.gid, first.mtime, body) == (
        "some/prefix/name", 1 << 40, 7, 99, b"abc")
    assert (link.name, link.linkname, link.issym()) == ("L" * 300, "K" * 200, True)
    assert (v7.name, v7.isdir()) == ("v7dir", True)
    assert (dev.ischr(), dev.devmajor, dev.devminor, dev.size) == (True, 4, 64, 0)
    assert (after.name, last) == ("after", b"x")


def test_pax_records_apply_and_globals_carry_over() -> None:
    data = (tc.pax(tc.record("comment", "git archive") + tc.record("uname", "global")
                   + tc.record("SCHILY.xattr.user.g", "1") + tc.record("path", "ignored"),
                   type=b"g")
            + tc.pax(tc.record("path", "é/long/" + "n" * 150) + tc.record("uid", "123456789")
                     + tc.record("mtime", "1700000000.75") + tc.record("size", "5")
                     + tc.record("SCHILY.xattr.user.a", "v=1\n2") + tc.record("uname", ""))
            + tc.member("short", b"hello", size=999) + tc.member("plain", b"p") + tc.end())
    (first, body), (plain, _) = members(data)
    assert first.name == "é/long/" + "n" * 150
    assert (first.uid, first.mtime, first.size, body) == (123456789, 1700000000, 5, b"hello")
    assert first.pax["SCHILY.xattr.user.a"] == "v=1\n2"
    assert first.pax["SCHILY.xattr.user.g"] == "1" and first.uname == ""
    assert (plain.name, plain.uname, plain.pax.get("SCHILY.xattr.user.g")) == ("plain", "global", "1")


def test_end_marker_and_what_follows_it() -> None:
    data = tc.member("a", b"1") + tc.end() + b"anything at all"
    reader = TarReader(io.BytesIO(data))
    assert [m.name for m in reader] == ["a"]
    assert reader.end == reader.pos == tc.BLOCK * 4
    # a single zero block then the end of the stream, or no marker at all: accepted
    assert [m.name for m, _ in members(tc.member("a", b"1") + bytes(512))] == ["a"]
    assert [m.name for m, _ in members(tc.member("a", b"1"))] == ["a"]
    assert members(tc.end()) == []


@pytest.mark.parametrize("data, expect", [
    (b"", "empty"),
    (b"not a tar archive at all" * 30, "bad checksum"),
    (tc.member("a", b"1") + tc.member("b")[:100], "truncated header"),
    (tc.member("a", b"x" * 2000)[:1200], "unexpected end"),
    (tc.header("a", checksum=1), "bad checksum"),
    (tc.header("a", size=b"12345678901x"), "not an octal number"),
    (tc.header("a", size=tc.base256(-1, 12)), "invalid size"),
    (tc.header("a", size=tc.base256(1 << 80, 12)), "invalid size"),
    (tc.header("a", fields={108: tc.base256(-1, 8)}), "negative owner"),
    (tc.member("a") + bytes(512) + tc.member("b"), "lone zero block"),
    (tc.pax(b"", size=MAX_SPECIAL + 1), "larger than 1048576"),
    (tc.header("g", type=b"g", size=-5 % (1 << 33)) + tc.end(), "larger than"),
    (tc.pax(b"0 \n"), "bad length"),
    (tc.pax(b"00 \n"), "bad length"),
    (tc.pax(b"-12 path=a\n"), "malformed PAX record"),
    (tc.pax(b"+12 path=a\n"), "malformed PAX record"),
    (tc.pax(tc.record("path", "a") + b"\0" * 8), "malformed PAX record"),
    (tc.pax(b"12 path=a\n"), "bad length"),
    (tc.pax(b"7 =abc\n"), "malformed PAX record"),
    (tc.pax(b"8 pathX\n"), "malformed PAX record"),
    (tc.pax(b"1" * 1000), "malformed PAX record"),
    (tc.pax(tc.record("size", "-1536")) + tc.member("a"), "non-negative"),
    (tc.pax(tc.record("size", "1e3")) + tc.member("a"), "non-negative"),
    (tc.pax(tc.record("uid", "9" * 30)) + tc.member("a"), "non-negative"),
    (tc.pax(tc.record("mtime", "soon")) + tc.member("a"), "not a time"),
    (tc.pax(tc.record("path", "a\0b")) + tc.member("a"), "NUL"),
    (tc.pax(tc.record("GNU.sparse.numbytes", "1")) + tc.member("a"), "out of order"),
    (tc.pax(tc.record("GNU.sparse.major", "2") + tc.record("GNU.sparse.minor", "0"))
     + tc.member("a"), "unsupported GNU sparse format"),
    (tc.pax(tc.record("GNU.sparse.size", "10") + tc.record("GNU.sparse.map", "0,5,3,5"))
     + tc.member("a", b"x" * 10), "overlapping"),
    (tc.pax(tc.record("GNU.sparse.size", "10") + tc.record("GNU.sparse.map", "8,5"))
     + tc.member("a", b"x" * 5), "out-of-file"),
    (tc.pax(tc.record("GNU.sparse.size", "10") + tc.record("GNU.sparse.map", "0,5"))
     + tc.member("a", b"x" * 6), "describes 5 bytes but the archive holds 6"),
    (tc.pax(tc.record("GNU.sparse.size", "10") + tc.record("GNU.sparse.map", "0,5,7"))
     + tc.member("a", b"x" * 5), "odd number"),
    (tc.old_gnu_sparse("s", 100, [(50, 10), (0, 10)], b"y" * 20), "unordered"),
    (tc.old_gnu_sparse("s", 1 << 40, [(i * 10, 1) for i in range(50_000)], b"y" * 50_000),
     "sparse map is larger than"),
    (tc.pax(tc.record("GNU.sparse.major", "1") + tc.record("GNU.sparse.minor", "0")
            + tc.record("GNU.sparse.realsize", "10"))
     + tc.member("a", b"9" * 600), "overlong number"),
    (tc.pax(tc.record("GNU.sparse.major", "1") + tc.record("GNU.sparse.minor", "0")
            + tc.record("GNU.sparse.realsize", "10"))
     + tc.member("a", b"5\n0\n"), "truncated or too large"),
])
def test_malformed_headers_are_refused(data: bytes, expect: str) -> None:
    assert expect in refused(data)


def test_zero_length_record_does_not_end_the_archive_silently() -> None:
    data = (tc.member("first", b"1") + tc.pax(b"0 path=x\n") + tc.member("second", b"2")
            + tc.end())
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:  # what the interpreter did
        assert tf.getnames() == ["first"]
    assert "bad length" in refused(data)


def test_special_header_over_the_limit_is_not_read() -> None:
    class Endless(io.RawIOBase):
        served = 0

        def readinto(self, b):  # type: ignore[no-untyped-def]
            head = tc.header("PaxHeaders/x", type=b"x", size=1 << 40)
            n = len(b)
            chunk = (head + b"1" * n)[self.served:self.served + n] if self.served < 512 \
                else b"1" * n
            b[:len(chunk)] = chunk
            self.served += len(chunk)
            return len(chunk)

    stream = Endless()
    with pytest.raises(BadArchive, match="larger than 1048576"):
        list(TarReader(stream))  # type: ignore[arg-type]
    assert stream.served <= 512


def test_parsing_is_linear_in_the_header_size() -> None:
    many = b"".join(tc.record(f"SCHILY.xattr.user.k{i}", "v") for i in range(35_000))
    assert len(many) < MAX_SPECIAL
    digits = b"1" * MAX_SPECIAL
    started = time.monotonic()
    records, _ = parse_pax(many, 0)
    assert len(records) == 35_000
    with pytest.raises(BadArchive):
        parse_pax(digits, 0)
    with pytest.raises(BadArchive):
        parse_pax(b"99999 " + b"1" * (MAX_SPECIAL - 6), 0)
    assert time.monotonic() - started < 2


# ----------------------------------------------------------------------------- sparse files

SPARSE_VERSIONS = [("gnu", None), ("posix", "0.0"), ("posix", "0.1"), ("posix", "1.0")]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("fmt, version", SPARSE_VERSIONS)
def test_gnu_tar_sparse_archives_read_as_tarfile_reads_them(tmp_path: Path, fmt: str,
                                                           version: str | None) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "holes", "wb") as f:
        for i, offset in enumerate((0, 3 << 20, 9 << 20)):
            f.seek(offset)
            f.write(bytes([65 + i]) * 8192)
        f.truncate(16 << 20)
    (src / "plain").write_bytes(b"plain file\n")
    out = tmp_path / "a.tar"
    flags = ["--sparse", f"--format={fmt}"] + ([f"--sparse-version={version}"] if version else [])
    subprocess.run(["tar", *flags, "-cf", str(out), "-C", str(src), "holes", "plain"], check=True)
    data = out.read_bytes()
    ours = {m.name: (m.sparse is not None, m.realsize, content) for m, content in members(data)}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        theirs = {m.name: (m.sparse is not None, m.size, tf.extractfile(m).read())  # type: ignore[union-attr]
                  for m in tf.getmembers()}
    assert ours == theirs
    assert ours["holes"][0] and ours["holes"][1] == 16 << 20


@pytest.mark.root
@pytest.mark.parametrize("build", [tc.old_gnu_sparse, tc.pax_sparse_0_0, tc.pax_sparse_0_1,
                                   tc.pax_sparse_1_0])
def test_sparse_extraction_keeps_holes(tmp_path: Path, build) -> None:  # type: ignore[no-untyped-def]
    fragments = [(0, 3), (1 << 30, 3), ((2 << 30) - 1, 1)]
    data = build("f", 2 << 30, fragments, b"abcdefg") + tc.member("g", b"next") + tc.end()
    stats = archive.extract(io.BytesIO(data), str(tmp_path))
    st = os.stat(tmp_path / "f")
    assert st.st_size == 2 << 30 and st.st_blocks * 512 <= 64 << 10
    with open(tmp_path / "f", "rb") as f:
        assert f.read(3) == b"abc"
        f.seek(1 << 30)
        assert f.read(3) == b"def"
        f.seek((2 << 30) - 1)
        assert f.read() == b"g"
    assert (tmp_path / "g").read_bytes() == b"next"
    assert stats.size == (2 << 30) + 4


@pytest.mark.root
def test_size_limits_refuse_before_writing(tmp_path: Path) -> None:
    sparse = tc.old_gnu_sparse("f", 1 << 40, [(0, 1)], b"x") + tc.end()
    with pytest.raises(LimitExceeded):
        archive.extract(io.BytesIO(sparse), str(tmp_path), max_size=1 << 30)
    assert os.listdir(tmp_path) == []
    two = tc.member("a", b"x" * 600) + tc.member("b", b"y" * 600) + tc.end()
    with pytest.raises(LimitExceeded):
        archive.extract(io.BytesIO(two), str(tmp_path / "m"), max_file_size=500)
    (tmp_path / "t").mkdir()
    with pytest.raises(LimitExceeded):
        archive.extract(io.BytesIO(two), str(tmp_path / "t"), max_size=1000)
    assert os.listdir(tmp_path / "t") == ["a"]
    with pytest.raises(LimitExceeded):
        archive.LimitedReader(io.BytesIO(two), 100).read(101)


# ----------------------------------------------------------------------------- random access

def test_tar_source_reads_by_offset(tmp_path: Path) -> None:
    data = (tc.member("dir", type=b"5") + tc.member("dir/blob", b"B" * 3000)
            + tc.header("hard", type=b"1", linkname="dir/blob")
            + tc.header("soft", type=b"2", linkname="dir/blob")
            + tc.pax_sparse_1_0("sparse", 5000, [(4000, 3)], b"xyz") + tc.end())
    path = tmp_path / "a.tar"
    path.write_bytes(data)
    with open(path, "rb") as f:
        src = TarSource(f, "a.tar")
        for name in ("dir/blob", "hard", "soft"):
            assert src.exists(name) and src.size(name) == 3000
            with src.open(name) as r:
                assert r.read() == b"B" * 3000
        assert not src.exists("dir")
        with src.open("sparse") as r:
            assert r.read(10_000) == bytes(4000) + b"xyz" + bytes(997)
    path.write_bytes(data[:1800])  # the blob's data cut short
    with open(path, "rb") as f, pytest.raises(BadArchive, match="unexpected end"):
        TarSource(f, "a.tar")


# ----------------------------------------------------------------------------- equivalence

NAME = st.text(st.sampled_from("abcXYZ019._-é€ "), min_size=1, max_size=12)
PATH = st.lists(NAME, min_size=1, max_size=3).map("/".join) | \
    st.builds(lambda a, n: f"{a}/{'n' * n}", NAME, st.integers(90, 300))


@st.composite
def benign_member(draw):  # type: ignore[no-untyped-def]
    kind = draw(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                 tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE,
                                 tarfile.BLKTYPE, tarfile.CONTTYPE]))
    info = tarfile.TarInfo(draw(PATH))
    info.type = kind
    info.mode = draw(st.integers(0, 0o7777))
    info.uid = draw(st.sampled_from([0, 1000, 65534, 2**21 + 5, 2**32 - 2]))
    info.gid = draw(st.sampled_from([0, 100, 2**24]))
    info.mtime = draw(st.integers(0, 2**33))
    info.uname = draw(st.sampled_from(["", "root", "user-é"]))
    info.gname = draw(st.sampled_from(["", "wheel"]))
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = draw(PATH)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor = draw(st.integers(0, 4095))
        info.devminor = draw(st.integers(0, 2**20 - 1))
    data = draw(st.binary(max_size=1500)) if kind in (tarfile.REGTYPE, tarfile.CONTTYPE) else b""
    info.size = len(data)
    xattrs = draw(st.dictionaries(st.sampled_from(["user.a", "user.é", "security.capability"]),
                                  st.text(max_size=20), max_size=2))
    return info, data, xattrs


def _normal(name: str, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: float,
            link: str, uname: str, gname: str, dev: tuple[int, int], xattrs: dict[str, str],
            content: bytes) -> tuple:
    regular = kind in (b"0", b"7")
    return (name.rstrip("/"), b"0" if regular else kind, mode & 0o7777, uid, gid,
            size if regular else 0, int(mtime), link if kind in (b"1", b"2") else "",
            uname, gname, dev if kind in (b"3", b"4") else (0, 0), xattrs, content)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
          derandomize=os.environ.get("FORKLIFT_HYPOTHESIS_RANDOM") != "1")
@given(st.lists(benign_member(), min_size=1, max_size=6),
       st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
       st.booleans())
def test_reader_agrees_with_tarfile_on_benign_archives(entries: list, fmt: int,
                                                      stream: bool) -> None:
    buf = io.BytesIO()
    try:
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            for info, data, xattrs in entries:
                if fmt == tarfile.PAX_FORMAT:
                    info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
                tf.addfile(info, io.BytesIO(data) if data else None)
    except (ValueError, UnicodeError, tarfile.TarError):
        assume(False)
        return
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|" if stream else "r:") as tf:
        theirs = []
        for m in tf:
            content = tf.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            xattrs = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            theirs.append(_normal(m.name, m.type, m.mode, m.uid, m.gid, m.size, m.mtime,
                                  m.linkname, m.uname, m.gname, (m.devmajor, m.devminor),
                                  xattrs, content))
    ours = []
    for m, content in members(raw):
        xattrs = {k: v for k, v in m.pax.items() if k.startswith("SCHILY.xattr.")}
        ours.append(_normal(m.name, m.type, m.mode, m.uid, m.gid, m.size, m.mtime, m.linkname,
                            m.uname, m.gname, (m.devmajor, m.devminor), xattrs, content))
    assert ours == theirs


# ----------------------------------------------------------------------------- limits

@pytest.mark.parametrize("text, value", [
    ("512m", 512 << 20), ("20g", 20 << 30), ("20G", 20 << 30), ("1.5GiB", 3 << 29),
    ("4096", 4096), ("10 kb", 10 << 10), ("1t", 1 << 40), (7, 7)])
def test_parse_size(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1m", "12q", "1.2.3g", "m", "1e9", True])
def test_parse_size_refuses(text: object) -> None:
    with pytest.raises(InvalidArgument):
        parse_size(text)  # type: ignore[arg-type]


def test_format_size_and_config(tmp_path: Path) -> None:
    assert [format_size(n) for n in (1, 2048, 3 << 29, 32 << 30)] == ["1B", "2KiB", "1.5GiB",
                                                                     "32GiB"]
    assert load(str(tmp_path)) == Limits(config_path=str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text('[limits]\nmax-layer-size = "2g"\nmax-layers = 40\n')
    limits = load(str(tmp_path))
    assert (limits.max_layer_size, limits.max_layers) == (2 << 30, 40)
    assert DEFAULT_MAX_LAYERS == 125
    with pytest.raises(LimitExceeded, match="has 41 layers, more than the limit of 40"):
        limits.check_layers(41, "image x")
    assert "max-layer-size in" in str(limits.size_exceeded())
    (tmp_path / "config.toml").write_text("[other]\nx = 1\n")
    with pytest.raises(InvalidArgument, match="unknown setting other"):
        load(str(tmp_path))


# ----------------------------------------------------------------------------- layout output

def test_dir_sink_never_writes_through_a_symlink(tmp_path: Path) -> None:
    root, outside = tmp_path / "layout", tmp_path / "outside"
    outside.mkdir()
    sink = DirSink(str(root.parent / "layout"))
    root.mkdir()
    sink.add_dir("blobs")
    os.symlink(outside, root / "blobs" / "sha256")  # swapped in after any check
    with pytest.raises(ForkliftError, match="refusing to write through it"):
        sink.add_bytes("blobs/sha256/abc", b"data")
    with pytest.raises(ForkliftError):
        sink.add_dir("blobs/sha256")
    assert os.listdir(outside) == []
    os.symlink(outside / "target", root / "index.json")
    sink.add_bytes("index.json", b"{}")  # replaces the link itself, never its target
    assert not os.path.islink(root / "index.json") and os.listdir(outside) == []
