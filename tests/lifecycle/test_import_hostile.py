"""image import: compressed inputs, stdin and URLs; hostile tarballs refused, store unchanged."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import lzma
import os
import tarfile
import threading

import pytest
import zstandard
from support.store import snapshot

pytestmark = pytest.mark.root


def _tar(entries) -> bytes:
    """entries: list of (TarInfo kwargs, data or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kw, data in entries:
            info = tarfile.TarInfo(kw.pop("name"))
            for key, value in kw.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _file(name, data=b"x"):
    return ({"name": name, "mode": 0o644}, data)


HOSTILE = {
    "dotdot": _tar([_file("../escape")]),
    "dotdot-nested": _tar([_file("a/../../escape")]),
    "absolute": _tar([_file("/escape")]),
    "symlink-then-write": _tar([({"name": "link", "type": tarfile.SYMTYPE, "linkname": "/tmp"}, None),
                                _file("link/escape")]),
    "symlink-dir-relative": _tar([({"name": "up", "type": tarfile.SYMTYPE, "linkname": "../.."}, None),
                                  _file("up/escape")]),
    "hardlink-outside": _tar([({"name": "h", "type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"}, None)]),
    "hardlink-absolute": _tar([({"name": "h", "type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}, None)]),
    "hardlink-through-symlink": _tar([({"name": "s", "type": tarfile.SYMTYPE, "linkname": "/etc"}, None),
                                      ({"name": "h", "type": tarfile.LNKTYPE, "linkname": "s/passwd"}, None)]),
    "truncated": _tar([_file("big", b"y" * 100_000)])[:30_000],
    "garbage": b"this is not a tarball at all" * 40,
    "gzip-garbage": b"\x1f\x8b\x08\x00" + b"\x00" * 200,
    "empty-file": b"",
}


def _bad_crc() -> bytes:
    data = bytearray(gzip.compress(_tar([_file("f", b"payload" * 100)])))
    data[-6] ^= 0xFF
    return bytes(data)


HOSTILE["gzip-bad-crc"] = _bad_crc()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tarball_is_refused_and_changes_nothing(fl, busybox, tmp_path, case):
    sentinel = tmp_path / "outside"
    sentinel.mkdir()
    path = sentinel / "evil.tar"
    path.write_bytes(HOSTILE[case])
    before = snapshot(fl.root)
    res = fl("image", "import", str(path), f"evil:{case}", check=False)
    assert res.code != 0, f"{case} was accepted"
    assert res.err.startswith("Error: ") and res.err.count("\n") == 1, res.err
    assert "Traceback" not in res.err
    assert snapshot(fl.root) == before
    assert sorted(os.listdir(sentinel)) == ["evil.tar"]
    assert not os.path.exists("/escape") and not os.path.exists("/tmp/escape")


def test_contained_symlinks_are_kept_as_links(fl, busybox):
    data = _tar([({"name": "etc", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
                 ({"name": "etc/abs", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None),
                 ({"name": "etc/rel", "type": tarfile.SYMTYPE, "linkname": "../../../../x"}, None),
                 _file("etc/hosts-copy", b"127.0.0.1 localhost\n")])
    res = fl("image", "import", "-", "links:1", input=data)
    assert res.code == 0, res.err
    assert fl("image", "ls", "-q", "links:1").out.strip()


def _rootfs_bytes(busybox_tar):
    return busybox_tar.read_bytes()


@pytest.mark.parametrize("codec", ["gzip", "xz", "zstd", "none"])
def test_compressed_imports_give_the_same_diffid(fl, busybox, busybox_tar, tmp_path, codec):
    raw = _rootfs_bytes(busybox_tar)
    data = {"gzip": gzip.compress, "xz": lzma.compress,
            "zstd": zstandard.ZstdCompressor().compress, "none": lambda b: b}[codec](raw)
    path = tmp_path / f"rootfs.{codec}"
    path.write_bytes(data)
    res = fl("import", str(path), f"bb:{codec}")
    assert res.code == 0, res.err
    layers = json.loads(fl("inspect", f"bb:{codec}").out)[0]["RootFS"]["Layers"]
    base = json.loads(fl("inspect", "busybox").out)[0]["RootFS"]["Layers"]
    assert layers == base


def test_import_from_stdin_and_url(fl, busybox, busybox_tar):
    raw = busybox_tar.read_bytes()
    assert fl("import", "-", "from-stdin", input=raw).code == 0

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/rootfs.tar"
        res = fl("import", "-m", "from the web", url, "from-url:1")
    finally:
        server.shutdown()
    assert res.code == 0, res.err
    assert fl("run", "--rm", "from-url:1", "/bin/busybox", "true").code == 0
    assert fl("history", "--format", "{{.Comment}}", "from-url:1").out.strip() == "from the web"


def test_import_same_tarball_twice_shares_the_layer(fl, busybox, busybox_tar):
    assert fl("import", str(busybox_tar), "again:1").code == 0
    assert len(os.listdir(fl.root / "layers")) == 1


def test_missing_file_and_bad_reference(fl, busybox_tar):
    res = fl("import", "/nonexistent.tar", "x:1", check=False)
    assert res.code != 0 and res.err.strip().startswith("Error: open /nonexistent.tar")
    res = fl("import", str(busybox_tar), "Bad:Name", check=False)
    assert res.code != 0 and "must be lowercase" in res.err
    state = snapshot(fl.root)
    assert not any(state["rows"].values())
    assert not [p for paths in state["files"].values() for p in paths if (fl.root / p).is_file()]
