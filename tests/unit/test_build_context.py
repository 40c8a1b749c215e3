"""The build context: .dockerignore as Docker matches it, COPY sources, checksums, tar contexts.

The .dockerignore answers are Docker's: the cases of moby's own matcher tests
(pkg/fileutils, later moby/patternmatcher) and of the CLI's reading of the file, written
here as a table; the buildah contexts are read in place from the shared peer tests.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest
from support.peers import peer_path

from forklift.build import context as ctxmod
from forklift.build.context import Context, ContextError, Ignore, open_context
from forklift.errors import BadArchive, ForkliftError, InvalidArgument

# --------------------------------------------------------------------------- the matcher

# (patterns, path, excluded?) — Docker's PatternMatcher.Matches on a path as given
MATCHES = [
    (["**"], "file", True),
    (["**"], "file/", True),
    (["**/"], "file", True),
    (["**/"], "file/", True),
    (["**"], "/", True),
    (["**/"], "/", True),
    (["**"], "dir/file", True),
    (["**/"], "dir/file", True),
    (["**/**"], "dir/file/", True),
    (["dir/**"], "dir/file", True),
    (["dir/**"], "dir/dir2/file/", True),
    (["**/dir2/*"], "dir/dir2/file", True),
    (["**/dir2/**"], "dir/dir2/dir3/file", True),
    (["**file"], "file", True),
    (["**file"], "dir/dir/file", True),
    (["**/file"], "dir/file", True),
    (["**/file*"], "dir/dir/file.txt", True),
    (["**/file*txt"], "dir/dir/file.txt", True),
    (["**/file*.txt*"], "dir/dir/file.txt", True),
    (["**/**/*.txt"], "dir/dir/file.txt", True),
    (["**/**/*.txt2"], "dir/dir/file.txt", False),
    (["**/*.txt"], "file.txt", True),
    (["**/**/*.txt"], "file.txt", True),
    (["a**/*.txt"], "a/file.txt", True),
    (["a**/*.txt"], "a/dir/dir/file.txt", True),
    (["a/*.txt"], "a/dir/file.txt", False),
    (["a/*.txt"], "a/file.txt", True),
    (["a/*.txt**"], "a/file.txt", True),
    (["a[b-d]e"], "ae", False),
    (["a[b-d]e"], "ace", True),
    (["a[b-d]e"], "aae", False),
    (["a[^b-d]e"], "aze", True),
    ([".*"], ".foo", True),
    ([".*"], "foo", False),
    (["abc.def"], "abcdef", False),
    (["abc.def"], "abc.def", True),
    (["abc.def"], "abcZdef", False),
    (["abc?def"], "abcZdef", True),
    (["abc?def"], "abcdef", False),
    (["a\\\\"], "a\\", True),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "ab", False),
    (["**/foo/bar"], "foo/bar", True),
    (["**/foo/bar"], "dir/foo/bar", True),
    (["**/foo/bar"], "dir/dir2/foo/bar", True),
    (["abc/**"], "abc", False),
    (["abc/**"], "abc/def", True),
    (["abc/**"], "abc/def/ghi", True),
    (["**/.foo"], ".foo", True),
    (["**/.foo"], "bar.foo", False),
    (["a(b)c/def"], "a(b)c/def", True),
    (["a(b)c/def"], "a(b)c/xyz", False),
    (["a.|)$(}+{bc"], "a.|)$(}+{bc", True),
    (["a+b"], "aab", False),
    (["dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    # Go filepath.Match cases moby runs through its matcher
    (["*"], "abc", True),
    (["*c"], "abc", True),
    (["a*"], "a", True),
    (["a*"], "ab/c", True),        # "a*" matches the leading directory "ab"
    (["a*/b"], "abc/b", True),
    (["a*/b"], "a/c/b", False),
    (["a*b*c*d*e*/f"], "axbxcxdxe/f", True),
    (["a*b*c*d*e*/f"], "axbxcxdxexxx/f", True),
    (["a*b*c*d*e*/f"], "axbxcxdxe/xxx/f", False),
    (["a*b*c*d*e*/f"], "axbxcxdxexxx/fff", False),
    (["a*b?c*x"], "abxbbxdbxebxczzx", True),
    (["a*b?c*x"], "abxbbxdbxebxczzy", False),
    (["ab[^c]"], "abc", False),
    (["ab[^e-g]"], "abc", True),
    (["a?b"], "a☺b", True),
    (["a[^a]b"], "a☺b", True),
    (["a???b"], "a☺b", False),
    (["[a-ζ]*"], "α", True),
    (["*[a-ζ]"], "A", False),
    (["a?b"], "a/b", False),
    (["a*b"], "a/b", False),
    (["[\\]a]"], "]", True),
    (["[\\-]"], "-", True),
    (["[x\\-]"], "x", True),
    (["[x\\-]"], "z", False),
    (["[\\-x]"], "-", True),
    (["*x"], "xxx", True),
    # several patterns: the last match wins, "!" brings a path back
    (["*"], "fileutils.go", True),
    (["*.go"], "fileutils.go", True),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["docs"], "docs/a/b/c", True),
    (["**/dir"], "dir/file", True),
    (["**/dir"], "a/b/dir/file", True),
    (["a/*/c"], "a/b/c/d/e", True),
    (["*.go"], ".", False),
    ([], "any/path/there", False),
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
]


@pytest.mark.parametrize(("patterns", "path", "want"), MATCHES,
                         ids=[f"{'|'.join(p)}~{f}" for p, f, _ in MATCHES])
def test_matches_as_docker(patterns, path, want):
    assert Ignore(patterns).matches(path) is want


# (.dockerignore text, path, excluded?) — the CLI's reading of the file, then the walk
READING = [
    ("# comment\nfoo\n", "foo", True),
    ("# foo\n", "# foo", False),            # a comment, whatever it says
    ("  # foo\n", "# foo", True),           # "#" only starts a comment at column 0
    ("  foo  \n", "foo", True),             # whitespace trimmed
    ("\ufefffoo\n", "foo", True),           # the byte-order mark of the first line
    ("foo\r\nbar\r\n", "bar", True),        # CRLF lines
    ("/foo\n", "foo", True),                # a leading "/" is dropped
    ("./foo/../bar\n", "bar", True),        # filepath.Clean
    ("foo/\n", "foo/x", True),              # "foo/" is "foo"
    ("\n\n   \nfoo\n", "foo", True),        # blank lines
    ("*.md\n! README.md\n", "README.md", False),   # "! x" is "!x"
    ("*\n!/keep\n", "keep", False),         # "!/keep" is "!keep"
    ("foo\n", "bar/foo", False),            # patterns are anchored at the root
    ("**/foo\n", "bar/foo", True),
    ("**/foo\n", "bar/baz/foo/inside", True),   # the directory bar/baz/foo is skipped whole
    # a directory matched deep down excludes what is under it, even when an exception
    # makes the walk go in (Docker 23+/BuildKit; 20.10 sent x/y/foo/other)
    ("**/foo\n!x/y/foo/keep\n", "x/y/foo/other", True),
    ("**/foo\n!x/y/foo/keep\n", "x/y/foo/keep", False),
    ("**/foo\n!x/y/foo/keep\n", "foo/other", True),
    ("*\n!*/sub1*\n", "subdir/sub1.txt", True),  # "*/sub1*" does not start with "subdir/"
    ("*\n!subdir/sub1*\n", "subdir/sub1.txt", False),  # ... this one reaches into it
    ("*\n!subdir/sub1*\n", "subdir/sub2.txt", True),
    ("docs\n!docs/keep/x\n", "docs/keep/x", False),
    ("docs\n!docs/keep/x\n", "docs/other", True),
    ("docs\n!docs/keep/x\n", "docs/keep", True),   # the directory entry itself is not sent
    ("Dockerfile\n.dockerignore\n", "Dockerfile", True),   # read anyway, never COPYable
    ("*\n", ".", False),                    # the root is always there
]


@pytest.mark.parametrize(("text", "path", "want"), READING,
                         ids=[f"{t!r}~{p}" for t, p, _ in READING])
def test_dockerignore_reading_and_walk(text, path, want):
    assert Ignore(text.split("\n")).excluded(path) is want


@pytest.mark.parametrize("bad", ["[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]",
                                 "\\", "a\\", "[a-b-c]", "[x"])
def test_bad_pattern_is_one_line_error(bad):
    with pytest.raises(ContextError) as err:
        Ignore(["ok", bad])
    assert "syntax error in pattern" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, InvalidArgument)


def test_lone_exclamation_is_refused():
    with pytest.raises(ContextError, match='illegal exclusion pattern: "!"'):
        Ignore(["foo", "!"])


# --------------------------------------------------------------------------- buildah cases

def _bud_dir() -> Path | None:
    return peer_path("buildah-bud/tests/bud")


def _sent(root: Path, dockerfile: str) -> list[str]:
    ctx = Context(root, Ignore.for_dockerfile(root, root / dockerfile))
    return [rel for rel, _, st in ctx.entries() if not stat.S_ISDIR(st.st_mode)]


# What each case's ignore file leaves, worked out from its patterns (the files sent).
BUILDAH = {
    # "*", "test*", "!test2*", "subdir", "!*/sub1*": subdir is skipped whole
    ("dockerignore", "Dockerfile"): ["test2.txt"],
    # "unmatched": everything is sent
    ("dockerignore2", "Dockerfile"): [".dockerignore", "Dockerfile", "subdir/sub1.txt",
                                      "subdir/subsubdir/subsub1.txt"],
    # "*", "!test*", "!src", "**/*.in", "src/etc", "*.md", "!README*.md",
    # "README-secret.md", "test1.txt"
    ("dockerignore3", "Dockerfile"): ["README.md", "src/Makefile", "src/cmd/Makefile",
                                      "src/lib/Makefile", "test2.txt", "test3.txt"],
    # the same rules in Dockerfile.test.dockerignore, used for Dockerfile.test
    ("dockerignore4", "Dockerfile.test"): ["README.md", "src/Makefile", "src/cmd/Makefile",
                                           "src/lib/Makefile", "test2.txt", "test3.txt"],
    # dockerignore's rules in Dockerfile.dockerignore and Dockerfile.succeed.dockerignore
    ("dockerignore6", "Dockerfile"): ["test2.txt"],
    ("dockerignore6", "Dockerfile.succeed"): ["test2.txt"],
}


@pytest.mark.parametrize(("case", "dockerfile"), sorted(BUILDAH))
def test_buildah_dockerignore_contexts(case, dockerfile):
    bud = _bud_dir()
    if bud is None or not (bud / case).is_dir():
        pytest.skip("the buildah peer tests (shared/peer-tests/buildah-bud) are not here")
    assert _sent(bud / case, dockerfile) == BUILDAH[case, dockerfile]


def test_buildah_dockerignore_copy_of_skipped_dir_is_not_found():
    bud = _bud_dir()
    if bud is None or not (bud / "dockerignore").is_dir():
        pytest.skip("the buildah peer tests (shared/peer-tests/buildah-bud) are not here")
    root = bud / "dockerignore"
    ctx = Context(root, Ignore.for_dockerfile(root, root / "Dockerfile"))
    with pytest.raises(ContextError, match="stat subdir: file does not exist"):
        ctx.sources(["subdir"])
    assert ctx.sources(["./"]) == [root.resolve()]
    # dockerignore3's Dockerfile copies src (sent in part) and test1.txt (excluded)
    root = bud / "dockerignore3"
    ctx = Context(root, Ignore.for_dockerfile(root, root / "Dockerfile"))
    assert ctx.sources(["src"]) == [root.resolve() / "src"]
    assert [rel for rel, _, _ in ctx.entries("src")] == [
        "src/Makefile", "src/cmd", "src/cmd/Makefile", "src/lib", "src/lib/Makefile"]
    with pytest.raises(ContextError, match="stat test1.txt: file does not exist"):
        ctx.sources(["test1.txt"])


# --------------------------------------------------------------------------- sources

def _write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    _write(root, {"a.txt": "a", "b.txt": "b", "c.log": "c", "ab.txt": "ab", "sub/x.txt": "x",
                  "sub/y.log": "y", "sub/deep/z.txt": "z", "docs/README.md": "r",
                  "docs/other.md": "o", "[x].txt": "bracket"})
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret")
    return root


def _ctx(root: Path, ignore: str = "") -> Context:
    return Context(root, Ignore(ignore.split("\n")))


def _rels(ctx: Context, paths: list[Path]) -> list[str]:
    return [os.path.relpath(p, ctx.root) for p in paths]


def test_sources_globs_in_docker_order(tree):
    ctx = _ctx(tree)
    assert _rels(ctx, ctx.sources(["*.txt"])) == ["[x].txt", "a.txt", "ab.txt", "b.txt"]
    assert _rels(ctx, ctx.sources(["?.txt"])) == ["a.txt", "b.txt"]
    assert _rels(ctx, ctx.sources(["[ab].txt"])) == ["a.txt", "b.txt"]
    assert _rels(ctx, ctx.sources(["*/*.txt"])) == ["sub/x.txt"]
    assert _rels(ctx, ctx.sources(["s*"])) == ["sub"]
    assert _rels(ctx, ctx.sources(["[[]x].txt", "\\[x\\]*"])) == ["[x].txt", "[x].txt"]
    with pytest.raises(ContextError):   # no wildcard: a literal name, escapes and all
        ctx.sources(["\\[x\\].txt"])
    # a wildcard matching nothing is left out; only when nothing matched at all is it refused
    assert _rels(ctx, ctx.sources(["*foo", "a.txt"])) == ["a.txt"]
    with pytest.raises(ContextError, match="^no source files were specified$"):
        ctx.sources(["*foo", "nothing?"])
    # patterns keep their order, each glob's matches in walk order
    assert _rels(ctx, ctx.sources(["sub", "b.txt", "a*"])) == ["sub", "b.txt", "a.txt", "ab.txt"]


def test_sources_are_cleaned_and_confined(tree):
    ctx = _ctx(tree)
    assert _rels(ctx, ctx.sources(["/a.txt", "./b.txt", "sub/../c.log", "//sub/x.txt"])) == [
        "a.txt", "b.txt", "c.log", "sub/x.txt"]
    assert ctx.sources(["."]) == [tree.resolve()]
    assert ctx.sources(["/"]) == [tree.resolve()]
    for bad in ["../outside/secret", "/../outside/secret", "sub/../../outside", "..",
                "../*", "sub/../../*"]:
        with pytest.raises(ContextError) as err:
            ctx.sources([bad])
        assert str(err.value) == f"forbidden path outside the build context: {bad}"


def test_sources_refuse_symlinks_out_of_the_context(tree):
    os.symlink("../outside", tree / "out")
    os.symlink(str(tree.parent / "outside" / "secret"), tree / "abs")
    os.symlink("/etc", tree / "etc")
    os.symlink("sub", tree / "insub")
    os.symlink("../a.txt", tree / "sub" / "up")
    ctx = _ctx(tree)
    for name in ["out", "out/secret", "abs", "etc", "etc/passwd", "o*", "e?c"]:
        with pytest.raises(ContextError, match="forbidden path outside the build context"):
            ctx.sources([name])
    # links that stay inside are followed, as COPY follows them
    assert _rels(ctx, ctx.sources(["insub/x.txt", "insub", "sub/up"])) == [
        "insub/x.txt", "insub", "sub/up"]


def test_excluded_files_are_invisible(tree):
    ctx = _ctx(tree, "**/*.log\nsub/deep\ndocs\n!docs/README.md\n")
    for name in ["c.log", "*.log", "sub/y.log", "sub/*.log", "sub/deep", "sub/deep/z.txt",
                 "docs/other.md"]:
        with pytest.raises(ContextError) as err:
            ctx.sources([name])
        assert str(err.value) == ("no source files were specified" if "*" in name else
                                  "file not found in build context or excluded by"
                                  f" .dockerignore: stat {name}: file does not exist")
    # docs itself is excluded, but what "!" brings back keeps it there
    assert _rels(ctx, ctx.sources(["docs", "d*", "docs/README.md"])) == [
        "docs", "docs", "docs/README.md"]
    assert [rel for rel, _, _ in ctx.entries("sub")] == ["sub/x.txt"]
    # a link to an excluded file leads nowhere
    os.symlink("c.log", tree / "to-log")
    with pytest.raises(ContextError, match="stat to-log: file does not exist"):
        ctx.sources(["to-log"])


def test_missing_source_names_it(tree):
    ctx = _ctx(tree)
    with pytest.raises(ContextError) as err:
        ctx.sources(["a.txt", "nope/file"])
    assert str(err.value) == ("file not found in build context or excluded by .dockerignore:"
                              " stat nope/file: file does not exist")
    with pytest.raises(ContextError, match="^no source files were specified$"):   # Docker's
        ctx.sources(["*.none"])
    with pytest.raises(ContextError, match="stat a.txt/x: file does not exist"):
        ctx.sources(["a.txt/x"])
    with pytest.raises(ContextError, match="syntax error in pattern"):
        ctx.sources(["a[.txt"])
    os.symlink("loop2", tree / "loop1")
    os.symlink("loop1", tree / "loop2")
    with pytest.raises(ContextError) as err:
        ctx.sources(["loop1"])
    assert str(err.value) == "stat loop1: too many levels of symbolic links"


# --------------------------------------------------------------------------- checksums

def _aged(root: Path, files: dict[str, str]) -> None:
    """Files whose last change is older than the window in which digests are not kept."""
    _write(root, files)
    time.sleep(ctxmod.RACY_WINDOW_NS / 1e9 + 0.05)


def _sum(ctx: Context, *rels: str, mode: bool = False, owner: bool = False) -> str:
    return ctx.checksum([ctx.root / r for r in rels], with_mode=mode, with_owner=owner)


def test_checksum_follows_content_not_times(tmp_path):
    root = tmp_path / "ctx"
    _aged(root, {"f": "hello", "d/g": "world"})
    cache = tmp_path / "cache"
    first = _sum(Context(root, Ignore([]), cache_dir=cache), ".")
    # touch: a new mtime, same content
    os.utime(root / "f", ns=(1, 1))
    assert _sum(Context(root, Ignore([]), cache_dir=cache), ".") == first
    # same size, same mtime, new content: the remembered digest must not be used
    st = os.stat(root / "f")
    (root / "f").write_text("jello")
    os.utime(root / "f", ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(root / "f")
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    changed = _sum(Context(root, Ignore([]), cache_dir=cache), ".")
    assert changed != first
    fresh = tmp_path / "fresh"
    _write(fresh, {"f": "jello", "d/g": "world"})
    assert _sum(Context(fresh, Ignore([])), ".") == changed


def test_warm_cache_reads_no_file_content(tmp_path, monkeypatch):
    root = tmp_path / "ctx"
    _aged(root, {f"d{i % 7}/f{i}": f"content {i}" for i in range(60)})
    cache = tmp_path / "cache"
    cold = Context(root, Ignore([]), cache_dir=cache)
    first = _sum(cold, ".")
    assert cold.files_read == 60
    assert (cache / ctxmod.CACHE_FILE).is_file()

    def forbidden(path: str) -> int:
        raise AssertionError(f"content of {path} read on a warm run")

    monkeypatch.setattr(ctxmod, "open_content", forbidden)
    warm = Context(root, Ignore([]), cache_dir=cache)   # a new run: the digests come from disk
    assert _sum(warm, ".") == first
    assert warm.files_read == 0


def test_recently_changed_files_are_hashed_every_time(tmp_path):
    root = tmp_path / "ctx"
    _write(root, {"new": "just written"})
    ctx = Context(root, Ignore([]), cache_dir=tmp_path / "cache")
    first = _sum(ctx, "new")
    second = _sum(ctx, "new")
    assert first == second and ctx.files_read == 2


def test_corrupt_cache_is_ignored(tmp_path):
    root = tmp_path / "ctx"
    _aged(root, {"f": "data"})
    cache = tmp_path / "cache"
    cache.mkdir()
    want = _sum(Context(root, Ignore([])), "f")
    st = os.stat(root / "f")
    wrong = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, "0" * 63 + "g"]
    for junk in [b"\x00garbage{", b"[]", b'{"version": 1, "files": []}',
                 json.dumps({"version": 1, "files": {f"{st.st_dev}:{st.st_ino}": wrong}}).encode()]:
        (cache / ctxmod.CACHE_FILE).write_bytes(junk)
        ctx = Context(root, Ignore([]), cache_dir=cache)
        assert _sum(ctx, "f") == want and ctx.files_read == 1
    # and the file written back is whole and usable
    data = json.loads((cache / ctxmod.CACHE_FILE).read_text())
    assert data["version"] == ctxmod.CACHE_VERSION
    assert data["files"][f"{st.st_dev}:{st.st_ino}"] == [st.st_size, st.st_mtime_ns,
                                                         st.st_ctime_ns,
                                                         hashlib.sha256(b"data").hexdigest()]
    assert not [p for p in cache.iterdir() if p.name != ctxmod.CACHE_FILE]


def test_checksum_mode_and_owner_toggles(tmp_path):
    root = tmp_path / "ctx"
    _write(root, {"f": "x"})
    os.chmod(root / "f", 0o600)
    ctx = _ctx(root)
    plain, moded = _sum(ctx, "f"), _sum(ctx, "f", mode=True)
    os.chmod(root / "f", 0o644)
    assert _sum(ctx, "f") == plain
    assert _sum(ctx, "f", mode=True) != moded


@pytest.mark.root
def test_checksum_owner_toggle(tmp_path):
    root = tmp_path / "ctx"
    _write(root, {"f": "x"})
    ctx = _ctx(root)
    plain, owned = _sum(ctx, "f"), _sum(ctx, "f", owner=True)
    os.chown(root / "f", 1234, 5678)
    assert _sum(ctx, "f") == plain
    assert _sum(ctx, "f", owner=True) != owned


def test_checksum_covers_names_types_and_links_but_not_excluded(tmp_path):
    root = tmp_path / "ctx"
    _write(root, {"d/a": "1", "d/b": "2", "d/skip.log": "3"})
    ctx = _ctx(root, "**/*.log")
    base = _sum(ctx, "d")
    (root / "d" / "more.log").write_text("excluded")
    assert _sum(_ctx(root, "**/*.log"), "d") == base
    (root / "d" / "b").rename(root / "d" / "c")
    renamed = _sum(_ctx(root, "**/*.log"), "d")
    assert renamed != base
    os.symlink("a", root / "d" / "l")
    linked = _sum(_ctx(root, "**/*.log"), "d")
    assert linked != renamed
    os.unlink(root / "d" / "l")
    os.symlink("c", root / "d" / "l")
    assert _sum(_ctx(root, "**/*.log"), "d") != linked
    # a top-level link stands for what it points to
    os.symlink("d/a", root / "toa")
    (root / "e").mkdir()
    (root / "e" / "toa").write_text("1")
    assert _sum(_ctx(root), "toa") == _sum(_ctx(root), "e/../toa")
    with pytest.raises(ContextError, match="forbidden path"):
        _sum(_ctx(root), "../elsewhere")


# --------------------------------------------------------------------------- open_context

def test_directory_context_and_its_dockerfile(tmp_path, monkeypatch):
    root = tmp_path / "ctx"
    _write(root, {"Dockerfile": "FROM a\n", "other.Dockerfile": "FROM b\n",
                  "other.Dockerfile.dockerignore": "x\n", ".dockerignore": "y\n", "x": "", "y": ""})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with open_context(str(root), None, scratch, None) as (ctx, data):
        assert data == b"FROM a\n" and ctx.root == root.resolve()
        assert ctx.ignore.excluded("y") and not ctx.ignore.excluded("x")
    monkeypatch.chdir(root)   # -f is relative to the working directory
    with open_context(".", None, scratch, "other.Dockerfile") as (ctx, data):
        assert data == b"FROM b\n"
        assert ctx.ignore.excluded("x") and not ctx.ignore.excluded("y")
    with open_context(str(root), io.BytesIO(b"FROM stdin\n"), scratch, "-") as (ctx, data):
        assert data == b"FROM stdin\n" and ctx.ignore.excluded("y")
    (root / "Dockerfile").unlink()
    (root / "dockerfile").write_text("FROM lower\n")
    with open_context(str(root), None, scratch, None) as (_, data):
        assert data == b"FROM lower\n"
    assert list(scratch.iterdir()) == []


def test_directory_context_errors(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    cases = [
        (str(tmp_path / "missing"), None, f'unable to prepare context: path "{tmp_path}/missing" not found'),
        (str(tmp_path / "file"), None, f'unable to prepare context: path "{tmp_path}/file" not found'),
        (str(tmp_path / "empty"), None, "unable to prepare context: unable to evaluate symlinks in"
         f" Dockerfile path: lstat {tmp_path}/empty/Dockerfile: no such file or directory"),
        (str(tmp_path / "empty"), str(tmp_path / "nope"), "unable to prepare context: unable to"
         f" evaluate symlinks in Dockerfile path: lstat {tmp_path}/nope: no such file or directory"),
    ]
    for path, dockerfile, message in cases:
        with pytest.raises(ContextError) as err, open_context(path, None, scratch, dockerfile):
            pass
        assert str(err.value) == message
    with pytest.raises(ContextError, match="can't use stdin for both"), \
            open_context("-", io.BytesIO(b""), scratch, "-"):
        pass


def _tar(members: list[tuple[str, bytes | str | None, str]]) -> bytes:
    """(name, content or link target, kind: f/d/l/h) as a plain tar, owned by this user."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value, kind in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid = os.getuid(), os.getgid()
            info.mode = 0o755 if kind == "d" else 0o644
            if kind == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind in ("l", "h"):
                info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                info.linkname = str(value)
                tar.addfile(info)
            else:
                data = value if isinstance(value, bytes) else str(value).encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


CONTEXT_TAR = [("Dockerfile", "FROM scratch\nCOPY . /\n", "f"), (".dockerignore", "**/*.log\n", "f"),
               ("src", None, "d"), ("src/main.c", "int main;", "f"), ("src/x.log", "log", "f"),
               ("link", "src/main.c", "l"), ("hard", "src/main.c", "h")]


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, bz2.compress, lzma.compress, _zstd],
                         ids=["plain", "gzip", "bzip2", "xz", "zstd"])
def test_tar_context_from_stdin(tmp_path, compress):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    stream = io.BytesIO(compress(_tar(CONTEXT_TAR)))
    with open_context("-", stream, scratch, None) as (ctx, data):
        assert data == b"FROM scratch\nCOPY . /\n"
        assert ctx.root.is_relative_to(scratch.resolve())
        assert [r for r, _, _ in ctx.entries()] == [
            ".dockerignore", "Dockerfile", "hard", "link", "src", "src/main.c"]
        assert (ctx.root / "hard").read_text() == "int main;"
        assert _rels(ctx, ctx.sources(["li*"])) == ["link"]
    assert list(scratch.iterdir()) == []   # cleaned on exit


def test_stdin_dockerfile_without_context(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with open_context("-", io.BytesIO(b"FROM busybox\nRUN true\n"), scratch, None) as (ctx, data):
        assert data == b"FROM busybox\nRUN true\n"
        assert list(ctx.entries()) == []
    assert list(scratch.iterdir()) == []


def test_tar_context_dockerfile_name_and_own_ignore(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tar = _tar([("build/app.Dockerfile", "FROM app\n", "f"),
                ("build/app.Dockerfile.dockerignore", "secret\n", "f"),
                (".dockerignore", "public\n", "f"), ("secret", "s", "f"), ("public", "p", "f")])
    with open_context("-", io.BytesIO(tar), scratch, "build/app.Dockerfile") as (ctx, data):
        assert data == b"FROM app\n"
        assert ctx.ignore.excluded("secret") and not ctx.ignore.excluded("public")
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: Dockerfile"), \
            open_context("-", io.BytesIO(tar), scratch, None):
        pass
    assert list(scratch.iterdir()) == []


def _snapshot(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = (os.readlink(path) if os.path.islink(path) else
                                                b"" if os.path.isdir(path) else open(path, "rb").read())
    return out


HOSTILE = {
    "dotdot": [("../escaped", "x", "f")],
    "nested-dotdot": [("a", None, "d"), ("a/../../escaped", "x", "f")],
    "absolute": [("/tmp-abs-escaped", "x", "f")],
    "symlink-then-write-through": [("l", "OUTSIDE", "l"), ("l/escaped", "x", "f")],
    "symlink-dir-then-write-through": [("d", "OUTSIDE/..", "l"), ("d/outside/escaped", "x", "f")],
    "hardlink-out": [("h", "OUTSIDE/victim", "h")],
    "hardlink-dotdot": [("h", "../outside/victim", "h")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_contexts_are_refused(tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("do not touch")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    members = [(name, value.replace("OUTSIDE", str(outside)) if isinstance(value, str) else value,
                kind) for name, value, kind in HOSTILE[case]]
    before = _snapshot(tmp_path)
    with pytest.raises(BadArchive) as err, open_context("-", io.BytesIO(_tar(members)),
                                                        scratch, None):
        pass
    assert "\n" not in str(err.value) and str(err.value).startswith("build context from stdin:")
    assert _snapshot(tmp_path) == before
    assert not Path("/tmp-abs-escaped").exists()


def test_links_in_a_tar_context_cannot_reach_out(tmp_path):
    """Symlinks pointing out are kept (Docker keeps them) but never followed."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "secret").write_text("secret")
    out = str(tmp_path / "secret")
    tar = _tar([("Dockerfile", "FROM x\n", "f"), ("leak", out, "l")])
    with open_context("-", io.BytesIO(tar), scratch, None) as (ctx, _):
        with pytest.raises(ContextError, match="forbidden path outside the build context: leak"):
            ctx.sources(["leak"])
        linked = _sum(ctx, ".")
        (tmp_path / "secret").write_text("changed")   # the link is hashed, never followed
        assert _sum(ctx, ".") == linked
    for name in ["Dockerfile", ".dockerignore"]:
        members = [("Dockerfile", "FROM x\n", "f")] if name != "Dockerfile" else []
        tar = _tar(members + [(name, out, "l")])
        with pytest.raises(ContextError, match="forbidden path outside the build context"), \
                open_context("-", io.BytesIO(tar), scratch, None):
            pass
    assert list(scratch.iterdir()) == []


def test_tar_context_size_limit(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tar = gzip.compress(_tar([("Dockerfile", "FROM x\n", "f"), ("big", b"\0" * (1 << 20), "f")]))
    with pytest.raises(ForkliftError, match="larger than the limit of 64KiB"), \
            open_context("-", io.BytesIO(tar), scratch, None, max_size=64 << 10):
        pass
    assert list(scratch.iterdir()) == []


class _Chunks(io.RawIOBase):
    """A pipe-like stream that refuses to be read whole: proof that the tar is streamed."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        assert 0 < n <= 4 << 20, f"read({n}) of a streamed context"
        self.largest = max(self.largest, n)
        return self._data.read(n)


def test_tar_context_is_streamed(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    big = os.urandom(1 << 16) * 128   # 8 MiB
    stream = _Chunks(gzip.compress(_tar([("Dockerfile", "FROM x\n", "f"), ("big", big, "f")]),
                                   compresslevel=1))
    with open_context("-", stream, scratch, None) as (ctx, _):
        assert (ctx.root / "big").read_bytes() == big
    assert 0 < stream.largest <= 4 << 20


def test_deeply_nested_context(tmp_path):
    root = tmp_path / "ctx"
    deep = root
    root.mkdir()
    for _ in range(1500):   # os.makedirs itself recurses
        deep = deep / "d"
        deep.mkdir()
    (deep / "f").write_text("bottom")
    ctx = _ctx(root, "**/skip\n")
    rel = "/".join(["d"] * 1500) + "/f"
    try:
        assert len(list(ctx.entries())) == 1501
        assert _rels(ctx, ctx.sources([rel])) == [rel]
        assert len(_sum(ctx, ".")) == 64
        assert not ctx.ignore.excluded(rel) and Ignore(["d"]).excluded(rel)
    finally:
        ctxmod.remove_tree(str(root))   # pytest's own cleanup recurses
    assert not root.exists()


def test_deeply_nested_tar_context(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    names = ["/".join(["n"] * i) for i in range(1, 1201)]
    tar = _tar([("Dockerfile", "FROM x\n", "f")] + [(n, None, "d") for n in names]
               + [(names[-1] + "/f", "deep", "f")])
    with open_context("-", io.BytesIO(tar), scratch, None) as (ctx, _):
        assert _rels(ctx, ctx.sources(["n"])) == ["n"]
        assert len(list(ctx.entries())) == 1202
    assert list(scratch.iterdir()) == []
