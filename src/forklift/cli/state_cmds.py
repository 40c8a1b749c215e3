"""What Docker's CLI reads from its daemon about running things: ``version``, ``port``,
``events``, ``stats``, ``update``. Parsing and printing only; the engine does the work."""

from __future__ import annotations

import sys
from typing import Any

import click

from forklift.cli.format import TemplateError, binary_size, render
from forklift.errors import InspectTemplateError


def _template(fmt: str, data: Any) -> str:
    """A ``--format`` of a single document; a template that does not parse exits 64, as
    Docker's ``version`` does."""
    try:
        return render(fmt, data)
    except TemplateError as exc:
        raise InspectTemplateError(f"Template parsing error: {exc.detail}") from None


def _aligned(label: str, value: Any) -> str:
    # Docker's tabwriter: minimum cell width 20, so every value starts in column 21
    return f"{label:<19} {value}"


@click.command("version")
@click.option("-f", "--format", "fmt", default=None, help="Format the output using the given Go template")
def version_cmd(fmt: str | None) -> None:
    """Show the forklift version information."""
    from forklift.engine.version import version

    doc = version()
    if fmt:
        click.echo(_template(fmt, doc))
        return
    client, server = doc["Client"], doc["Server"]
    lines = [f"Client: {client['Platform']['Name']}",
             _aligned(" Version:", client["Version"]),
             _aligned(" API version:", client["ApiVersion"]),
             _aligned(" Python version:", client["PythonVersion"]),
             _aligned(" OS/Arch:", f"{client['Os']}/{client['Arch']}"),
             _aligned(" Context:", client["Context"]),
             "", f"Server: {server['Platform']['Name']}"]
    for component in server["Components"]:
        lines.append(f" {component['Name']}:")
        lines.append(_aligned("  Version:", component["Version"]))
        details = component["Details"]
        if component["Name"] == "Engine":
            lines += [_aligned("  API version:", f"{details['ApiVersion']} (minimum version"
                                                 f" {details['MinAPIVersion']})"),
                      _aligned("  Python version:", details["PythonVersion"]),
                      _aligned("  OS/Arch:", f"{details['Os']}/{details['Arch']}"),
                      _aligned("  Kernel version:", details["KernelVersion"]),
                      _aligned("  Experimental:", details["Experimental"]),
                      _aligned("  Daemon:", details["Daemon"])]
        else:
            lines.append(_aligned("  GitCommit:", details.get("GitCommit", "")))
    click.echo("\n".join(lines))


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False, metavar="[PRIVATE_PORT[/PROTO]]")
@click.pass_obj
def port_cmd(state: Any, container: str, private_port: str | None) -> None:
    """List port mappings or a specific mapping for the container."""
    from forklift.engine import ports

    if private_port is None:
        for key, host in ports.published(state.store, container):
            click.echo(f"{key} -> {host}")
        return
    for host in ports.lookup(state.store, container, private_port):
        click.echo(host)


class _EventView(dict):  # type: ignore[type-arg]
    """An event for ``--format``: Docker's Go field names (``.Status``, ``.ID``, ``.From``,
    ``.Scope``, ``.Time``, ``.TimeNano``) read its JSON keys; ``{{json .}}`` prints the
    JSON keys as Docker does."""

    ALIASES = {"Status": "status", "ID": "id", "From": "from", "Scope": "scope",
               "Time": "time", "TimeNano": "timeNano"}

    def __getitem__(self, key: str) -> Any:
        if key in self.ALIASES:
            return dict.get(self, self.ALIASES[key], "")
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.ALIASES or dict.__contains__(self, key)


_SAMPLE_EVENT = {"status": "start", "id": "0" * 64, "from": "busybox", "Type": "container",
                 "Action": "start", "Actor": {"ID": "0" * 64, "Attributes": {"name": "x"}},
                 "scope": "local", "time": 0, "timeNano": 0}


@click.command("events")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default=None, help="Format the output using the given Go template")
@click.option("--since", default=None, help="Show all events created since timestamp")
@click.option("--until", default=None, help="Stream events until this timestamp")
@click.pass_obj
def events_cmd(state: Any, filters: tuple[str, ...], fmt: str | None, since: str | None,
               until: str | None) -> None:
    """Get real time events from the server."""
    from forklift.engine import events
    from forklift.engine.filters import Filters

    q = events.query(since, until, Filters.parse(filters))
    if fmt:
        render(fmt, _EventView(_SAMPLE_EVENT))  # a bad template fails before any output
    root = state.store.root
    try:
        for event in events.read(root, q):
            click.echo(render(fmt, _EventView(event)) if fmt else events.line(event))
    except KeyboardInterrupt:
        return  # Ctrl-C ends following, as in Docker


_STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                  "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                  "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
_STATS_COLUMNS = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"]
_CLEAR = "\033[2J\033[H"  # Docker's live table: clear the screen, cursor home


def _stats_row(u: Any, shown: str, no_trunc: bool) -> dict[str, str]:
    from forklift.cli.format import human_size, short_id

    return {"BlockIO": f"{human_size(u.block_read)} / {human_size(u.block_write)}",
            "CPUPerc": f"{u.cpu_percent:.2f}%", "Container": shown,
            "ID": short_id(u.id, no_trunc),
            "MemPerc": f"{u.memory_percent:.2f}%",
            "MemUsage": f"{binary_size(u.memory)} / {binary_size(u.memory_limit)}",
            "Name": u.name, "NetIO": f"{human_size(u.net_rx)} / {human_size(u.net_tx)}",
            "PIDs": str(u.pids)}


@click.command("stats")
@click.argument("names", nargs=-1)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--format", "fmt", default=None, help="Pretty-print images using a Go template")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.pass_obj
def stats_cmd(state: Any, names: tuple[str, ...], show_all: bool, fmt: str | None,
              no_stream: bool, no_trunc: bool) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    from forklift.cli.listing import Listing
    from forklift.engine import stats

    table_out: Listing = Listing(_STATS_HEADERS, _STATS_COLUMNS, go_type="*container.statsContext")
    if fmt:
        # a bad template is refused before sampling
        table_out.render(fmt if fmt.removeprefix("table").strip() else "{{.ID}}",
                         [dict.fromkeys(_STATS_HEADERS, "")])
    shown = dict(zip([r.id for r in stats.containers(state.store, list(names), show_all)],
                     names, strict=False)) if names else {}
    try:
        for rows in stats.readings(state.store, list(names), show_all):
            if not no_stream:  # written as is: click.echo drops escapes off a terminal
                sys.stdout.write(_CLEAR)
                sys.stdout.flush()
            table_out.print([_stats_row(u, shown.get(u.id, u.id[:12]), no_trunc) for u in rows],
                          fmt=fmt or "table " + "\t".join("{{." + c + "}}" for c in _STATS_COLUMNS))
            if no_stream:
                return
    except KeyboardInterrupt:
        return


@click.command("update")
@click.argument("names", nargs=-1, required=True)
@click.option("--cpus", type=float, default=None, help="Number of CPUs")
@click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)")
@click.option("-m", "--memory", default=None, help="Memory limit")
@click.option("--memory-swap", default=None, help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
@click.option("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)")
@click.option("--restart", default=None, help="Restart policy to apply when a container exits")
@click.pass_obj
def update_cmd(state: Any, names: tuple[str, ...], cpus: float | None, cpu_shares: int | None,
               memory: str | None, memory_swap: str | None, pids_limit: int | None,
               restart: str | None) -> None:
    """Update configuration of one or more containers."""
    from forklift.cli.common import for_each
    from forklift.engine.update import UpdateOptions, update

    opts = UpdateOptions(cpus, cpu_shares, memory, memory_swap, pids_limit, restart)
    if opts.empty():
        from forklift.errors import InvalidArgument

        raise InvalidArgument("you must provide one or more flags when using this command")
    for_each(names, lambda n: update(state.store, n, opts))
