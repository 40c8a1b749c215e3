"""``--filter`` on every listing and prune, and what the prunes print, as Docker 20.10
answers them (checked against dockerd 20.10.24)."""

from __future__ import annotations

import pytest


def one_error_line(res, text: str) -> None:  # type: ignore[no-untyped-def]
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"Error: {text}", res.err


def names(fl, *args: str) -> list[str]:  # type: ignore[no-untyped-def]
    res = fl(*args)
    assert res.code == 0, res.err
    return sorted(res.lines)


# ----------------------------------------------------------------------------- system prune

@pytest.mark.root
def test_system_prune_removes_unused_networks_after_containers(fl, busybox):
    fl("network", "create", "unused")
    fl("network", "create", "used")
    fl("create", "--name", "user", "--network", "used", "busybox", "true")
    res = fl("system", "prune", "-f")
    assert res.code == 0, res.err
    assert res.out.startswith("Deleted Containers:\n"), res.out
    assert "\n\nDeleted Networks:\nunused\nused\n\nTotal reclaimed space: " in res.out, res.out
    assert names(fl, "network", "ls", "--format", "{{.Name}}") == ["bridge", "host", "none"]


# ----------------------------------------------------------------------------- volume / network prune

@pytest.mark.root
def test_volume_and_network_prune_prompt_and_print_as_docker(fl):
    fl("volume", "create", "sized")
    with open(fl.root / "volumes/sized/_data/f", "wb") as f:
        f.write(b"\0" * 1234)
    res = fl("volume", "prune", "-a", input=b"n\n")
    assert res.out == ("WARNING! This will remove all local volumes not used by at least one"
                       " container.\nAre you sure you want to continue? [y/N] "), res.out
    assert names(fl, "volume", "ls", "-q") == ["sized"]
    res = fl("volume", "prune", "-a", input=b"y\n")
    assert res.out.endswith("Deleted Volumes:\nsized\n\nTotal reclaimed space: 1.234kB\n"), res.out

    fl("network", "create", "spare")
    res = fl("network", "prune", input=b"")  # end of input declines, as Docker's prompt does
    assert res.code == 0 and res.out == (
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue? [y/N] "), res
    assert fl("network", "prune", "-f").out == "Deleted Networks:\nspare\n\n"


# ----------------------------------------------------------------------------- listings

@pytest.mark.root
def test_a_row_rendered_empty_is_an_empty_line(fl, busybox):
    fl("create", "busybox", "true")
    assert fl("ps", "-a", "--format", "{{.Labels}}").out == "\n"
    assert fl("volume", "ls", "--format", "{{.Labels}}").out == ""  # no rows: nothing
    assert fl("volume", "ls", "--format", "table {{.Name}}").out == "VOLUME NAME\n"


@pytest.mark.root
def test_created_at_is_worded_as_docker_words_it(fl, busybox):
    import re

    fl("create", "busybox", "true")
    created = fl("ps", "-a", "--format", "{{.CreatedAt}}").out.strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", created), created
    rfc = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    res = fl("history", "--format", "{{.CreatedAt}}|{{.CreatedSince}}", "busybox")
    at, since = res.out.strip().split("|")
    assert re.fullmatch(rfc, at) and since.endswith(" ago"), res.out
    res = fl("history", "--human=false", "--format", "{{.CreatedAt}}|{{.CreatedSince}}", "busybox")
    at, since = res.out.strip().split("|")
    assert re.fullmatch(rfc, at) and since == at, res.out
    header, row = fl("history", "--human=false", "busybox").lines
    assert header.split() == ["IMAGE", "CREATED", "AT", "CREATED", "BY", "SIZE", "COMMENT"]
    assert re.fullmatch(rfc, row.split()[1]) and row.split()[2].isdigit(), row


# ----------------------------------------------------------------------------- volume ls / network ls

@pytest.mark.root
def test_volume_ls_filters(fl, busybox):
    for args in (["--label", "a=b", "va.x"], ["--label", "a=c", "vb"], ["vaax"],
                 ["--label", "a=b", "--label", "c=d", "vc"]):
        assert fl("volume", "create", *args).code == 0
    assert fl("run", "--network", "none", "-v", "vb:/x", "busybox", "true").code == 0  # attaches vb

    def ls(*filters: str) -> list[str]:
        return names(fl, "volume", "ls", "-q", *[a for f in filters for a in ("--filter", f)])

    assert ls("name=va") == ["va.x", "vaax"]
    assert ls("name=a.x") == ["va.x", "vaax"]          # a regular expression found in the name
    assert ls("name=^vb$", "name=vc") == ["vb", "vc"]  # several names: alternatives
    assert ls("name=va[") == []                        # not an expression: exact only
    assert ls("driver=local") == ["va.x", "vaax", "vb", "vc"] and ls("driver=loc") == []
    assert ls("label=a") == ["va.x", "vb", "vc"]
    assert ls("label=a=b", "label=c") == ["vc"]        # several labels: all must hold
    assert ls("dangling=true") == ls("dangling=1") == ["va.x", "vaax", "vc"]
    assert ls("dangling=false") == ls("dangling=0") == ["vb"]
    assert ls("dangling=true", "dangling=false") == ["va.x", "vaax", "vc"]
    assert ls("Name = vb") == ["vb"]                   # the key is lower-cased, both trimmed
    for flag, code, text in [
        ("bogus=1", 1, "Invalid filter 'bogus'"),
        ("until=1h", 1, "Invalid filter 'until'"),
        ("dangling=maybe", 1, "Invalid filter 'dangling=[maybe]'"),
        ("dangling=TRUE", 1, "Invalid filter 'dangling=[TRUE]'"),
        ("=x", 1, "Invalid filter ''"),
        ("foo", 125, 'invalid argument "foo" for "-f, --filter" flag: bad format of filter'
                     " (expected name=value)"),
    ]:
        res = fl("volume", "ls", "--filter", flag, check=False)
        assert res.code == code and res.out == "", (flag, res)
        one_error_line(res, text)


@pytest.mark.root
def test_network_ls_filters(fl, busybox):
    ids = {}
    for args in (["--label", "a=b", "neta.x"], ["--label", "a=c", "netb"], ["netaax"]):
        res = fl("network", "create", *args)
        assert res.code == 0, res.err
        ids[args[-1]] = res.out.strip()
    fl("create", "--network", "netb", "busybox", "true")

    def ls(*filters: str) -> list[str]:
        return names(fl, "network", "ls", "--format", "{{.Name}}",
                     *[a for f in filters for a in ("--filter", f)])

    assert ls("name=neta") == ls("name=a.x") == ["neta.x", "netaax"]
    assert ls("name=netb", "name=host") == ["host", "netb"]
    assert ls(f"id={ids['netb'][:5]}") == ls(f"id={ids['netb'][3:9]}") == ["netb"]
    assert ls("driver=bridge") == ["bridge", "neta.x", "netaax", "netb"] and ls("driver=bri") == []
    assert ls("label=a") == ["neta.x", "netb"] and ls("label=a=b") == ["neta.x"]
    assert ls("type=custom") == ["neta.x", "netaax", "netb"]
    assert ls("type=builtin") == ["bridge", "host", "none"]
    assert ls("type=custom", "type=builtin") == ls()
    assert ls("scope=local") == ls() and ls("scope=swarm") == []
    assert ls("dangling=true") == ["neta.x", "netaax"]
    assert ls("dangling=0") == ["bridge", "host", "netb", "none"]
    for flag, text in [
        (("bogus=1",), "Invalid filter 'bogus'"),
        (("type=bad",), "invalid filter: 'type'='bad'"),
        (("dangling=maybe",), "invalid value for filter 'dangling', must be \"true\" (or \"1\"),"
                              ' or "false" (or "0")'),
        (("dangling=true", "dangling=false"), 'got more than one value for filter key "dangling"'),
    ]:
        res = fl("network", "ls", *[a for f in flag for a in ("--filter", f)], check=False)
        assert res.code == 1 and res.out == "", (flag, res)
        one_error_line(res, text)


# ----------------------------------------------------------------------------- prunes

@pytest.mark.parametrize(("cmd", "accepted"), [
    (("container", "prune"), ("label=x", "label!=x", "until=1h")),
    (("image", "prune"), ("label=x", "label!=x", "until=1h", "dangling=true")),
    (("volume", "prune"), ("label=x", "label!=x")),
    (("network", "prune"), ("label=x", "label!=x", "until=1h")),
    (("system", "prune"), ("label=x", "label!=x", "until=1h")),
])
@pytest.mark.root
def test_each_prune_takes_exactly_dockers_filter_keys(fl, cmd, accepted):
    for flag in accepted:
        res = fl(*cmd, "-f", "--filter", flag)
        assert res.code == 0 and res.err == "", (flag, res)
    every = ("label=x", "label!=x", "until=1h", "dangling=true", "name=x", "driver=x", "all=1")
    for flag in sorted(set(every) - set(accepted)):
        # refused before the prompt: nothing is asked, nothing removed
        res = fl(*cmd, "--filter", flag, input=b"y\n", check=False)
        assert res.code == 1 and res.out == "", (flag, res)
        one_error_line(res, f"Invalid filter '{flag.split('=')[0]}'")
    if "until=1h" in accepted:
        res = fl(*cmd, "-f", "--filter", "until=bad", check=False)
        one_error_line(res, 'failed to parse value as time or duration: "bad"')
        res = fl(*cmd, "-f", "--filter", "until=1h", "--filter", "until=2h", check=False)
        one_error_line(res, "more than one until filter specified")


def test_system_prune_refuses_until_with_volumes(fl):
    res = fl("system", "prune", "-f", "--volumes", "--filter", "until=1h", check=False)
    assert res.code == 1
    one_error_line(res, 'The "until" filter is not supported with "--volumes"')


@pytest.mark.root
def test_prune_filters_select_what_goes(fl, busybox, busybox_tar):
    def created(*args: str) -> str:
        res = fl("create", *args, "busybox", "true")
        assert res.code == 0, res.err
        return res.out.strip()

    keep = created("-l", "keep=1", "-l", "team=a")
    half = created("-l", "keep=1")
    plain = created()
    out = fl("container", "prune", "-f", "--filter", "label!=keep=1", "--filter", "label!=team").out
    assert out.startswith("Deleted Containers:\n")
    assert set(out.split("\n\n")[0].splitlines()[1:]) == {half, plain}
    assert fl("ps", "-aq", "--no-trunc").out.split() == [keep]
    assert "Deleted Containers" not in fl("container", "prune", "-f", "--filter", "until=1h").out
    assert fl("container", "prune", "-f", "--filter", "until=-1m").out.startswith(
        f"Deleted Containers:\n{keep}\n")

    for args in (["--label", "k=v", "labelled"], ["plain"], ["--label", "k=w", "other"]):
        fl("volume", "create", *args)
    out = fl("volume", "prune", "-a", "-f", "--filter", "label=k", "--filter", "label!=k=w").out
    assert out.startswith("Deleted Volumes:\nlabelled\n\n")
    assert names(fl, "volume", "ls", "-q") == ["other", "plain"]

    fl("network", "create", "--label", "k=v", "n1")
    fl("network", "create", "n2")
    assert fl("network", "prune", "-f", "--filter", "label=k").out == "Deleted Networks:\nn1\n\n"
    assert fl("network", "prune", "-f", "--filter", "until=1h").out == ""
    assert fl("network", "prune", "-f", "--filter", "until=-1m").out == "Deleted Networks:\nn2\n\n"

    tagged = fl("import", "-c", "LABEL k=v", str(busybox_tar), "tagged:1").out.strip()
    fl("import", str(busybox_tar), "other:1")
    out = fl("image", "prune", "-a", "-f", "--filter", "label=k").out
    assert out.startswith(f"Deleted Images:\nuntagged: tagged:1\ndeleted: {tagged}\n"), out
    assert "other:1" not in out
    # dangling=false among the values means every unused image, as Docker's daemon reads it
    out = fl("image", "prune", "-f", "--filter", "dangling=false", "--filter", "until=-1m").out
    assert "untagged: other:1" in out and "untagged: busybox:latest" in out, out
