"""ADD of an http(s) URL against a local HTTP server (threads in this process) that can
answer well or with hostile answers: truncated, lying about the length, too large, silent."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from support import one_line_error
from support.store import assert_clean
from support.webserver import Server

from forklift.build import remote
from forklift.errors import ForkliftError, InvalidArgument, LimitExceeded
from forklift.limits import Limits

pytestmark = pytest.mark.root

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_EPOCH = 1445412480


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the downloader itself

def test_fetch_names_the_file_sets_0600_and_last_modified(server, tmp_path):
    server.routes["/dir/file.txt"] = (200, {"Last-Modified": LAST_MODIFIED}, b"hello url\n")
    got = remote.fetch(server.base + "/dir/file.txt?x=1", str(tmp_path / "d"), Limits())
    assert got.path == str(tmp_path / "d" / "file.txt")
    assert open(got.path, "rb").read() == b"hello url\n" and got.digest == sha(b"hello url\n")
    st = (tmp_path / "d" / "file.txt").stat()
    assert st.st_mode & 0o7777 == 0o600 and int(st.st_mtime) == LAST_MODIFIED_EPOCH
    server.routes["/plain"] = (200, {}, b"x")
    plain = remote.fetch(server.base + "/plain", str(tmp_path / "e"), Limits())
    assert os.stat(plain.path).st_mtime == 0 and plain.mtime == 0


def test_redirects_followed_up_to_ten(server, tmp_path):
    server.routes["/target.bin"] = (200, {}, b"moved")
    for i in range(10):
        server.routes[f"/hop{i}"] = (302, {"Location": f"/hop{i + 1}"}, b"")
    server.routes["/hop10"] = (302, {"Location": "/target.bin"}, b"")
    # ten redirects from /hop1: fine; eleven from /hop0: refused
    got = remote.fetch(server.base + "/hop1", str(tmp_path / "a"), Limits())
    assert open(got.path, "rb").read() == b"moved" and got.path.endswith("/hop1")
    with pytest.raises(remote.DownloadError, match="more than 10 redirects"):
        remote.fetch(server.base + "/hop0", str(tmp_path / "b"), Limits())


@pytest.mark.parametrize("url", ["http://h/", "http://h", "https://h/a/..", "http://h/?q=1"])
def test_a_url_without_a_file_name_is_refused(url, tmp_path):
    with pytest.raises(InvalidArgument, match="cannot determine filename from url"):
        remote.fetch(url, str(tmp_path / "d"), Limits())


def test_hostile_answers_are_one_line_errors(server, tmp_path):
    limits = Limits(max_layer_size=1000)
    server.routes["/truncated"] = (200, {"Content-Length": "500"}, b"short")
    server.routes["/huge-declared"] = (200, {"Content-Length": str(1 << 40)}, b"")
    server.routes["/huge-sent"] = (200, {"Content-Length": ""}, b"y" * 5000)
    server.routes["/missing"] = (404, {}, b"gone")
    cases = [("/truncated", ForkliftError, "ADD .*/truncated: "),
             ("/huge-declared", LimitExceeded, "larger than the size limit"),
             ("/huge-sent", LimitExceeded, "larger than the size limit"),
             ("/missing", remote.DownloadError, "answered 404")]
    for i, (path, kind, message) in enumerate(cases):
        with pytest.raises(kind, match=message) as err:
            remote.fetch(server.base + path, str(tmp_path / str(i)), limits)
        assert "\n" not in str(err.value)


def test_a_silent_server_times_out(server, tmp_path):
    with pytest.raises(remote.DownloadError, match="no answer from the server within 0.5s"):
        remote.fetch(server.base + "/silent", str(tmp_path / "d"), Limits(), wait=0.5)


def test_checksum(server, tmp_path):
    server.routes["/c.txt"] = (200, {}, b"checked")
    good = remote.fetch(server.base + "/c.txt", str(tmp_path / "a"), Limits(), sha(b"checked"))
    assert good.digest == sha(b"checked")
    with pytest.raises(remote.DownloadError, match="checksum mismatch: expected sha256:0+, got "):
        remote.fetch(server.base + "/c.txt", str(tmp_path / "b"), Limits(), "sha256:" + "0" * 64)


# ------------------------------------------------------------------ through forklift build

def test_add_url_builds_caches_and_rebuilds_on_change(fl, ctx, server):
    server.routes["/app.txt"] = (200, {"Last-Modified": LAST_MODIFIED}, b"v1\n")
    url = server.base + "/app.txt"
    root = ctx(f"FROM busybox\nADD {url} /opt/\nADD --chown=5:6 {url} /renamed\n")
    first = fl.out("build", "-q", str(root))
    listing = fl.out("run", "--rm", "--network", "none", first, "stat", "-c", "%n %a %u:%g %Y",
                     "/opt/app.txt", "/renamed")
    assert listing.splitlines() == [f"/opt/app.txt 600 0:0 {LAST_MODIFIED_EPOCH}",
                                    f"/renamed 600 5:6 {LAST_MODIFIED_EPOCH}"]
    again = fl("build", str(root))
    assert again.out.count("CACHED") == 2 and fl.out("build", "-q", str(root)) == first
    server.routes["/app.txt"] = (200, {"Last-Modified": LAST_MODIFIED}, b"v2\n")
    second = fl.out("build", "-q", str(root))
    assert second != first
    assert fl.out("run", "--rm", "--network", "none", second, "cat", "/opt/app.txt") == "v2"


def test_add_url_checksum_and_refusals_through_the_cli(fl, ctx, server):
    server.routes["/c.txt"] = (200, {}, b"checked")
    good = ctx(f"FROM busybox\nADD --checksum={sha(b'checked')} {server.base}/c.txt /c\n")
    fl("build", "-q", str(good))
    before = fl.out("images", "-aq")
    for text, message in (
        (f"ADD --checksum=sha256:{'1' * 64} {server.base}/c.txt /c", "checksum mismatch"),
        ("ADD --checksum=md5:abc " + server.base + "/c.txt /c", "invalid ADD --checksum"),
        ("ADD --checksum=sha256:" + "1" * 64 + " Dockerfile /c", "--checksum needs an http(s) URL"),
        (f"ADD {server.base}/ /d/", "cannot determine filename from url"),
        (f"ADD {server.base}/c.txt Dockerfile /d/", "URLs and local files together"),
        (f"ADD {server.base}/nothing /d", "answered 404"),
        (f"COPY {server.base}/c.txt /d", "source can't be a URL for COPY"),
        (f"ADD {server.base}/silent /d", "no answer from the server within 1s"),
    ):
        res = fl("build", str(ctx(f"FROM busybox\n{text}\n")), check=False,
                 env={"FORKLIFT_ADD_TIMEOUT": "1"})
        assert message in one_line_error(res), text
    assert fl.out("images", "-aq") == before
    assert_clean(fl.root)
