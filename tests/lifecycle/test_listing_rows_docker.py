"""The rows of the list commands as templates see them, against Docker 20.10's CLI on the
private dockerd: the same objects made in both (the busybox rootfs imported, containers
created with the same flags, a volume and a network with a label), then ``{{json .}}``
key sets, the values that must agree, and templates from Docker's reference pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import Forklift
from support.docker import Docker
from support.docker20 import docker20

P = "fllist"          # every Docker object of this module is named with it
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$")
LONG_VOLUME = f"{P}-a-rather-long-volume-name"


def make_objects(tool: Docker | Forklift, busybox_tar: Path) -> None:
    tool("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), f"{P}:1")
    tool("volume", "create", "--label", "k=v", f"{P}-vol")
    tool("network", "create", "--label", "n=1", f"{P}-net")
    tool("create", "--name", f"{P}-plain", f"{P}:1", "true")
    # run, not create: forklift makes and attaches volumes when a container starts
    tool("run", "--name", f"{P}-vols", "--network", "none", "--label", "x=y",
         "-v", f"{P}-vol:/data", "-v", f"{LONG_VOLUME}:/long", "-v", "/tmp:/host", f"{P}:1",
         "true")
    tool("create", "--name", f"{P}-none", "--network", "none", f"{P}:1", "true")


def remove_objects(docker: Docker) -> None:
    for name in ("plain", "vols", "none"):
        docker("rm", "-f", f"{P}-{name}", check=False)
    docker("volume", "rm", f"{P}-vol", LONG_VOLUME, check=False)
    docker("network", "rm", f"{P}-net", check=False)
    docker("rmi", f"{P}:1", f"{P}:0", check=False)


@pytest.fixture
def both(fl: Forklift, docker: Docker, busybox_tar: Path) -> Iterator[tuple[Forklift, Docker]]:
    d20 = docker20(docker)
    remove_objects(d20)
    make_objects(d20, busybox_tar)
    make_objects(fl, busybox_tar)
    try:
        yield fl, d20
    finally:
        remove_objects(d20)


def rows(tool: Docker | Forklift, *args: str) -> list[dict]:
    out = tool(*args, "--format", "{{json .}}").out
    return [json.loads(line) for line in out.splitlines()]


def by(key: str, found: list[dict]) -> dict[str, dict]:
    return {r[key]: r for r in found}


def same(fl: Forklift, d20: Docker, *args: str) -> None:
    """The same command prints the same on both (or fails with the same status)."""
    want, got = d20(*args, check=False), fl(*args, check=False)
    assert got.code == want.code, (args, got, want)
    assert got.out == want.out, args


@pytest.mark.docker
def test_json_rows_have_dockers_keys_and_values(both: tuple[Forklift, Docker]) -> None:
    fl, d20 = both
    want, got = rows(d20, "images", f"{P}:1"), rows(fl, "images", f"{P}:1")
    assert list(got[0]) == list(want[0])      # the same 11 keys, sorted as Docker's
    for key in ("Containers", "Digest", "Repository", "SharedSize", "Tag", "UniqueSize"):
        assert got[0][key] == want[0][key], key
    assert STAMP.match(got[0]["CreatedAt"]) and got[0]["VirtualSize"].endswith("MB")

    want_ps = by("Names", rows(d20, "ps", "-a", "--filter", f"name={P}"))
    got_ps = by("Names", rows(fl, "ps", "-a", "--filter", f"name={P}"))
    assert sorted(got_ps) == sorted(want_ps)
    for name, w in want_ps.items():
        g = got_ps[name]
        assert list(g) == list(w), name
        for key in ("Command", "Image", "Labels", "LocalVolumes", "Networks", "Ports",
                    "State"):
            assert g[key] == w[key], (name, key)
        # Docker lists mounts in its map's order
        assert sorted(g["Mounts"].split(",")) == sorted(w["Mounts"].split(",")), name
        assert g["Status"].split(")")[0] == w["Status"].split(")")[0], name
        assert STAMP.match(g["CreatedAt"]) and g["Size"].startswith("0B (virtual ")
    assert "fllist-a-rathe…" in got_ps[f"{P}-vols"]["Mounts"].split(",")
    wide = by("Names", rows(fl, "ps", "-a", "--no-trunc", "--filter", f"name={P}"))
    assert LONG_VOLUME in wide[f"{P}-vols"]["Mounts"].split(",")

    want_v, got_v = by("Name", rows(d20, "volume", "ls")), by("Name", rows(fl, "volume", "ls"))
    for name in (f"{P}-vol", LONG_VOLUME):
        assert list(got_v[name]) == list(want_v[name])
        for key in ("Driver", "Labels", "Links", "Name", "Scope", "Size"):
            assert got_v[name][key] == want_v[name][key], key

    want_n = by("Name", rows(d20, "network", "ls"))[f"{P}-net"]
    got_n = by("Name", rows(fl, "network", "ls"))[f"{P}-net"]
    assert list(got_n) == list(want_n)
    for key in ("Driver", "IPv6", "Internal", "Labels", "Name", "Scope"):
        assert got_n[key] == want_n[key], key
    assert STAMP.match(got_n["CreatedAt"]) and "." in got_n["CreatedAt"]


@pytest.mark.docker
def test_history_df_and_stats_rows_have_dockers_keys(both: tuple[Forklift, Docker]) -> None:
    fl, d20 = both
    for args in (("history", f"{P}:1"), ("history", "--no-trunc", "-H=false", f"{P}:1")):
        want, got = rows(d20, *args), rows(fl, *args)
        assert [list(r) for r in got] == [list(r) for r in want], args
        assert [r["CreatedBy"] for r in got] == [r["CreatedBy"] for r in want]
    want, got = rows(d20, "system", "df"), rows(fl, "system", "df")
    assert [list(r) for r in got] == [list(r) for r in want]
    assert [r["Type"] for r in got] == [r["Type"] for r in want]
    # -v with a template: one document, IDs in full, no newline after it
    template = "{{json .}}"
    want_doc = json.loads(d20("system", "df", "-v", "--format", template).out)
    got_doc = json.loads(fl("system", "df", "-v", "--format", template).out)
    assert list(got_doc) == list(want_doc)
    for part in ("Images", "Containers", "Volumes"):
        assert {tuple(r) for r in got_doc[part]} == {tuple(r) for r in want_doc[part]}, part
    mine = [i for i in got_doc["Images"] if i["Repository"] == P][0]
    assert mine["Containers"] == "3" and mine["ID"].startswith("sha256:")
    template = '{{range .Volumes}}{{if eq .Name "fllist-vol"}}{{.Links}}{{.Label "k"}}{{end}}{{end}}'
    same(fl, d20, "system", "df", "-v", "--format", template)
    same(fl, d20, "system", "df", "-v", "--format", "table {{len .BuildCache}}")
    for tool in (fl, d20):   # an image is one row, under its first name
        tool("tag", f"{P}:1", f"{P}:0")
    for tool in (fl, d20):
        mine = [line.split()[:2] for line in tool("system", "df", "-v").out.splitlines()
                if line.startswith(f"{P} ")]
        assert mine == [[P, "0"]], tool
    same(fl, d20, "system", "df", "-v", "--format",
         '{{range .Images}}{{if eq .Repository "fllist"}}{{.Tag}} {{end}}{{end}}')
    for template in ("{{.Nope}}", "{{.Nope"):
        want_res = d20("system", "df", "-v", "--format", template, check=False)
        got_res = fl("system", "df", "-v", "--format", template, check=False)
        assert (got_res.code, got_res.out) == (want_res.code, want_res.out), template
        assert got_res.err.strip().removeprefix("Error: ") == want_res.err.strip(), template


@pytest.mark.docker
def test_stats_json_row_has_dockers_keys(fl: Forklift, docker: Docker, busybox_tar: Path) -> None:
    d20 = docker20(docker)
    name = f"{P}-stats"
    d20("rm", "-f", name, check=False)
    d20("rmi", f"{P}:stats", check=False)
    d20("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), f"{P}:stats")
    fl("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), f"{P}:stats")
    try:
        for tool in (d20, fl):
            tool("run", "-d", "--name", name, "--network", "none", f"{P}:stats", "sleep", "60")
        want = by("Name", rows(d20, "stats", "--no-stream"))[name]
        got = by("Name", rows(fl, "stats", "--no-stream"))[name]
        assert list(got) == list(want)
        assert got["Container"] == got["ID"] and len(got["ID"]) == 12   # no names given
        named = rows(fl, "stats", "--no-stream", name)[0]
        assert named["Container"] == name
        for template in ("{{.Nope}}", "{{.Name", "table {{.Name}}\\t{{.PIDs}}"):
            want_res = d20("stats", "--no-stream", "--format", template, name, check=False)
            got_res = fl("stats", "--no-stream", "--format", template, name, check=False)
            assert got_res.code == want_res.code, template
            assert got_res.out == want_res.out, template
            assert got_res.err.strip().removeprefix("Error: ") == want_res.err.strip(), template
    finally:
        d20("rm", "-f", name, check=False)
        d20("rmi", f"{P}:stats", check=False)
        fl("rm", "-f", name, check=False)


# templates of Docker's reference pages (and its row methods), printed by both
TEMPLATES = [
    ("images", f"{P}:1", "--format", "{{.Repository}}:{{.Tag}}"),
    ("images", f"{P}:1", "--format", "table {{.Repository}}\\t{{.Tag}}"),
    ("images", f"{P}:1", "--format", "{{.Containers}} {{.SharedSize}} {{.UniqueSize}} {{.Digest}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "{{.Names}}: {{.Label \"x\"}}|{{.Label \"zz\"}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "table {{.Names}}\\t{{.Label \"x\"}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format",
     "{{.Names}} {{.Networks}} {{.LocalVolumes}} {{.State}} {{.Ports}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "table {{.Image}}\\t{{.Command}}\\t{{.State}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "{{.Label}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "{{.Label \"x\" \"y\"}}"),
    ("volume", "ls", "--filter", f"name={P}", "--format", "table {{.Name}}\\t{{.Label \"k\"}}\\t{{.Links}}"),
    ("volume", "ls", "--filter", f"name={P}", "--format", "{{.Name}}: {{.Labels}} {{.Driver}} {{.Scope}} {{.Size}}"),
    ("network", "ls", "--filter", f"name={P}", "--format",
     "{{.Name}} {{.Label \"n\"}} {{.Internal}} {{.IPv6}} {{.Labels}} {{.Driver}} {{.Scope}}"),
    ("network", "ls", "--filter", f"name={P}", "--format", "table {{.Name}}\\t{{.Driver}}"),
    ("network", "ls", "--filter", "type=builtin", "--filter", "name=o", "--format",
     "{{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPv6}}"),
    ("network", "ls", "--filter", "driver=null", "--format", "{{.Name}}"),
    ("volume", "ls", "--filter", f"name={P}"),
    ("images", f"{P}:1", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}"),
    ("ps", "-a", "--filter", f"name={P}", "--no-trunc", "--format", "{{len .ID}} {{.Command}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "{{len .ID}} {{.Command}}"),
    ("images", f"{P}:1", "--no-trunc", "--format", "{{len .ID}}"),
    ("history", f"{P}:1", "--no-trunc", "--format", "{{len .ID}} {{.CreatedBy}}"),
    ("system", "df", "--format", "table {{.Type}}"),
    ("ps", "--filter", "name=nomatch"),
    ("ps", "-a", "-s", "--filter", "name=nomatch"),
    ("images", "nomatch"),
    ("volume", "ls", "--filter", "name=nomatch"),
    ("network", "ls", "--filter", "name=nomatch"),
    ("history", f"{P}:1", "--format", "table {{.CreatedBy}}\\t{{.CreatedBy}}"),
    # errors: the same line (forklift's starts with "Error: "), the same status
    ("images", f"{P}:1", "--format", "{{.Nope}}"),
    ("images", f"{P}:1", "--format", "{{.Label \"x\"}}"),
    ("images", f"{P}:1", "--format", "{{.ID"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "{{.Nope}}"),
    ("ps", "-a", "--filter", f"name={P}", "--format", "{{.ID"),
    ("volume", "ls", "--filter", f"name={P}", "--format", "{{.Nope}}"),
    ("network", "ls", "--filter", f"name={P}", "--format", "{{.Nope}}"),
    ("history", f"{P}:1", "--format", "{{.Nope}}"),
    ("system", "df", "--format", "{{.Nope}}"),
    ("info", "--format", "{{.Nope}}"),
    ("info", "--format", "{{.Nope"),
]


@pytest.mark.docker
def test_reference_templates_print_what_docker_prints(both: tuple[Forklift, Docker]) -> None:
    fl, d20 = both
    for args in TEMPLATES:
        want, got = d20(*args, check=False), fl(*args, check=False)
        assert got.code == want.code, (args, got, want)
        if "Size" in args[-1]:   # the busybox image's size differs by its symlinks' sizes
            assert [line.split()[:2] for line in got.out.splitlines()] == \
                [line.split()[:2] for line in want.out.splitlines()], args
        elif want.code == 0:
            assert got.out == want.out, args
        else:
            assert got.out == "", args
            assert got.err.strip().removeprefix("Error: ") == want.err.strip(), args
