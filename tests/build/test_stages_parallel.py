"""Independent stages build at the same time (``FORKLIFT_BUILD_JOBS``, default: the CPUs):
they really overlap, give what a serial build gives, and a failing or interrupted build
stops every stage and leaves nothing behind.

Overlap is proven without timing: the RUN steps of two stages wait for each other through
a shared cache mount, which only works when both run at once (serially, the first would
wait for a file that nobody makes, until its bound: a failure)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest
from support import Forklift, one_line_error
from support.store import assert_clean, assert_no_corruption, temporary_store

pytestmark = pytest.mark.root

TWO = {"FORKLIFT_BUILD_JOBS": "2"}


def wait_for(path: str, bound: int = 600) -> str:
    """Shell: wait for ``path`` (at most ``bound`` tenths of a second, then exit 7)."""
    return f"i=0; until [ -e {path} ]; do i=$((i+1)); [ $i -lt {bound} ] || exit 7; sleep 0.1; done"


def rendezvous(token: str) -> str:
    """RUN's mount of a cache directory this test's stages share."""
    return f"--mount=type=cache,id=rdv-{token},target=/rdv"


def no_containers(fl: Forklift) -> None:
    assert fl.out("ps", "-aq") == ""


def test_independent_stages_run_at_the_same_time(fl, ctx):
    token = os.urandom(6).hex()
    mount = rendezvous(token)
    root = ctx(f"FROM busybox AS a\nRUN {mount} touch /rdv/a && {wait_for('/rdv/b')} && echo a > /a\n"
               f"FROM busybox AS b\nRUN {mount} touch /rdv/b && {wait_for('/rdv/a')} && echo b > /b\n"
               "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n")
    res = fl("build", "--network", "none", "--progress", "plain", "-t", f"both-{token}", str(root),
             env=TWO)
    assert fl.out("run", "--rm", "--network", "none", f"both-{token}", "cat", "/a", "/b") == "a\nb"
    numbers = [int(n) for n in re.findall(r"^#(\d+) \[", res.out, re.M)]
    assert sorted(numbers) == list(range(1, len(numbers) + 1)) == sorted(set(numbers))
    assert {"[a 2/2]", "[b 2/2]", "[stage-2 3/3]"} <= set(re.findall(r"\[\S+ \d/\d\]", res.out))
    no_containers(fl)


THREE = """\
FROM busybox AS one
COPY a.txt /one
RUN echo 1 >> /one
FROM busybox AS two
COPY a.txt /two
RUN echo 2 >> /two
FROM busybox AS three
RUN echo 3 > /three
FROM busybox
COPY --from=one /one /
COPY --from=two /two /
COPY --from=three /three /
"""


def test_the_same_image_and_cache_entries_as_a_serial_build(fl, ctx, tmp_path):
    root = ctx(THREE, **{"a.txt": os.urandom(8).hex()})

    def build(jobs: dict[str, str], name: str) -> tuple[str, str, list[tuple[str, str]], list]:
        layout = tmp_path / name
        res = fl("build", "--network", "none", "--progress", "plain", "--no-cache",
                 "--cache-to", f"type=local,dest={layout}", "--iidfile", str(tmp_path / "iid"),
                 str(root), env={"SOURCE_DATE_EPOCH": "1700000000", **jobs})
        conn_rows = fl.db_value("SELECT json_group_array(json_array(key, image_id)) FROM"
                                " (SELECT key, image_id FROM build_cache ORDER BY key)")
        index = json.loads((layout / "index.json").read_text())["manifests"]
        return (tmp_path / "iid").read_text(), res.out, json.loads(conn_rows), index

    serial, out, rows, index = build({"FORKLIFT_BUILD_JOBS": "1"}, "serial")
    # one stage after another: each stage's last step before the next one's first
    assert out.index("[one 3/3]") < out.index("[two 1/3]") < out.index("[two 3/3]") < out.index("[three 1/2]")
    concurrent, out, rows_after, index_after = build({}, "default")
    assert concurrent == serial
    assert rows_after == rows          # no other key, no key given another image
    assert index_after == index        # --cache-to lists the steps in the same order
    assert "CACHED" not in out
    assert fl.out("run", "--rm", "--network", "none", serial, "cat", "/one", "/two", "/three") \
        == f"{(root / 'a.txt').read_text()}1\n{(root / 'a.txt').read_text()}2\n3"


def test_a_stage_reading_a_stage_it_does_not_name_waits_for_it(fl, ctx):
    # ``--from=$SRC`` is not seen before the build: stage b still gets a's finished image
    token = os.urandom(6).hex()
    mount = rendezvous(token)
    root = ctx(f"ARG SRC=a\nFROM busybox AS a\nRUN {mount} {wait_for('/rdv/b')} && echo a-{token} > /a\n"
               f"FROM busybox AS b\nARG SRC\nRUN {mount} touch /rdv/b\nCOPY --from=$SRC /a /from-a\n"
               "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /from-a /b\n")
    image = fl.out("build", "-q", "--network", "none", str(root), env=TWO)
    assert fl.out("run", "--rm", "--network", "none", image, "cat", "/a", "/b") \
        == f"a-{token}\na-{token}"


def test_a_failing_stage_cancels_the_others(fl, ctx):
    token = os.urandom(6).hex()
    mount = rendezvous(token)
    root = ctx(f"FROM busybox AS a\nRUN {mount} {wait_for('/rdv/b')} && exit 3\n"
               f"FROM busybox AS b\nRUN {mount} touch /rdv/b && sleep 600\n"
               "FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n")
    images = fl.out("images", "-aq", "--no-trunc")
    # without the cancel, b's sleep would outlast the timeout
    res = fl("build", "--network", "none", "--progress", "plain", str(root), env=TWO,
             check=False, timeout=90)
    assert res.code == 1
    assert one_line_error(res).startswith("Error: The command '/bin/sh -c ")
    assert one_line_error(res).endswith("&& exit 3' returned a non-zero code: 3")
    assert re.search(r"^#\d+ ERROR: process .* exit code: 3$", res.out, re.M)
    assert re.search(r"^#\d+ ERROR: canceled$", res.out, re.M)
    assert fl.out("images", "-aq", "--no-trunc") == images   # a's and b's FROM make no image
    no_containers(fl)
    assert_clean(fl.root)


def both_running(fl: Forklift, ctx, token: str) -> subprocess.Popen:
    """A build whose two stages both run a container (when this returns) that sleeps."""
    mount = rendezvous(token)
    root = ctx(f"FROM busybox AS a\nRUN {mount} touch /rdv/a && {wait_for('/rdv/b')} && echo ready-a && sleep 600\n"
               f"FROM busybox AS b\nRUN {mount} touch /rdv/b && {wait_for('/rdv/a')} && echo ready-b && sleep 600\n"
               "FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n")
    proc = subprocess.Popen([*fl.argv, "build", "--network", "none", "--progress", "plain", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=fl.environ(TWO))
    assert proc.stdout is not None
    ready: set[str] = set()
    for line in proc.stdout:
        ready |= set(re.findall(r"^#\d+ [0-9.]+ (ready-[ab])$", line))
        if len(ready) == 2:
            return proc
    proc.kill()
    raise AssertionError(f"the stages did not both start: {proc.wait()}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_build_kills_every_stages_container(fl, ctx, sig):
    proc = both_running(fl, ctx, f"{os.urandom(6).hex()}-{int(sig)}")
    assert proc.stdout is not None
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert len(re.findall(r"^#\d+ ERROR: canceled$", out, re.M)) == 2
    no_containers(fl)
    assert_clean(fl.root)


def test_a_killed_concurrent_build_is_cleaned_up_by_the_next(fl, ctx, tmp_path):
    proc = both_running(fl, ctx, os.urandom(6).hex())
    proc.kill()
    proc.communicate(timeout=30)
    assert_no_corruption(fl.root)
    other = tmp_path / "other"
    other.mkdir()
    (other / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    fl("build", "--network", "none", "-q", str(other))   # removes the killed build's containers
    no_containers(fl)
    with open("/proc/self/mountinfo") as f:
        assert f"{fl.root}/tmp/" not in f.read()
    assert_clean(fl.root)


def test_stages_on_one_missing_base_pull_it_once(fl, ctx, registry):
    ref = f"{registry.host}/parallel/base:1"
    fl("tag", "busybox", ref)
    fl("push", ref)
    root = ctx(f"FROM {ref} AS a\nRUN echo a > /a\nFROM {ref} AS b\nRUN echo b > /b\n"
               f"FROM {ref}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n")
    with temporary_store() as fresh:
        for args in ([], ["--pull"]):   # missing, then present but to be pulled again
            res = fresh("build", "--network", "none", "--progress", "plain", *args, str(root),
                        env=TWO)
            assert res.out.count(f"[internal] pull {ref}") == 1, res.out


def test_a_bad_jobs_setting_is_one_line(fl, ctx):
    root = ctx("FROM busybox AS a\nFROM busybox AS b\nFROM busybox\nCOPY --from=a /etc/passwd /a\n"
               "COPY --from=b /etc/passwd /b\n")
    for bad in ("0", "two", "-1"):
        res = fl("build", "--network", "none", str(root), env={"FORKLIFT_BUILD_JOBS": bad},
                 check=False)
        assert "FORKLIFT_BUILD_JOBS" in one_line_error(res)
