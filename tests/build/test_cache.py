"""The build cache: hits give the same image, a content change misses even with the same size
and mtime, ``--no-cache`` replaces entries, ``builder prune`` drops them and what only they
kept."""

from __future__ import annotations

import os
import sqlite3

import pytest
from support.store import assert_clean

pytestmark = pytest.mark.root

DOCKERFILE = "FROM busybox\nARG N=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nLABEL n=$N\n"


def build(fl, root, *args):
    res = fl("build", "--network", "none", "--progress", "plain", "--iidfile",
             str(root.parent / "iid"), *args, str(root))
    return (root.parent / "iid").read_text(), res.out


def test_hits_and_misses(fl, ctx):
    # an ARG default of its own: the module's other tests build "ARG N=1" on busybox too,
    # and in another order that step would already be cached here
    root = ctx(DOCKERFILE.replace("N=1", "N=hits"), **{"a.txt": "one"})
    first, out = build(fl, root)
    assert "CACHED" not in out
    again, out = build(fl, root)
    assert again == first and out.count("CACHED") == 4
    os.utime(root / "a.txt")                      # touch: same content
    assert build(fl, root)[0] == first
    st = os.stat(root / "a.txt")
    (root / "a.txt").write_text("two")            # same size, mtime put back
    os.utime(root / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    changed, out = build(fl, root)
    assert changed != first
    assert out.count("CACHED") == 1               # ARG only: COPY and all after it rebuilt
    assert fl.out("run", "--rm", changed, "cat", "/copy") == "two"
    other_arg, out = build(fl, root, "--build-arg", "N=2")
    assert other_arg != changed and out.count("CACHED") == 2   # ARG N (the instruction), COPY
    assert fl.out("image", "inspect", "--format", "{{json .Config.Labels}}", other_arg) == '{"n":"2"}'


def test_no_cache_rebuilds_and_replaces_entries(fl, ctx):
    root = ctx(DOCKERFILE, **{"a.txt": "no-cache"})
    first, _ = build(fl, root)
    fresh, out = build(fl, root, "--no-cache")
    assert "CACHED" not in out and fresh != first
    assert build(fl, root)[0] == fresh            # the entries now point at the new images


def test_entries_of_deleted_images_are_ignored_and_prune_drops_what_only_they_keep(fl, ctx):
    root = ctx(DOCKERFILE, **{"a.txt": "prune"})
    tagged, _ = build(fl, root, "-t", "keepme")
    fl("rmi", "keepme")                           # the image and its untagged parents go
    rebuilt, out = build(fl, root)
    # (ARG's image may stay: the module's other builds made the same step on busybox)
    assert "#3 CACHED" not in out and "#5 CACHED" not in out and rebuilt != tagged
    before = set(fl.out("images", "-aq", "--no-trunc").split())
    res = fl("builder", "prune", "-f")
    assert "Deleted build cache objects:" in res.out and "Total reclaimed space:" in res.out
    after = set(fl.out("images", "-aq", "--no-trunc").split())
    assert rebuilt in before and rebuilt not in after
    assert fl.out("image", "inspect", "--format", "{{.Id}}", "busybox") in after
    tagged2, _ = build(fl, root, "-t", "keepme2")
    fl("builder", "prune", "-a", "-f")
    assert fl.db_value("SELECT COUNT(*) FROM build_cache") == 0
    assert fl.out("run", "--rm", "keepme2", "cat", "/copy") == "prune"   # tagged: kept
    assert "#2 CACHED" not in build(fl, root)[1]
    assert_clean(fl.root)


def test_system_check_reports_and_repairs_a_dangling_entry(fl):
    conn = sqlite3.connect(fl.root / "forklift.db")
    conn.execute("INSERT INTO build_cache VALUES('ab' || hex(randomblob(31)), 'sha256:' || hex(randomblob(32)), 0)")
    conn.commit()
    conn.close()
    res = fl("system", "check", check=False)
    assert res.code == 1 and "build cache entry of missing image" in res.out
    fl("system", "check", "--repair")
    fl("system", "check")


def test_chmod_symbolic_applies_to_each_source_and_its_mode_enters_the_key(fl, ctx):
    """An octal --chmod sets the mode outright: the source's mode is not in the key (a
    umask difference between machines must not miss). A symbolic one starts from the
    source's mode, so a change of that mode must miss."""
    df = ("FROM busybox\nCOPY --chmod=u+x,go-w a.txt /sym\nCOPY --chmod=0600 a.txt /oct\n"
          "COPY --chmod=a=rX d /d\n")
    root = ctx(df, **{"a.txt": "one", "d/f": "f", "d/sub/g": "g"})
    os.chmod(root / "a.txt", 0o664)
    os.chmod(root / "d" / "f", 0o700)
    os.chmod(root / "d" / "sub" / "g", 0o600)
    first, _ = build(fl, root)
    modes = fl.out("run", "--rm", first, "stat", "-c", "%n %a", "/sym", "/oct", "/d", "/d/f",
                   "/d/sub", "/d/sub/g").splitlines()
    # /d is the destination made for the directory's contents (0755, as without --chmod)
    assert modes == ["/sym 744", "/oct 600", "/d 755", "/d/f 555", "/d/sub 555", "/d/sub/g 444"]
    os.chmod(root / "a.txt", 0o644)               # the source's mode changes
    second, out = build(fl, root)
    assert second != first and out.count("CACHED") == 0   # the symbolic step misses first
    assert fl.out("run", "--rm", second, "stat", "-c", "%a", "/sym") == "744"
    os.chmod(root / "a.txt", 0o640)               # only what u+x,go-w leaves the same
    third, out = build(fl, root)
    assert third != second
    assert fl.out("run", "--rm", third, "stat", "-c", "%a", "/sym", "/oct").split() == ["740", "600"]
