"""--change instructions applied to a container Config."""

from __future__ import annotations

import pytest

from forklift import changes
from forklift.errors import InvalidArgument


def test_each_instruction():
    cfg = changes.apply({"Env": ["PATH=/bin"], "WorkingDir": "/a"}, [
        'CMD ["a", "b"]', "ENTRYPOINT run it", "ENV X=1 Y=$PATH", "ENV Z spaced value",
        "EXPOSE 80 1000-1002/udp", 'LABEL "k k"="v v" plain=1', "ONBUILD RUN true",
        "USER 1000:1000", "VOLUME /v /w", "WORKDIR b", "HEALTHCHECK --retries=2 CMD true",
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
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Retries": 2}


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


@pytest.mark.parametrize(("change", "health"), [
    # what Docker 20.10's commit stored for each (its inspect, on this machine)
    ("HEALTHCHECK NONE", {"Test": ["NONE"]}),
    ("healthcheck none", {"Test": ["NONE"]}),
    ('HEALTHCHECK --start-period=2s --retries=4 --timeout=3s CMD ["true"]',
     {"Test": ["CMD", "true"], "Timeout": 3_000_000_000, "StartPeriod": 2_000_000_000, "Retries": 4}),
    ("HEALTHCHECK --interval=1m30s CMD wget -q -O- localhost || exit 1",
     {"Test": ["CMD-SHELL", "wget -q -O- localhost || exit 1"], "Interval": 90_000_000_000}),
    ("HEALTHCHECK --interval=1.5ms cmd [\"a\", \"b c\"]",
     {"Test": ["CMD", "a", "b c"], "Interval": 1_500_000}),
    ("HEALTHCHECK CMD [not json", {"Test": ["CMD-SHELL", "[not json"]}),
])
def test_healthcheck(change, health):
    assert changes.apply({"Healthcheck": {"Test": ["CMD", "old"]}}, [change])["Healthcheck"] == health


@pytest.mark.parametrize(("change", "message"), [
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK foo", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK --bogus=1 CMD true", "Unknown flag: bogus"),
    ("HEALTHCHECK --interval CMD true", "Missing a value on flag: interval"),
    ("HEALTHCHECK --interval=0 CMD true", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --timeout=500us CMD true", 'Interval "timeout" cannot be less than 1ms'),
    ("HEALTHCHECK --start-period=5 CMD true", 'time: invalid duration "5"'),
    ("HEALTHCHECK --retries=0 CMD true", "--retries must be at least 1 (not 0)"),
    ("HEALTHCHECK --retries=x CMD true", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("STOPSIGNAL SIGINT", "stopsignal is not a valid change command"),
    ("RUN true", "run is not a valid change command"),
    ("ARG x", "arg is not a valid change command"),
])
def test_refused_as_docker_words_it(change, message):
    with pytest.raises(InvalidArgument) as exc:
        changes.apply({}, [change])
    assert exc.value.message == message
