"""The hot commands' own command-line reader (cli/fast.py): whatever it accepts, click reads
to the same command and the same values; whatever it does not, click gets."""

from __future__ import annotations

import os
from typing import Any

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.cli import fast, run_body
from forklift.cli.main import cli


def click_parse(argv: list[str]) -> tuple[str | None, bool, str, dict[str, Any]] | None:
    """What click makes of ``forklift ARGV``: (root, debug, command, params), None when it
    refuses the line or prints help. FORKLIFT_ROOT is left out: `fast.main` reads it later."""
    saved = os.environ.pop("FORKLIFT_ROOT", None)
    try:
        ctx = cli.make_context("forklift", list(argv))
        root, debug = ctx.params["root"], ctx.params["debug"]
        group: click.Group = cli
        args = [*ctx._protected_args, *ctx.args]
        while True:
            name, cmd, rest = group.resolve_command(ctx, args)
            assert cmd is not None and name is not None
            ctx = cmd.make_context(name, rest, parent=ctx)
            if not isinstance(cmd, click.Group):
                return root, debug, name, dict(ctx.params)
            group, args = cmd, [*ctx._protected_args, *ctx.args]
    except (click.ClickException, click.exceptions.Exit):
        return None
    finally:
        if saved is not None:
            os.environ["FORKLIFT_ROOT"] = saved


PLAIN = [
    ["exec", "srv", "true"],
    ["exec", "-i", "srv", "cat"],
    ["exec", "-it", "srv", "sh", "-c", "echo hi"],
    ["exec", "-d", "-u", "1000:1000", "-w", "/tmp", "-e", "A=1", "--env", "B=2", "srv", "ls",
     "-l", "--", "-x"],
    ["--root", "/var/lib/x", "exec", "--privileged", "--tty", "srv", "true"],
    ["-D", "container", "exec", "srv", "true"],
    ["stop", "a"],
    ["stop", "-t", "0", "a", "b"],
    ["stop", "a", "--time", "30", "-s", "SIGINT", "b"],
    ["container", "stop", "--signal", "9", "a"],
    ["kill", "a"],
    ["kill", "-s", "TERM", "a", "b"],
    ["--debug", "--root", "r", "container", "kill", "--signal", "HUP", "x"],
    ["export", "big"],
    ["export", "-o", "out.tar", "big"],
    ["container", "export", "big", "--output", "/tmp/x.tar"],
    ["--root", "r", "diff", "big"],
    ["container", "diff", "big"],
    ["load"], ["load", "-i", "x.tar"], ["load", "-q", "--input", "x.tar", "--platform", "linux/amd64"],
    ["load", "--max-size", "1G", "-q"],
    ["import", "x.tar"], ["import", "x.tar", "repo:tag"],
    ["import", "-c", "ENV A=1", "--change", "CMD sh", "-m", "hi", "x.tar", "r"],
    ["import", "x.tar", "--platform", "linux/amd64", "--max-size", "5M", "r"],
    ["run", "--rm", "busybox", "true"],
    ["run", "-d", "--name", "srv", "busybox", "sleep", "60"],
    ["run", "--rm", "-it", "-e", "A=1", "--env", "B=2", "--network", "none", "busybox", "sh",
     "-c", "echo $A", "--rm", "-d"],
    ["container", "run", "-dit", "--net", "host", "-v", "/a:/b", "-p", "80:80", "-p", "81",
     "-l", "k=v", "--label", "x", "-w", "/tmp", "-u", "0", "--entrypoint", "sh", "--init",
     "--read-only", "--privileged", "--pull", "never", "busybox"],
    ["--root", "r", "create", "--name", "c", "-i", "busybox", "cat"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_lines_are_read_here_as_click_reads_them(argv: list[str]) -> None:
    ours = fast.parse(argv)
    assert ours is not None
    assert ours == click_parse(argv)


ODD = [
    ["exec", "--help"], ["stop", "--help"], ["exec", "srv"], ["stop"], ["kill"],
    ["exec", "--", "srv", "true"], ["exec", "-u=root", "srv", "true"],
    ["exec", "--user=root", "srv", "true"], ["stop", "-t5", "a"], ["stop", "-t", "-1", "a"],
    ["stop", "-t", "x", "a"], ["stop", "-t", "٣", "a"], ["stop", "-t", "1", "-t", "2", "a"],
    ["exec", "-d", "-d", "srv", "true"], ["exec", "-dd", "srv", "true"],
    ["exec", "-ie", "A", "srv", "true"], ["exec", "-x", "srv", "true"], ["kill", "-", "a"],
    ["--root", "exec", "srv", "true"], ["--root", "a", "--root", "b", "stop", "x"],
    ["--root=a", "stop", "x"], ["--version"], ["container"],
    ["stop", "a", "--time"], ["exec", "-u"], ["ps"], [],
    ["export"], ["export", "a", "b"], ["export", "-o", "-", "a"], ["export", "-o"],
    ["export", "--output=x", "a"], ["export", "-o", "x", "-o", "y", "a"], ["export", "--help"],
    ["diff"], ["diff", "a", "b"], ["diff", "-o", "x", "a"], ["diff", "--", "a"],
    ["load", "x.tar"], ["load", "-i"], ["load", "-i", "-"], ["load", "-q", "-q"], ["load", "-iq"],
    ["import"], ["import", "a", "b", "c"], ["import", "-", "r"], ["import", "-m", "a", "-m", "b", "x"],
    ["image", "load"], ["image", "import", "x.tar"], ["import", "--help"], ["load", "--help"],
    ["run", "--help"], ["run"], ["run", "--rm"], ["run", "--rm", "--rm", "busybox"],
    ["run", "--name", "a", "--name", "b", "busybox"], ["run", "--name=a", "busybox"],
    ["run", "-h", "x", "busybox"], ["run", "--cpus", "1", "busybox"], ["run", "-e", "-x", "b"],
    ["create", "-d", "busybox"], ["run", "--", "busybox"], ["run", "-P", "busybox"],
    ["start", "a"], ["rm", "a"],
]


@pytest.mark.parametrize("argv", ODD, ids=" ".join)
def test_anything_else_goes_to_click(argv: list[str]) -> None:
    assert fast.parse(argv) is None


TOKENS = ["exec", "stop", "kill", "export", "diff", "-o", "--output", "load", "import", "-q",
          "--input", "-c", "-m", "--platform", "container", "run", "create", "--rm", "--name",
          "--net", "-p", "-v", "-P", "--init", "--cpus", "busybox", "-h", "--root", "-D",
          "--debug", "r", "-d", "-i",
          "-t", "-it", "-dit", "-ti", "-u", "--user", "-w", "-e", "--env", "--privileged",
          "-s", "--signal", "--time", "--detach", "--tty", "0", "7", "-1", "KILL", "srv",
          "true", "", "-", "--", "--help", "-t5", "-e=x", "--env=x", "a b", "sh", "-c", "-x"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=9))
def test_whatever_is_read_here_click_reads_the_same(argv: list[str]) -> None:
    ours = fast.parse(argv)
    if ours is not None:
        assert ours == click_parse(argv)


def test_the_hot_commands_bodies_are_the_click_commands_bodies() -> None:
    """The click commands call the same bodies, so a fix lands on both paths."""
    import inspect

    from forklift.cli import container_cmds, image_cmds, lifecycle_cmds, transfer_cmds

    modules = (lifecycle_cmds, container_cmds, image_cmds, transfer_cmds)
    for name, body in fast.BODIES.items():
        [command] = [getattr(m, f"{name}_cmd") for m in modules if hasattr(m, f"{name}_cmd")]
        assert f"fast.{body.__name__}(" in inspect.getsource(command.callback)
        named = set(inspect.signature(body).parameters) - {"state", "kw"}
        if "kw" in inspect.signature(body).parameters:  # the rest: run_body.CREATE_DEFAULTS
            named |= set(run_body.CREATE_DEFAULTS)
        assert [p.name for p in command.params] and {p.name for p in command.params} == named


@pytest.mark.parametrize("name", ["run", "create"])
def test_create_defaults_are_click_s(name: str) -> None:
    """Every option of click's run and create, with its default, is in CREATE_DEFAULTS and
    nothing else is: a flag added to one and not the other fails here, not at run time."""
    from forklift.cli import container_cmds

    command: click.Command = getattr(container_cmds, f"{name}_cmd")
    parsed = click_parse([name, "busybox"])
    assert parsed is not None
    extra = {"detach": False} if name == "run" else {}
    assert parsed[3] == {**run_body.CREATE_DEFAULTS, **extra, "image": "busybox",
                         "command": ()}
    spec = fast.SPECS[name]
    options = {p.name: p for p in command.params if isinstance(p, click.Option)}
    for flag, param in {**spec[0], **spec[1]}.items():
        assert flag in options[param].opts + options[param].secondary_opts
        assert options[param].is_flag == (flag in spec[0])
        assert options[param].multiple == (param in spec[2])
        # strings as given (no int or float read here), flags as True
        assert isinstance(options[param].type, (click.types.StringParamType,
                                                click.types.BoolParamType))


def test_the_console_script_and_python_m_enter_here() -> None:
    """Both ways in start at `fast.main` (the fast path is lost if either imports cli.main)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["forklift"] == "forklift.cli.fast:main"
    assert "from forklift.cli.fast import main" in (root / "src/forklift/__main__.py").read_text()
