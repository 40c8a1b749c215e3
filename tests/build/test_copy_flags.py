"""COPY/ADD --exclude, COPY --parents and --link, checked against the Dockerfile
reference's examples and rules (Docker 20.10's builders support none of them). The images
are FROM scratch and exported with ``-o DIR``, so the files are looked at directly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import one_line_error
from support.exported import build_to as build
from support.exported import tree
from support.store import assert_clean

from forklift.build import copyflags

pytestmark = pytest.mark.root



def mode(path: Path) -> int:
    return os.lstat(path).st_mode & 0o7777


# --------------------------------------------------------------------------- --exclude

EXCLUDE_FILES = {"home.txt": "1", "homer.md": "2", "hom/in.txt": "3", "hom/keep.sh": "4",
                 "hom/sub/deep.txt": "5", "src/a.txt": "6", "src/b.md": "7", "src/x/c.md": "8"}


def test_exclude_as_the_reference_shows_it(fl, ctx, tmp_path):
    root = ctx("FROM scratch\n"
               "COPY --exclude=*.txt hom* /mydir/\n"                     # the reference's example
               "COPY --exclude=*.txt --exclude=*.md hom* /two/\n"        # repeatable
               "ADD --exclude=x --exclude=*.md src /add/\n"              # ADD too; a directory's whole
               "COPY --exclude=**/*.md --exclude=!b.md src /md/\n"       # .dockerignore's ** and !
               "COPY --exclude=ctx --exclude=hom* --exclude=Dockerfile . /all/\n",  # the root: no name
               **EXCLUDE_FILES)
    out = tmp_path / "out"
    build(fl, root, out)
    # matched against each source's name, and below a directory source relative to it
    # (``*.txt`` as in .dockerignore: not in subdirectories)
    assert tree(out / "mydir") == ["homer.md", "keep.sh", "sub/", "sub/deep.txt"]
    assert tree(out / "two") == ["keep.sh", "sub/", "sub/deep.txt"]
    assert tree(out / "add") == ["a.txt"]
    assert tree(out / "md") == ["a.txt", "b.md", "x/"]
    assert tree(out / "all") == ["src/", "src/a.txt", "src/b.md", "src/x/", "src/x/c.md"]
    assert (out / "mydir" / "keep.sh").read_text() == "4"


def test_excluded_files_are_out_of_the_cache_key(fl, ctx, tmp_path):
    root = ctx("FROM scratch\nCOPY --exclude=*.log logs /l/\n",
               **{"logs/keep.txt": "k", "logs/noise.log": "n1"})
    out = tmp_path / "out"
    first = build(fl, root, out)
    assert "CACHED" not in first
    (root / "logs" / "noise.log").write_text("n2, another size")
    (root / "logs" / "more.log").write_text("new")
    assert "#2 CACHED" in build(fl, root, tmp_path / "out2")
    (root / "logs" / "keep.txt").write_text("k2")
    assert "CACHED" not in build(fl, root, tmp_path / "out3")
    assert tree(tmp_path / "out3" / "l") == ["keep.txt"]
    # the patterns themselves are part of the key
    other = ctx("FROM scratch\nCOPY --exclude=*.txt logs /l/\n")
    assert "CACHED" not in build(fl, other, tmp_path / "out4")
    assert tree(tmp_path / "out4" / "l") == ["more.log", "noise.log"]


def test_exclude_with_copy_from_a_stage(fl, ctx, tmp_path):
    root = ctx("FROM scratch AS files\nCOPY src /src/\n"
               "FROM scratch\nCOPY --from=files --exclude=*.md /src /got/\n", **EXCLUDE_FILES)
    build(fl, root, tmp_path / "out")
    assert tree(tmp_path / "out" / "got") == ["a.txt", "x/", "x/c.md"]


def test_a_bad_exclude_pattern_is_one_line(fl, ctx):
    res = fl("build", str(ctx("FROM scratch\nCOPY --exclude=[ src /x/\n", **EXCLUDE_FILES)), check=False)
    assert "syntax error in pattern" in one_line_error(res)
    assert_clean(fl.root)


# --------------------------------------------------------------------------- --parents

PARENTS_FILES = {"x/a.txt": "xa", "y/a.txt": "ya", "x/y/a.txt": "xya", "x/y/b.txt": "xyb",
                 "x/y/c.md": "xyc", "src/a.txt": "1", "src/x/b.txt": "2", "src/x/y/c.txt": "3",
                 "src/x/y/d.md": "4"}


def test_parents_as_the_reference_shows_it(fl, ctx, tmp_path):
    root = ctx("FROM scratch\n"
               "COPY ./x/a.txt ./y/a.txt /no_parents/\n"
               "COPY --parents ./x/a.txt ./y/a.txt /parents/\n"
               "COPY --parents ./x/./y/*.txt /pivot/\n"
               "COPY --parents ./src/**/*.txt /deep/\n"
               "COPY --parents=false ./x/y/b.txt /off/\n"
               "COPY --parents --exclude=**/*.md src/x /dir/\n", **PARENTS_FILES)
    out = tmp_path / "out"
    build(fl, root, out)
    assert tree(out / "no_parents") == ["a.txt"]
    assert (out / "no_parents" / "a.txt").read_text() == "ya"     # the last one wins
    assert tree(out / "parents") == ["x/", "x/a.txt", "y/", "y/a.txt"]
    assert (out / "parents" / "x" / "a.txt").read_text() == "xa"
    assert tree(out / "pivot") == ["y/", "y/a.txt", "y/b.txt"]
    assert tree(out / "deep") == ["src/", "src/a.txt", "src/x/", "src/x/b.txt", "src/x/y/",
                                  "src/x/y/c.txt"]
    assert tree(out / "off") == ["b.txt"]
    # a directory source keeps its own path too; --exclude applies below it
    assert tree(out / "dir") == ["src/", "src/x/", "src/x/b.txt", "src/x/y/", "src/x/y/c.txt"]


def test_the_pivot_is_part_of_the_cache_key(fl, ctx, tmp_path):
    root = ctx("FROM scratch\nCOPY --parents ./x/y/a.txt /p/\n", **PARENTS_FILES)
    build(fl, root, tmp_path / "one")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY --parents ./x/./y/a.txt /p/\n")
    assert "CACHED" not in build(fl, root, tmp_path / "two")   # the same file, elsewhere
    assert tree(tmp_path / "one" / "p") == ["x/", "x/y/", "x/y/a.txt"]
    assert tree(tmp_path / "two" / "p") == ["y/", "y/a.txt"]


def test_parent_directories_keep_their_mode_and_mtime(fl, ctx, tmp_path):
    root = ctx("FROM scratch\nCOPY --parents x/y/a.txt /p/\n"
               "COPY --parents --chown=7:8 x/y/b.txt /owned/\n", **PARENTS_FILES)
    os.chmod(root / "x", 0o750)
    os.chmod(root / "x" / "y", 0o711)
    os.utime(root / "x", (1_000_000_000, 1_000_000_000))
    out = tmp_path / "out"
    build(fl, root, out)
    assert mode(out / "p" / "x") == 0o750 and mode(out / "p" / "x" / "y") == 0o711
    assert os.stat(out / "p" / "x").st_mtime == 1_000_000_000
    st = os.stat(out / "owned" / "x" / "y")
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_parents_with_copy_from_and_a_pivot(fl, ctx, tmp_path):
    root = ctx("FROM scratch AS files\nCOPY . /ctx/\n"
               "FROM scratch\nCOPY --from=files --parents /ctx/./x/y/*.txt /a/\n"
               "COPY --from=files --parents /ctx/src/x/b.txt /b/\n", **PARENTS_FILES)
    out = tmp_path / "out"
    build(fl, root, out)
    assert tree(out / "a") == ["x/", "x/y/", "x/y/a.txt", "x/y/b.txt"]
    assert tree(out / "b") == ["ctx/", "ctx/src/", "ctx/src/x/", "ctx/src/x/b.txt"]


def test_a_pivot_outside_the_context_is_refused(fl, ctx):
    res = fl("build", str(ctx("FROM scratch\nCOPY --parents ../x/./a.txt /p/\n", **PARENTS_FILES)),
             check=False)
    assert "outside the build context" in one_line_error(res)
    assert_clean(fl.root)


# --------------------------------------------------------------------------- --link

def link_context(ctx) -> Path:
    root = ctx("FROM scratch AS base\nCOPY base /\n"
               "FROM base AS plain\nCOPY f.txt /dst/\nCOPY f.txt /tmp/sub/\n"
               "FROM base AS linked\nCOPY --link f.txt /dst/\nCOPY --link f.txt /tmp/sub/\n"
               "COPY --link f.txt /real\n",
               **{"f.txt": "F", "base/real/keep": "K", "base/tmp/.keep": ""})
    os.symlink("real", root / "base" / "dst")
    os.chmod(root / "base" / "tmp", 0o1777)
    return root


def test_link_copies_into_an_empty_layer(fl, ctx, tmp_path):
    root = link_context(ctx)
    plain, linked = tmp_path / "plain", tmp_path / "linked"
    build(fl, root, plain, "--target", "plain")
    build(fl, root, linked, "--target", "linked")
    # without --link the destination's symlink is followed and /tmp keeps its mode
    assert (plain / "dst").is_symlink() and (plain / "real" / "f.txt").read_text() == "F"
    assert mode(plain / "tmp") == 0o1777
    # with it the layer has plain directories, which replace the base's link and mode
    assert not (linked / "dst").is_symlink() and tree(linked / "dst") == ["f.txt"]
    # a destination that is a directory in the base only is not copied into
    assert (linked / "real").read_text() == "F"
    assert mode(linked / "tmp") == 0o755 and tree(linked / "tmp") == [".keep", "sub/", "sub/f.txt"]


def test_link_cannot_resolve_user_names(fl, ctx):
    root = ctx("FROM scratch\nCOPY etc /etc/\nCOPY --link --chown=app f.txt /f\n",
               **{"f.txt": "F", "etc/passwd": "app:x:5:5::/:/bin/sh\n", "etc/group": "app:x:5:\n"})
    res = fl("build", str(root), check=False)
    assert "can't find user app" in one_line_error(res)
    assert_clean(fl.root)


@pytest.mark.parametrize(("pattern", "split"), [
    ("./x/./y/*.txt", ("x", "y/*.txt")), ("x/y/a.txt", ("", "x/y/a.txt")),
    ("/ctx/./x/", ("ctx", "x")), ("./a/b/./c/./d", ("a/b", "c/d")), (".", ("", ".")),
])
def test_the_pivot_of_a_parents_pattern(pattern, split):
    assert copyflags.split_pivot(pattern) == split
