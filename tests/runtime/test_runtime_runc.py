"""End to end: busybox layer -> overlay rootfs -> build_spec -> real runc."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import CommandNotExecutable, CommandNotFound, MissingProgram, RuntimeFailure
from forklift.runtime.overlay import mount_overlay, unmount
from forklift.runtime.runc import Runc
from forklift.runtime.spec import MountSpec, ProcessConfig, build_spec, write_bundle
from forklift.runtime.user import resolve_user

pytestmark = pytest.mark.root

APPLETS = ["sh", "true", "echo", "cat", "id", "hostname", "ls", "sleep", "wc", "touch", "grep"]
DOCKER_CAPEFF = 0xA80425FB  # Docker's 14 default capabilities as a bitmask
CGROUP_PARENT = f"forklift-test-{os.getpid()}"
_ids = itertools.count()


@pytest.fixture(scope="module")
def base_layer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A busybox image layer laid out like the store: layers/<id>/diff."""
    diff = tmp_path_factory.mktemp("store") / "layers" / "0123456789ab" / "diff"
    (diff / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", diff / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", diff / "bin" / applet)
    (diff / "etc").mkdir()
    (diff / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    (diff / "etc" / "group").write_text("root:x:0:\nwheel:x:10:root,alice\nalice:x:1000:\n")
    (diff / "noexec").write_text("not a program")
    yield str(diff)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        try:
            (hierarchy / CGROUP_PARENT).rmdir()  # runc removed each container's own cgroup
        except OSError:
            pass


@dataclass
class Box:
    """One container's directories, mounted rootfs and runc handle."""

    base: str
    root: Path
    runc: Runc

    @property
    def rootfs(self) -> str:
        return str(self.root / "merged")

    def bundle(
        self,
        args: list[str],
        *,
        user: str = "",
        network: str = "none",
        hostname: str = "c0ffee123456",
        readonly: bool = False,
        mounts: list[MountSpec] | None = None,
    ) -> str:
        uid, gid, groups, home = resolve_user(self.rootfs, user)
        proc = ProcessConfig(
            args=args,
            env=["PATH=/bin", f"HOME={home}"],
            cwd="/",
            uid=uid,
            gid=gid,
            additional_gids=groups,
        )
        cid = f"fkt-{os.getpid()}-{next(_ids)}"
        spec = build_spec(
            rootfs=self.rootfs,
            process=proc,
            hostname=hostname,
            readonly_rootfs=readonly,
            mounts=mounts or [],
            network=network,
            cgroups_path=f"/{CGROUP_PARENT}/{cid}",
        )
        bundle = self.root / "bundles" / cid
        write_bundle(str(bundle), spec)
        return str(bundle)

    def run(self, args: list[str], stdin: bytes = b"", **kw: Any) -> tuple[int, str, str]:
        """Run to completion; return (exit code, stdout, stderr)."""
        bundle = self.bundle(args, **kw)
        cid = os.path.basename(bundle)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe()
        os.write(in_w, stdin)
        os.close(in_w)
        try:
            code = self.runc.run(cid, bundle, stdin=in_r, stdout=out_w, stderr=err_w)
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            self.runc.delete(cid, force=True)
        with os.fdopen(out_r, "rb") as o, os.fdopen(err_r, "rb") as e:
            return code, o.read().decode(), e.read().decode()


@pytest.fixture
def box(base_layer: str, tmp_path: Path) -> Iterator[Box]:
    for d in ("upper", "work", "merged"):
        (tmp_path / d).mkdir()
    # A read-only empty layer on top, so the overlay really stacks two lowers.
    empty = Path(base_layer).parent.parent / "ba5e00000000" / "diff"
    empty.mkdir(parents=True, exist_ok=True)
    merged = str(tmp_path / "merged")
    mount_overlay([str(empty), base_layer], str(tmp_path / "upper"), str(tmp_path / "work"), merged)
    try:
        yield Box(base_layer, tmp_path, Runc(str(tmp_path / "runc-state")))
    finally:
        unmount(merged, lazy=True)


def test_echo(box: Box) -> None:
    assert box.run(["echo", "hi"]) == (0, "hi\n", "")


def test_exit_code(box: Box) -> None:
    assert box.run(["sh", "-c", "exit 3"])[0] == 3


def test_killed_by_signal_is_128_plus_n(box: Box) -> None:
    # PID 1 ignores signals it has no handler for, so kill a child and pass its status up.
    code, _, _ = box.run(["sh", "-c", 'sh -c "kill -9 \\$\\$"; exit $?'])
    assert code == 137


def test_stdin_is_forwarded(box: Box) -> None:
    assert box.run(["cat"], stdin=b"hello\n")[:2] == (0, "hello\n")


def test_command_not_found_is_127(box: Box) -> None:
    with pytest.raises(CommandNotFound, match="executable file not found") as info:
        box.run(["nonexistent-cmd"])
    assert info.value.exit_code == 127
    with pytest.raises(CommandNotFound):
        box.run(["/nope/cmd"])


def test_not_executable_is_126(box: Box) -> None:
    with pytest.raises(CommandNotExecutable, match="permission denied") as info:
        box.run(["/noexec"])
    assert info.value.exit_code == 126


def test_other_runc_failures_raise(box: Box, tmp_path: Path) -> None:
    bad = MountSpec("/data", str(tmp_path / "does-not-exist"), options=["rbind"])
    with pytest.raises(RuntimeFailure, match="runc run failed"):
        box.run(["true"], mounts=[bad])


def test_hostname(box: Box) -> None:
    assert box.run(["hostname"], hostname="abcdef012345")[1] == "abcdef012345\n"


def test_user(box: Box) -> None:
    assert box.run(["id"])[1] == "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n"
    code, out, _ = box.run(["id"], user="alice")
    # the kernel sorts supplementary groups
    assert out == "uid=1000(alice) gid=1000(alice) groups=10(wheel),1000(alice)\n"
    assert box.run(["sh", "-c", "id -u; id -g; echo $HOME"], user="4242:77")[1] == "4242\n77\n/\n"


def _capeff(status: str) -> int:
    line = next(x for x in status.splitlines() if x.startswith("CapEff:"))
    return int(line.split()[1], 16)


def test_docker_capabilities(box: Box) -> None:
    status = box.run(["cat", "/proc/self/status"])[1]
    assert _capeff(status) == DOCKER_CAPEFF
    bounding = next(x for x in status.splitlines() if x.startswith("CapBnd:"))
    assert int(bounding.split()[1], 16) == DOCKER_CAPEFF
    assert _capeff(box.run(["cat", "/proc/self/status"], user="alice")[1]) == 0


def test_masked_and_readonly_proc(box: Box) -> None:
    code, out, _ = box.run(["sh", "-c", "cat /proc/self/mountinfo; wc -c < /proc/kcore"])
    mountpoints = {line.split()[4]: line.split()[5] for line in out.splitlines() if " - " in line}
    for masked in ("/proc/keys", "/proc/timer_list", "/sys/firmware"):
        if os.path.exists(masked):
            assert masked in mountpoints, masked
    assert mountpoints["/proc/sys"].startswith("ro")
    if os.path.exists("/proc/kcore"):
        assert out.splitlines()[-1].strip() == "0"


def test_network_none_has_only_lo(box: Box) -> None:
    out = box.run(["cat", "/proc/net/dev"])[1]
    interfaces = [line.split(":")[0].strip() for line in out.splitlines()[2:]]
    assert interfaces == ["lo"]


def test_network_host_sees_host_interfaces(box: Box) -> None:
    host = sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:])
    out = box.run(["cat", "/proc/net/dev"], network="host")[1]
    assert sorted(line.split(":")[0].strip() for line in out.splitlines()[2:]) == host


def test_rlimit_nofile_clamped(box: Box) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    assert box.run(["sh", "-c", "ulimit -n"])[1] == f"{want}\n"


def test_readonly_rootfs_and_writes_land_in_upper(box: Box) -> None:
    assert box.run(["touch", "/made-here"])[0] == 0
    assert (box.root / "upper" / "made-here").exists()
    code, _, err = box.run(["touch", "/nope"], readonly=True)
    assert code == 1 and "Read-only file system" in err


def test_bind_mount_volume(box: Box, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from host\n")
    mounts = [MountSpec("/data", str(vol))]
    assert box.run(["sh", "-c", "cat /data/in; echo out > /data/out"], mounts=mounts)[1] == (
        "from host\n"
    )
    assert (vol / "out").read_text() == "out\n"


_HELPER = """
import sys
from forklift.runtime.runc import Runc
sys.exit(Runc(sys.argv[1]).run(sys.argv[2], sys.argv[3]))
"""


def test_sigterm_to_forklift_reaches_the_container(box: Box) -> None:
    script = 'trap "exit 7" TERM; echo ready; while true; do sleep 0.05; done'
    bundle = box.bundle(["sh", "-c", script])
    cid = os.path.basename(bundle)
    state = str(box.root / "runc-state")
    proc = subprocess.Popen(
        [sys.executable, "-c", _HELPER, state, cid, bundle],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,  # keep pytest's own signals away from it
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        box.runc.delete(cid, force=True)


def test_detached_lifecycle(box: Box) -> None:
    bundle = box.bundle(["sh", "-c", "echo started; exec sleep 30"])
    cid = os.path.basename(bundle)
    log = box.root / "out.log"
    with open(log, "wb") as out:
        box.runc.create(cid, bundle, stdout=out, stderr=out, pid_file=str(box.root / "pid"))
    try:
        state = box.runc.state(cid)
        assert state is not None and state["status"] == "created"
        assert int((box.root / "pid").read_text()) == state["pid"]
        box.runc.start(cid)
        assert _wait_status(box.runc, cid, "running")
        # "running" means the process exists, not that it has printed yet
        deadline = time.monotonic() + 5
        while log.read_text() != "started\n" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.read_text() == "started\n"
        box.runc.kill(cid, signal.SIGKILL)
        assert _wait_status(box.runc, cid, "stopped")
        box.runc.delete(cid)
        assert box.runc.state(cid) is None
    finally:
        box.runc.delete(cid, force=True)
    box.runc.delete(cid)  # deleting a container that does not exist is fine
    box.runc.delete("never-existed", force=True)


def _wait_status(runc: Runc, cid: str, status: str) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = runc.state(cid)
        if state is not None and state["status"] == status:
            return True
        time.sleep(0.02)
    return False


def test_missing_runc_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingProgram, match="^runc not found: install the Debian package runc$"):
        Runc("/tmp/unused")
