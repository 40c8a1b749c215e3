"""Reproducible builds (SOURCE_DATE_EPOCH) and what a build exports."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.cli import one_line_error, wait_for
from support.images import import_busybox
from support.store import temporary_store

pytestmark = pytest.mark.root

REPRO = ("FROM busybox\nCOPY a.txt /srv/a.txt\n"
         "RUN mkdir -p /out/sub && echo hi > /out/sub/f && hostname > /out/host && touch /etc/x\n"
         "ENV A=1\n")
EPOCH = 1_600_000_000


@pytest.fixture
def two_stores(busybox_tar: Path) -> Iterator[tuple[Forklift, Forklift]]:
    with temporary_store() as one, temporary_store() as two:
        import_busybox(one, busybox_tar)
        # the same base in both (an import's own time is in its image ID)
        two("load", input=one("save", "busybox").data)
        yield one, two


def build(fl: Forklift, root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    iid = root.parent / "iid"
    fl("build", "--network", "none", "--iidfile", str(iid), *args, str(root), env=env or {})
    return iid.read_text()


def _next_second() -> None:
    """Wait until the clock's second has moved on: the next build's files and timestamps
    are made at another time than the last one's."""
    start = int(time.time())
    wait_for(lambda: int(time.time()) > start, timeout=3, what="the next second")


def test_source_date_epoch_gives_the_same_image_in_two_stores(two_stores, ctx):
    one, two = two_stores
    root = ctx(REPRO, **{"a.txt": "same"})
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    first = build(one, root, env=env)
    _next_second()
    os.utime(root / "a.txt")                      # a later mtime in the context too
    second = build(two, root, "--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}")
    assert first == second
    image = json.loads(one.out("image", "inspect", first))[0]
    assert image["Created"].startswith("2020-09-13T12:26:40")
    history = json.loads(one.out("history", "--no-trunc", "--format", "{{json .}}", first)
                         .splitlines()[0])
    assert history["CreatedAt"].startswith("2020-09-13")
    listing = one.out("run", "--rm", first, "stat", "-c", "%Y %n", "/srv/a.txt", "/out/sub/f",
                      "/out/sub", "/etc/x", "/out/host")
    assert {line.split()[0] for line in listing.splitlines()} == {str(EPOCH)}
    assert one.out("run", "--rm", first, "cat", "/out/host") == "buildkitsandbox"
    # without it: two builds differ (their times), and the cache keeps them apart
    plain_one = build(one, root)
    _next_second()
    plain_two = build(two, root)
    assert len({plain_one, plain_two, first}) == 3


def test_an_old_file_keeps_its_mtime_and_a_bad_epoch_is_refused(two_stores, ctx):
    one, _ = two_stores
    root = ctx("FROM busybox\nCOPY a.txt /a.txt\n", **{"a.txt": "old"})
    os.utime(root / "a.txt", (1000, 1000))
    image = build(one, root, env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert one.out("run", "--rm", image, "stat", "-c", "%Y", "/a.txt") == "1000"
    res = one("build", "--build-arg", "SOURCE_DATE_EPOCH=yesterday", str(root), check=False)
    assert "SOURCE_DATE_EPOCH" in one_line_error(res)


# ----------------------------------------------------------------------------- --output

OUT = ("FROM busybox\nCOPY a.txt /data/a.txt\n"
       "RUN ln -s / /data/root && ln -s /etc/passwd /data/pw && ln -s ../../../.. /data/up\n")


def test_output_local_writes_the_files_and_follows_no_symlink(fl, ctx, tmp_path):
    root = ctx(OUT, **{"a.txt": "local"})
    dest = tmp_path / "out"
    build(fl, root, "-o", str(dest))
    assert (dest / "data" / "a.txt").read_text() == "local"
    assert (dest / "bin" / "busybox").is_file()
    assert os.readlink(dest / "data" / "root") == "/"   # kept as links, never followed
    assert os.readlink(dest / "data" / "pw") == "/etc/passwd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "iid", "out"]
    again = tmp_path / "again"
    again.mkdir()                                       # an empty directory is fine
    build(fl, root, "--output", f"type=local,dest={again}")
    assert (again / "data" / "a.txt").read_text() == "local"


def test_output_tar_types(fl, ctx, tmp_path):
    import tarfile

    root = ctx(OUT, **{"a.txt": "tars"})
    image = build(fl, root, "-t", "outputs:1", "-o", f"type=docker,dest={tmp_path / 'd.tar'}")
    with tarfile.open(tmp_path / "d.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))   # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["outputs:1"]
    assert manifest[0]["Config"].removesuffix(".json").endswith(image.split(":")[1])
    build(fl, root, "-o", f"type=oci,dest={tmp_path / 'o.tar'}")
    with tarfile.open(tmp_path / "o.tar") as tar:
        assert "oci-layout" in tar.getnames() and "index.json" in tar.getnames()
    res = fl("build", "--network", "none", "-o", "type=tar,dest=-", str(root))
    with tarfile.open(fileobj=__import__("io").BytesIO(res.data)) as tar:
        assert tar.extractfile("data/a.txt").read() == b"tars"    # type: ignore[union-attr]
        assert tar.getmember("data/root").linkname == "/"
    assert "Successfully built" in res.err


@pytest.mark.parametrize("spec", ["type=zip,dest=x", "type=local", "type=local,dest=-",
                                  "dest=a,dest=b", "type=tar,dest=/nonexistent/dir/x.tar"])
def test_output_bad_specs_are_refused_before_building(fl, ctx, spec):
    root = ctx("FROM busybox\nRUN false\n")
    res = fl("build", "-o", spec, str(root), check=False)
    assert "output" in one_line_error(res)


def test_output_local_refuses_a_non_empty_directory_or_a_symlink(fl, ctx, tmp_path):
    root = ctx("FROM busybox\nRUN false\n")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    for dest in (full, tmp_path / "link"):
        one_line_error(fl("build", "-o", str(dest), str(root), check=False))
    assert (full / "keep").read_text() == "mine" and not any((tmp_path / "empty").iterdir())


# ----------------------------------------------------------------------------- --squash

SQUASH = ("FROM busybox\nCOPY a.txt /d/a.txt\n"
          "RUN mkdir /d/x && echo old > /d/x/old && echo gone > /d/gone\n"
          "RUN rm /etc/group /d/gone && rm -rf /d/x && mkdir /d/x && echo new > /d/x/new\n"
          "ENV S=1\n")


def test_squash_makes_one_layer_on_the_base_and_keeps_the_history(fl, ctx):
    root = ctx(SQUASH, **{"a.txt": "squash"})
    plain = build(fl, root)
    squashed = build(fl, root, "--squash", "-t", "squashed:1")
    assert squashed != plain
    base = fl.inspect("busybox")
    image, normal = fl.inspect(squashed), fl.inspect(plain)
    assert len(normal["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 3
    assert image["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(image["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    assert image["Config"]["Env"] == normal["Config"]["Env"]
    base_history = saved_config(fl, "busybox")["history"]
    history, normal_history = saved_config(fl, squashed)["history"], saved_config(fl, plain)["history"]
    assert len(history) == len(normal_history) + 1
    assert [h.get("created_by") for h in history[:-1]] == [h.get("created_by") for h in normal_history]
    assert all(h.get("empty_layer") for h in history[len(base_history):-1])
    assert history[-1]["comment"] == f"merge {plain} to {base['Id']}" and "empty_layer" not in history[-1]
    script = ("cat /d/a.txt /d/x/new; ls /d/x; test ! -e /d/gone && test ! -e /etc/group"
              " && echo deleted")
    assert fl.out("run", "--rm", squashed, "sh", "-c", script).split() == \
        ["squashnew", "new", "deleted"]
    assert build(fl, root, "--squash") == squashed     # the same steps squash the same


def saved_config(fl, name):
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(fl("save", name).data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))   # type: ignore[arg-type]
        return json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- --pull

def test_a_missing_base_is_pulled_and_pull_refreshes_a_present_one(fl, ctx, registry, tmp_path):
    ref = f"{registry.host}/repro/base:1"
    fl("tag", "busybox", ref)
    fl("push", ref)
    first_base = fl.out("image", "inspect", "--format", "{{.Id}}", ref)
    root = ctx(f"FROM {ref}\nRUN echo built > /built\n")
    with temporary_store() as fresh:
        built = build(fresh, root)                      # not in the store: pulled
        assert fresh.out("image", "inspect", "--format", "{{.Id}}", ref) == first_base
        assert fresh.out("run", "--rm", built, "cat", "/built") == "built"
        newer = tmp_path / "newer"                      # (ctx() would rewrite root)
        newer.mkdir()
        (newer / "Dockerfile").write_text(f"FROM {ref}\nLABEL generation=2\n")
        fl("rmi", ref)
        fl("tag", build(fl, newer), ref)
        fl("push", ref)
        second_base = fl.out("image", "inspect", "--format", "{{.Id}}", ref)
        assert build(fresh, root) == built              # present: used as it is
        res = fresh("build", "--network", "none", "--pull", "--progress", "plain", str(root))
        assert f"[internal] pull {ref}" in res.out
        assert fresh.out("image", "inspect", "--format", "{{.Id}}", ref) == second_base
        refreshed = res.lines[-1].split()[-1]
        assert fresh.out("image", "inspect", "--format", "{{.Config.Labels.generation}}",
                         refreshed) == "2"
        (newer / "Dockerfile").write_text(f"FROM {registry.host}/repro/nosuch:1\n")
        err = one_line_error(fresh("build", str(newer), check=False))
        assert "repro/nosuch:1 is not in the store and could not be pulled" in err


# ----------------------------------------------------------------------------- cache dirs

CACHED = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nENV C=1\n"


def test_cache_to_and_from_a_directory_gives_every_step_and_the_same_image(two_stores, ctx, tmp_path):
    one, two = two_stores
    root = ctx(CACHED, **{"a.txt": "cache dir"})
    cache = tmp_path / "cache"
    first = build(one, root, "--cache-to", f"type=local,dest={cache}")
    assert (cache / "oci-layout").is_file() and (cache / "index.json").is_file()
    res = two("build", "--network", "none", "--progress", "plain", "--iidfile",
              str(tmp_path / "iid2"), "--cache-from", f"type=local,src={cache}", str(root))
    assert res.out.count("CACHED") == 3 and "3 cache entries" in res.out
    assert (tmp_path / "iid2").read_text() == first
    assert two.out("run", "--rm", first, "cat", "/b.txt") == "cache dir"
    assert two.out("images", "-q", "--filter", "reference=forklift-buildcache") == ""


def test_broken_cache_directories_are_one_line_and_change_nothing(two_stores, ctx, tmp_path):
    from support.store import snapshot

    one, two = two_stores
    root = ctx(CACHED, **{"a.txt": "broken"})
    cache = tmp_path / "cache"
    build(one, root, "--cache-to", f"type=local,dest={cache}")
    index = json.loads((cache / "index.json").read_text())
    blobs = sorted((cache / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    biggest = blobs[-1]
    data = biggest.read_bytes()
    before = snapshot(two.root)
    biggest.write_bytes(data[:-10] + b"x" * 10)                        # a corrupt layer
    one_line_error(two("build", "--cache-from", f"type=local,src={cache}", str(root), check=False))
    biggest.write_bytes(data)
    entry = index["manifests"][0]
    entry["annotations"] = {"io.containerd.image.name": "docker.io/library/other:1"}
    (cache / "index.json").write_text(json.dumps(index))                # not a cache entry
    one_line_error(two("build", "--cache-from", f"type=local,src={cache}", str(root), check=False))
    for spec in ("type=registry,ref=x", f"type=local,dest={cache}", f"type=local,src={tmp_path / 'no'}"):
        one_line_error(two("build", "--cache-from", spec, str(root), check=False))
    (tmp_path / "file").write_text("mine")
    for spec in (f"type=local,dest={tmp_path / 'file'}", f"type=local,dest={tmp_path / 'ctx'}",
                 "type=local,dest=/nonexistent/dir/cache", "type=local,src=x"):
        one_line_error(two("build", "--cache-to", spec, str(root), check=False))
    assert (tmp_path / "file").read_text() == "mine"
    assert snapshot(two.root) == before


# ----------------------------------------------------------------------------- filters

STAGES = ("FROM busybox AS first\nRUN echo a > /a\n"
          "FROM busybox AS second\nRUN echo b > /b\nCOPY --from=first /a /a\n")


def test_no_cache_filter_runs_the_named_stages_uncached(fl, ctx):
    root = ctx(STAGES)

    def plain(*args: str) -> str:
        return fl("build", "--network", "none", "--progress", "plain", *args, str(root)).out

    plain()
    assert plain().count("CACHED") == 3
    out = plain("--no-cache-filter", "first")
    # first's RUN runs again (a new image), so COPY --from it misses; second's RUN hits
    assert out.count("CACHED") == 1 and "[second 2/3] RUN echo b > /b\n#4 CACHED" in out
    assert plain("--no-cache-filter", "first,1").count("CACHED") == 0
    res = fl("build", "--no-cache-filter", "third", str(root), check=False)
    assert 'stage "third" could not be found' in one_line_error(res)


def test_builder_prune_until_keeps_newer_entries(two_stores, ctx):
    import sqlite3

    one, _ = two_stores
    root = ctx("FROM busybox\nRUN echo old > /old\n")
    build(one, root)
    assert cache_count(one) == 1
    res = one("builder", "prune", "-a", "-f", "--filter", "until=24h")
    assert "Deleted build cache objects:" not in res.out and cache_count(one) == 1
    conn = sqlite3.connect(one.root / "forklift.db")
    with conn:
        conn.execute("UPDATE build_cache SET created = created - 2 * 86400")
    conn.close()
    build(one, ctx("FROM busybox\nRUN echo new > /new\n"))
    assert cache_count(one) == 2
    res = one("builder", "prune", "-a", "-f", "--filter", "until=24h")
    assert "Deleted build cache objects:" in res.out and cache_count(one) == 1
    for bad in ("until=soon", "label=x"):
        one_line_error(one("builder", "prune", "-f", "--filter", bad, check=False))
    assert cache_count(one) == 1


def cache_count(fl) -> int:
    return int(fl.db_value("SELECT COUNT(*) FROM build_cache"))
