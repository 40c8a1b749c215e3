"""Tar archives built byte by byte, for tests: headers tarfile would never write.

Every function returns bytes. ``header`` makes one 512-byte header block with a
valid checksum unless told otherwise; the others build on it. ``tar_of`` is the plain
case, through tarfile.
"""

from __future__ import annotations

BLOCK = 512
USTAR = b"ustar\x0000"
GNU = b"ustar  \x00"


def octal(value: int, width: int) -> bytes:
    """A NUL-terminated octal field, as GNU tar writes it."""
    return f"{value:0{width - 1}o}".encode() + b"\x00"


def base256(value: int, width: int) -> bytes:
    """GNU base-256 (negative values in two's complement)."""
    if value < 0:
        return (b"\xff" + (value % (256 ** (width - 1))).to_bytes(width - 1, "big"))
    return b"\x80" + value.to_bytes(width - 1, "big")


def pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % BLOCK)


def header(name: str | bytes, *, size: int | bytes = 0, type: bytes = b"0", mode: int = 0o644,
           uid: int = 0, gid: int = 0, mtime: int = 0, linkname: str | bytes = "",
           magic: bytes = USTAR, prefix: bytes = b"", devmajor: int = 0, devminor: int = 0,
           fields: dict[int, bytes] | None = None, checksum: int | None = None) -> bytes:
    """One header block. ``size`` may be raw field bytes; ``fields`` patches offsets."""
    raw = bytearray(BLOCK)

    def put(offset: int, data: bytes) -> None:
        raw[offset:offset + len(data)] = data

    put(0, name.encode() if isinstance(name, str) else name)
    put(100, octal(mode, 8))
    put(108, octal(uid, 8) if uid < 8**7 else base256(uid, 8))
    put(116, octal(gid, 8) if gid < 8**7 else base256(gid, 8))
    put(124, size if isinstance(size, bytes) else
        (octal(size, 12) if 0 <= size < 8**11 else base256(size, 12)))
    put(136, octal(mtime, 12) if 0 <= mtime < 8**11 else base256(mtime, 12))
    put(156, type)
    put(157, linkname.encode() if isinstance(linkname, str) else linkname)
    put(257, magic)
    if magic == USTAR or magic == GNU:
        put(329, octal(devmajor, 8))
        put(337, octal(devminor, 8))
    if prefix:
        put(345, prefix)
    for offset, data in (fields or {}).items():
        put(offset, data)
    raw[148:156] = b" " * 8
    total = sum(raw) if checksum is None else checksum
    raw[148:156] = f"{total:06o}".encode() + b"\x00 "
    return bytes(raw)


def member(name: str | bytes, data: bytes = b"", **kw: object) -> bytes:
    kw.setdefault("size", len(data))
    return header(name, **kw) + pad(data)  # type: ignore[arg-type]


def record(key: str | bytes, value: str | bytes) -> bytes:
    """One PAX record with its correct length prefix."""
    body = b" " + (key.encode() if isinstance(key, str) else key) + b"=" + \
        (value.encode() if isinstance(value, str) else value) + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def pax(records: bytes, *, type: bytes = b"x", name: str = "PaxHeaders/x",
        size: int | bytes | None = None) -> bytes:
    """A PAX header member holding ``records`` (raw: may be malformed on purpose)."""
    return header(name, type=type, size=len(records) if size is None else size) + pad(records)


def gnu_long(kind: bytes, text: bytes) -> bytes:
    """A GNU ``L`` (long name) or ``K`` (long link) member."""
    return header("././@LongLink", type=kind, size=len(text), magic=GNU) + pad(text)


def end() -> bytes:
    return b"\x00" * (2 * BLOCK)


def old_gnu_sparse(name: str, realsize: int, fragments: list[tuple[int, int]],
                   data: bytes, *, per_block: int = 21) -> bytes:
    """An old GNU sparse member (type ``S``): 4 map entries in the header, the rest in
    extension blocks; ``data`` is the fragments' bytes, concatenated."""
    fields: dict[int, bytes] = {}
    head, rest = fragments[:4], fragments[4:]
    for i, (off, length) in enumerate(head):
        fields[386 + 24 * i] = octal(off, 12)
        fields[386 + 24 * i + 12] = octal(length, 12)
    fields[482] = b"\x01" if rest else b"\x00"
    fields[483] = octal(realsize, 12) if realsize < 8**11 else base256(realsize, 12)
    out = header(name, type=b"S", size=len(data), magic=GNU, fields=fields)
    while rest:
        chunk, rest = rest[:per_block], rest[per_block:]
        block = bytearray(BLOCK)
        for i, (off, length) in enumerate(chunk):
            block[24 * i:24 * i + 12] = octal(off, 12)
            block[24 * i + 12:24 * i + 24] = octal(length, 12)
        block[504] = 1 if rest else 0
        out += bytes(block)
    return out + pad(data)


def pax_sparse_1_0(name: str, realsize: int, fragments: list[tuple[int, int]],
                   data: bytes) -> bytes:
    """GNU sparse 1.0 in PAX form: the map leads the member's data."""
    recs = (record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0")
            + record("GNU.sparse.name", name) + record("GNU.sparse.realsize", str(realsize)))
    sparse_map = f"{len(fragments)}\n".encode() + b"".join(
        f"{o}\n{n}\n".encode() for o, n in fragments)
    body = pad(sparse_map) + data
    return pax(recs) + header(f"GNUSparseFile.0/{name}", size=len(body)) + pad(body)


def pax_sparse_0_1(name: str, realsize: int, fragments: list[tuple[int, int]],
                   data: bytes) -> bytes:
    flat = ",".join(f"{o},{n}" for o, n in fragments)
    recs = (record("GNU.sparse.size", str(realsize))
            + record("GNU.sparse.numblocks", str(len(fragments)))
            + record("GNU.sparse.name", name) + record("GNU.sparse.map", flat))
    return pax(recs) + member(f"GNUSparseFile.0/{name}", data)


def pax_sparse_0_0(name: str, realsize: int, fragments: list[tuple[int, int]],
                   data: bytes) -> bytes:
    recs = (record("GNU.sparse.size", str(realsize))
            + record("GNU.sparse.numblocks", str(len(fragments)))
            + b"".join(record("GNU.sparse.offset", str(o)) + record("GNU.sparse.numbytes", str(n))
                       for o, n in fragments)
            + record("path", name))
    return pax(recs) + member(f"GNUSparseFile.0/{name}", data)


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """An ordinary archive (tarfile's) of regular ``files`` and symbolic ``links``."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()
