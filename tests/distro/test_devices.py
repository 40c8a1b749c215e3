"""Device nodes inside an image give a container no access that Docker's device rules
would refuse: the node exists, the runtime's device cgroup still says no."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest

pytestmark = pytest.mark.root


def _with_nodes(busybox_tar, nodes):
    """The busybox root filesystem plus extra device nodes at the top."""
    buf = io.BytesIO()
    with tarfile.open(busybox_tar) as src, tarfile.open(fileobj=buf, mode="w",
                                                        format=tarfile.PAX_FORMAT) as out:
        for member in src.getmembers():
            out.addfile(member, src.extractfile(member) if member.isreg() else None)
        for name, kind, rdev in nodes:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o666
            info.devmajor, info.devminor = os.major(rdev), os.minor(rdev)
            out.addfile(info)
    return buf.getvalue()


@pytest.fixture
def host_disk(tmp_path):
    """A real block device on the host (a loop device over a file holding a secret)."""
    backing = tmp_path / "disk.img"
    backing.write_bytes(b"SECRET" + bytes(1 << 20))
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_a_host_disk_node_in_an_image_cannot_be_read(fl, busybox_tar, host_disk):
    with open(host_disk, "rb") as f:  # the host reads it: the number names a real disk
        assert f.read(6) == b"SECRET"
    dev = os.stat(host_disk).st_rdev
    mem = os.makedev(1, 1)  # /dev/mem
    data = _with_nodes(busybox_tar, [("disk", tarfile.BLKTYPE, dev), ("mem", tarfile.CHRTYPE, mem)])
    assert fl("import", "-c", "ENV PATH=/bin", "-", "devs:1", input=data).code == 0
    listing = fl("run", "--rm", "--network", "none", "devs:1", "ls", "-l", "/disk", "/mem")
    assert listing.code == 0, listing.err
    assert [line[0] for line in listing.lines] == ["b", "c"]
    for node in ("/disk", "/mem"):
        res = fl("run", "--rm", "--network", "none", "devs:1", "head", "-c", "16", node, check=False)
        assert res.code != 0 and "Operation not permitted" in res.err, (node, res.out, res.err)
    # the device rules, not a broken node, said no: --privileged lifts them, as in Docker
    res = fl("run", "--rm", "--network", "none", "--privileged", "devs:1", "head", "-c", "6", "/disk")
    assert res.out == "SECRET", res.err
    # the nodes themselves are kept exactly, through commit too
    assert fl("run", "--name", "c", "--network", "none", "devs:1", "touch", "/x").code == 0
    assert fl("commit", "c", "devs:2").code == 0
    again = fl("run", "--rm", "--network", "none", "devs:2", "stat", "-c", "%t:%T", "/disk")
    assert again.out.strip() == f"{os.major(dev):x}:{os.minor(dev):x}"
