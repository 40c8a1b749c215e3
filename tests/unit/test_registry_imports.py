"""What a pull does before its first request: httpx without its command-line client, and
no parse of the system CA bundle."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from support.registry import make_pki

from forklift.registry import client

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_pull_modules_import_httpx_without_its_cli() -> None:
    out = _python(
        "import sys\n"
        "import forklift.cli.registry_cmds, forklift.engine.distribution\n"
        "import httpx\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'pygments')"
        " or m == 'httpx._main'), callable(httpx.main), hasattr(httpx, 'Client'))\n")
    assert out == "[] True True"


def test_httpx_cli_still_importable_afterwards() -> None:
    """The blocking entry is gone once httpx is in: nothing else in the process is affected."""
    out = _python(
        "import sys\n"
        "import forklift.registry.client\n"
        "assert 'httpx._main' not in sys.modules\n"
        "import httpx._main\n"
        "print(callable(httpx._main.main))\n")
    assert out == "True"


def test_httpx_imported_first_is_left_alone() -> None:
    out = _python(
        "import httpx, sys\n"
        "import forklift.registry.client\n"
        "print('httpx._main' in sys.modules)\n")
    assert out == "True"


@pytest.mark.parametrize("inside", [True, False])
def test_system_cas_read_per_certificate_only_from_a_hashed_bundle_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inside: bool) -> None:
    """A bundle that lies in a hashed CA directory (Debian's layout) is not parsed up front;
    any other bundle is, as ``ssl.create_default_context`` would."""
    pki = make_pki(tmp_path / "pki")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "0123abcd.0").write_bytes(pki.ca_pem.read_bytes())
    bundle = (certs if inside else tmp_path) / "bundle.crt"
    bundle.write_bytes(pki.ca_pem.read_bytes())
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("FORKLIFT_CERTS_D", str(tmp_path / "certs.d"))
    ctx = client._tls_context("registry.test", True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509"] == (0 if inside else 1)
    unhashed = tmp_path / "unhashed"
    unhashed.mkdir()
    (unhashed / "bundle.crt").write_bytes(pki.ca_pem.read_bytes())
    monkeypatch.setenv("SSL_CERT_DIR", str(unhashed))
    monkeypatch.setenv("SSL_CERT_FILE", str(unhashed / "bundle.crt"))
    assert client._tls_context("registry.test", True).cert_store_stats()["x509"] == 1
