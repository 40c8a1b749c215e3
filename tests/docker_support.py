"""A private dockerd for tests marked ``docker``: its own data-root, exec-root and socket,
no host networking changes. Any test directory imports it (a unique module name)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class Docker:
    def __init__(self, sock: str) -> None:
        self.argv = ["docker", "-H", f"unix://{sock}"]

    def __call__(self, *args: str, stdin: bytes | None = None, stdout: int | None = None,
                 check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([*self.argv, *args], input=stdin, timeout=timeout,
                              stdout=stdout if stdout is not None else subprocess.PIPE,
                              stderr=subprocess.PIPE)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc


def _start_dockerd(base: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    sock = base / "docker.sock"
    log = (base / "dockerd.log").open("wb")
    cmd = ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
           "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"),
           "--iptables=false", "--ip6tables=false", "--bridge=none"]
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        return None, "dockerd is not installed"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (base / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:]
            return None, f"dockerd exited: {tail[0] if tail else 'no output'}"
        ok = subprocess.run(["docker", "-H", f"unix://{sock}", "info"], capture_output=True)
        if ok.returncode == 0:
            return proc, str(sock)
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


def _unmount_under(base: Path) -> None:
    with open("/proc/self/mountinfo") as fh:
        mounts = [ln.split()[4] for ln in fh if ln.split()[4].startswith(f"{base}/")]
    for mnt in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True)


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    """A private dockerd (own data-root, exec-root, socket; no host networking changes)."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI is not installed")
    base = Path(f"/var/tmp/forklift-test-dockerd-{os.getpid()}")
    base.mkdir(parents=True, exist_ok=True)
    proc, sock_or_reason = _start_dockerd(base)
    if proc is None:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start dockerd: {sock_or_reason}")
    try:
        yield Docker(sock_or_reason)
    finally:
        _stop(proc)
        _unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
