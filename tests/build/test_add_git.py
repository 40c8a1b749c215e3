"""ADD of a git repository, served by the dumb HTTP protocol (``git update-server-info``
and the test web server), checked against the Dockerfile reference: refs, subdirectories,
``--keep-git-dir``, ``--checksum``, modes and mtimes, the cache, and hostile repositories
and servers (one line each, nothing left in the store)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import one_line_error
from support.exported import build_to as build
from support.exported import tree
from support.store import assert_clean
from support.webserver import Server

from forklift.build import gitsource
from forklift.errors import InvalidArgument, LimitExceeded
from forklift.limits import Limits

pytestmark = pytest.mark.root

ONE_TIME, TWO_TIME = 1_000_000_000, 1_000_000_100   # the two commits' times


def git(cwd: Path, *args: str, when: int = ONE_TIME, data: bytes | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": f"@{when} +0000",
           "GIT_COMMITTER_DATE": f"@{when} +0000"}
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          env=env, input=data).stdout.decode().strip()


class Repos:
    """Working repositories published as bare ones on the web server, under /NAME.git/."""

    def __init__(self, top: Path, server: Server) -> None:
        self.top, self.server = top, server

    def url(self, name: str) -> str:
        return f"{self.server.base}/{name}.git"

    def publish(self, name: str) -> None:
        work, bare = self.top / name, self.top / f"{name}.git"
        if not bare.exists():
            git(self.top, "clone", "-q", "--bare", str(work), str(bare))
        git(work, "push", "-q", "--force", "--tags", str(bare), "main")
        git(bare, "update-server-info")
        prefix = f"/{name}.git/"
        for key in [k for k in self.server.routes if k.startswith(prefix)]:
            del self.server.routes[key]
        for path in bare.rglob("*"):
            if path.is_file():
                self.server.routes[prefix + str(path.relative_to(bare))] = (200, {}, path.read_bytes())


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Iterator[Repos]:
    top = tmp_path_factory.mktemp("repos")
    work = top / "main"
    (work / "docs").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    (work / "README").write_text("hello\n")
    (work / "docs" / "a.md").write_text("doc\n")
    (work / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(work / "run.sh", 0o775)
    os.symlink("../../../../etc/passwd", work / "out")   # a link leading out stays a link
    git(work, "add", "-A")
    git(work, "commit", "-qm", "one")
    git(work, "tag", "v1")
    git(work, "tag", "-a", "v1a", "-m", "annotated")
    (work / "README").write_text("two\n")
    git(work, "commit", "-qam", "two", when=TWO_TIME)
    server = Server()
    try:
        found = Repos(top, server)
        found.publish("main")
        yield found
    finally:
        server.close()



def test_refs_subdirectories_modes_and_the_git_dir(fl, ctx, repos, tmp_path):
    url = repos.url("main")
    one = git(repos.top / "main", "rev-parse", "v1")
    started = time.time()
    root = ctx(f"FROM scratch\nADD {url} /all/\nADD {url}#v1:docs /docs\n"
               f"ADD --keep-git-dir {url}#v1a /kept\n"
               f"ADD --checksum={one[:7]} {url}#{one[:10]} /bysha\n"
               f"ADD --chown=5:6 {url}#main:/docs/ /owned\n"
               f"ADD --exclude=docs --exclude=run.sh {url}#main:. /ex/\n")
    out = tmp_path / "out"
    build(fl, root, out)
    assert tree(out / "all") == ["README", "docs/", "docs/a.md", "out", "run.sh"]   # no .git
    assert (out / "all" / "README").read_text() == "two\n"
    modes = {name: os.lstat(out / "all" / name).st_mode & 0o7777 for name in ("README", "docs", "run.sh")}
    assert modes == {"README": 0o644, "docs": 0o755, "run.sh": 0o755}
    assert os.readlink(out / "all" / "out") == "../../../../etc/passwd"
    assert tree(out / "docs") == ["a.md"]
    assert (out / "bysha" / "README").read_text() == "hello\n"
    assert git(out / "kept", "rev-parse", "HEAD") == one
    assert git(out / "kept", "status", "--porcelain") == ""
    assert git(out / "kept", "remote", "get-url", "origin") == url
    st = os.stat(out / "owned" / "a.md")
    assert (st.st_uid, st.st_gid) == (5, 6)
    assert tree(out / "ex") == ["README", "out"]
    # mtimes: the checkout's time (BuildKit's default)
    assert os.stat(out / "all" / "README").st_mtime >= int(started)


def test_commit_time_with_source_date_epoch_and_the_cache(fl, ctx, repos, tmp_path):
    work = repos.top / "moving"   # its own repository: the others' tests see "main" unchanged
    git(repos.top, "clone", "-q", str(repos.top / "main"), str(work))
    repos.publish("moving")
    root = ctx(f"FROM scratch\nADD {repos.url('moving')} /src/\n")
    out = tmp_path / "out"
    build(fl, root, out, "--build-arg", "SOURCE_DATE_EPOCH=2000000000")
    assert os.stat(out / "src" / "README").st_mtime == TWO_TIME
    assert os.stat(out / "src" / "docs").st_mtime == TWO_TIME
    assert "#2 CACHED" in build(fl, root, tmp_path / "again", "--build-arg", "SOURCE_DATE_EPOCH=2000000000")
    # a new commit on the branch: the ref resolves to it, a miss
    (work / "new.txt").write_text("new\n")
    git(work, "add", "new.txt")
    git(work, "commit", "-qm", "three", when=TWO_TIME + 100)
    repos.publish("moving")
    progress = build(fl, root, tmp_path / "third", "--build-arg", "SOURCE_DATE_EPOCH=2000000000")
    assert "CACHED" not in progress and (tmp_path / "third" / "src" / "new.txt").read_text() == "new\n"
    assert os.stat(tmp_path / "third" / "src" / "README").st_mtime == TWO_TIME + 100


def dotdot_repository(repos: Repos) -> None:
    """A commit whose tree names an entry ``..`` (git refuses to make one; a hostile server
    sends it anyway)."""
    work = repos.top / "evil"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    blob = git(work, "hash-object", "-w", "--stdin", data=b"owned\n")
    tree = git(work, "hash-object", "-t", "tree", "--literally", "-w", "--stdin",
               data=b"100644 ..\0" + bytes.fromhex(blob))
    commit = git(work, "commit-tree", tree, "-m", "evil")
    git(work, "update-ref", "refs/heads/main", commit)
    repos.publish("evil")


def test_hostile_sources_are_one_line_and_leave_nothing(fl, ctx, repos, tmp_path):
    dotdot_repository(repos)
    url = repos.url("main")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)   # connections queue and never get an answer
    try:
        before = fl.out("images", "-aq")
        for text, message in (
            (f"ADD {url}#nosuch /x", "ref 'nosuch' not found"),
            (f"ADD --checksum=0000000 {url} /x", "checksum mismatch"),
            (f"ADD {url}#main:nope /x", f"ADD {url}#main:nope: "),
            (f"ADD {url}#main:README /x", "README is not a directory"),
            (f"ADD {url}#main:../.. /x", "outside the repository"),
            (f"ADD {repos.url('evil')} /x", f"ADD {repos.url('evil')}: "),
            ("ADD http://127.0.0.1:1/r.git /x", "ADD http://127.0.0.1:1/r.git: "),
            (f"ADD http://127.0.0.1:{silent.getsockname()[1]}/r.git /x", "ADD http://127.0.0.1:"),
            (f"ADD {url} a.txt /x/", "takes it as the only source"),
        ):
            started = time.monotonic()
            res = fl("build", str(ctx(f"FROM scratch\n{text}\n", **{"a.txt": "a"})), check=False,
                     env={"FORKLIFT_ADD_TIMEOUT": "1"})
            assert message in one_line_error(res), text
            assert time.monotonic() - started < 30, text
    finally:
        silent.close()
    assert fl.out("images", "-aq") == before
    assert not os.path.exists("/owned")
    assert_clean(fl.root)


@pytest.mark.parametrize(("text", "is_git"), [
    ("git@github.com:moby/buildkit.git#v0.14.1:docs", True), ("ssh://git@host/r.git", True),
    ("git://host/r", True), ("https://host/r.git", True), ("https://host/r.git/#main", True),
    ("https://host/r.git?x=1#v1", True), ("https://host/file.tar.gz", False),
    ("https://host/a.git/file", False), ("file:///srv/r.git", False), ("r.git", False),
])
def test_which_sources_are_repositories(text, is_git):
    assert gitsource.is_git(text) is is_git


def test_the_fragment_names_ref_and_subdirectory():
    assert gitsource.parse("git@h:r.git#v0.14.1:docs") == gitsource.GitRef("git@h:r.git", "v0.14.1", "docs")
    assert gitsource.parse("https://h/r.git#:/a/b/") == gitsource.GitRef("https://h/r.git", "", "a/b")
    assert gitsource.parse("https://h/r.git") == gitsource.GitRef("https://h/r.git", "", "")
    for bad in ("https://h/r.git#-uhack", "https://h/r.git#a..b", "https://h/r.git#main:../x"):
        with pytest.raises(InvalidArgument):
            gitsource.parse(bad)


def test_the_tree_is_bounded_by_the_layer_size_limit(repos, tmp_path):
    with pytest.raises(LimitExceeded):
        gitsource.fetch(repos.url("main"), str(tmp_path), checksum=None, keep_git_dir=False,
                        commit_mtime=True, limits=Limits(max_layer_size=4))
    got = gitsource.fetch(repos.url("main") + "#v1", str(tmp_path / "ok"), checksum=None,
                          keep_git_dir=False, commit_mtime=True, limits=Limits())
    assert got.commit == git(repos.top / "main", "rev-parse", "v1")
    assert os.stat(os.path.join(got.tree, "README")).st_mtime == ONE_TIME
