"""The listing rows as templates see them: Docker's ``.Label`` method, keys in sorted order,
its tables' column widths, times and binary sizes as Docker's CLI words them."""

from __future__ import annotations

import pytest

from forklift.cli.format import binary_size, go_time, render_rows, table
from forklift.cli.listing import LABELS, Listing
from forklift.gotemplate import ExecError

ROWS = Listing({"Name": "VOLUME NAME"}, ["Name"], label_method=True)
ROW = {"Name": "v", "Driver": "local", "Labels": "k=v", LABELS: {"k": "v", "e": ""}}


def rendered(template: str, listing: Listing = ROWS) -> str:
    return render_rows(template, [listing.struct(ROW)], listing.headers)


@pytest.mark.parametrize(("template", "expected"), [
    ('{{.Label "k"}}|{{.Label "nope"}}|{{.Label "e"}}', "v||"),
    ('{{"k" | .Label}}', "v"),
    ('{{$r := .}}{{$r.Label "k"}}', "v"),
    ('{{with .Label "k"}}{{.}}{{end}}', "v"),
    ('{{printf "%s=%s" "k" (.Label "k")}}', "k=v"),
    ("{{json .}}", '{"Driver":"local","Labels":"k=v","Name":"v"}'),   # fields only, sorted
    ('table {{.Name}}\t{{.Label "k"}}', "VOLUME NAME   k\nv             v"),
])
def test_label_method_and_sorted_fields(template: str, expected: str) -> None:
    assert rendered(template) == expected


@pytest.mark.parametrize(("template", "message"), [
    ("{{.Label}}", "wrong number of args for Label: want 1 got 0"),
    ('{{.Label "a" "b"}}', "wrong number of args for Label: want 1 got 2"),
    ("{{.Label 3}}", "expected string; found 3"),
])
def test_label_method_errors_are_gos(template: str, message: str) -> None:
    with pytest.raises(ExecError) as err:
        rendered(template)
    assert err.value.message == f'template: :1:2: executing "" at <.Label>: {message}' \
        or message in err.value.message


def test_rows_without_the_method_refuse_it() -> None:
    plain = Listing({}, ["Name"])
    with pytest.raises(ExecError):
        rendered('{{.Label "k"}}', plain)
    assert rendered("{{json .}}", plain) == '{"Driver":"local","Labels":"k=v","Name":"v"}'


def test_tables_pad_to_dockers_minimum_and_keep_an_empty_last_cell() -> None:
    assert table(["A", "B"], [["x", ""]]).splitlines() == ["A         B", "x         "]
    assert table(["A", "B"], [["a-long-cell", "y"]]) == "A             B\na-long-cell   y"
    assert table(["UID", "PID"], [["root", "1"]], min_width=20).splitlines()[1] == \
        "root" + " " * 16 + "1"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-30T13:39:46.932917585Z", "2026-11-30 13:39:46.932917585 +0000 UTC"),
    ("2026-11-30T13:39:46.930000000Z", "2026-11-30 13:39:46.93 +0000 UTC"),
    ("2026-11-30T13:39:46Z", "2026-11-30 13:39:46 +0000 UTC"),
    ("0001-01-01T00:00:00Z", "0001-01-01 00:00:00 +0000 UTC"),
    ("2026-11-30T15:39:46+02:00", "2026-11-30 13:39:46 +0000 UTC"),
    ("", ""),
])
def test_go_time(text: str, expected: str) -> None:
    assert go_time(text) == expected


@pytest.mark.parametrize(("size", "expected"), [
    (0, "0B"), (1023, "1023B"), (1024, "1KiB"), (25325268992, "23.59GiB"),
    (1536 * 1024, "1.5MiB"),
])
def test_binary_size_is_dockers_bytes_size(size: int, expected: str) -> None:
    assert binary_size(size) == expected
