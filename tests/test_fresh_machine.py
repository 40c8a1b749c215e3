"""The README's first command on a machine that has nothing: scripts/fresh-machine-check.sh
runs a clean clone's `bash scripts/demo.sh` in a debootstrap-made Debian 12 (minbase).

~1.5 min (apt and pip through the package indexes; +30 s the first time, for debootstrap).
It tests the committed HEAD of this checkout, as CI's clean clone does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "fresh-machine-check.sh"


def _mounted_under(path: str) -> list[str]:
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (debootstrap, chroot, mounts)")
def test_demo_passes_on_a_fresh_debian() -> None:
    work = tempfile.mkdtemp(prefix="fresh-check-", dir="/var/tmp")
    env = {**os.environ, "FORKLIFT_FRESH_WORK": work}
    env.pop("PYTHONPATH", None)  # the chroot gets a clean environment anyway
    proc = subprocess.Popen(["bash", str(SCRIPT), str(REPO), "HEAD"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # its trap unmounts and removes the chroot
        out, _ = proc.communicate(timeout=120)
    text = out.decode(errors="replace")
    try:
        assert proc.returncode == 0, text[-6000:]
        lines = text.splitlines()
        assert "A /HelloWorld" in lines
        assert "with other arguments" in lines  # the entrypoint carried into a commit
        assert "hello from /tmp" in lines  # the configuration carried forward
        assert any(ln.startswith("demo complete") for ln in lines)
        assert "fresh-machine-check: iptables: chroot nf_tables, host nf_tables" in lines
        # nothing left: no mount, no chroot
        assert _mounted_under(work) == []
        assert os.listdir(work) == []
    finally:
        if not _mounted_under(work):
            shutil.rmtree(work, ignore_errors=True)
