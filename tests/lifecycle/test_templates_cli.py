"""Go templates through the real CLI: listings and inspect render control structures,
variables and functions; a template that does not parse changes nothing and says why."""

from __future__ import annotations

import pytest
from support.cli import Forklift, Result


def one_error_line(res: Result, text: str) -> None:
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
    assert text in lines[0], lines[0]


@pytest.mark.root
def test_listings_and_inspect_run_full_templates(fl: Forklift, busybox: str) -> None:
    fl("tag", "busybox", "busybox:two")
    out = fl.out("images", "--format",
                 '{{if eq .Tag "latest"}}{{.Repository}}{{else}}{{printf "%s=%q" .Repository .Tag}}'
                 "{{end}}")
    assert sorted(out.splitlines()) == ["busybox", 'busybox="two"']
    out = fl.out("image", "inspect", "-f",
                 '{{range $i, $t := .RepoTags}}{{if $i}},{{end}}{{$t}}{{end}}|'
                 '{{len .RootFS.Layers}}|{{json .Config.Cmd}}|{{index .Config.Env 0 | printf "%.5s"}}',
                 "busybox:two")
    assert out == 'busybox:latest,busybox:two|1|["sh"]|PATH='
    out = fl.out("image", "inspect", "-f", '{{define "t"}}<{{.}}>{{end}}{{template "t" .Os}}',
                 "busybox")
    assert out == "<linux>"


@pytest.mark.root
def test_execution_errors_are_one_line_and_exit_1(fl: Forklift, busybox: str) -> None:
    res = fl("image", "inspect", "-f", "{{index .RepoTags 5}}", "busybox", check=False)
    assert res.code == 1 and res.out == ""
    one_error_line(res, 'template parsing error: template: :1:2: executing "" at '
                        "<index .RepoTags 5>: error calling index: index out of range: 5")
    res = fl("image", "inspect", "-f", "{{range .Os}}{{end}}", "busybox", check=False)
    assert res.code == 1
    one_error_line(res, "range can't iterate over linux")
    res = fl("images", "--format", "{{.Nope}}", check=False)
    assert res.code == 1 and res.out == ""
    one_error_line(res, 'template parsing error: template: :1:2: executing "" at <.Nope>: '
                        "can't evaluate field Nope in type *formatter.imageContext")
    res = fl("image", "inspect", "-f", "{{if .Os}}", "busybox", check=False)
    assert res.code == 64
    one_error_line(res, "template parsing error: template: :1: unexpected EOF")
