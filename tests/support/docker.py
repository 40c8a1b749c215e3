"""A private dockerd for tests marked ``docker``: its own data-root, exec-root and socket,
no host networking changes."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import Result, run
from support.mounts import unmount_and_remove


class Docker:
    """The docker CLI on one private dockerd: ``docker("load", "-i", path)`` → Result."""

    def __init__(self, sock: Path) -> None:
        self.argv = ["docker", "-H", f"unix://{sock}"]

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True,
                 timeout: float = 180) -> Result:
        return run([*self.argv, *args], input=input, check=check, timeout=timeout)


@contextlib.contextmanager
def private_dockerd(*flags: str) -> Iterator[Docker]:
    """A dockerd started with ``flags`` added, stopped and removed afterwards; skips the test
    when there is no Docker or it does not come up."""
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("docker (docker.io) is not installed")
    base = Path(tempfile.mkdtemp(prefix="fl-dockerd-", dir="/var/tmp"))
    try:
        proc, why = _start(base, flags)
        if proc is None:
            pytest.skip(f"cannot start dockerd: {why}")
        try:
            yield Docker(base / "docker.sock")
        finally:
            _stop(proc)
    finally:
        unmount_and_remove(base)


def _start(base: Path, flags: tuple[str, ...]) -> tuple[subprocess.Popen[bytes] | None, str]:
    sock = base / "docker.sock"
    cmd = ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
           "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"),
           "--iptables=false", "--ip6tables=false", "--bridge=none", *flags]
    with open(base / "dockerd.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (base / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:]
            return None, f"dockerd exited: {tail[0] if tail else 'no output'}"
        if run(["docker", "-H", f"unix://{sock}", "info"], check=False).code == 0:
            return proc, ""
        time.sleep(0.5)
    _stop(proc)
    return None, "dockerd did not come up within 30 s"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
