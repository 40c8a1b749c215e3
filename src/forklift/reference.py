"""Image references with Docker's grammar and normalization rules.

``busybox`` means ``docker.io/library/busybox:latest``; a first component with a
``.`` or ``:`` or equal to ``localhost`` is a registry host.
"""

from __future__ import annotations

import re

from forklift.errors import InvalidArgument
from forklift.records import FrozenRecord

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE = (rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)"
              rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z")
_compiled: list[re.Pattern[str]] = []
# the plain names `_plain` reads without the grammar's expression
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_SEPARATORS = frozenset("._-")
_TAG_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TAG_REST = _TAG_FIRST | {".", "-"}
_HEX64 = re.compile(r"^[a-f0-9]{64}\Z")


class Reference(FrozenRecord):
    """A normalized reference: ``domain/path[:tag][@digest]``. (A frozen slotted record,
    not a dataclass: this module is on the `run` hot path.)"""

    domain: str
    path: str
    tag: str | None
    digest: str | None
    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str | None = None,
                 digest: str | None = None) -> None:
        self._set(domain=domain, path=path, tag=tag, digest=digest)

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The short form Docker shows: ``busybox``, ``me/app``, ``host:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            first = path.split("/", 1)[0]
            if "/" in path and ("." in first or ":" in first or first == "localhost"):
                return self.repository  # "docker.io/a.b/c": dropping the domain changes the image
            if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
                path = path[len(OFFICIAL_PREFIX):]
            return path
        return self.repository

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        out = self.familiar_repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def _reference_re() -> re.Pattern[str]:
    """The grammar's expression, compiled when first needed: compiling it costs 2-6 ms,
    more than the rest of this module, on every `run` of a plain name."""
    if not _compiled:
        # \w is [A-Za-z0-9_] as in Docker's grammar; \Z: no trailing newline
        _compiled.append(re.compile(_REFERENCE, re.ASCII))
    return _compiled[0]


def _plain_component(part: str) -> bool:
    """``part`` matches _COMPONENT: [a-z0-9]+ runs joined by ".", "_", "__" or dashes."""
    if not part or part[0] not in _ALNUM or part[-1] not in _ALNUM:
        return False
    separator = ""
    for char in part:
        if char in _ALNUM:
            if separator and separator not in (".", "_", "__") and separator.strip("-"):
                return False
            separator = ""
        elif char in _SEPARATORS:
            separator += char
        else:
            return False
    return True


def _plain(text: str, default_tag: bool) -> Reference | None:
    """``text`` read as `parse` reads it when it is a plain Docker Hub name (``busybox``,
    ``me/app:1.0``: no registry, no digest), else None (`parse` then uses the grammar)."""
    name, colon, tag = text.partition(":")
    if len(text) == 64 or len(name) > NAME_MAX or "@" in tag:
        return None
    if colon and not (tag and len(tag) <= 128 and tag[0] in _TAG_FIRST
                      and _TAG_REST.issuperset(tag)):
        return None
    parts = name.split("/")
    if not all(_plain_component(p) for p in parts) or (
            len(parts) > 1 and ("." in parts[0] or parts[0] == "localhost")):
        return None
    path = name if len(parts) > 1 else OFFICIAL_PREFIX + name
    return Reference(DEFAULT_DOMAIN, path, tag if colon else DEFAULT_TAG if default_tag else None)


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalize ``text``; add ``:latest`` when no tag or digest is given."""
    plain = _plain(text, default_tag)
    return plain if plain is not None else _parse(text, default_tag)


def _parse(text: str, default_tag: bool) -> Reference:
    if not text:
        raise InvalidArgument("invalid reference format: empty reference")
    if _HEX64.match(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    match = _reference_re().match(text)
    if not match:
        if _reference_re().match(text.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name ({text}) must be lowercase"
            )
        raise InvalidArgument(f"invalid reference format: {text!r}")
    name = match.group("name")
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"invalid reference format: repository name must not be more than {NAME_MAX} characters")
    domain, path = _split_domain(name)
    if path != path.lower():
        raise InvalidArgument(f"invalid reference format: repository name ({text}) must be lowercase")
    tag = match.group("tag")
    digest = match.group("digest")
    if digest and not digest.startswith("sha256:"):
        raise InvalidArgument(f"unsupported digest algorithm in {text!r}")
    if digest and (len(digest) != len("sha256:") + 64 or digest != digest.lower()):
        raise InvalidArgument(f"invalid digest in {text!r}")
    if default_tag and tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def parse_repository(text: str) -> Reference:
    """Parse a name that must not carry a tag or digest (``push --all-tags``, ``import``)."""
    ref = parse(text, default_tag=False)
    if ref.tag or ref.digest:
        raise InvalidArgument(f"invalid repository name {text!r}: tag or digest not allowed here")
    return ref


def looks_like_id_prefix(text: str) -> bool:
    """Whether ``text`` could be an image-ID prefix (``sha256:abc…`` or bare hex)."""
    body = text[7:] if text.startswith("sha256:") else text
    return 1 <= len(body) <= 64 and all(c in "0123456789abcdef" for c in body)
