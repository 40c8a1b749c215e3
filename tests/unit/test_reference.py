"""Reference parsing and normalization, as Docker's distribution/reference does it."""

from __future__ import annotations

import pytest

from forklift import reference
from forklift.errors import InvalidArgument


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/team/app:1.4.2", "localhost:5000/team/app:1.4.2", "localhost:5000/team/app:1.4.2"),
    ("registry.example.org/a/b/c", "registry.example.org/a/b/c:latest", "registry.example.org/a/b/c:latest"),
    ("127.0.0.1:5000/x@sha256:" + "a" * 64, "127.0.0.1:5000/x@sha256:" + "a" * 64,
     "127.0.0.1:5000/x@sha256:" + "a" * 64),
    ("a_b-c__d/f--g", "docker.io/a_b-c__d/f--g:latest", "a_b-c__d/f--g:latest"),
])
def test_normalization(text, full, familiar):
    ref = reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize("text", [
    "", "UPPER", "a:b:c", "a//b", "/a", "a/", "-a", "a-", "a@sha256:xyz", "a:" + "x" * 129,
    "a@md5:" + "a" * 32, "a" * 64, "a b", "a\nb", "x" * 256,
])
def test_invalid(text):
    with pytest.raises(InvalidArgument):
        reference.parse(text)


def test_uppercase_registry_host_is_allowed():
    assert reference.parse("Registry.Example:5000/app").domain == "Registry.Example:5000"


def test_repository_only():
    assert reference.parse_repository("me/app").tag is None
    with pytest.raises(InvalidArgument):
        reference.parse_repository("me/app:1")


def test_id_prefix_detection():
    assert reference.looks_like_id_prefix("abc123")
    assert reference.looks_like_id_prefix("sha256:abc")
    assert not reference.looks_like_id_prefix("busybox")


_PLAIN_CASES = ["busybox", "bench-busybox", "me/app:1.0", "a__b", "a___b", "a--b", "a-_b",
                "a..b", "_a", "a_", "busybox:", "busybox:-x", "busybox:_x", "busybox:" + "t" * 128,
                "busybox:" + "t" * 129, "a" * 64, "0123456789abcdef" * 4, "a" * 256, "a/" * 127 + "a",
                "localhost/app", "example.com/app", "Busybox", "me/App", "a:b:c", "a@sha256:" + "0" * 64,
                "docker.io/busybox", "library/busybox", "a/b/c:d.e-f_G", "a:1/b", "", "/a", "a/", "a//b"]


@pytest.mark.parametrize("default_tag", [True, False])
@pytest.mark.parametrize("text", _PLAIN_CASES)
def test_plain_names_read_as_the_grammar_reads_them(text: str, default_tag: bool) -> None:
    """`parse` reads a plain Docker Hub name without compiling the grammar's expression:
    whatever that fast reading accepts, the grammar reads the same; what it leaves (None)
    includes everything the grammar refuses."""
    _same_as_grammar(text, default_tag)


def _same_as_grammar(text: str, default_tag: bool) -> None:
    plain = reference._plain(text, default_tag)
    try:
        full = reference._parse(text, default_tag)
    except InvalidArgument:
        assert plain is None, text
        return
    assert plain is None or plain == full, text


def test_plain_names_on_random_text() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=3000, deadline=None, derandomize=True, database=None)
    @given(st.text(alphabet="ab09._-/:@A", max_size=20), st.booleans())
    def check(text: str, default_tag: bool) -> None:
        _same_as_grammar(text, default_tag)

    check()
    assert reference._plain("bench-busybox", True) == reference.Reference(
        "docker.io", "library/bench-busybox", "latest")  # the fast path is taken
