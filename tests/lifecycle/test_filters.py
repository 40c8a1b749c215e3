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

def test_volume_and_network_prune_prompt_and_print_as_docker(fl, store_root):
    fl("volume", "create", "sized")
    with open(f"{store_root}/volumes/sized/_data/f", "wb") as f:
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

def test_a_row_rendered_empty_is_an_empty_line(fl, busybox):
    fl("create", "busybox", "true")
    assert fl("ps", "-a", "--format", "{{.Labels}}").out == "\n"
    assert fl("volume", "ls", "--format", "{{.Labels}}").out == ""  # no rows: nothing
    assert fl("volume", "ls", "--format", "table {{.Name}}").out == "VOLUME NAME\n"


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
