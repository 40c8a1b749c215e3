"""``forklift build`` end to end: every instruction's effect on the image, stages, COPY/ADD
rules and confinement, failures, the CLI's flags."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import subprocess
import tarfile

import pytest
from support import Forklift, one_line_error
from support.store import assert_clean

pytestmark = pytest.mark.root


def inspect_image(fl: Forklift, image: str) -> dict:
    return dict(json.loads(fl.out("image", "inspect", "--format", "{{json .}}", image)))


def history(fl: Forklift, image: str) -> list[str]:
    """created_by of each history entry, oldest first."""
    return fl.out("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).splitlines()[::-1]


def sh(fl: Forklift, image: str, script: str) -> str:
    return fl.out("run", "--rm", "--network", "none", "-u", "0", "--entrypoint", "sh", image,
                  "-c", script)


def no_containers(fl: Forklift) -> None:
    assert fl.out("ps", "-aq") == ""


METADATA = """\
FROM busybox
ARG V=1
ENV A=b C="d e"
LABEL x=y
RUN echo hi $V && mkdir /made
RUN true
WORKDIR /app
COPY a.txt .
USER nobody
EXPOSE 80/udp 8080
VOLUME /data
STOPSIGNAL SIGKILL
HEALTHCHECK --interval=5s --retries=3 CMD echo ok
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT echo ep
MAINTAINER me
ONBUILD RUN echo triggered
CMD ["sh", "-c", "echo run"]
"""


def test_every_instruction_sets_the_config_and_history_as_docker_does(fl, ctx):
    root = ctx(METADATA, **{"a.txt": "hello\n"})
    res = fl("build", "--network", "none", "--progress", "plain", "-t", "meta", str(root))
    assert "#5 [5/18] RUN echo hi $V && mkdir /made" in res.out
    assert "hi 1" in res.out and "Successfully tagged meta:latest" in res.out
    info = inspect_image(fl, "meta")
    cfg = info["Config"]
    assert cfg["Env"][1:] == ["A=b", "C=d e"] and cfg["Env"][0].startswith("PATH=")
    assert cfg["Labels"] == {"x": "y"} and cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"80/udp": {}, "8080/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}} and cfg["WorkingDir"] == "/app"
    assert cfg["StopSignal"] == "SIGKILL" and cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "echo ok"], "Interval": 5_000_000_000,
                                  "Retries": 3}
    assert cfg["Entrypoint"] == ["/bin/sh", "-ec", "echo ep"]
    assert cfg["Cmd"] == ["sh", "-c", "echo run"] and cfg["OnBuild"] == ["RUN echo triggered"]
    assert info["Author"] == "me"
    # busybox, RUN mkdir, WORKDIR (new directory), COPY: RUN true added nothing
    assert len(info["RootFS"]["Layers"]) == 4
    created = history(fl, "meta")
    created = created[created.index("/bin/sh -c #(nop)  ARG V=1"):]
    assert created[:6] == [
        "/bin/sh -c #(nop)  ARG V=1", "/bin/sh -c #(nop)  ENV A=b C=d e",
        "/bin/sh -c #(nop)  LABEL x=y", "|1 V=1 /bin/sh -c echo hi $V && mkdir /made",
        "|1 V=1 /bin/sh -c true", "/bin/sh -c #(nop) WORKDIR /app"]
    assert created[6].startswith("/bin/sh -c #(nop) COPY file:") and created[6].endswith(" in . ")
    assert created[10:] == [
        "/bin/sh -c #(nop)  STOPSIGNAL SIGKILL",
        """/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "echo ok"] "5s" "0s" "0s" '\\x03'}""",
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        '/bin/sh -ec #(nop)  ENTRYPOINT ["/bin/sh" "-ec" "echo ep"]',
        "/bin/sh -ec #(nop)  MAINTAINER me", "/bin/sh -ec #(nop)  ONBUILD RUN echo triggered",
        '/bin/sh -ec #(nop)  CMD ["sh" "-c" "echo run"]']
    assert "V=" not in " ".join(cfg["Env"])  # build args are not persisted
    assert sh(fl, "meta", "cat /app/a.txt; test -d /made && echo made") == "hello\nmade"
    # every intermediate image is hidden from `images`, the final one is listed
    assert "<none>" not in fl.out("images") and "<none>" in fl.out("images", "-a")


def test_entrypoint_resets_an_inherited_cmd_and_onbuild_triggers_run_in_the_child(fl, ctx):
    fl("build", "--network", "none", "-t", "parent",
       str(ctx("FROM busybox\nONBUILD RUN echo from-trigger > /trig\nCMD [\"sh\"]\n")))
    res = fl("build", "--network", "none", "--progress", "plain", "-t", "child",
             str(ctx("FROM parent\nENTRYPOINT [\"cat\"]\n")))
    assert "ONBUILD RUN echo from-trigger > /trig" in res.out
    cfg = inspect_image(fl, "child")["Config"]
    assert cfg["Entrypoint"] == ["cat"] and cfg.get("Cmd") is None and not cfg.get("OnBuild")
    assert fl.out("run", "--rm", "child", "/trig") == "from-trigger"
    fl("build", "--network", "none", "-t", "child2",
       str(ctx("FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"echo\"]\n")))
    assert fl.out("run", "--rm", "child2") == "x"  # CMD of the same stage stays


def test_build_args_scope_defaults_and_proxies(fl, ctx):
    root = ctx("ARG BASE=busybox\nARG GLOBAL=g\nFROM $BASE\nARG GLOBAL\nARG WHO=def\n"
               "ENV FIXED=env\nARG FIXED=arg\n"
               "RUN echo \"$WHO $GLOBAL $FIXED ${http_proxy:-none}\" > /out\n")
    res = fl("build", "--network", "none", "-q", "--build-arg", "WHO=given",
             "--build-arg", "http_proxy=http://proxy:1", "--build-arg", "UNUSED=1", str(root))
    image = res.out.strip()
    assert "were not consumed" not in res.out
    assert sh(fl, image, "cat /out") == "given g env http://proxy:1"
    created = history(fl, image)[-1]
    assert created == "|2 GLOBAL=g WHO=given /bin/sh -c echo \"$WHO $GLOBAL $FIXED ${http_proxy:-none}\" > /out"
    assert "proxy" not in json.dumps(inspect_image(fl, image)["Config"])


def test_copy_follows_dockers_destination_rules(fl, ctx):
    root = ctx("FROM busybox\nWORKDIR /w\nCOPY a.txt rel\nCOPY a.txt b.txt /multi/\n"
               "COPY d /contents\nCOPY d/ /deep/new/parents/\n"
               "COPY --chown=nobody:nogroup --chmod=0640 a.txt /owned\nCOPY --chown=123 a.txt /num\n"
               "COPY *.txt /glob/\n",
               **{"a.txt": "A", "b.txt": "BB", "d/sub/f": "F"})
    os.chmod(root / "d" / "sub" / "f", 0o751)
    fl("build", "--network", "none", "-t", "copies", str(root))
    out = sh(fl, "copies", "cd /; for p in w/rel multi/a.txt multi/b.txt contents/sub/f deep deep/new "
                           "deep/new/parents/sub/f owned num glob/a.txt glob/b.txt; do "
                           "stat -c '%n %F %a %u:%g' $p; done")
    assert out.splitlines() == [
        "w/rel regular file 644 0:0", "multi/a.txt regular file 644 0:0",
        "multi/b.txt regular file 644 0:0", "contents/sub/f regular file 751 0:0",
        "deep directory 755 0:0", "deep/new directory 755 0:0",
        "deep/new/parents/sub/f regular file 751 0:0",
        "owned regular file 640 65534:65534", "num regular file 644 123:123",
        "glob/a.txt regular file 644 0:0", "glob/b.txt regular file 644 0:0"]
    assert sh(fl, "copies", "cat /w/rel /multi/b.txt /contents/sub/f /glob/b.txt") == "ABBFBB"
    res = fl("build", str(ctx("FROM busybox\nCOPY a.txt b.txt /nodir\n")), check=False)
    assert "must be a directory and end with a /" in one_line_error(res)


def test_dockerignore_holds_inside_copied_directories(fl, ctx):
    root = ctx("FROM busybox\nCOPY . /ctx/\n", **{
        ".dockerignore": "secret.txt\nlogs\n!logs/keep.log\n", "secret.txt": "s",
        "logs/a.log": "a", "logs/keep.log": "k", "src/main.c": "int main;"})
    fl("build", "--network", "none", "-t", "ignored", str(root))
    listing = sh(fl, "ignored", "cd /ctx && find . | sort")
    assert listing.splitlines() == [".", "./.dockerignore", "./Dockerfile", "./logs",
                                    "./logs/keep.log", "./src", "./src/main.c"]


def test_copy_and_add_stay_inside_the_context_and_the_image(fl, ctx, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    root = ctx("FROM busybox\nCOPY ../outside/secret /x\n")
    assert "outside the build context" in one_line_error(fl("build", str(root), check=False))
    os.symlink(str(outside / "secret"), root / "link")
    (root / "Dockerfile").write_text("FROM busybox\nCOPY link /x\n")
    one_line_error(fl("build", str(root), check=False))
    # a symlink in the image pointing at a host path: followed inside the image's root
    target = tmp_path / "host-target"
    target.mkdir()
    (root / "Dockerfile").write_text(f"FROM busybox\nRUN ln -s {target} /escape\n"
                                     "COPY a.txt /escape/\nWORKDIR /escape/wd\n")
    (root / "a.txt").write_text("A")
    fl("build", "--network", "none", "-t", "confined", str(root))
    assert list(target.iterdir()) == []
    assert sh(fl, "confined", f"cat {target}/a.txt; test -d {target}/wd && echo wd") == "Awd"
    no_containers(fl)


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def test_add_extracts_local_tarballs_and_confines_hostile_ones(fl, ctx, tmp_path):
    good = gzip.compress(_tar([(_entry("dir/file"), b"content"),
                               (_entry("dir/link", tarfile.SYMTYPE, "file"), None)]))
    root = ctx("FROM busybox\nADD good.tar.gz /unpacked/\nADD plain.txt /plain\n",
               **{"good.tar.gz": good, "plain.txt": "not a tar"})
    fl("build", "--network", "none", "-t", "added", str(root))
    assert sh(fl, "added", "cat /unpacked/dir/link /plain") == "contentnot a tar"
    victim = tmp_path / "victim"
    for hostile in (
        [(_entry("../../../../../../.." + str(victim)), b"x")],
        [(_entry("up", tarfile.SYMTYPE, str(tmp_path)), None), (_entry("up/victim"), b"x")],
    ):
        (root / "evil.tar").write_bytes(_tar(hostile))
        (root / "Dockerfile").write_text("FROM busybox\nADD evil.tar /x/\n")
        one_line_error(fl("build", "--network", "none", str(root), check=False))
        assert not victim.exists()
    no_containers(fl)
    assert_clean(fl.root)


def test_multi_stage_target_and_copy_from(fl, ctx):
    root = ctx("FROM busybox AS build\nRUN echo built > /artifact\n"
               "FROM busybox AS unused\nRUN exit 3\n"
               "FROM scratch AS final\nCOPY --from=build /artifact /artifact\n"
               "COPY --from=0 /bin/busybox /bin/busybox\nCOPY --from=busybox /etc/passwd /etc/\n"
               "FROM final AS last\nLABEL last=1\n"
               "FROM busybox AS other\nRUN exit 4\n")
    res = fl("build", "--network", "none", "--progress", "plain", "--target", "last", "-t", "ms",
             str(root))
    assert "exit 3" not in res.out and "exit 4" not in res.out  # stages the target does not need
    assert fl.out("run", "--rm", "ms", "/bin/busybox", "cat", "/artifact") == "built"
    info = inspect_image(fl, "ms")
    assert info["Config"]["Labels"] == {"last": "1"} and len(info["RootFS"]["Layers"]) == 3
    res = fl("build", "--target", "nope", str(root), check=False)
    assert 'target stage "nope" could not be found' in one_line_error(res)


def test_copy_from_a_stage_named_by_an_arg(fl, ctx):
    # buildah's arg-scope/Containerfile.copy-from-arg and …stage-overrides-header-copy-from
    # (Docker 20.10's builders refuse a $ in --from; BuildKit since expands it, as here)
    root = ctx("ARG SRC=a\nFROM busybox AS a\nRUN echo a > /from.txt\n"
               "FROM busybox AS b\nRUN echo b > /from.txt\n"
               "FROM scratch\nARG SRC\nCOPY --from=$SRC /from.txt /\n")
    for args, want in (((), b"a\n"), (("--build-arg", "SRC=b"), b"b\n")):
        rootfs = fl("build", "--network", "none", "-o", "-", *args, str(root)).data
        with tarfile.open(fileobj=io.BytesIO(rootfs)) as tf:
            assert tf.extractfile("from.txt").read() == want  # type: ignore[union-attr]


def test_a_failing_run_reports_dockers_message_and_leaves_nothing(fl, ctx):
    root = ctx("FROM busybox\nRUN echo first; echo second >&2; false\n")
    res = fl("build", "--network", "none", "--progress", "plain", str(root), check=False)
    assert res.code == 1
    assert "second" in res.out and "#2 ERROR:" in res.out
    assert res.err.strip() == "Error: The command '/bin/sh -c echo first; echo second >&2; false'" \
                              " returned a non-zero code: 1"
    res = fl("build", "-q", "--network", "none", str(root), check=False)
    assert res.code == 1 and res.out == "" and "second" in res.err  # quiet: the tail on stderr
    no_containers(fl)
    assert_clean(fl.root)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_build_kills_and_removes_its_container(fl, ctx, sig):
    root = ctx("FROM busybox\nRUN echo started; sleep 60\n")
    proc = subprocess.Popen([*fl.argv, "build", "--network", "none", "--progress", "plain",
                             str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.match(r"#2 [0-9.]+ started", line):   # the container runs
            break
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 130
    assert "#2 ERROR: canceled" in proc.stdout.read()
    no_containers(fl)
    assert_clean(fl.root)


def test_missing_base_image_and_unsupported_features_are_one_line(fl, ctx):
    for text, message in (
        # a registry that refuses at once: a missing base is pulled, and no test reaches Docker Hub
        ("FROM 127.0.0.1:1/nosuch:1\n", "127.0.0.1:1/nosuch:1 is not in the store and could not be pulled"),
        ("FROM busybox\nRUN --security=insecure true\n", "RUN --security is not supported yet"),
        # a git repository on a port nothing listens on: refused at once
        ("FROM busybox\nADD http://127.0.0.1:1/x/y.git /x\n", "ADD http://127.0.0.1:1/x/y.git: "),
    ):
        assert message in one_line_error(fl("build", str(ctx(text)), check=False)), text
    res = fl("build", "--platform", "linux/s390x", str(ctx("FROM busybox\n")), check=False)
    assert "not supported" in one_line_error(res)


def test_quiet_iidfile_and_several_tags(fl, ctx, tmp_path):
    root = ctx("FROM busybox\nLABEL q=1\n")
    iid = tmp_path / "iid"
    res = fl("build", "-q", "--iidfile", str(iid), "-t", "one", "-t", "two:2", "--label", "l=v",
             str(root))
    image_id = res.out.strip()
    assert res.out == image_id + "\n" and image_id.startswith("sha256:") and len(image_id) == 71
    assert iid.read_text() == image_id
    for name in ("one", "two:2"):
        assert fl.out("image", "inspect", "--format", "{{.Id}}", name) == image_id
    assert inspect_image(fl, "one")["Config"]["Labels"] == {"q": "1", "l": "v"}
    assert fl.out("image", "build", "-q", str(root), "--label", "l=v") == image_id  # cached
    assert fl.out("builder", "build", "-q", "-f", str(root / "Dockerfile"), str(root),
                  "--label", "l=v") == image_id


def test_shm_size_sizes_every_run_containers_dev_shm(fl, ctx):
    root = ctx("FROM busybox\nRUN grep ' /dev/shm ' /proc/mounts > /mounts\n"
               "RUN df -k /dev/shm | tail -n 1 > /df\n")
    sized = fl.out("build", "-q", "--no-cache", "--shm-size", "3m", str(root))
    assert sh(fl, sized, "cat /mounts").count("/dev/shm") == 1   # replaced, not stacked
    assert "size=3072k" in sh(fl, sized, "cat /mounts")
    assert sh(fl, sized, "cat /df").split()[1] == "3072"
    default = fl.out("build", "-q", "--no-cache", str(root))
    assert "size=65536k" in sh(fl, default, "cat /mounts")
    res = fl("build", "--shm-size", "lots", str(root), check=False)
    assert "invalid --shm-size 'lots'" in one_line_error(res)


def test_a_context_as_a_tar_on_stdin(fl, ctx, tmp_path):
    root = ctx("FROM busybox\nCOPY a.txt /from-stdin\n", **{"a.txt": "tarred"})
    archive = tmp_path / "ctx.tar"
    with tarfile.open(archive, "w") as tf:
        for name in ("Dockerfile", "a.txt"):
            tf.add(root / name, arcname=name)
    image = fl.out("build", "-q", "-", stdin=archive)
    assert fl.out("run", "--rm", "--network", "none", image, "cat", "/from-stdin") == "tarred"


@pytest.mark.docker
def test_docker_loads_and_runs_a_built_image(fl, ctx, docker, tmp_path):
    root = ctx("FROM busybox\nCOPY a.txt /a.txt\nRUN echo ran >> /a.txt\nCMD [\"cat\", \"/a.txt\"]\n",
               **{"a.txt": "copied\n"})
    fl("build", "--network", "none", "-t", "for-docker:1", str(root))
    archive = tmp_path / "img.tar"
    fl("save", "-o", str(archive), "for-docker:1")
    docker("load", "-i", str(archive))
    assert docker("run", "--rm", "--network", "none", "for-docker:1").out == "copied\nran\n"


def test_dockerfile_warnings_are_printed_before_the_steps(fl, ctx):
    root = ctx("# syntax=example.com/frontend:9\nFROM busybox\nRUN echo a \\\n\n  b\nMAINTAINER x\n")
    lines = fl("build", "--progress", "plain", str(root)).out.splitlines()
    warnings = [i for i, line in enumerate(lines) if line.startswith("[Warning] Dockerfile:")]
    assert [lines[i].split(":")[1:3] for i in warnings] == [
        ["1", " syntax directive ignored"], ["3", " NoEmptyContinuation"],
        ["6", " MaintainerDeprecated"]]
    assert max(warnings) < lines.index("#1 [1/3] FROM busybox")
