"""``system check [--repair] [--full]``, ``system df [-v]`` and the prune commands."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from support import Forklift
from support.images import small_tar
from support.store import assert_clean, verify_images_usable

pytestmark = pytest.mark.root


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "forklift.db", isolation_level=None)


def _layer_of(fl: Forklift, image: str) -> tuple[str, str, str]:
    image_id = fl.out("image", "inspect", "-f", "{{.Id}}", image)
    with _db(fl.root) as db:
        row = db.execute("SELECT l.diff_id, l.dir, l.blob FROM image_layers il JOIN layers l"
                         " ON l.diff_id=il.diff_id WHERE il.image_id=? ORDER BY position DESC",
                         (image_id,)).fetchone()
    return row


def test_check_clean_store(fl: Forklift, busybox: str) -> None:
    out = fl("system", "check", "--full").out
    assert out.strip().endswith("store is consistent"), out


def test_check_and_repair_damage(fl: Forklift, busybox: str, tmp_path: Path) -> None:
    root = fl.root
    fl("import", str(small_tar(tmp_path / "a.tar", 1)), "corruptblob")
    fl("import", str(small_tar(tmp_path / "b.tar", 2)), "nolayerdir")
    fl("import", str(small_tar(tmp_path / "c.tar", 3)), "fine")
    fl("import", str(small_tar(tmp_path / "d.tar", 4)), "nosplit")
    fl("create", "--network", "none", "--name", "victim", "nolayerdir", "true")
    fl("save", "-o", str(tmp_path / "saved.tar"), "corruptblob")  # its layer tar is kept from now
    # damage: a corrupt blob, a missing layer directory, a missing tar-split, a dangling tag,
    # orphans, scratch
    _, _, blob = _layer_of(fl, "corruptblob")
    with open(root / "blobs" / "sha256" / blob.split(":")[1], "r+b") as f:
        f.seek(600)
        f.write(b"X")
    _, layer_dir, _ = _layer_of(fl, "nolayerdir")
    os.rename(root / "layers" / layer_dir, tmp_path / "stolen")
    _, split_dir, _ = _layer_of(fl, "nosplit")
    os.unlink(root / "layers" / split_dir / "tar-split")
    with _db(root) as db:
        db.execute("INSERT INTO tags VALUES('docker.io/library/ghost:latest', 'sha256:" + "f" * 64 + "', 0)")
    (root / "layers" / "0123456789ab" / "diff").mkdir(parents=True)
    (root / "blobs" / "sha256" / ("e" * 64)).write_bytes(b"orphan")
    (root / "containers" / ("d" * 64)).mkdir()

    proc = fl("system", "check", "--grace", "0", check=False)
    assert proc.code == 1
    text = proc.out
    for needle in ("content does not match its digest", f"layers/{layer_dir}/diff is missing",
                   f"its tar-split layers/{split_dir}/tar-split is missing",
                   "ghost:latest: points at missing image", "layers/0123456789ab",
                   "containers/dddddddddddd", "e" * 64):
        assert needle in text, (needle, text)
    assert all(": " in ln for ln in text.splitlines())  # one line per problem

    proc = fl("system", "check", "--repair", "--grace", "0", check=False)
    assert proc.code == 0, proc.out
    out = proc.out
    assert "repaired: removed image" in out and "repaired: removed tag docker.io/library/ghost:latest" in out
    assert "repaired: removed container" in out  # its image had a missing layer
    assert_clean(root, full=True)
    names = fl("images", "--format", "{{.Repository}}").out.split()
    assert sorted(names) == ["busybox", "fine"]
    verify_images_usable(root)
    # the store still works, and a re-import restores the removed images
    fl("import", str(small_tar(tmp_path / "a.tar", 1)), "corruptblob")
    assert_clean(root, full=True)


def test_next_command_sweeps_crash_leftovers(fl: Forklift, busybox: str) -> None:
    """A dead process's scratch entry makes the next command sweep scratch and orphan files."""
    root = fl.root
    (root / "tmp" / "4194303-layer-x" / "diff").mkdir(parents=True)
    (root / "layers" / "0123456789ab" / "diff").mkdir(parents=True)
    (root / "blobs" / "sha256" / ("e" * 64)).write_bytes(b"orphan")
    fl("images")
    assert not (root / "tmp" / "4194303-layer-x").exists()
    assert not (root / "layers" / "0123456789ab").exists()
    assert not (root / "blobs" / "sha256" / ("e" * 64)).exists()
    assert_clean(root)


def test_full_check_finds_altered_layer_content(fl: Forklift, busybox: str) -> None:
    root = fl.root
    _, layer_dir, _ = _layer_of(fl, "busybox")
    (root / "layers" / layer_dir / "diff" / "etc" / "passwd").write_text("root::0:0::/:/bin/sh\n")
    assert fl("system", "check").code == 0  # the quick check trusts directories
    proc = fl("system", "check", "--full", check=False)
    assert proc.code == 1 and "etc/passwd" in proc.out, proc.out
    fl("system", "check", "--full", "--repair", "--grace", "0")
    assert fl("images", "-q").out.strip() == ""


def test_df_and_prunes(fl: Forklift, busybox: str, tmp_path: Path) -> None:
    root = fl.root
    fl("import", str(small_tar(tmp_path / "a.tar", 1, size=100_000)), "extra")
    fl("run", "--network", "none", "--name", "used", "busybox", "sh", "-c",
       "echo 0123456789 > /ten")
    fl("commit", "used", "child")
    fl("tag", "child", "child:2")
    fl("rmi", "child:latest")
    fl("import", str(small_tar(tmp_path / "d.tar", 4)))  # dangling
    out = fl("system", "df").out.splitlines()
    assert out[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {ln[:15].strip(): ln[15:].split() for ln in out[1:]}
    assert rows["Images"][:2] == ["4", "1"], out
    assert rows["Containers"][:3] == ["1", "0", "11B"], out
    assert rows["Containers"][3:] == ["11B", "(100%)"], out
    assert rows["Local Volumes"] == ["0", "0", "0B", "0B"], out
    assert rows["Build Cache"] == ["0", "0", "0B", "0B"], out
    verbose = fl("system", "df", "-v").out
    for heading in ("Images space usage:", "Containers space usage:", "Local Volumes space usage:",
                    "Build cache usage: 0B"):
        assert heading in verbose
    assert "SHARED SIZE" in verbose and "UNIQUE SIZE" in verbose

    # prompts (declined: nothing happens)
    proc = fl("image", "prune", input="n\n")
    assert proc.out.startswith("WARNING! This will remove all dangling images.\n"
                                  "Are you sure you want to continue? [y/N] ")
    assert len(fl("images", "-a", "-q").out.split()) == 4
    # dangling only
    out = fl("image", "prune", "-f").out
    assert out.startswith("Deleted Images:\ndeleted: sha256:") and "Total reclaimed space: " in out
    assert len(fl("images", "-a", "-q").out.split()) == 3
    # containers
    out = fl("container", "prune", input="y\n").out
    assert "WARNING! This will remove all stopped containers." in out
    assert "Deleted Containers:\n" in out and out.strip().endswith("Total reclaimed space: 11B")
    # everything unused
    out = fl("system", "prune", "-a", "-f").out
    assert "Deleted Images:" in out and "untagged: busybox:latest" in out and "untagged: child:2" in out
    assert fl("images", "-a", "-q").out.strip() == ""
    assert out.strip().splitlines()[-1].startswith("Total reclaimed space: ")
    assert_clean(root)
    os.listdir(root / "layers") == []  # noqa: B015


def test_system_prune_warning_text(fl: Forklift, busybox: str) -> None:
    out = fl("system", "prune", "-a", "--volumes", input="\n").out
    assert out.startswith(
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all networks not used by at least one container\n"
        "  - all anonymous volumes not used by at least one container\n"
        "  - all images without at least one container associated to them\n"
        "  - all build cache\n"), out
    fl("image", "inspect", "busybox")  # declined: still there
