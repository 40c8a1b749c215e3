"""ADD of a git repository (BuildKit's): ``ADD https://host/repo.git#ref:subdir /dst``,
``ADD git@host:repo.git /dst``, ``--keep-git-dir``, ``--checksum=<commit prefix>``.

The repository is hostile. git runs with no system or user configuration, no hooks, no
credential prompts (``GIT_TERMINAL_PROMPT=0``, ssh in batch mode), only the http, https,
ssh and git protocols (never ``file``, which would read the host's repositories), no
submodules, and every fetched object checked (``fsckObjects``, with ``.``, ``..`` and
``.git`` names as errors). The tree comes out of ``git archive`` into forklift's confined
tar extraction, bounded by the store's layer size limit. A stalled transfer ends after
``FORKLIFT_ADD_TIMEOUT`` seconds (as ADD of a URL), every git command after ten times that.

Files are 0644 (0755 when executable), directories 0755, as BuildKit writes them; mtimes
are the checkout time, or the commit's time when the build has ``SOURCE_DATE_EPOCH``
(BuildKit's ``git.mtime=commit`` policy, which the epoch turns on).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.parse
from dataclasses import dataclass

from forklift import programs
from forklift.build import remote
from forklift.build.context import go_clean
from forklift.errors import ForkliftError, InvalidArgument
from forklift.limits import Limits

_SCHEMES = ("git@", "ssh://", "git://")
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "core.askPass=",
           "credential.helper=", "submodule.recurse=false", "protocol.allow=never",
           "protocol.http.allow=always", "protocol.https.allow=always",
           "protocol.ssh.allow=always", "protocol.git.allow=always",
           "transfer.fsckObjects=true", "fetch.fsck.hasDot=error", "fetch.fsck.hasDotdot=error",
           "fetch.fsck.hasDotgit=error", "fetch.fsck.fullPathname=error",
           "fetch.fsck.emptyName=error", "tar.umask=022", "http.lowSpeedLimit=1")


_ATTRIBUTES = "* -export-ignore -export-subst -text -eol -ident -filter -working-tree-encoding\n"


@dataclass(frozen=True)
class GitRef:
    url: str          # what git fetches (the fragment removed)
    ref: str          # branch, tag, commit (prefix) or "" for the default branch
    subdir: str       # "" for the whole tree


@dataclass(frozen=True)
class Fetched:
    commit: str       # the full hash the ref resolved to
    tree: str         # the files, on the host


def is_git(text: str) -> bool:
    """A git source as BuildKit's Dockerfile frontend tells it: ``git@``, ``ssh://``,
    ``git://``, or http(s) whose path ends in ``.git``."""
    if text.startswith(_SCHEMES):
        return True
    if remote.is_url(text):
        return urllib.parse.urlsplit(text.partition("#")[0]).path.rstrip("/").endswith(".git")
    return False


def parse(text: str) -> GitRef:
    url, _, fragment = text.partition("#")
    ref, _, subdir = fragment.partition(":")
    if ref.startswith("-") or any(c in ref for c in " \t\n\\~^?*[") or ".." in ref:
        raise InvalidArgument(f"invalid git ref {ref!r} in {text}")
    clean = go_clean(subdir.lstrip("/")) if subdir.strip("/") else "."
    if clean == ".." or clean.startswith("../"):
        raise InvalidArgument(f"invalid git subdirectory {subdir!r} in {text}: outside the repository")
    return GitRef(url, ref, "" if clean == "." else clean)


def fetch(text: str, scratch: str, *, checksum: str | None, keep_git_dir: bool,
          commit_mtime: bool, limits: Limits) -> Fetched:
    """Fetch the source ``text`` into ``scratch`` (a new directory of the store's scratch
    space, removed by the caller). Raises DownloadError or InvalidArgument (one line)."""
    src = parse(text)
    if checksum is not None and not _HEX.match(checksum.lower()):
        raise InvalidArgument(f"invalid ADD --checksum {checksum!r} for a git source: a commit"
                              " hash or a prefix of one")
    git = _Git(text)
    commit = _resolve(git, src)
    if commit is not None:
        _check(text, checksum, commit)   # before fetching anything
    repo = os.path.join(scratch, "repo.git")
    git.run("init", "-q", "--bare", "--", repo)
    with open(os.path.join(repo, "info", "attributes"), "w") as f:
        f.write(_ATTRIBUTES)   # over the repository's .gitattributes: the bytes as committed
    commit = _fetch(git, repo, src, commit)
    _check(text, checksum, commit)
    tree = _extract(git, repo, commit, src.subdir, os.path.join(scratch, "tree"), limits)
    if keep_git_dir and not src.subdir:
        _git_dir(git, repo, commit, src.url, tree)
    if not commit_mtime:
        _touch_all(tree, time.time_ns())
    return Fetched(commit, tree)


def _check(text: str, checksum: str | None, commit: str) -> None:
    if checksum is not None and not commit.startswith(checksum.lower()):
        raise remote.DownloadError(f"ADD {text}: checksum mismatch: expected {checksum}, got commit {commit}")


class _Git:
    """git with the hardened configuration and environment, each run bounded in time."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.exe = programs.find("git")
        self.stall = remote.timeout()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GIT_") and k not in ("SSH_ASKPASS", "DISPLAY")}
        env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
                   GIT_SSH_COMMAND="ssh -o BatchMode=yes", LC_ALL="C")
        self.env = env

    def run(self, *args: str, stdout: int | None = subprocess.PIPE, extra: tuple[str, ...] = ()) -> str:
        argv = [self.exe, "--literal-pathspecs"]
        for item in (*_CONFIG, f"http.lowSpeedTime={max(1, round(self.stall))}", *extra):
            argv += ["-c", item]
        proc = subprocess.Popen(argv + list(args), stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.PIPE, env=self.env, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=self.stall * 10)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise remote.DownloadError(f"ADD {self.source}: no answer from the repository"
                                       f" within {self.stall * 10:g}s") from None
        except BaseException:   # Ctrl-C, SIGTERM: git is in its own session, it would stay
            _kill(proc)
            raise
        if proc.returncode != 0:
            raise remote.DownloadError(f"ADD {self.source}: {_last_line(err)}")
        return out.decode("utf-8", "replace") if out is not None else ""


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """git and its helpers (git-remote-http, ssh), which share its process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _last_line(err: bytes) -> str:
    lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    text = lines[-1] if lines else "git failed"
    return text.removeprefix("fatal: ").removeprefix("error: ")


def _resolve(git: _Git, src: GitRef) -> str | None:
    """The commit the ref names on the remote (None: a commit prefix, known after fetching)."""
    refs: dict[str, str] = {}
    for line in git.run("ls-remote", "--", src.url).splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    if not src.ref:
        head = refs.get("HEAD") or refs.get("refs/heads/main") or refs.get("refs/heads/master")
        if head is None:
            raise remote.DownloadError(f"ADD {git.source}: the repository has no default branch")
        return head
    for name in (src.ref, f"refs/tags/{src.ref}^{{}}", f"refs/tags/{src.ref}", f"refs/heads/{src.ref}"):
        if name in refs:
            return refs[name]
    if _HEX.match(src.ref):
        return None
    raise remote.DownloadError(f"ADD {git.source}: ref {src.ref!r} not found in the repository")


def _fetch(git: _Git, repo: str, src: GitRef, commit: str | None) -> str:
    """Shallow when the server allows it (the dumb HTTP protocol does not), else whole."""
    want = commit or src.ref
    try:
        git.run("--git-dir", repo, "fetch", "-q", "--no-tags", "--depth=1", "--", src.url, want)
    except remote.DownloadError:
        git.run("--git-dir", repo, "fetch", "-q", "--", src.url,
                "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
    try:
        return git.run("--git-dir", repo, "rev-parse", "--verify", "-q", f"{want}^{{commit}}").strip()
    except remote.DownloadError:
        raise remote.DownloadError(f"ADD {git.source}: commit {want} not found in the repository") from None


def _extract(git: _Git, repo: str, commit: str, subdir: str, into: str, limits: Limits) -> str:
    """``git archive`` of the commit (its time as every mtime) into forklift's confined
    extraction; the subdirectory's path returned."""
    from forklift import archive

    os.mkdir(into, 0o755)
    argv = [git.exe, "--literal-pathspecs", "-c", "tar.umask=022", "-c", "core.hooksPath=/dev/null",
            "--git-dir", repo, "archive", "--format=tar", commit]
    if subdir:
        argv += ["--", subdir]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=git.env, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        archive.extract(proc.stdout, into, whiteouts=False, max_size=limits.max_layer_size)
        proc.stdout.read()
    except ForkliftError:
        # a stream cut short: git's own reason, when it failed, says more
        proc.stdout.close()
        err = proc.stderr.read()
        if proc.wait() != 0 and err.strip():
            raise remote.DownloadError(f"ADD {git.source}: {_last_line(err)}") from None
        raise
    except BaseException:
        _kill(proc)
        raise
    proc.stdout.close()
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise remote.DownloadError(f"ADD {git.source}: {_last_line(err)}")
    tree = os.path.join(into, subdir) if subdir else into
    if os.path.islink(tree) or not os.path.isdir(tree):
        raise remote.DownloadError(f"ADD {git.source}: {subdir} is not a directory of the repository")
    return tree


def _git_dir(git: _Git, repo: str, commit: str, url: str, tree: str) -> None:
    """--keep-git-dir: a ``.git`` holding the commit (shallow, HEAD detached on it, the
    index matching the files) and ``origin`` naming the source."""
    gitdir = os.path.join(tree, ".git")
    git.run("init", "-q", "--", tree)
    git.run("--git-dir", gitdir, "fetch", "-q", "--no-tags", "--depth=1", "--", "file://" + repo, commit,
            extra=("protocol.file.allow=always",))
    git.run("--git-dir", gitdir, "update-ref", "--no-deref", "HEAD", commit)
    git.run("--git-dir", gitdir, "--work-tree", tree, "read-tree", commit)
    git.run("--git-dir", gitdir, "remote", "add", "origin", url)


def _touch_all(tree: str, now_ns: int) -> None:
    """BuildKit's default: the checkout's time on every entry."""
    for top, dirs, files in os.walk(tree):
        for name in dirs + files:
            os.utime(os.path.join(top, name), ns=(now_ns, now_ns), follow_symlinks=False)
    os.utime(tree, ns=(now_ns, now_ns), follow_symlinks=False)
