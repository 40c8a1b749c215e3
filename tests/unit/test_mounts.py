"""Mounts: ``-v``/``--mount``/``--tmpfs`` parsing, and the mount list a start prepares
(volumes made and attached, first come first served), on a store in a temporary
directory with a plain directory standing in for the container's root filesystem."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from forklift.engine import mounts
from forklift.errors import InvalidArgument, NotFound
from forklift.store import containers as container_store
from forklift.store import volumes as volume_store
from forklift.store.containers import ContainerRecord
from forklift.store.db import Store


def add(store: Store, name: str, host_config: dict[str, Any],
        volumes: dict[str, Any] | None = None) -> ContainerRecord:
    rec = ContainerRecord(os.urandom(32).hex(), name, "sha256:" + "0" * 64, "img", time.time(),
                          config={"Cmd": ["sh"], "Volumes": volumes or {}},
                          host_config=host_config)
    with store.transaction():
        container_store.insert(store, rec)
    return rec


def paths(tmp_path: Path) -> dict[str, str]:
    return {name: str(tmp_path / name) for name in ("hosts", "hostname", "resolv.conf")}


@pytest.mark.parametrize(("spec", "parsed"), [
    ("/data", (None, "/data", False)),
    ("/host:/data", ("/host", "/data", False)),
    ("vol:/data/:ro", ("vol", "/data", True)),
    ("vol:/data:rw,nocopy", ("vol", "/data", False)),
])
def test_parse_volume(spec: str, parsed: tuple[str | None, str, bool]) -> None:
    assert mounts.parse_volume(spec) == parsed


@pytest.mark.parametrize(("spec", "message"), [
    ("vol:ro", "invalid volume specification: 'vol:ro'"),
    (":/data", "invalid volume specification: ':/data': empty source"),
    ("vol:/", "invalid mount path, must be absolute"),
    ("relative", "invalid mount path, must be absolute"),
    ("a:/b:zz", "invalid mode: zz"),
    ("a:/b:ro:x", "invalid volume specification: 'a:/b:ro:x'"),
])
def test_parse_volume_refusals(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        mounts.parse_volume(spec)


def test_parse_mount() -> None:
    assert mounts.parse_mount("type=bind,src=/h,dst=/c/,readonly") == {
        "Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True}
    assert mounts.parse_mount("target=/v,volume-nocopy=true") == {
        "Type": "volume", "Source": "", "Target": "/v", "ReadOnly": False, "NoCopy": True}
    assert mounts.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770") == {
        "Type": "tmpfs", "Source": "", "Target": "/t", "ReadOnly": False,
        "TmpfsSize": 1024 * 1024, "TmpfsMode": 0o1770}


@pytest.mark.parametrize(("spec", "message"), [
    ("type=nfs,target=/x", "invalid mount type: 'nfs'"),
    ("target=x", "target must be an absolute path"),
    ("type=bind,source=rel,target=/x", "invalid source"),
    ("type=tmpfs,source=/a,target=/x", "source must not be specified"),
    ("type=tmpfs,target=/x,tmpfs-mode=zz", "invalid value for tmpfs-mode: zz"),
    ("type=tmpfs,target=/x,tmpfs-size=big", "invalid size: 'big'"),
    ("target=/x,colour=red", "unexpected key 'colour'"),
])
def test_parse_mount_refusals(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        mounts.parse_mount(spec)


def test_host_config(store: Store) -> None:
    add(store, "other", {})
    assert mounts.host_config(store, ["type=tmpfs,target=/t"], ["/run:exec,size=1m", "/x/../y"],
                              ["other:ro"]) == {
        "Mounts": [{"Type": "tmpfs", "Source": "", "Target": "/t", "ReadOnly": False}],
        "Tmpfs": {"/run": "exec,size=1m", "/y": ""},
        "VolumesFrom": ["other:ro"]}
    with pytest.raises(NotFound):
        mounts.host_config(store, [], [], ["nobody"])
    with pytest.raises(InvalidArgument, match="invalid tmpfs mount: rel"):
        mounts.host_config(store, [], ["rel"], [])


def test_specs_order_and_volumes(store: Store, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "seed").mkdir(parents=True)
    (rootfs / "seed" / "file").write_text("from the image\n")
    host = tmp_path / "host-dir"
    rec = add(store, "c1", {
        "Binds": [f"{host}:/h:ro", "named:/seed"],
        "Mounts": [{"Type": "tmpfs", "Source": "", "Target": "/h", "ReadOnly": False},
                   {"Type": "volume", "Source": "", "Target": "/anon", "ReadOnly": True}],
        "Tmpfs": {"/run": "exec"},
    }, volumes={"/image-vol": {}, "/seed": {}})
    got = mounts.specs(store, rec, str(rootfs), paths(tmp_path))
    table = [(m.destination, m.type, m.options) for m in got]
    named = volume_store.get(store, "named")
    assert named is not None
    attached = dict((dest, name) for name, dest in volume_store.of_container(store, rec.id))
    assert table == [
        ("/etc/resolv.conf", "bind", ["rbind", "rprivate"]),
        ("/etc/hostname", "bind", ["rbind", "rprivate"]),
        ("/etc/hosts", "bind", ["rbind", "rprivate"]),
        ("/h", "bind", ["rbind", "rprivate", "ro"]),
        ("/seed", "bind", ["rbind", "rprivate"]),
        # the --mount on /h lost to the -v bind there
        ("/anon", "bind", ["rbind", "rprivate", "ro"]),
        ("/run", "tmpfs", ["nosuid", "nodev"]),
        ("/image-vol", "bind", ["rbind", "rprivate"]),
    ]
    assert host.is_dir()  # a missing host directory is created, as Docker does
    assert got[4].source == named.path(store)
    assert Path(named.path(store), "file").read_text() == "from the image\n"  # copied up
    assert set(attached) == {"/seed", "/anon", "/image-vol"}
    # a second start reuses the container's anonymous volumes
    again = mounts.specs(store, rec, str(rootfs), paths(tmp_path))
    assert [m.source for m in again] == [m.source for m in got]
    assert len(volume_store.all_volumes(store)) == 3


def test_specs_volumes_from(store: Store, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    other = add(store, "other", {"Binds": ["/srv/x:/x", "data:/data"]})
    mounts.specs(store, other, str(rootfs), paths(tmp_path))
    rec = add(store, "c2", {"VolumesFrom": ["other:ro", "gone"]})
    got = {m.destination: (m.source, m.options) for m in mounts.specs(store, rec, str(rootfs),
                                                                      paths(tmp_path))}
    data = volume_store.get(store, "data")
    assert data is not None
    assert got["/data"] == (data.path(store), ["rbind", "rprivate", "ro"])
    assert got["/x"] == ("/srv/x", ["rbind", "rprivate", "ro"])
    assert volume_store.of_container(store, rec.id) == [("data", "/data")]


def test_describe_and_host_sources(store: Store, tmp_path: Path) -> None:
    rec = add(store, "c3", {"Binds": ["/srv/b:/b:ro", "vol:/deep/er"],
                            "Mounts": [{"Type": "bind", "Source": "/m", "Target": "/m2",
                                        "ReadOnly": False},
                                       {"Type": "tmpfs", "Source": "", "Target": "/t",
                                        "ReadOnly": True}],
                            "Tmpfs": {"/run": ""}})
    volume_store.ensure(store, "vol")
    volume_store.attach(store, rec.id, "vol", "/deep/er")
    described = [(m["Type"], m["Destination"], m["RW"], m["Mode"])
                 for m in mounts.describe(store, rec)]
    # Docker's Mounts: a -v bind's mode as given; --tmpfs mounts (/run) not listed
    assert described == [("volume", "/deep/er", True, ""), ("bind", "/b", False, "ro"),
                         ("bind", "/m2", True, ""), ("tmpfs", "/t", False, "")]
    sources = mounts.host_sources(store, rec, paths(tmp_path))
    assert [d for d, _ in sources] == ["/etc/resolv.conf", "/etc/hostname", "/etc/hosts",
                                       "/deep/er", "/m2", "/b"]  # the deepest first
    assert dict(sources)["/b"] == "/srv/b" and dict(sources)["/m2"] == "/m"
