"""``inspect --format`` against Docker's on the same image: the same rootfs tarball and
the same ``--change`` lines imported into both, the same templates, the same output (or
the same error line; forklift prefixes ``Error: `` as for every error). Only fields that
both documents carry with the same value are used (Docker's inspect runs templates over
Go structs: a field it lacks is an error there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import Forklift
from support.docker import Docker

CHANGES = ["ENV PATH=/usr/bin:/bin", "ENV X=1", 'CMD ["sh"]', "LABEL b=2 a=1",
           "EXPOSE 80/tcp", "WORKDIR /w", "USER 1000"]
TEMPLATES = [
    "{{.Os}}/{{.Architecture}}",
    "{{.Config.Env}} {{json .Config.Env}}",
    "{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}",
    "{{index .Config.Env 1}} {{len .Config.Env}}",
    "{{.Config.Cmd}} {{json .Config.Cmd}}",
    "{{.Config.Labels}} {{json .Config.Labels}}",
    "{{.Config.Labels.a}}|{{.Config.Labels.zz}}|{{index .Config.Labels \"b\"}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
    "{{.Config.ExposedPorts}} {{json .Config.ExposedPorts}}",
    "{{range $p, $_ := .Config.ExposedPorts}}{{$p}}{{end}}",
    "{{.Config.Entrypoint}} {{json .Config.Entrypoint}} {{.Config.OnBuild}} {{.Config.Volumes}}",
    "{{.RootFS.Type}} {{len .RootFS.Layers}} {{json .RootFS}}",
    "{{.RepoTags}} {{join .RepoTags \",\"}}",
    "{{if .Config.Labels}}labelled{{else}}bare{{end}}",
    "{{with .Config.Entrypoint}}ep{{else}}no entrypoint{{end}}",
    "{{upper .Os}} {{title .Config.WorkingDir}} {{printf \"%q|%5s|%-3d|\" .Config.User .Os 7}}",
    "{{split (index .Config.Env 0) \"=\"}} {{slice (index .Config.Env 1) 0 1}}",
    "{{pad .Os 1 1}}|{{truncate .Architecture 3}}",
    "{{eq .Os \"linux\"}} {{ne .Config.User \"root\"}} {{lt (len .RepoTags) 2}}",
    "{{$c := .Config}}{{with $c.WorkingDir}}{{.}}{{end}} {{- /* trimmed */ -}} !",
    '{{define "env"}}<{{.}}>{{end}}{{range .Config.Env}}{{template "env" .}}{{end}}',
    # errors: one line each, the same words
    "{{.Config.Nope}}",
    "{{.Nope.Deeper}}",
    "{{.Config.Env.X}}",
    "{{index .Config.Env 7}}",
    "{{.Config.Labels.a.b}}",
    "{{.Os",
    "{{if .Os}}",
    "{{nosuch .Os}}",
]


@pytest.mark.docker
def test_inspect_templates_print_what_docker_prints(fl: Forklift, busybox_tar: Path,
                                                   docker: Docker) -> None:
    flags = [arg for change in CHANGES for arg in ("-c", change)]
    docker("rmi", "-f", "fltmpl:1", check=False)
    docker("import", *flags, str(busybox_tar), "fltmpl:1")
    fl("image", "import", *flags, str(busybox_tar), "fltmpl:1")
    for template in TEMPLATES:
        want = docker("image", "inspect", "-f", template, "fltmpl:1", check=False)
        got = fl("image", "inspect", "-f", template, "fltmpl:1", check=False)
        assert got.code == want.code, (template, got, want)
        if want.code == 0:
            assert got.out == want.out, template
        else:
            assert got.out == "", template
            assert got.err.strip().removeprefix("Error: ") == want.err.strip(), template
    docker("rmi", "fltmpl:1")
