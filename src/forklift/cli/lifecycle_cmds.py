"""Running-container commands: logs, stop, kill, restart, wait, pause, unpause, top,
rename, exec, attach, cp."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from forklift.cli import fast
from forklift.cli.common import for_each
from forklift.cli.format import table
from forklift.engine import lifecycle

EXEC_CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


def _each(names: tuple[str, ...], fn: Callable[[str], Any], echo: bool = True,
          wrap: Callable[[str, str], str] | None = None) -> None:
    for_each(names, fn, echo=echo, wrap=wrap)


@click.command("logs")
@click.argument("container")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help='Number of lines to show from the end of the logs (default "all")')
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", default=None, help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
@click.option("--until", default=None, help="Show logs before a timestamp or relative")
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.pass_obj
def logs_cmd(state: Any, container: str, follow: bool, tail: str, timestamps: bool,
             since: str | None, until: str | None, details: bool) -> None:
    """Fetch the logs of a container."""
    lifecycle.logs(state.store, container, follow=follow, tail=tail, since=since, until=until,
                   timestamps=timestamps, details=details)


@click.command("stop")
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing the container")
@click.option("-s", "--signal", "sig", default=None, help="Signal to send to the container")
@click.pass_obj
def stop_cmd(state: Any, containers: tuple[str, ...], timeout: int | None, sig: str | None) -> None:
    """Stop one or more running containers."""
    fast.stop(state, containers, timeout, sig)


@click.command("restart")
@click.argument("containers", nargs=-1, required=True)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before killing the container")
@click.pass_obj
def restart_cmd(state: Any, containers: tuple[str, ...], timeout: int | None) -> None:
    """Restart one or more containers."""
    _each(containers, lambda n: lifecycle.restart(state.store, n, timeout))


@click.command("kill")
@click.argument("containers", nargs=-1, required=True)
@click.option("-s", "--signal", "sig", default="KILL", help='Signal to send to the container (default "KILL")')
@click.pass_obj
def kill_cmd(state: Any, containers: tuple[str, ...], sig: str) -> None:
    """Kill one or more running containers."""
    fast.kill(state, containers, sig)


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def wait_cmd(state: Any, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    _each(containers, lambda n: click.echo(lifecycle.wait(state.store, n)), echo=False)


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def pause_cmd(state: Any, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    _each(containers, lambda n: lifecycle.pause(state.store, n))


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def unpause_cmd(state: Any, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    _each(containers, lambda n: lifecycle.unpause(state.store, n))


@click.command("top", context_settings=EXEC_CONTEXT)
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def top_cmd(state: Any, container: str, ps_args: tuple[str, ...]) -> None:
    """Display the running processes of a container."""
    header, rows = lifecycle.top(state.store, container, list(ps_args))
    click.echo(table(header, rows, min_width=20))


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
@click.pass_obj
def rename_cmd(state: Any, container: str, new_name: str) -> None:
    """Rename a container."""
    lifecycle.rename(state.store, container, new_name)


@click.command("attach")
@click.argument("container")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy", type=bool, default=True, help="Proxy all received signals to the process")
@click.pass_obj
def attach_cmd(state: Any, container: str, no_stdin: bool, sig_proxy: bool) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    raise SystemExit(lifecycle.attach(state.store, container, stdin=not no_stdin,
                                      sig_proxy=sig_proxy))


@click.command("exec", context_settings=EXEC_CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--privileged", is_flag=True, hidden=True)
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_cmd(state: Any, container: str, command: tuple[str, ...], detach: bool,
             interactive: bool, tty: bool, user: str | None, workdir: str | None,
             env: tuple[str, ...], privileged: bool) -> None:
    """Execute a command in a running container."""
    fast.exec_(state, container, command, detach, interactive, tty, user, workdir, env,
               privileged)


@click.command("cp")
@click.argument("src")
@click.argument("dest")
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.pass_obj
def cp_cmd(state: Any, src: str, dest: str, archive: bool, follow_link: bool, quiet: bool) -> None:
    """Copy files/folders between a container and the local filesystem.

    Use '-' as the source to read a tar archive from stdin and extract it to a
    directory destination in a container; use '-' as the destination to stream a tar
    archive of a container source to stdout."""
    from forklift.engine import copy  # mounts, volumes, overlay: only cp needs them

    copy.cp(state.store, src, dest, archive=archive, follow_link=follow_link)
