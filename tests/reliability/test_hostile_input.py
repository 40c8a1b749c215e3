"""Hostile input, one place: property tests for every parser that reads untrusted bytes.

* the tar extractor (generated and mutated tarballs, plain and compressed): never
  writes outside the target (a sentinel tree around it stays byte-for-byte the
  same, link counts included), raises nothing but ForkliftError, never hangs;
* the reference parser: accepts only what re-parses to itself, in ASCII;
* the ``--change`` parser (changes.apply): ForkliftError or a JSON-able config;
* the image-config parser (oci.loads_object / oci.image_diff_ids).

Deadlines catch hangs; FORKLIFT_HYPOTHESIS_EXAMPLES scales the example counts.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from support import tarcraft
from support.knobs import env_int

from forklift import archive, changes, oci, reference
from forklift.errors import ForkliftError, InvalidArgument

SCALE = env_int("FORKLIFT_HYPOTHESIS_EXAMPLES", 200)
COMMON = {"deadline": 3000, "database": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
          "derandomize": os.environ.get("FORKLIFT_HYPOTHESIS_RANDOM") != "1"}


# ----------------------------------------------------------------------------- tar extraction

NAME_PARTS = ["a", "b", "c", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh.", ".wh..", "etc",
              "outside", "x" * 120, "é", "a\\b"]
LINK_TARGETS = ["a", "b", "a/b", "..", "../..", "../outside", "/", "/etc", "/etc/passwd", "../../sentinel",
                "a/../..", ".", "", "c/d", "sentinel"]

names = st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4).map("/".join) | st.sampled_from(
    ["/abs", "/", "./a", "a/", "../sentinel/owned", "a/../../sentinel", "./../x"])


@st.composite
def tar_entries(draw):  # type: ignore[no-untyped-def]
    kind = draw(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                 tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, b"S", b"7", b"x"]))
    info = tarfile.TarInfo(draw(names))
    info.type = kind
    info.mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o7777, 0o000, 0o1777]))
    info.uid = draw(st.sampled_from([0, 1000, 65534, 2**21 - 1]))
    info.gid = draw(st.sampled_from([0, 1000, 65534]))
    info.mtime = draw(st.sampled_from([0, 1, 2**31 - 1, 2**33]))
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = draw(st.sampled_from(LINK_TARGETS) | names)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = draw(st.sampled_from([(0, 0), (1, 3), (8, 0)]))
    xattrs = draw(st.dictionaries(st.sampled_from(["SCHILY.xattr.user.x", "SCHILY.xattr.trusted.overlay.opaque",
                                                   "SCHILY.xattr.security.capability",
                                                   "SCHILY.xattr.trusted.overlay.redirect"]),
                                  st.sampled_from(["y", "", "../../x", "\x00"]), max_size=2))
    info.pax_headers = xattrs
    data = draw(st.binary(max_size=64)) if kind == tarfile.REGTYPE else b""
    info.size = len(data)
    return info, data


def _build(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def _snapshot(root: str, skip: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.abspath(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.abspath(path) == skip:
                continue
            st_ = os.lstat(path)
            content = b""
            if stat.S_ISREG(st_.st_mode):
                with open(path, "rb") as f:
                    content = f.read()
            link = os.readlink(path) if stat.S_ISLNK(st_.st_mode) else ""
            xattrs = tuple(sorted(os.listxattr(path, follow_symlinks=False)))
            out[os.path.relpath(path, root)] = (st_.st_mode, st_.st_uid, st_.st_gid, st_.st_nlink,
                                                st_.st_size, content, link, xattrs)
    return out


class Sandbox:
    """outer/{sentinel/, secret, etc -> /etc, target/}: only target/ may change."""

    def __init__(self) -> None:
        self.outer = tempfile.mkdtemp(prefix="forklift-hostile-")
        os.mkdir(os.path.join(self.outer, "sentinel"))
        with open(os.path.join(self.outer, "sentinel", "keep"), "w") as f:
            f.write("sentinel")
        with open(os.path.join(self.outer, "secret"), "w") as f:
            f.write("secret")
        os.symlink("/etc", os.path.join(self.outer, "etc"))
        os.symlink("sentinel", os.path.join(self.outer, "outside"))
        self.target = os.path.join(self.outer, "target")
        os.mkdir(self.target)
        self.before = _snapshot(self.outer, self.target)
        self.etc_before = sorted(os.listdir("/etc"))

    def check(self) -> None:
        after = _snapshot(self.outer, self.target)
        assert after == self.before, "extraction changed something outside the target"
        assert sorted(os.listdir("/etc")) == self.etc_before

    def close(self) -> None:
        for dirpath, dirnames, _ in os.walk(self.outer):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        shutil.rmtree(self.outer, ignore_errors=True)


def _extract_hostile(data: bytes, whiteouts: bool = True) -> None:
    box = Sandbox()
    try:
        try:
            stream, _ = archive.decompressed(io.BytesIO(data))
            archive.extract(stream, box.target, whiteouts=whiteouts)
        except ForkliftError:
            pass
        box.check()
    finally:
        box.close()


@pytest.mark.root  # extraction keeps owners and device nodes: chown, mknod
@settings(max_examples=SCALE * 3, **COMMON)
@given(st.lists(tar_entries(), min_size=1, max_size=8), st.booleans())
def test_generated_tarballs_stay_inside(entries: list, whiteouts: bool) -> None:
    try:
        data = _build(entries)
    except (ValueError, tarfile.TarError, OverflowError, UnicodeError):
        assume(False)
        return
    _extract_hostile(data, whiteouts)


def _seed_tar() -> bytes:
    entries = []
    for name, kind, link in [("a", tarfile.DIRTYPE, ""), ("a/f", tarfile.REGTYPE, ""),
                             ("a/l", tarfile.SYMTYPE, "../../sentinel"), ("a/h", tarfile.LNKTYPE, "a/f"),
                             ("a/.wh..wh..opq", tarfile.REGTYPE, ""), ("b", tarfile.SYMTYPE, "/etc"),
                             (".wh.c", tarfile.REGTYPE, "")]:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        entries.append((info, b"hello" if name == "a/f" else b""))
    entries[1][0].size = 5
    return _build(entries)


SEED = _seed_tar()


@pytest.mark.root  # extraction keeps owners and device nodes: chown, mknod
@settings(max_examples=SCALE * 3, **COMMON)
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=12),
       st.integers(0, len(SEED)), st.sampled_from(["none", "gzip", "truncated-gzip"]))
@example([(0, ord("."))], len(SEED), "none")
@example([(100, 0)], len(SEED), "gzip")
def test_mutated_tarballs_stay_inside(flips: list, cut: int, compression: str) -> None:
    data = bytearray(SEED)
    for pos, value in flips:
        data[pos] = value
    blob = bytes(data[:cut])
    if compression != "none":
        blob = gzip.compress(blob)
        if compression == "truncated-gzip":
            blob = blob[: len(blob) // 2]
    _extract_hostile(blob)


@pytest.mark.root  # extraction keeps owners and device nodes: chown, mknod
@settings(max_examples=SCALE, **COMMON)
@given(st.binary(max_size=2048))
@example(b"\x1f\x8b" + b"\x00" * 20)
@example(b"\xfd7zXZ\x00" + b"\x01" * 30)
@example(b"\x28\xb5\x2f\xfd" + b"\xff" * 30)
@example(b"BZh9" + b"\x00" * 30)
def test_random_bytes_are_refused_cleanly(data: bytes) -> None:
    _extract_hostile(data)


# ----------------------------------------------------------------------------- extended headers

PAX_KEYS = ["path", "linkpath", "size", "uid", "gid", "mtime", "uname", "gname", "comment",
            "hdrcharset", "SCHILY.xattr.user.x", "SCHILY.xattr.trusted.overlay.opaque",
            "SCHILY.xattr.security.capability", "GNU.sparse.size", "GNU.sparse.map",
            "GNU.sparse.offset", "GNU.sparse.numbytes", "GNU.sparse.major", "GNU.sparse.minor",
            "GNU.sparse.name", "GNU.sparse.realsize", "", "a=b", "k\x00"]
PAX_VALUES = ["", "0", "1", "-1", "-1536", "512", "1048577", str(1 << 40), str(1 << 63),
              "9" * 40, "1e3", "1.5", "-0.5", "a", "../outside/x", "/etc/passwd", "sentinel",
              "0,1", "0,5,10,5", "10,5,0,5", "0,99999999999", "1,0", "1", "0", "x\x00y", "y"]


@st.composite
def pax_body(draw):  # type: ignore[no-untyped-def]
    """PAX records, each with a right or a wrong length (zero, short, long, signed, huge)."""
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(PAX_KEYS)).encode()
        value = draw(st.sampled_from(PAX_VALUES) | st.text(max_size=6)).encode(
            "utf-8", "surrogateescape")
        record = tarcraft.record(key, value)
        how = draw(st.sampled_from(["right"] * 20 + ["zero", "short", "long", "signed", "huge",
                                                     "no-newline", "no-space"]))
        rest = record.split(b" ", 1)[1]
        if how == "zero":
            record = b"0 " + rest
        elif how == "short":
            record = str(max(len(record) - 3, 1)).encode() + b" " + rest
        elif how == "long":
            record = str(len(record) + 40).encode() + b" " + rest
        elif how == "signed":
            record = b"-" + record
        elif how == "huge":
            record = b"9" * 25 + b" " + rest
        elif how == "no-newline":
            record = record[:-1] + b"x"
        elif how == "no-space":
            record = record.replace(b" ", b"", 1)
        out += record
    if draw(st.booleans()):
        out += draw(st.binary(max_size=12))
    return out


SIZE_FIELDS = st.sampled_from(["right"] * 5 + ["more", "less", "negative", "over-1mib", "huge",
                                                "text"])


def _size_field(how: str, right: int) -> int | bytes:
    return {"right": right, "more": right + 700, "less": max(right - 5, 0),
            "negative": tarcraft.base256(-512, 12), "over-1mib": (1 << 20) + 1,
            "huge": tarcraft.base256(1 << 70, 12), "text": b"12x45\x00"}[how]


@st.composite
def special_header(draw):  # type: ignore[no-untyped-def]
    """A PAX x/g header or a GNU L/K long name/link, its size field right or lying."""
    kind = draw(st.sampled_from([b"x", b"g", b"L", b"K"]))
    body = draw(pax_body()) if kind in (b"x", b"g") else (
        draw(st.sampled_from(NAME_PARTS + LINK_TARGETS + ["a" * 300, "../" * 40])).encode()
        + draw(st.sampled_from([b"", b"\x00", b"\x00junk"])))
    size = _size_field(draw(SIZE_FIELDS), len(body))
    return tarcraft.header("././@LongLink" if kind in (b"L", b"K") else "PaxHeaders/x",
                           type=kind, size=size, magic=tarcraft.GNU) + tarcraft.pad(body)


@st.composite
def sparse_member(draw):  # type: ignore[no-untyped-def]
    """A sparse file in any of the four GNU forms, its map sane or not."""
    pairs = draw(st.lists(st.tuples(st.sampled_from([0, 1, 511, 4096, 1 << 20, 1 << 30, 1 << 34]),
                                    st.integers(0, 600)), max_size=30))
    fragments, at = [], 0
    for gap, length in pairs:  # in order, inside the file: a sane map
        fragments.append((at + gap, length))
        at += gap + length
    realsize = at + draw(st.sampled_from([0, 1, 4096, 1 << 30]))
    if draw(st.integers(0, 3)) == 0:  # or not: shuffled, overlapping, outside the file
        fragments = draw(st.permutations(fragments))
        realsize = draw(st.sampled_from([0, 100, 1 << 20, realsize, 1 << 60]))
    data = b"s" * sum(n for _, n in fragments) + draw(st.sampled_from([b""] * 5 + [b"extra"]))
    build = draw(st.sampled_from([tarcraft.old_gnu_sparse, tarcraft.pax_sparse_0_0,
                                  tarcraft.pax_sparse_0_1, tarcraft.pax_sparse_1_0]))
    return build(draw(st.sampled_from(["f", "a/f", "f", "a/f", "../sentinel/f", "/abs"])), realsize,
                 fragments, data)


@st.composite
def extended_archive(draw):  # type: ignore[no-untyped-def]
    pieces = []
    for _ in range(draw(st.integers(1, 5))):
        choice = draw(st.sampled_from(["special", "special", "sparse", "plain"]))
        if choice == "special":
            pieces.append(draw(special_header()))
        elif choice == "sparse":
            pieces.append(draw(sparse_member()))
        else:
            name = draw(names)
            pieces.append(tarcraft.member(name, b"data", type=draw(st.sampled_from(
                [b"0", b"5", b"2", b"1"])), linkname=draw(st.sampled_from(LINK_TARGETS))))
    data = b"".join(pieces) + draw(st.sampled_from([tarcraft.end(), b"", bytes(512)]))
    if draw(st.integers(0, 5)) == 0:
        return data[:max(0, len(data) - draw(st.integers(1, 1500)))]
    return data


FUZZ_LIMIT = 64 << 20


@pytest.mark.root  # extraction keeps owners and device nodes: chown, mknod
@settings(max_examples=SCALE * 3, **COMMON)
@given(extended_archive(), st.booleans())
@example(tarcraft.pax(tarcraft.record("size", "-1536")) + tarcraft.member("a"), True)
@example(tarcraft.pax(b"1" * (1 << 20)) + tarcraft.member("a"), True)
@example(tarcraft.member("a") + tarcraft.pax(b"0 path=x\n") + tarcraft.member("b"), False)
@example(tarcraft.old_gnu_sparse("f", 1 << 40, [(0, 4)], b"data") + tarcraft.end(), True)
def test_extended_headers_stay_inside_and_bounded(data: bytes, compress: bool) -> None:
    """PAX/GNU extended headers and sparse maps of every size and shape: ForkliftError or a
    tree inside the target whose files stay within the size limit, never a hang."""
    blob = gzip.compress(data) if compress else data
    box = Sandbox()
    try:
        try:
            stream, _ = archive.decompressed(io.BytesIO(blob))
            archive.extract(stream, box.target, max_size=FUZZ_LIMIT)
        except ForkliftError:
            pass
        box.check()
        total = sum(os.lstat(os.path.join(d, f)).st_size
                    for d, _, files in os.walk(box.target) for f in files)
        assert total <= FUZZ_LIMIT + (1 << 16)
    finally:
        box.close()


@pytest.mark.root  # extraction keeps owners and device nodes: chown, mknod
def test_known_escapes_are_refused() -> None:
    """The classic attacks, each on its own, must be refused (not merely contained)."""
    def one(*specs: tuple[str, bytes, str]) -> bytes:
        entries = []
        for name, kind, link in specs:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            data = b"owned" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            entries.append((info, data))
        return _build(entries)

    attacks = [
        one(("../owned", tarfile.REGTYPE, "")),
        one(("/owned", tarfile.REGTYPE, "")),
        one(("l", tarfile.SYMTYPE, ".."), ("l/owned", tarfile.REGTYPE, "")),
        one(("l", tarfile.SYMTYPE, "/tmp"), ("l/owned", tarfile.REGTYPE, "")),
        one(("h", tarfile.LNKTYPE, "../secret")),
        one(("d", tarfile.DIRTYPE, ""), ("d", tarfile.SYMTYPE, ".."), ("d/owned", tarfile.REGTYPE, "")),
    ]
    for i, data in enumerate(attacks):
        box = Sandbox()
        try:
            with pytest.raises(ForkliftError):
                archive.extract(io.BytesIO(data), box.target)
                print("not refused:", i)
            box.check()
        finally:
            box.close()


# ----------------------------------------------------------------------------- references

_TAG_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
ref_chars = st.sampled_from(list("abcAB019_-.:/@") + ["sha256:", "a" * 64, "é", "\n", " ", "localhost",
                                                      "docker.io/", "library/", ":5000", "[::1]"])


@settings(max_examples=SCALE * 5, **COMMON)
@given(st.lists(ref_chars, max_size=12).map("".join) | st.text(max_size=40))
@example("busybox\n")
@example("docker.io/docker.io/a")
@example("docker.io/localhost/a:1")
@example("busybox:latest\n")
@example("busybox:tag\u00e9")
@example("busybox@sha256:" + "A" * 64)
@example("a" * 300)
@example("a" + "-" * 5000 + "!")
@example("a." * 3000 + "!")
def test_reference_parser(text: str) -> None:
    try:
        ref = reference.parse(text)
    except InvalidArgument:
        return
    full = str(ref)
    assert full.isascii() and not any(c.isspace() for c in full), repr(full)
    assert reference.parse(full) == ref
    assert reference.parse(ref.familiar()) == ref
    if ref.tag:
        assert _TAG_OK.match(ref.tag), ref.tag
    if ref.digest:
        assert re.fullmatch(r"sha256:[a-f0-9]{64}", ref.digest), ref.digest


component = st.from_regex(r"[a-z0-9]{1,5}([._-][a-z0-9]{1,5}){0,2}", fullmatch=True)


@settings(max_examples=SCALE * 2, **COMMON)
@given(st.sampled_from(["", "localhost/", "example.com/", "example.com:5000/", "docker.io/",
                        "index.docker.io/"]),
       st.lists(component, min_size=1, max_size=3),
       st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
def test_valid_references_parse(domain: str, path: list[str], tag: str | None) -> None:
    text = domain + "/".join(path) + (f":{tag}" if tag else "")
    ref = reference.parse(text)
    assert ref.tag == (tag or "latest")
    assert reference.parse(str(ref)) == ref


# ----------------------------------------------------------------------------- --change

change_words = st.sampled_from(list(changes.ALLOWED) + ["cmd", "FROM", "RUN", "", "ENV\t", "EXPOSE"])
change_rest = st.lists(st.sampled_from(["a", "b=c", "=", "$X", "${X:-d}", "${X:+e}", "\\$", "'", '"',
                                        "[", "]", '["a"]', '["a", 1]', "[[[[", "80", "80-81",
                                        "1-99999999", "0", "/tcp", "/udp", "/x", "65536", "..", "/",
                                        "\\", " ", "\t", "\n", "{", "}", "é", "²", "\u0661"]), max_size=6).map(" ".join)


@settings(max_examples=SCALE * 5, **COMMON)
@given(st.lists(st.tuples(change_words, change_rest).map(lambda t: f"{t[0]} {t[1]}"), max_size=5),
       st.sampled_from([{}, {"Env": ["X=1"], "WorkingDir": "/w"}, {"ExposedPorts": {"1/tcp": {}}}]))
@example(["EXPOSE 1-99999999"], {})
@example(["EXPOSE 2000-1000"], {})
@example(["EXPOSE \u00b2"], {})
@example(["VOLUME " + "[" * 5000], {})
@example(["CMD " + "[" * 5000], {})
def test_change_parser(lines: list[str], base: dict) -> None:
    try:
        cfg = changes.apply(base, lines)
    except ForkliftError:
        return
    json.dumps(cfg)
    assert isinstance(cfg, dict)
    for port in (cfg.get("ExposedPorts") or {}):
        number, _, proto = port.partition("/")
        assert 0 < int(number) <= 65535 and proto in ("tcp", "udp", "sctp")
    assert len(cfg.get("ExposedPorts") or {}) <= 65535


# ----------------------------------------------------------------------------- image config

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
config_like = st.fixed_dictionaries({}, optional={
    "rootfs": st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["layers", "other", 1]) | json_values,
        "diff_ids": st.lists(st.sampled_from(["sha256:" + "a" * 64, "sha256:" + "A" * 64, "sha256:1",
                                              "md5:" + "a" * 32, 5, None]), max_size=3) | json_values}),
    "history": json_values, "config": json_values, "created": json_values})


@settings(max_examples=SCALE * 3, **COMMON)
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                 config_like.map(lambda v: json.dumps(v).encode())))
@example(b"\xff\xfe")
def test_image_config_parser(data: bytes) -> None:
    try:
        cfg = oci.loads_object(data, "image config")
        diff_ids = oci.image_diff_ids(cfg)
    except ForkliftError:
        return
    assert isinstance(cfg, dict)
    assert all(isinstance(d, str) and re.fullmatch(r"sha256:[a-f0-9]{64}", d) for d in diff_ids)
    oci.parse_time(cfg.get("created"))  # never raises


# Bugs this suite found in oci.py and digest.py (now fixed).
@pytest.mark.parametrize("data", [b"[" * 100000, b'{"a":' * 100000])
def test_image_config_deep_nesting(data: bytes) -> None:
    with pytest.raises(ForkliftError):
        oci.loads_object(data, "image config")


def test_diff_id_with_trailing_newline_is_refused() -> None:
    cfg = {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64 + "\n"]}}
    with pytest.raises(ForkliftError):
        oci.image_diff_ids(cfg)
