"""forklift's own tar reader: streaming, bounded, independent of the interpreter's ``tarfile``.

Reads ustar, GNU (long names and links ``L``/``K``, old sparse ``S``) and PAX
(``x``, ``g``; GNU sparse 0.0, 0.1 and 1.0 in PAX form) from a forward-only
stream, one header block at a time. The interpreter on a user's machine may be
any 3.11+ patch release, and ``tarfile``'s header parsing has had hangs and
quadratic paths (CVE-2024-6232, CVE-2025-8194); nothing here depends on it.

Limits, as Go's archive/tar (which Docker uses) draws them:

* a special header body (PAX ``x``/``g``, GNU ``L``/``K``, the sparse map of a
  GNU 1.0 or old ``S`` member) over ``MAX_SPECIAL`` (1 MiB) is refused before it
  is read; global PAX records together are held to the same bound;
* sizes, uids and gids must be non-negative numbers; a PAX record must be
  ``"<len> <key>=<value>\\n"`` exactly (a zero-length or malformed record is an
  error, as in GNU tar, not the end of the archive);
* every header's checksum is verified; numbers may be octal or GNU base-256;
* parsing is linear in the header's size; nothing is read into memory beyond
  one special header or the chunk the caller asks for.

The archive ends at its end-of-archive marker (two zero blocks, or one zero
block and the end of the stream); nothing after the marker is read here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from forklift.errors import BadArchive

BLOCK = 512
MAX_SPECIAL = 1 << 20
_MAX_INT = (1 << 63) - 1
_ZERO_BLOCK = bytes(BLOCK)
_SKIP_CHUNK = 1 << 20

REGULAR_TYPES = frozenset((b"0", b"7", b"S"))
# Types whose header carries no data, whatever its size field says (as tar and Go read them).
HEADER_ONLY_TYPES = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))
_SPECIAL_TYPES = frozenset((b"x", b"g", b"L", b"K"))
# A global header names no member: these keys make sense for one file only.
_PER_FILE_KEYS = frozenset(("path", "linkpath", "size"))
_PAX_TIME = re.compile(r"-?[0-9]{1,30}(\.[0-9]{0,30})?")


@dataclass(slots=True)
class Member:
    """One archive entry. ``size`` is what the archive stores for it (the data that
    follows its header); ``realsize`` the file's length, which a sparse file's
    holes make larger. ``sparse`` lists a sparse file's data fragments as
    (offset in the file, length), in order."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)
    sparse: list[tuple[int, int]] | None = None
    realsize: int = 0
    offset: int = 0
    offset_data: int = 0

    def isreg(self) -> bool:
        return self.type in REGULAR_TYPES

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def ischr(self) -> bool:
        return self.type == b"3"

    def isblk(self) -> bool:
        return self.type == b"4"

    def isfifo(self) -> bool:
        return self.type == b"6"

    def issparse(self) -> bool:
        return self.sparse is not None


def _fail(offset: int, why: str) -> BadArchive:
    return BadArchive(f"invalid tar header at byte {offset}: {why}")


# ----------------------------------------------------------------------------- fields

def _text(raw: bytes) -> str:
    end = raw.find(0)
    return (raw if end < 0 else raw[:end]).decode("utf-8", "surrogateescape")


# Numeric fields repeat from header to header (modes, owners, device numbers, often
# times): each distinct field is parsed once. Only valid fields are kept, a bounded number.
_NUMBERS: dict[bytes, int] = {}
_NUMBERS_MAX = 4096


def _number(raw: bytes, what: str, offset: int) -> int:
    """An octal field (space/NUL padded) or GNU base-256 (0x80 positive, 0xff negative)."""
    value = _NUMBERS.get(raw)
    if value is None:
        value = _parse_number(raw, what, offset)
        if len(_NUMBERS) >= _NUMBERS_MAX:
            _NUMBERS.clear()
        _NUMBERS[raw] = value
    return value


def _parse_number(raw: bytes, what: str, offset: int) -> int:
    first = raw[0]
    if first == 0x80:
        return int.from_bytes(raw[1:], "big")
    if first == 0xFF:
        return int.from_bytes(raw, "big", signed=True)
    end = raw.find(0)
    digits = (raw if end < 0 else raw[:end]).strip(b" ")
    if not digits:
        return 0
    if not digits.isdigit() or b"8" in digits or b"9" in digits:
        raise _fail(offset, f"{what} field {raw!r} is not an octal number")
    return int(digits, 8)


def _checksum_ok(block: bytes, offset: int) -> bool:
    try:
        stored = _number(block[148:156], "checksum", offset)
    except BadArchive:
        return False
    field_sum = sum(block[148:156])
    unsigned = sum(block) - field_sum + 256  # the field counts as eight spaces
    if stored == unsigned:
        return True
    # Some old writers summed signed chars.
    high = sum(1 for b in block if b > 127) - sum(1 for b in block[148:156] if b > 127)
    return stored == unsigned - 256 * high


def _from_header(block: bytes, start: int) -> Member:
    """A member as its ustar/GNU header block alone describes it."""
    name = _text(block[0:100])
    if block[257:263] == b"ustar\x00" and block[345] != 0:
        name = _text(block[345:500]) + "/" + name
    m = Member(name=name, type=block[156:157],
               mode=_number(block[100:108], "mode", start) & 0o7777,
               uid=_number(block[108:116], "uid", start),
               gid=_number(block[116:124], "gid", start),
               size=_number(block[124:136], "size", start),
               mtime=_number(block[136:148], "mtime", start), linkname=_text(block[157:257]),
               uname=_text(block[265:297]), gname=_text(block[297:329]), offset=start)
    if block[257:262] == b"ustar":
        m.devmajor = _number(block[329:337], "devmajor", start)
        m.devminor = _number(block[337:345], "devminor", start)
    return m


def _normalize(m: Member, start: int) -> None:
    """Range checks, and the member in its final form (before any sparse map)."""
    if not 0 <= m.size <= _MAX_INT:
        raise _fail(start, f"invalid size {m.size}")
    if m.uid < 0 or m.gid < 0:
        raise _fail(start, f"negative owner {m.uid}:{m.gid}")
    if not -_MAX_INT <= m.mtime <= _MAX_INT:
        raise _fail(start, f"invalid mtime {m.mtime}")
    if m.type == b"\x00":  # pre-POSIX: a regular file, or a directory if named so
        m.type = b"5" if m.name.endswith("/") else b"0"
    if m.type in HEADER_ONLY_TYPES:
        m.size = 0
    if m.type == b"5":
        m.name = m.name.rstrip("/")
    m.realsize = m.size


def _pax_int(value: str, key: str, offset: int) -> int:
    if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
        raise _fail(offset, f"PAX record {key}={value[:40]!r} is not a non-negative number")
    return int(value)


def _pax_time(value: str, offset: int) -> int:
    if not _PAX_TIME.fullmatch(value):
        raise _fail(offset, f"PAX record mtime={value[:40]!r} is not a time")
    whole = value.split(".", 1)[0]
    return int(whole) if whole != "-" else 0


def parse_pax(body: bytes, offset: int) -> tuple[dict[str, str], list[str]]:
    """PAX records → (key → value, GNU sparse 0.0 offset/numbytes values in order).

    Linear in ``len(body)``: each record is sliced by its own length field, which
    is at most 20 digits, and must end in a newline exactly there.
    """
    records: dict[str, str] = {}
    sparse00: list[str] = []
    pos, end = 0, len(body)
    while pos < end:
        space = body.find(b" ", pos, min(end, pos + 21))
        digits = body[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise _fail(offset, f"malformed PAX record at byte {pos} of its header")
        length = int(digits)
        stop = pos + length
        if length < 5 or stop > end or body[stop - 1] != 0x0A:
            raise _fail(offset, f"PAX record at byte {pos} of its header has a bad length"
                                f" ({length})")
        equals = body.find(b"=", space + 1, stop - 1)
        if equals <= space + 1 or 0 in body[space + 1:equals]:
            raise _fail(offset, f"malformed PAX record at byte {pos} of its header")
        key = body[space + 1:equals].decode("utf-8", "surrogateescape")
        value = body[equals + 1:stop - 1].decode("utf-8", "surrogateescape")
        if key in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
            want = "GNU.sparse.offset" if len(sparse00) % 2 == 0 else "GNU.sparse.numbytes"
            if key != want:
                raise _fail(offset, "GNU sparse 0.0 records are out of order")
            sparse00.append(value)
        else:
            records[key] = value
        pos = stop
    return records, sparse00


# ----------------------------------------------------------------------------- sparse maps

def _check_sparse(fragments: list[tuple[int, int]], realsize: int, stored: int,
                  offset: int) -> list[tuple[int, int]]:
    """Fragments in order, inside the file, adding up to the data the archive holds."""
    if not 0 <= realsize <= _MAX_INT:
        raise _fail(offset, f"sparse file has an invalid size {realsize}")
    at = 0
    total = 0
    for start, length in fragments:
        if start < at or length < 0 or start + length > realsize:
            raise _fail(offset, "sparse map has overlapping, unordered or out-of-file fragments")
        at = start + length
        total += length
    if total != stored:
        raise _fail(offset, f"sparse map describes {total} bytes but the archive holds {stored}")
    return fragments


def _pairs(numbers: list[int]) -> list[tuple[int, int]]:
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def _sparse_numbers(values: list[str], what: str, offset: int) -> list[int]:
    if len(values) % 2:
        raise _fail(offset, f"{what} has an odd number of values")
    return [_pax_int(v, what, offset) for v in values]


# ----------------------------------------------------------------------------- reader

class TarReader:
    """Members of a tar stream, in order; the data of the current one through ``read``.

    Iterating skips whatever data of the previous member was not read. With
    ``seekable`` the stream is a plain file and skipped data is seeked over
    (member data can then be read later by offset); otherwise every byte is read.
    """

    def __init__(self, stream: IO[bytes], *, seekable: bool = False) -> None:
        self._stream = stream
        self._read = stream.read
        self.pos = 0                      # bytes of the stream consumed
        self._left = 0                    # data bytes of the current member not yet read
        self._pad = 0                     # zero padding after them
        self._global: dict[str, str] = {}
        self._global_bytes = 0
        self.end: int | None = None       # offset just past the end-of-archive marker
        self._length: int | None = None
        if seekable:
            self._length = stream.seek(0, os.SEEK_END)
            stream.seek(0)

    # -- raw input
    def _read_exact(self, n: int) -> bytes:
        data = self._read(n)
        if len(data) != n:
            parts = [data]
            got = len(data)
            while got < n:
                chunk = self._read(n - got)
                if not chunk:
                    raise BadArchive(f"unexpected end of tar archive at byte {self.pos + got}")
                parts.append(chunk)
                got += len(chunk)
            data = b"".join(parts)
        self.pos += n
        return data

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        if self._length is not None:
            self._stream.seek(n, os.SEEK_CUR)
            self.pos += n
            if self.pos > self._length:
                raise BadArchive(f"unexpected end of tar archive at byte {self._length}")
            return
        while n > 0:
            step = min(n, _SKIP_CHUNK)
            self._read_exact(step)
            n -= step

    def _block(self) -> bytes | None:
        """The next header block; None at a clean end of the stream."""
        data = self._read(BLOCK)
        if not data:
            return None
        if len(data) < BLOCK:
            data = self._read_exact_tail(data)
        self.pos += BLOCK
        return data

    def _read_exact_tail(self, head: bytes) -> bytes:
        parts, got = [head], len(head)
        while got < BLOCK:
            chunk = self._read(BLOCK - got)
            if not chunk:
                raise BadArchive(f"unexpected end of tar archive at byte {self.pos + got}"
                                 " (truncated header)")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    # -- member data
    def read(self, n: int) -> bytes | memoryview:
        """Up to ``n`` bytes of the current member's stored data (b"" when done)."""
        left = self._left
        if left <= 0:
            return b""
        if n < left:
            self._left = left - n
            return self._read_exact(n)
        # the last piece: take the padding in the same read
        data = self._read_exact(left + self._pad)
        self._left = 0
        if self._pad:
            self._pad = 0
            return memoryview(data)[:left]
        return data

    def _finish_member(self) -> None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0

    # -- members
    def __iter__(self) -> Iterator[Member]:
        if self.end is not None:
            return
        while True:
            self._finish_member()
            member = self._next()
            if member is None:
                return
            yield member

    def _next(self) -> Member | None:
        local: dict[str, str] = {}
        sparse00: list[str] = []
        longname: str | None = None
        longlink: str | None = None
        while True:
            start = self.pos
            block = self._block()
            if block is None:
                if start == 0:
                    raise BadArchive("the archive is empty")
                self.end = start
                return None
            if block == _ZERO_BLOCK:
                self._end_marker(start)
                return None
            if not _checksum_ok(block, start):
                raise _fail(start, "bad checksum" + (" (not a tar archive?)" if start == 0 else ""))
            kind = block[156:157]
            if kind not in _SPECIAL_TYPES:
                return self._member(block, start, local, sparse00, longname, longlink)
            body = self._special(block, start)
            if kind == b"x":
                local, sparse00 = parse_pax(body, start)  # a later one replaces an earlier one
            elif kind == b"g":
                self._add_global(parse_pax(body, start)[0], len(body), start)
            elif kind == b"L":
                longname = _text(body)
            else:
                longlink = _text(body)

    def _end_marker(self, start: int) -> None:
        second = self._read(BLOCK)
        if second and len(second) < BLOCK:
            second = self._read_exact_tail(second)
        if second and second != _ZERO_BLOCK:
            raise _fail(start + BLOCK, "a lone zero block is followed by more data")
        self.pos += len(second)
        self.end = self.pos

    def _special(self, block: bytes, start: int) -> bytes:
        size = _number(block[124:136], "size", start)
        if size < 0:
            raise _fail(start, f"negative size {size}")
        if size > MAX_SPECIAL:
            raise _fail(start, f"extended header of {size} bytes is larger than"
                               f" {MAX_SPECIAL} bytes")
        body = self._read_exact(size)
        self._skip(-size % BLOCK)
        return body

    def _add_global(self, records: dict[str, str], size: int, start: int) -> None:
        self._global_bytes += size
        if self._global_bytes > MAX_SPECIAL:
            raise _fail(start, f"global extended headers exceed {MAX_SPECIAL} bytes")
        for key, value in records.items():
            if key in _PER_FILE_KEYS or key.startswith("GNU.sparse."):
                continue
            if value:
                self._global[key] = value
            else:
                self._global.pop(key, None)

    def _member(self, block: bytes, start: int, local: dict[str, str], sparse00: list[str],
                longname: str | None, longlink: str | None) -> Member:
        m = _from_header(block, start)
        if longname is not None:
            m.name = longname
        if longlink is not None:
            m.linkname = longlink
        pax = {**self._global, **local} if self._global else local
        if pax:
            self._apply_pax(m, pax, start)
        _normalize(m, start)
        if m.type == b"S":
            self._old_gnu_sparse(m, block, start)
        elif pax and ("GNU.sparse.major" in pax or "GNU.sparse.map" in pax
                      or "GNU.sparse.size" in pax or sparse00):
            self._pax_sparse(m, pax, sparse00, start)
        m.offset_data = self.pos
        self._left = m.size
        self._pad = -m.size % BLOCK
        return m

    @staticmethod
    def _apply_pax(m: Member, pax: dict[str, str], start: int) -> None:
        for key, value in pax.items():
            if not value:
                continue  # an empty value unsets the key: the header's field stands
            if key == "path":
                if "\x00" in value:
                    raise _fail(start, "PAX path has a NUL byte")
                m.name = value
            elif key == "linkpath":
                if "\x00" in value:
                    raise _fail(start, "PAX linkpath has a NUL byte")
                m.linkname = value
            elif key == "size":
                m.size = _pax_int(value, key, start)
            elif key == "uid":
                m.uid = _pax_int(value, key, start)
            elif key == "gid":
                m.gid = _pax_int(value, key, start)
            elif key == "mtime":
                m.mtime = _pax_time(value, start)
            elif key == "uname":
                m.uname = value
            elif key == "gname":
                m.gname = value
        m.pax = pax

    # -- sparse files
    def _old_gnu_sparse(self, m: Member, block: bytes, start: int) -> None:
        numbers: list[int] = []
        self._sparse_entries(block[386:482], 4, numbers, start)
        extended = block[482]
        m.realsize = _number(block[483:495], "realsize", start)
        read = 0
        while extended:
            read += BLOCK
            if read > MAX_SPECIAL:
                raise _fail(start, f"sparse map is larger than {MAX_SPECIAL} bytes")
            ext = self._read_exact(BLOCK)
            self._sparse_entries(ext[:504], 21, numbers, start)
            extended = ext[504]
        m.sparse = _check_sparse(_pairs(numbers), m.realsize, m.size, start)

    @staticmethod
    def _sparse_entries(raw: bytes, count: int, out: list[int], start: int) -> None:
        for i in range(count):
            entry = raw[24 * i:24 * i + 24]
            if entry[0] == 0:
                return
            out.append(_number(entry[:12], "sparse offset", start))
            out.append(_number(entry[12:], "sparse length", start))

    def _pax_sparse(self, m: Member, pax: dict[str, str], sparse00: list[str],
                    start: int) -> None:
        version = (pax.get("GNU.sparse.major"), pax.get("GNU.sparse.minor"))
        if "GNU.sparse.name" in pax:
            m.name = pax["GNU.sparse.name"]
        if version == ("1", "0"):
            m.realsize = _pax_int(pax.get("GNU.sparse.realsize", ""), "GNU.sparse.realsize", start)
            numbers = self._sparse_map_1_0(m, start)
        elif version in ((None, None), ("0", "0"), ("0", "1")):
            m.realsize = _pax_int(pax.get("GNU.sparse.size", ""), "GNU.sparse.size", start)
            if "GNU.sparse.map" in pax:
                text = pax["GNU.sparse.map"]
                values = text.split(",") if text else []
                numbers = _sparse_numbers(values, "GNU.sparse.map", start)
            else:
                numbers = _sparse_numbers(sparse00, "GNU.sparse.offset/numbytes", start)
        else:
            raise _fail(start, f"unsupported GNU sparse format {version[0]}.{version[1]}")
        m.sparse = _check_sparse(_pairs(numbers), m.realsize, m.size, start)

    def _sparse_map_1_0(self, m: Member, start: int) -> list[int]:
        """The map at the start of the member's data: count, then offset/length pairs,
        each a decimal number and a newline, padded to whole blocks."""
        numbers: list[int] = []
        count: int | None = None
        pending = b""
        used = 0
        while count is None or len(numbers) < 2 * count:
            if len(pending) > 20:
                raise _fail(start, "GNU sparse 1.0 map has an overlong number")
            if used + BLOCK > min(m.size, MAX_SPECIAL):
                raise _fail(start, "GNU sparse 1.0 map is truncated or too large")
            pending += self._read_exact(BLOCK)
            used += BLOCK
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if count is not None and len(numbers) >= 2 * count:
                    break  # the rest of the block is padding
                value = _pax_int(line.decode("ascii", "replace"), "GNU sparse 1.0 map", start)
                if count is None:
                    count = value
                else:
                    numbers.append(value)
        m.size -= used
        return numbers

