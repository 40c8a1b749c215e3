"""``system check [--repair] [--full]``, ``system df [-v]`` and the prune commands."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from reliability_support import (
    assert_clean,
    fl,
    needs_busybox,
    needs_root,
    needs_runc,
    small_tar,
    verify_images_usable,
)

pytestmark = [needs_root, needs_busybox, needs_runc]


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "forklift.db", isolation_level=None)


def _layer_of(root: Path, image: str) -> tuple[str, str, str]:
    image_id = fl(root, "image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
    with _db(root) as db:
        row = db.execute("SELECT l.diff_id, l.dir, l.blob FROM image_layers il JOIN layers l"
                         " ON l.diff_id=il.diff_id WHERE il.image_id=? ORDER BY position DESC",
                         (image_id,)).fetchone()
    return row


def test_check_clean_store(bb_store: Path) -> None:
    out = fl(bb_store, "system", "check", "--full").stdout
    assert out.strip().endswith("store is consistent"), out


def test_check_and_repair_damage(bb_store: Path, tmp_path: Path) -> None:
    root = bb_store
    fl(root, "import", str(small_tar(tmp_path / "a.tar", 1)), "corruptblob")
    fl(root, "import", str(small_tar(tmp_path / "b.tar", 2)), "nolayerdir")
    fl(root, "import", str(small_tar(tmp_path / "c.tar", 3)), "fine")
    fl(root, "create", "--network", "none", "--name", "victim", "nolayerdir", "true")
    # damage: a corrupt blob, a missing layer directory, a dangling tag, orphans, scratch
    _, _, blob = _layer_of(root, "corruptblob")
    with open(root / "blobs" / "sha256" / blob.split(":")[1], "r+b") as f:
        f.seek(600)
        f.write(b"X")
    _, layer_dir, _ = _layer_of(root, "nolayerdir")
    os.rename(root / "layers" / layer_dir, tmp_path / "stolen")
    with _db(root) as db:
        db.execute("INSERT INTO tags VALUES('docker.io/library/ghost:latest', 'sha256:" + "f" * 64 + "', 0)")
    (root / "layers" / "0123456789ab" / "diff").mkdir(parents=True)
    (root / "blobs" / "sha256" / ("e" * 64)).write_bytes(b"orphan")
    (root / "containers" / ("d" * 64)).mkdir()

    proc = fl(root, "system", "check", "--grace", "0", check=False)
    assert proc.returncode == 1
    text = proc.stdout
    for needle in ("content does not match its digest", f"layers/{layer_dir}/diff is missing",
                   "ghost:latest: points at missing image", "layers/0123456789ab",
                   "containers/dddddddddddd", "e" * 64):
        assert needle in text, (needle, text)
    assert all(": " in ln for ln in text.splitlines())  # one line per problem

    proc = fl(root, "system", "check", "--repair", "--grace", "0", check=False)
    assert proc.returncode == 0, proc.stdout
    out = proc.stdout
    assert "repaired: removed image" in out and "repaired: removed tag docker.io/library/ghost:latest" in out
    assert "repaired: removed container" in out  # its image had a missing layer
    assert_clean(root, full=True)
    names = fl(root, "images", "--format", "{{.Repository}}").stdout.split()
    assert sorted(names) == ["busybox", "fine"]
    verify_images_usable(root)
    # the store still works, and a re-import restores the removed images
    fl(root, "import", str(small_tar(tmp_path / "a.tar", 1)), "corruptblob")
    assert_clean(root, full=True)


def test_next_command_sweeps_crash_leftovers(bb_store: Path) -> None:
    """A dead process's scratch entry makes the next command sweep scratch and orphan files."""
    root = bb_store
    (root / "tmp" / "4194303-layer-x" / "diff").mkdir(parents=True)
    (root / "layers" / "0123456789ab" / "diff").mkdir(parents=True)
    (root / "blobs" / "sha256" / ("e" * 64)).write_bytes(b"orphan")
    fl(root, "images")
    assert not (root / "tmp" / "4194303-layer-x").exists()
    assert not (root / "layers" / "0123456789ab").exists()
    assert not (root / "blobs" / "sha256" / ("e" * 64)).exists()
    assert_clean(root)


def test_full_check_finds_altered_layer_content(bb_store: Path) -> None:
    root = bb_store
    _, layer_dir, _ = _layer_of(root, "busybox")
    (root / "layers" / layer_dir / "diff" / "etc" / "passwd").write_text("root::0:0::/:/bin/sh\n")
    assert fl(root, "system", "check").returncode == 0  # the quick check trusts directories
    proc = fl(root, "system", "check", "--full", check=False)
    assert proc.returncode == 1 and "etc/passwd" in proc.stdout, proc.stdout
    fl(root, "system", "check", "--full", "--repair", "--grace", "0")
    assert fl(root, "images", "-q").stdout.strip() == ""


def test_df_and_prunes(bb_store: Path, tmp_path: Path) -> None:
    root = bb_store
    fl(root, "import", str(small_tar(tmp_path / "a.tar", 1, size=100_000)), "extra")
    fl(root, "run", "--network", "none", "--name", "used", "busybox", "sh", "-c",
       "echo 0123456789 > /ten")
    fl(root, "commit", "used", "child")
    fl(root, "tag", "child", "child:2")
    fl(root, "rmi", "child:latest")
    fl(root, "import", str(small_tar(tmp_path / "d.tar", 4)))  # dangling
    out = fl(root, "system", "df").stdout.splitlines()
    assert out[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {ln[:15].strip(): ln[15:].split() for ln in out[1:]}
    assert rows["Images"][:2] == ["4", "1"], out
    assert rows["Containers"][:3] == ["1", "0", "11B"], out
    assert rows["Containers"][3:] == ["11B", "(100%)"], out
    assert rows["Local Volumes"] == ["0", "0", "0B", "0B"], out
    assert rows["Build Cache"] == ["0", "0", "0B", "0B"], out
    verbose = fl(root, "system", "df", "-v").stdout
    for heading in ("Images space usage:", "Containers space usage:", "Local Volumes space usage:",
                    "Build cache usage: 0B"):
        assert heading in verbose
    assert "SHARED SIZE" in verbose and "UNIQUE SIZE" in verbose

    # prompts (declined: nothing happens)
    proc = fl(root, "image", "prune", input="n\n")
    assert proc.stdout.startswith("WARNING! This will remove all dangling images.\n"
                                  "Are you sure you want to continue? [y/N] ")
    assert len(fl(root, "images", "-a", "-q").stdout.split()) == 4
    # dangling only
    out = fl(root, "image", "prune", "-f").stdout
    assert out.startswith("Deleted Images:\ndeleted: sha256:") and "Total reclaimed space: " in out
    assert len(fl(root, "images", "-a", "-q").stdout.split()) == 3
    # containers
    out = fl(root, "container", "prune", input="y\n").stdout
    assert "WARNING! This will remove all stopped containers." in out
    assert "Deleted Containers:\n" in out and out.strip().endswith("Total reclaimed space: 11B")
    # everything unused
    out = fl(root, "system", "prune", "-a", "-f").stdout
    assert "Deleted Images:" in out and "untagged: busybox:latest" in out and "untagged: child:2" in out
    assert fl(root, "images", "-a", "-q").stdout.strip() == ""
    assert out.strip().splitlines()[-1].startswith("Total reclaimed space: ")
    assert_clean(root)
    os.listdir(root / "layers") == []  # noqa: B015


def test_system_prune_warning_text(bb_store: Path) -> None:
    out = fl(bb_store, "system", "prune", "-a", "--volumes", input="\n").stdout
    assert out.startswith(
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all networks not used by at least one container\n"
        "  - all anonymous volumes not used by at least one container\n"
        "  - all images without at least one container associated to them\n"
        "  - all build cache\n"), out
    fl(bb_store, "image", "inspect", "busybox")  # declined: still there
