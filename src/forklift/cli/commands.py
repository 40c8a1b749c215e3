"""The command table: where every command lives and its help line, and the group that
imports a command's module only when the command is used.

``forklift CMD`` imports only CMD's module (``run --rm IMAGE true`` stays fast) and
``--help`` lists commands from here without importing any; tests/unit/test_cli_table.py
checks each help line against the command's own.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# "module:attribute" of each command (modules under forklift.cli) → the first paragraph of
# its help
HELP = {
    "build_cmds:build_cmd": "Build an image from a Dockerfile.",
    "build_cmds:prune_cmd": "Remove build cache.",
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
    "system_cmds:service_cmd": "Serve the Docker Engine API on a unix socket and/or TCP with TLS, in the foreground.",
    "system_cmds:image_prune_cmd": "Remove unused images.",
    "info_cmds:info_cmd": "Display system-wide information.",
    "system_cmds:system_prune_cmd": "Remove unused data.",
    "transfer_cmds:load_cmd": "Load images from a tar archive or STDIN (docker-archive, OCI archive or layout).",
    "transfer_cmds:save_cmd": "Save one or more images to a tar archive (streamed to STDOUT by default).",
    "volume_cmds:volume": "Manage volumes.",
    "state_cmds:version_cmd": "Show the forklift version information.",
    "state_cmds:port_cmd": "List port mappings or a specific mapping for the container.",
    "state_cmds:events_cmd": "Get real time events from the server.",
    "state_cmds:stats_cmd": "Display a live stream of container(s) resource usage statistics.",
    "state_cmds:update_cmd": "Update configuration of one or more containers.",
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
    "port": "state_cmds:port_cmd", "stats": "state_cmds:stats_cmd",
    "update": "state_cmds:update_cmd",
}
IMAGE = {
    "build": "build_cmds:build_cmd",
    **{name: f"image_cmds:{name}_cmd" for name in ("history", "import", "inspect", "rm", "tag")},
    "ls": "image_cmds:ls_cmd", "list": "image_cmds:ls_cmd",
    "pull": "registry_cmds:pull_cmd", "push": "registry_cmds:push_cmd",
    "save": "transfer_cmds:save_cmd", "load": "transfer_cmds:load_cmd",
    "prune": "system_cmds:image_prune_cmd",
}
BUILDER = {"build": "build_cmds:build_cmd", "prune": "build_cmds:prune_cmd"}
SYSTEM = {name: f"system_cmds:{name}_cmd" for name in ("check", "df", "service")} | {
    "info": "info_cmds:info_cmd",
    "prune": "system_cmds:system_prune_cmd", "events": "state_cmds:events_cmd"}
# Docker's classic shortcuts, and the volume and network groups
TOP = {
    **_RUNNING,
    **{name: CONTAINER[name] for name in ("commit", "create", "diff", "export", "rm", "run",
                                          "start", "ps")},
    "inspect": "container_cmds:inspect_cmd",
    **{name: IMAGE[name] for name in ("history", "import", "pull", "push", "save", "load", "tag")},
    "images": "image_cmds:ls_cmd", "rmi": "image_cmds:rm_cmd", "build": "build_cmds:build_cmd",
    "login": "registry_cmds:login_cmd", "logout": "registry_cmds:logout_cmd",
    "info": "info_cmds:info_cmd",
    "volume": "volume_cmds:volume", "network": "network_cmds:network",
    "version": "state_cmds:version_cmd", "port": "state_cmds:port_cmd",
    "events": "state_cmds:events_cmd", "stats": "state_cmds:stats_cmd",
    "update": "state_cmds:update_cmd",
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
