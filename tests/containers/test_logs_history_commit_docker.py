"""``logs --details``, ``history --human=false`` and ``commit --change``, compared with Docker 20.10."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import Forklift
from support.cli import one_line_error
from support.docker import Docker


@pytest.fixture(scope="module")
def docker_busybox(docker: Docker, busybox_tar: Path) -> str:
    docker("import", "-c", "ENV PATH=/bin:/usr/bin", str(busybox_tar), "fl-ld-busybox:latest")
    return "fl-ld-busybox:latest"


@pytest.mark.docker
def test_logs_details_without_attributes_match_docker(fl: Forklift, docker: Docker,
                                                      docker_busybox: str, name: str):
    script = "echo one; echo two >&2; printf 'no newline'"
    for cli, image in ((docker, docker_busybox), (fl, "busybox")):
        cli("run", "--name", name, "--network", "none", image, "sh", "-c", script)
    try:
        theirs, ours = docker("logs", "--details", name), fl("logs", "--details", name)
        assert (ours.out, ours.err) == (theirs.out, theirs.err) == (" one\n no newline", " two\n")
        stamped = fl.out("logs", "--details", "-t", name).splitlines()
        assert stamped[0].endswith("Z  one") and len(stamped[0].split(" ")) == 3
    finally:
        docker("rm", name, check=False)
        fl("rm", name, check=False)


def test_logs_details_print_the_attributes_as_docker(fl: Forklift, name: str):
    """The line Docker 20.10 wrote for ``--log-opt labels=a,b --log-opt env=E`` (with
    ``-e 'E=x y&' -l b=2 -l a=7``) and what its ``logs --details`` printed for it."""
    cid = fl.out("create", "--name", name, "busybox", "true")
    log = fl.root / "containers" / cid / f"{cid}-json.log"
    entry = {"log": "hi\n", "stream": "stdout", "attrs": {"E": "x y&", "a": "7", "b": "2"},
             "time": "2026-11-30T12:00:11.458314525Z"}
    log.write_text(json.dumps(entry) + "\n")
    try:
        assert fl("logs", "--details", name).out == "E=x+y%26,a=7,b=2 hi\n"
        assert fl("logs", "--details", "-t", name).out == \
            "2026-11-30T12:00:11.458314525Z E=x+y%26,a=7,b=2 hi\n"
        assert fl("logs", name).out == "hi\n"
    finally:
        fl("rm", name)


@pytest.mark.docker
def test_history_not_human_matches_docker(fl: Forklift, docker: Docker, docker_busybox: str,
                                          name: str):
    docker("run", "--name", name, "--network", "none", docker_busybox, "sh", "-c", "echo hi > /f")
    fl("run", "--name", name, "--network", "none", "busybox", "sh", "-c", "echo hi > /f")
    try:
        docker("commit", "-m", "m", name, f"{name}-img")
        fl("commit", "-m", "m", name, f"{name}-img")
        for flag in ("--human=false", "-H=false"):
            fmt = "{{.CreatedAt}}|{{.CreatedSince}}|{{.Size}}|{{.Comment}}"
            theirs = docker("history", flag, "--format", fmt, f"{name}-img").out.splitlines()
            ours = fl.out("history", flag, "--format", fmt, f"{name}-img").splitlines()
            assert len(ours) == len(theirs) == 2
            # the committed layer's size, its comment and the RFC 3339 shape; the imported
            # layer's size differs (forklift's layer size leaves symlinks out) and so do times
            assert ours[0].split("|")[2:] == theirs[0].split("|")[2:] == ["3", "m"]
            for row in ours:
                at, since = row.split("|")[:2]
                assert at == since and len(at) == 20 and at.endswith("Z") and at[10] == "T"
            header = fl.out("history", flag, f"{name}-img").splitlines()[0]
            assert header.split() == docker("history", flag, f"{name}-img").out.splitlines()[0].split()
    finally:
        for cli in (docker, fl):
            cli("rm", name, check=False)
            cli("rmi", f"{name}-img", check=False)


COMMIT_CHANGES = [
    ["HEALTHCHECK --interval=5s CMD true"],
    ["HEALTHCHECK NONE"],
    ['HEALTHCHECK --start-period=2s --retries=4 --timeout=3s CMD ["true"]'],
    ["HEALTHCHECK CMD wget -q localhost || exit 1", "ENV A=1", "LABEL a=b", "USER 1",
     "WORKDIR /w", "EXPOSE 80", "VOLUME /v", "ONBUILD RUN x", 'CMD ["x"]', "ENTRYPOINT sh"],
]
BAD_CHANGES = ["HEALTHCHECK CMD", "HEALTHCHECK --interval=0 CMD true", "HEALTHCHECK --bogus=1 CMD true",
               "HEALTHCHECK --retries=0 CMD true", "HEALTHCHECK foo", "HEALTHCHECK NONE x",
               "STOPSIGNAL SIGINT", "RUN true"]


@pytest.mark.docker
def test_commit_changes_match_docker(fl: Forklift, docker: Docker, docker_busybox: str, name: str):
    docker("create", "--name", name, "--network", "none", docker_busybox, "true")
    fl("create", "--name", name, "--network", "none", "busybox", "true")
    keys = ("Healthcheck", "Env", "Labels", "User", "WorkingDir", "ExposedPorts", "Volumes",
            "OnBuild", "Cmd", "Entrypoint")
    try:
        for i, changes in enumerate(COMMIT_CHANGES):
            flags = [a for c in changes for a in ("--change", c)]
            out = []
            for cli in (docker, fl):
                cli("commit", *flags, name, f"{name}-img:{i}")
                cfg = json.loads(cli("image", "inspect", "--format", "{{json .Config}}",
                                     f"{name}-img:{i}").out)
                # forklift leaves unset keys out of an image's Config, Docker writes null
                # (and the two busybox images were given different PATHs)
                cfg["Env"] = [e for e in cfg.get("Env") or [] if not e.startswith("PATH=")]
                out.append({k: cfg.get(k) or None for k in keys})
            assert out[1] == out[0], changes
        for change in BAD_CHANGES:
            theirs = docker("commit", "--change", change, name, f"{name}-bad", check=False)
            ours = fl("commit", "--change", change, name, f"{name}-bad", check=False)
            assert theirs.code != 0, change
            line = theirs.err.strip().splitlines()[-1].replace("Error response from daemon: ", "Error: ")
            assert one_line_error(ours) == line, change
        assert "-bad" not in fl.out("images", "--format", "{{.Repository}}")
    finally:
        for cli in (docker, fl):
            cli("rm", name, check=False)
            for i in range(len(COMMIT_CHANGES)):
                cli("rmi", f"{name}-img:{i}", check=False)
