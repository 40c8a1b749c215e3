"""What a pull imports before its first request: httpx without its command-line client."""

from __future__ import annotations

import os
import subprocess
import sys

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
