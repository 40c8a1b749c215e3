"""--change instructions applied to a container Config."""

from __future__ import annotations

import pytest

from forklift import changes
from forklift.errors import InvalidArgument


def test_each_instruction():
    cfg = changes.apply({"Env": ["PATH=/bin"], "WorkingDir": "/a"}, [
        'CMD ["a", "b"]', "ENTRYPOINT run it", "ENV X=1 Y=$PATH", "ENV Z spaced value",
        "EXPOSE 80 1000-1002/udp", 'LABEL "k k"="v v" plain=1', "ONBUILD RUN true",
        "USER 1000:1000", "VOLUME /v /w", "WORKDIR b", "STOPSIGNAL SIGTERM",
    ])
    assert cfg["Cmd"] == ["a", "b"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "run it"]
    assert cfg["Env"] == ["PATH=/bin", "X=1", "Y=/bin", "Z=spaced value"]
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "1000/udp", "1001/udp", "1002/udp"}
    assert cfg["Labels"] == {"k k": "v v", "plain": "1"}
    assert cfg["OnBuild"] == ["RUN true"]
    assert cfg["User"] == "1000:1000"
    assert cfg["Volumes"] == {"/v": {}, "/w": {}}
    assert cfg["WorkingDir"] == "/a/b"
    assert cfg["StopSignal"] == "SIGTERM"


def test_input_is_not_modified():
    original = {"Env": ["A=1"]}
    changes.apply(original, ["ENV B=2"])
    assert original == {"Env": ["A=1"]}


def test_expansion_forms():
    env = {"A": "x", "E": ""}
    assert changes.expand("$A ${A} ${E:-d} ${A:+alt} ${NOPE} \\$A", env) == "x x d alt  $A"


@pytest.mark.parametrize("line", [
    "FROM busybox", "RUN true", "ENV", "ENV =x", "EXPOSE http", "EXPOSE 99999", "EXPOSE 80/xyz",
    "ONBUILD ONBUILD RUN x", "WORKDIR", "USER", 'LABEL "unterminated=1',
])
def test_rejected(line):
    with pytest.raises(InvalidArgument):
        changes.apply({}, [line])
