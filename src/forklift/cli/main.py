"""The ``forklift`` command: Docker's management commands and classic shortcuts.

Commands only parse and print; every one calls into ``forklift.engine``. Errors
become one line ``Error: …`` on stderr with a non-zero exit code.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from forklift.errors import ForkliftError

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


class State:
    """Per-invocation options shared by all commands (the store is opened lazily)."""

    def __init__(self, root: str | None) -> None:
        self.root = root
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            if os.geteuid() != 0:
                raise ForkliftError("forklift must run as root: overlayfs mounts, runc and layer"
                                    " ownership need it (rootless mode is not supported)")
            from forklift.store import open_store

            self._store = open_store(self.root)
        return self._store


# ----------------------------------------------------------------------------- command table
#
# Every command's module, attribute and help line. ``forklift CMD`` imports only CMD's module
# (``run --rm IMAGE true`` stays fast) and ``--help`` lists commands from here without
# importing any; tests/unit/test_cli_table.py checks each line against the command's own help.

HELP = {
    "container_cmds:commit_cmd": "Create a new image from a container's changes.",
    "container_cmds:container_inspect_cmd": "Display detailed information on one or more containers.",
    "container_cmds:create_cmd": "Create a new container.",
    "container_cmds:diff_cmd": "Inspect changes to files or directories on a container's filesystem.",
    "container_cmds:export_cmd": "Export a container's filesystem as a tar archive.",
    "container_cmds:inspect_cmd": "Return low-level information on containers or images.",
    "container_cmds:ps_cmd": "List containers.",
    "container_cmds:rm_cmd": "Remove one or more containers.",
    "container_cmds:run_cmd": "Create and run a new container from an image.",
    "container_cmds:start_cmd": "Start one or more stopped containers (attached: foreground until it exits).",
    "image_cmds:history_cmd": "Show the history of an image.",
    "image_cmds:import_cmd": "Import the contents from a tarball to create a filesystem image.",
    "image_cmds:inspect_cmd": "Display detailed information on one or more images.",
    "image_cmds:ls_cmd": "List images.",
    "image_cmds:rm_cmd": "Remove one or more images.",
    "image_cmds:tag_cmd": "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.",
    "lifecycle_cmds:attach_cmd": "Attach local standard input, output, and error streams to a running container.",
    "lifecycle_cmds:cp_cmd": "Copy files/folders between a container and the local filesystem.",
    "lifecycle_cmds:exec_cmd": "Execute a command in a running container.",
    "lifecycle_cmds:kill_cmd": "Kill one or more running containers.",
    "lifecycle_cmds:logs_cmd": "Fetch the logs of a container.",
    "lifecycle_cmds:pause_cmd": "Pause all processes within one or more containers.",
    "lifecycle_cmds:rename_cmd": "Rename a container.",
    "lifecycle_cmds:restart_cmd": "Restart one or more containers.",
    "lifecycle_cmds:stop_cmd": "Stop one or more running containers.",
    "lifecycle_cmds:top_cmd": "Display the running processes of a container.",
    "lifecycle_cmds:unpause_cmd": "Unpause all processes within one or more containers.",
    "lifecycle_cmds:wait_cmd": "Block until one or more containers stop, then print their exit codes.",
    "network_cmds:network": "Manage networks.",
    "registry_cmds:login_cmd": "Log in to a registry.",
    "registry_cmds:logout_cmd": "Log out from a registry.",
    "registry_cmds:pull_cmd": "Download an image from a registry.",
    "registry_cmds:push_cmd": "Upload an image to a registry.",
    "system_cmds:check_cmd": "Verify the store: blobs, layers, images, tags, containers, volumes, scratch.",
    "system_cmds:container_prune_cmd": "Remove all stopped containers.",
    "system_cmds:df_cmd": "Show forklift disk usage.",
    "system_cmds:image_prune_cmd": "Remove unused images.",
    "system_cmds:info_cmd": "Display store-wide information.",
    "system_cmds:system_prune_cmd": "Remove unused data.",
    "transfer_cmds:load_cmd": "Load images from a tar archive or STDIN (docker-archive, OCI archive or layout).",
    "transfer_cmds:save_cmd": "Save one or more images to a tar archive (streamed to STDOUT by default).",
    "volume_cmds:volume": "Manage volumes.",
}

_RUNNING = {name: f"lifecycle_cmds:{name}_cmd" for name in (
    "attach", "cp", "exec", "kill", "logs", "pause", "rename", "restart", "stop", "top",
    "unpause", "wait")}
CONTAINER = {
    **_RUNNING,
    **{name: f"container_cmds:{name}_cmd" for name in (
        "commit", "create", "diff", "export", "rm", "run", "start")},
    "inspect": "container_cmds:container_inspect_cmd",
    "ls": "container_cmds:ps_cmd", "list": "container_cmds:ps_cmd", "ps": "container_cmds:ps_cmd",
    "prune": "system_cmds:container_prune_cmd",
}
IMAGE = {
    **{name: f"image_cmds:{name}_cmd" for name in ("history", "import", "inspect", "rm", "tag")},
    "ls": "image_cmds:ls_cmd", "list": "image_cmds:ls_cmd",
    "pull": "registry_cmds:pull_cmd", "push": "registry_cmds:push_cmd",
    "save": "transfer_cmds:save_cmd", "load": "transfer_cmds:load_cmd",
    "prune": "system_cmds:image_prune_cmd",
}
SYSTEM = {name: f"system_cmds:{name}_cmd" for name in ("check", "df", "info")} | {
    "prune": "system_cmds:system_prune_cmd"}
# Docker's classic shortcuts, and the volume and network groups
TOP = {
    **_RUNNING,
    **{name: CONTAINER[name] for name in ("commit", "create", "diff", "export", "rm", "run",
                                          "start", "ps")},
    "inspect": "container_cmds:inspect_cmd",
    **{name: IMAGE[name] for name in ("history", "import", "pull", "push", "save", "load", "tag")},
    "images": "image_cmds:ls_cmd", "rmi": "image_cmds:rm_cmd",
    "login": "registry_cmds:login_cmd", "logout": "registry_cmds:logout_cmd",
    "info": "system_cmds:info_cmd",
    "volume": "volume_cmds:volume", "network": "network_cmds:network",
}


def load(spec: str) -> click.Command:
    """The command ``module:attribute`` names, importing its module now."""
    module, _, attr = spec.partition(":")
    command = getattr(importlib.import_module(f"forklift.cli.{module}"), attr)
    assert isinstance(command, click.Command), spec
    return command


class LazyGroup(click.Group):
    """A group whose commands come from a table and are imported when used (click's
    documented LazyGroup pattern); its help lists them without importing any."""

    def __init__(self, *args: Any, table: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.table = table or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.table})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.table:
            return load(self.table[cmd_name])
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, name: str, limit: int) -> str:
        if name in self.commands:
            return self.commands[name].get_short_help_str(limit)
        # a stand-in with the same help shortens it exactly as the real command would
        return click.Command(name, help=HELP[self.table[name]]).get_short_help_str(limit)


@click.group(cls=LazyGroup, table=TOP, context_settings=CONTEXT)
@click.option("--root", envvar="FORKLIFT_ROOT", default=None, metavar="DIR",
              help="Store root (default /var/lib/forklift as root).")
@click.option("-D", "--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.version_option(package_name="forklift", prog_name="forklift")
@click.pass_context
def cli(ctx: click.Context, root: str | None, debug: bool) -> None:
    """forklift: a daemonless, Docker-compatible container image engine."""
    if debug:
        os.environ["FORKLIFT_DEBUG"] = "1"
    ctx.obj = State(root)


@cli.group(cls=LazyGroup, table=CONTAINER, context_settings=CONTEXT)
def container() -> None:
    """Manage containers."""


@cli.group(cls=LazyGroup, table=IMAGE, context_settings=CONTEXT)
def image() -> None:
    """Manage images."""


@cli.group(cls=LazyGroup, table=SYSTEM, context_settings=CONTEXT)
def system() -> None:
    """Manage forklift's store."""


EXIT_FLAG_ERROR = 125  # Docker's CLI: a bad flag exits 125, a wrong argument count 1


def usage_error(exc: click.UsageError) -> tuple[str, int]:
    """Docker's wording and exit code for a command line click refused."""
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "forklift"
    hint = f" (see '{path} --help')"
    param = getattr(exc, "param", None)
    if isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        text = (f"unknown flag: {name}" if name.startswith("--")
                else f"unknown shorthand flag: '{name.lstrip('-')}' in {name}")
        return text + hint, EXIT_FLAG_ERROR
    if isinstance(exc, click.BadOptionUsage) and "requires an argument" in exc.message:
        name = exc.option_name
        text = (f"flag needs an argument: {name}" if name.startswith("--")
                else f"flag needs an argument: '{name.lstrip('-')}' in {name}")
        return text + hint, EXIT_FLAG_ERROR
    extra = "unexpected extra argument" in exc.message
    if (extra or isinstance(exc, click.MissingParameter | click.BadArgumentUsage)) \
            and ctx is not None and not isinstance(param, click.Option):
        return f'"{path}" {_arity(ctx.command)}.' + hint, 1
    if isinstance(exc, click.BadParameter) and isinstance(param, click.Option):
        flags = ", ".join(param.opts)
        return f'invalid argument for "{flags}" flag: {exc.message}' + hint, EXIT_FLAG_ERROR
    return exc.format_message() + hint, EXIT_FLAG_ERROR


def _arity(command: click.Command) -> str:
    """'requires exactly 2 arguments', as Docker's CLI words its argument checks."""
    low, high = 0, 0
    for p in command.params:
        if isinstance(p, click.Argument):
            if p.required:
                low += max(p.nargs, 1)
            high = -1 if p.nargs == -1 or high < 0 else high + p.nargs

    def args(n: int) -> str:
        return f"{n} argument{'' if n == 1 else 's'}"

    if low == high:
        return f"requires exactly {args(low)}"
    if high < 0:
        return f"requires at least {args(low)}"
    if low == 0:
        return f"requires at most {args(high)}"
    return f"requires at least {low} and at most {args(high)}"


def main() -> None:
    """Console entry point: map every failure to one ``Error:`` line."""
    try:
        code = cli.main(prog_name="forklift", standalone_mode=False)
    except ForkliftError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as exc:
        message, code = usage_error(exc)
        click.echo(f"Error: {message}", err=True)
        sys.exit(code)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()} (see 'forklift --help')", err=True)
        sys.exit(exc.exit_code if exc.exit_code else 125)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # an unexpected bug: still one line unless debugging
        if os.environ.get("FORKLIFT_DEBUG"):
            raise
        click.echo(f"Error: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(125)
    sys.exit(code if isinstance(code, int) else 0)
