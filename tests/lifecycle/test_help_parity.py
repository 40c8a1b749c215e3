"""``run --help`` and ``create --help`` parity (issue 13): every flag Docker 20.10's client
lists is one forklift accepts, unless it is in DIFFERENCES with the reason. Docker's list
comes from its own client (``/usr/bin/docker``, docker.io 20.10: no daemon needed)."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import pytest

DOCKER20 = "/usr/bin/docker"

# Docker flag -> why forklift does not have it. Keep it short: each entry is a gap.
DIFFERENCES: dict[str, dict[str, str]] = {
    "run": {},
    "create": {},
}

_FLAG = re.compile(r"^\s+(?:(-[a-zA-Z]), )?(--[a-z0-9-]+)")


def flags(help_text: str) -> set[str]:
    """The short and long options of a cobra or click ``--help`` text."""
    out: set[str] = set()
    for line in help_text.splitlines():
        m = _FLAG.match(line)
        if m:
            out.update(f for f in m.groups() if f)
    return out


def _docker_help(command: str) -> str:
    if not os.path.exists(DOCKER20):
        pytest.skip(f"{DOCKER20} (Debian's docker.io, Docker 20.10) is not installed")
    proc = subprocess.run([DOCKER20, command, "--help"], capture_output=True, text=True,
                          timeout=60, check=True,
                          env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert "Docker" in subprocess.run([DOCKER20, "--version"], capture_output=True,
                                      text=True, check=True).stdout
    return proc.stdout


@pytest.mark.parametrize("command", ["run", "create"])
def test_every_docker_flag_is_accepted(fl: Any, command: str) -> None:
    theirs = flags(_docker_help(command))
    assert {"--rm", "-e", "--env", "--volume"} <= theirs  # the help text parsed as expected
    ours = flags(fl.out(command, "--help"))
    missing = theirs - ours - {"--help"}
    assert missing <= set(DIFFERENCES[command]), sorted(missing - set(DIFFERENCES[command]))
    # an entry for a flag forklift has since gained is stale
    assert not set(DIFFERENCES[command]) & ours


def test_flags_parser() -> None:
    text = ("Options:\n      --add-host list   Add a host\n  -a, --attach list   Attach\n"
            "  --rm  Remove\n  -d, --detach  Detach\nUsage: --not-a-flag\n")
    assert flags(text) == {"--add-host", "-a", "--attach", "--rm", "-d", "--detach"}
