"""diff against the oracle: the same commands in Docker and in forklift, on the same
busybox root filesystem, report the same changes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

SCRIPTS = [
    "touch /tmp/new",
    "echo more >> /etc/passwd",
    ": >> /etc/passwd",
    "ln /etc/group /hard",
    "chmod 700 /etc",
    "chown 1:1 /etc/group",
    "rm /etc/group",
    "mkdir -p /a/b/c && touch /a/b/c/f",
    "rm -rf /var && touch /var",
    "rm -rf /usr/share/doc",
    "rm -rf /srv && mkdir /srv && echo k > /srv/keep && touch /srv/new",
    "mkfifo /tmp/fifo && ln -s /nowhere /tmp/dangling",
]
BASE = "mkdir -p /usr/share/doc/pkg /srv/old && touch /usr/share/doc/pkg/README /srv/old/x /srv/keep"


@pytest.fixture(scope="module")
def docker_base(docker, busybox_tar):
    docker("import", "-c", "ENV PATH=/bin", str(busybox_tar), "fl-diff-busybox")
    docker("rm", "-f", "fl-diff-base", check=False)
    docker("run", "--network", "none", "--name", "fl-diff-base", "fl-diff-busybox", "sh", "-c", BASE)
    docker("commit", "fl-diff-base", "fl-diff-base:1")
    return docker


@pytest.mark.docker
def test_diff_reports_what_docker_reports(fl, busybox, docker_base):
    assert fl("run", "--name", "base", "busybox", "sh", "-c", BASE).code == 0
    assert fl("commit", "base", "fl-diff-base:1").code == 0
    for i, script in enumerate(SCRIPTS):
        name = f"fl-diff-{i}"
        docker_base("rm", "-f", name, check=False)
        docker_base("run", "--network", "none", "--name", name, "fl-diff-base:1", "sh", "-c", script)
        theirs = sorted(docker_base("diff", name).lines)
        docker_base("rm", "-f", name)
        assert fl("run", "--name", name, "fl-diff-base:1", "sh", "-c", script).code == 0
        ours = fl("diff", name).lines
        assert ours == sorted(ours, key=lambda line: line[2:]), "sorted by path"
        assert sorted(ours) == theirs, script
