"""The builder's pieces without a runtime: history texts, durations, COPY destinations and
confinement, archive detection, step keys, options refused before anything is built."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from forklift.build import builder, cache, fscopy, instructions
from forklift.build.dockerfile import parse
from forklift.errors import InvalidArgument


def apply(line: str, cfg: dict | None = None, env: dict | None = None) -> tuple[dict, str]:
    cfg = dict(cfg or {})
    ins = parse(f"FROM scratch\n{line}\n").instructions[1]
    text = instructions.HANDLERS[ins.keyword](cfg, ins, env or {}, "\\")
    return cfg, text


@pytest.mark.parametrize(("line", "text"), [
    ('ENV A=1 B="two words"', "ENV A=1 B=two words"),
    ("LABEL version=$V", "LABEL version=7"),
    ("EXPOSE 80 53/udp", "EXPOSE 80 53/udp"),
    ("VOLUME /a /b", "VOLUME [/a /b]"),
    ("USER $V", "USER 7"),
    ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGTERM"),
    ('CMD ["a", "b c"]', 'CMD ["a" "b c"]'),
    ("CMD echo $V", 'CMD ["/bin/sh" "-c" "echo $V"]'),
    ('SHELL ["/bin/bash", "-o", "pipefail", "-c"]', "SHELL [/bin/bash -o pipefail -c]"),
    ("HEALTHCHECK NONE", """HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\\x00'}"""),
    ("HEALTHCHECK --interval=1m30s --timeout=3s CMD true",
     """HEALTHCHECK &{["CMD-SHELL" "true"] "1m30s" "3s" "0s" '\\x00'}"""),
])
def test_history_texts_are_dockers(line, text):
    assert apply(line, env={"V": "7"})[1] == text


def test_env_set_again_keeps_its_place_and_entrypoint_takes_the_shell():
    cfg, _ = apply("ENV A=3", {"Env": ["A=1", "B=2"]})
    assert cfg["Env"] == ["A=3", "B=2"]
    cfg, _ = apply("ENTRYPOINT run me", {"Shell": ["/bin/bash", "-c"]})
    assert cfg["Entrypoint"] == ["/bin/bash", "-c", "run me"]


@pytest.mark.parametrize(("text", "ns"), [("5s", 5 * 10**9), ("1m30s", 90 * 10**9),
                                           ("1.5h", 5400 * 10**9), ("250ms", 250 * 10**6)])
def test_go_durations(text, ns):
    assert instructions.parse_duration(text, "interval") == ns


@pytest.mark.parametrize("bad", ["", "5", "5x", "s5", "1m 2s"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(InvalidArgument):
        instructions.parse_duration(bad, "interval")


@pytest.mark.parametrize(("dest", "workdir", "expected"), [
    ("rel", "/w", "/w/rel"), ("rel/", "/w", "/w/rel/"), (".", "/w", "/w/"),
    ("/abs", "/w", "/abs"), ("../up", "/w/x", "/w/up"), ("../../..", "/", "/"),
])
def test_copy_destinations(dest, workdir, expected):
    assert builder._destination(dest, workdir) == expected


@pytest.mark.parametrize(("text", "mode"), [("755", 0o755), ("0640", 0o640), ("4755", 0o4755)])
def test_chmod_octal_sets_the_mode(text, mode):
    chmod = fscopy.parse_chmod(text)
    assert not chmod.relative
    assert chmod.apply(0o600, False) == mode and chmod.apply(0o700, True) == mode


# (spec, mode before, is a directory, mode after): chmod(1)'s answers (checked with
# coreutils' chmod on this machine; no "who" means all classes, umask ignored, as BuildKit)
SYMBOLIC = [
    ("u+x", 0o644, False, 0o744),
    ("+x", 0o644, False, 0o755),
    ("a+x", 0o600, False, 0o711),
    ("go-w", 0o666, False, 0o644),
    ("u=rw,go=r", 0o777, False, 0o644),
    ("a=rX", 0o700, True, 0o555),
    ("a=rX", 0o600, False, 0o444),
    ("a=rX", 0o744, False, 0o555),
    ("o=", 0o777, False, 0o770),
    ("u+s", 0o755, False, 0o4755),
    ("g+s", 0o755, True, 0o2755),
    ("+t", 0o777, True, 0o1777),
    ("u-x,g+w", 0o755, False, 0o675),
]


@pytest.mark.parametrize(("text", "before", "is_dir", "after"), SYMBOLIC)
def test_chmod_symbolic_applies_to_the_source_mode(text, before, is_dir, after):
    chmod = fscopy.parse_chmod(text)
    assert chmod.relative
    assert oct(chmod.apply(before, is_dir)) == oct(after)


@pytest.mark.parametrize("bad", ["99", "777777", "", "u+q", "x+u", "u+x,,", "755,u+x"])
def test_chmod_refuses_what_is_neither(bad):
    with pytest.raises(InvalidArgument):
        fscopy.parse_chmod(bad)


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def test_archives_are_recognised_in_every_compression(tmp_path: Path):
    for name, data in (("plain.tar", _tar_bytes()), ("t.tgz", gzip.compress(_tar_bytes())),
                       ("text", b"hello " * 200), ("gz-not-tar", gzip.compress(b"x" * 1000)),
                       ("short", b"ustar")):
        (tmp_path / name).write_bytes(data)
    assert [n for n in ("plain.tar", "t.tgz", "text", "gz-not-tar", "short")
            if fscopy.is_archive(str(tmp_path / n))] == ["plain.tar", "t.tgz"]


def test_step_keys_depend_on_every_input():
    base = cache.step_key("sha256:a", ["RUN", "x"], {"A": "1"}, "s")
    assert base == cache.step_key("sha256:a", ["RUN", "x"], {"A": "1"}, "s")
    assert len({base, cache.step_key("sha256:b", ["RUN", "x"], {"A": "1"}, "s"),
                cache.step_key("sha256:a", ["RUN", "y"], {"A": "1"}, "s"),
                cache.step_key("sha256:a", ["RUN", "x"], {"A": "2"}, "s"),
                cache.step_key("sha256:a", ["RUN", "x"], {"A": "1"}, "t")}) == 5


def test_glob_in_an_image_stays_inside(tmp_path: Path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_text("bb")
    os.symlink("busybox", root / "bin" / "sh")
    os.symlink("/usr/etc", root / "etc")        # absolute: means the image's /usr/etc
    assert fscopy.glob_in(str(root), "/bin/sh") == [str(root / "bin" / "sh")]
    assert fscopy.glob_in(str(root), "bin/b*") == [str(root / "bin" / "busybox")]
    with pytest.raises(InvalidArgument, match="not found"):
        fscopy.glob_in(str(root), "/etc/passwd")   # the host's exists, the image's does not
    with pytest.raises(InvalidArgument, match="not found"):
        fscopy.glob_in(str(root), "/../../../etc/passwd")


@pytest.mark.root
def test_copy_writes_through_image_symlinks_inside_the_root(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    host = tmp_path / "host"
    host.mkdir()
    os.symlink(str(host), root / "out")         # in the image: /out -> <host path>
    os.symlink("../../../../..", root / "up")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("data")
    owner = fscopy.Owner(0, 0, None)
    fscopy.copy(str(root), [fscopy.Source(str(src / "f"), str(src))], "/out/", owner)
    fscopy.copy(str(root), [fscopy.Source(str(src / "f"), str(src))], "/up/x", owner)
    assert list(host.iterdir()) == []
    assert (root / str(host).lstrip("/") / "f").read_text() == "data"
    assert (root / "x").read_text() == "data"


def test_options_refused_before_anything_is_built():
    opts = builder.BuildOptions(network="container:x")
    with pytest.raises(InvalidArgument, match="network mode"):
        builder.build(None, None, b"FROM scratch\n", opts)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="not supported"):
        builder.build(None, None, b"FROM scratch\n",  # type: ignore[arg-type]
                      builder.BuildOptions(platform="windows/amd64"))
