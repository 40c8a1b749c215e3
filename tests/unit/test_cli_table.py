"""The lazy command table of cli/commands.py: every command is reachable under its names, its
help line matches the command's own, and a command imports only its own module."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from forklift.cli import commands
from forklift.cli.main import cli

GROUPS = {"": commands.TOP, "container": commands.CONTAINER, "image": commands.IMAGE,
          "system": commands.SYSTEM, "builder": commands.BUILDER}


def test_every_entry_names_a_command_with_a_help_line():
    used = {spec for table in GROUPS.values() for spec in table.values()}
    assert used == set(commands.HELP)
    for spec in used:
        assert isinstance(commands.load(spec), click.Command), spec


@pytest.mark.parametrize("spec", sorted(commands.HELP))
def test_help_lines_match_the_commands_own(spec):
    command = commands.load(spec)
    stand_in = click.Command("x", help=commands.HELP[spec])
    for limit in (30, 45, 60, 200):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), spec


def test_docker_names_and_shortcuts():
    assert commands.TOP["ps"] == commands.CONTAINER["ls"] == commands.CONTAINER["list"] == commands.CONTAINER["ps"]
    assert commands.TOP["images"] == commands.IMAGE["ls"] == commands.IMAGE["list"]
    assert commands.TOP["rmi"] == commands.IMAGE["rm"]
    assert commands.TOP["run"] == commands.CONTAINER["run"]
    assert commands.TOP["inspect"] != commands.CONTAINER["inspect"]  # the generic one
    assert {"container", "image", "system"} <= set(cli.commands)
    assert {"volume", "network"} <= set(commands.TOP)


def _imported_after(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after ``forklift ARGV`` (``--help`` forms only:
    no store is opened)."""
    script = ("import json, sys; from forklift.cli.main import cli\n"
              "try:\n"
              f"    cli.main({argv!r}, prog_name='forklift', standalone_mode=False)\n"
              "except SystemExit:\n"
              "    pass\n"
              "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_module():
    loaded = _imported_after(["--help"])
    assert not {m for m in loaded if m.endswith("_cmds") or m.startswith("forklift.engine")}
    loaded = _imported_after(["container", "--help"])
    assert not {m for m in loaded if m.endswith("_cmds")}


def test_a_command_imports_its_module_only_and_run_stays_light():
    loaded = _imported_after(["run", "--help"])
    assert {m for m in loaded if m.endswith("_cmds")} == {"forklift.cli.container_cmds"}
    heavy = {"hashlib", "tarfile", "rich", "httpx", "jsonschema", "zstandard", "gzip",
             "forklift.gotemplate"}
    assert not heavy & loaded
