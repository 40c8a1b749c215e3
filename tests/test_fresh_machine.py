"""The README's first command on a machine that has nothing: scripts/fresh-machine-check.sh
runs a clean clone's `bash scripts/demo.sh` in a debootstrap-made Debian 12 (minbase).

~1.5 min (apt and pip through the package indexes; +30 s the first time, for debootstrap).
It tests the committed HEAD of this checkout, as CI's clean clone does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile

import pytest
from support import REPO
from support.mounts import mounts_under, unmount_and_remove

SCRIPT = REPO / "scripts" / "fresh-machine-check.sh"


@pytest.mark.root  # debootstrap, chroot, mounts
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
        assert mounts_under(work) == []
        assert os.listdir(work) == []
    finally:
        unmount_and_remove(work)
