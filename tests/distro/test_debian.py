"""A real distribution end to end: a debootstrap-made Debian imported (device nodes and all),
a package installed with apt-get inside a container on the default network, the change
seen by diff, committed, run, saved, and loaded into Docker."""

from __future__ import annotations

import glob
import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO, Forklift
from support.images import PATH_ENV
from support.store import temporary_store

# one worker imports the 120 MB image once
pytestmark = [pytest.mark.root, pytest.mark.xdist_group("debian")]


@pytest.fixture(scope="module")
def deb(debian_tar: Path) -> Iterator[Forklift]:
    with temporary_store(timeout=300) as store:
        store("image", "import", "-c", f"ENV {PATH_ENV}", "-c", 'CMD ["bash"]', str(debian_tar),
              "debian:bookworm")
        yield store


def _apt_settings() -> list[str]:
    """This machine's apt settings (its mirror may need them), bind-mounted read-only."""
    flags = []
    for path in sorted(glob.glob("/etc/apt/apt.conf.d/99*")):
        flags += ["-v", f"{path}:{path}:ro"]
    return flags


@pytest.fixture(scope="module")
def hello_image(deb: Forklift) -> str:
    """apt-get install hello, on the default bridge network, committed as hello:1."""
    script = ("apt-get update -qq && apt-get install -y -qq --no-install-recommends hello"
              " >/dev/null && hello")
    res = deb("run", "--name", "apt", *_apt_settings(), "debian:bookworm", "sh", "-c", script,
             timeout=600)
    assert res.lines[-1] == "Hello, world!"
    changes = deb("diff", "apt").lines
    for expected in ("C /usr", "C /usr/bin", "A /usr/bin/hello", "C /var/lib/dpkg/status"):
        assert expected in changes
    deb("commit", "-m", "hello installed", "apt", "hello:1")
    return "hello:1"


def test_import_keeps_device_nodes_and_save_keeps_the_tar_byte_exact(deb: Forklift,
                                                                     debian_tar: Path,
                                                                     tmp_path: Path) -> None:
    layers = json.loads(deb("image", "inspect", "debian:bookworm").out)[0]["RootFS"]["Layers"]
    digest = hashlib.sha256(debian_tar.read_bytes()).hexdigest()
    assert layers == [f"sha256:{digest}"]
    deb("save", "-o", str(tmp_path / "deb.tar"), "debian:bookworm")
    with tarfile.open(tmp_path / "deb.tar") as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tf.extractfile(manifest[0]["Layers"][0])
        assert layer is not None
        assert hashlib.sha256(layer.read()).hexdigest() == digest
    deb("create", "--name", "exp", "debian:bookworm")
    deb("export", "-o", str(tmp_path / "flat.tar"), "exp")
    with tarfile.open(tmp_path / "flat.tar") as tf:
        nodes = {m.name: m for m in tf.getmembers() if m.name.startswith("dev/")}
    # (dev/console is the init layer's mount point, an empty file, as in Docker's export)
    for name, numbers in (("null", (1, 3)), ("zero", (1, 5)), ("full", (1, 7)), ("tty", (5, 0))):
        node = nodes[f"dev/{name}"]
        assert node.ischr() and (node.devmajor, node.devminor) == numbers, name


def test_diff_follows_dockers_rules_on_debian(deb: Forklift) -> None:
    deb("run", "--name", "user", "debian:bookworm", "useradd", "-m", "packager")
    changes = deb("diff", "user").lines
    # useradd opens /etc/.pwd.lock for writing: copied up, not changed, not reported
    assert "C /etc/.pwd.lock" not in changes
    assert {"C /etc", "C /etc/passwd", "C /etc/shadow", "A /home/packager"} <= set(changes)
    deb("run", "--name", "doc", "debian:bookworm", "rm", "-rf", "/usr/share/doc")
    assert deb("diff", "doc").lines == ["C /usr", "C /usr/share", "D /usr/share/doc"]
    deb("run", "--name", "hard", "debian:bookworm", "ln", "/etc/group", "/hard")
    assert deb("diff", "hard").lines == ["A /hard"]


def test_installed_program_runs_from_the_committed_image(deb: Forklift, hello_image: str) -> None:
    assert deb("run", "--rm", "--network", "none", hello_image, "hello").out == "Hello, world!\n"
    history = deb("image", "history", "--format", "{{.Comment}}", hello_image).lines
    assert history[0] == "hello installed"


@pytest.mark.docker
def test_docker_loads_and_runs_the_image(deb: Forklift, hello_image: str, tmp_path: Path,
                                         docker) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "hello.tar"
    deb("save", "-o", str(archive), hello_image)
    docker("load", "-i", str(archive))
    ours = json.loads(deb("image", "inspect", hello_image).out)[0]
    theirs = json.loads(docker("image", "inspect", hello_image).out)[0]
    assert theirs["Id"] == ours["Id"]
    assert theirs["RootFS"]["Layers"] == ours["RootFS"]["Layers"]
    run = docker("run", "--rm", "--network", "none", hello_image, "hello")
    assert run.out == "Hello, world!\n"


def test_repo_script_makes_the_tarball(debian_tar: Path) -> None:
    """The cached tarball is what scripts/make-debian-rootfs.sh makes: a Debian root."""
    assert (REPO / "scripts" / "make-debian-rootfs.sh").exists()
    with tarfile.open(debian_tar) as tf:
        names = set(tf.getnames())
    assert {"./etc/debian_version", "./usr/bin/apt-get", "./dev/null"} <= names
