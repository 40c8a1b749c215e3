"""Root filesystem tarballs made without network (busybox, small data tarballs) or once per
machine (Debian), and images made from them in a store."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

from support.cli import Forklift

REPO = Path(__file__).resolve().parents[2]
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# made once per machine (~30 s of debootstrap), shared with scripts/fresh-machine-check.sh
DEBIAN_TAR = (Path(os.environ.get("FORKLIFT_FRESH_CACHE", "/var/cache/forklift"))
              / "debian-bookworm-minbase.tar")


def make_busybox_tar(out: Path) -> Path:
    """scripts/make-busybox-rootfs.sh: /bin/busybox (static), one symlink per applet,
    /etc/passwd and /etc/group, the usual directories; byte for byte reproducible."""
    subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-rootfs.sh"), str(out)],
                   check=True, capture_output=True, timeout=300)
    return out


def make_debian_tar() -> Path:
    """``debootstrap --variant=minbase bookworm`` as a tarball, cached in DEBIAN_TAR (the
    script makes concurrent callers wait for one build)."""
    subprocess.run(["bash", str(REPO / "scripts" / "make-debian-rootfs.sh"), str(DEBIAN_TAR)],
                   check=True, capture_output=True, timeout=900)
    return DEBIAN_TAR


def import_busybox(fl: Forklift, busybox_tar: Path, name: str = "busybox:latest") -> str:
    """busybox as Docker Hub's image is configured (PATH, ``CMD ["sh"]``); returns its ID."""
    return fl.out("image", "import", "-c", f"ENV {PATH_ENV}", "-c", 'CMD ["sh"]',
                  str(busybox_tar), name)


def derive(fl: Forklift, base: str, tag: str, script: str) -> str:
    """An image made by running ``sh -c script`` on ``base`` and committing; returns its ID."""
    name = "c" + hashlib.sha256(f"{tag}{time.time()}".encode()).hexdigest()[:10]
    fl("run", "--network", "none", "--name", name, base, "sh", "-c", script)
    image_id = fl.out("commit", name, tag)
    fl("rm", name)
    return image_id


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, *,
         kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    if data is None:
        tf.addfile(info)
        return
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def small_tar(path: Path, seed: int, files: int = 3, size: int = 2048) -> Path:
    """A tiny flat tarball whose content depends on ``seed`` (same seed, same layer)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "data", kind=tarfile.DIRTYPE, mode=0o755)
        for i in range(files):
            body = (f"{seed}-{i}-".encode() * (size // 8 + 1))[:size]
            _add(tf, f"data/f{i}", body)
    return path
