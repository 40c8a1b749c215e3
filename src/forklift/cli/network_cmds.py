"""``network create/ls/inspect/rm/prune``."""

from __future__ import annotations

from typing import Any

import click


@click.group("network", context_settings={"help_option_names": ["--help"]})
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.argument("name")
@click.option("-d", "--driver", default="bridge", help='Driver to manage the Network (default "bridge")')
@click.option("--subnet", default=None, help="Subnet in CIDR format that represents a network segment")
@click.option("--gateway", default=None, help="IPv4 Gateway for the master subnet")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option("--label", "labels", multiple=True, help="Set metadata on a network")
@click.pass_obj
def create_cmd(state: Any, name: str, driver: str, subnet: str | None, gateway: str | None,
               internal: bool, labels: tuple[str, ...]) -> None:
    """Create a network."""
    from forklift.engine import network as net

    lab = dict(item.partition("=")[::2] for item in labels)
    rec = net.create(state.store, name, driver=driver, subnet=subnet, gateway=gateway,
                     internal=internal, labels=lab)
    click.echo(rec["Id"])


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (name=, type=custom|builtin, driver=)")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def ls_cmd(state: Any, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List networks."""
    from forklift.cli.format import render_rows, table
    from forklift.engine import network as net

    nets = net.all_networks(state.store)
    for f in filters:
        key, _, value = f.partition("=")
        if key == "name":
            nets = [n for n in nets if value in n["Name"]]
        elif key == "type":
            nets = [n for n in nets if bool(n.get("Builtin")) == (value == "builtin")]
        elif key == "driver":
            nets = [n for n in nets if n["Driver"] == value]
    nets.sort(key=lambda n: n["Name"])

    def nid(n: dict[str, Any]) -> str:
        return n["Id"] if no_trunc else n["Id"][:12]

    if quiet:
        if nets:
            click.echo("\n".join(nid(n) for n in nets))
        return
    if fmt:
        out = render_rows(fmt, [{"ID": nid(n), "Name": n["Name"], "Driver": n["Driver"],
                                 "Scope": "local"} for n in nets], {"ID": "NETWORK ID"})
        if out:
            click.echo(out)
        return
    click.echo(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                     [[nid(n), n["Name"], n["Driver"], "local"] for n in nets]))


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def inspect_cmd(state: Any, names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more networks."""
    from forklift.cli.common import inspect_each
    from forklift.engine import network as net

    inspect_each(names, lambda n: net.inspect(state.store, n), fmt)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@click.pass_obj
def rm_cmd(state: Any, names: tuple[str, ...], force: bool) -> None:
    """Remove one or more networks."""
    from forklift.cli.common import for_each
    from forklift.engine import network as net

    for_each(names, lambda n: net.remove(state.store, n), missing_ok=force)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_obj
def prune_cmd(state: Any, force: bool) -> None:
    """Remove all unused networks."""
    from forklift.engine import network as net

    if not force:
        click.echo("WARNING! This will remove all custom networks not used by at least one container.")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    removed = net.prune(state.store)
    if removed:
        click.echo("Deleted Networks:")
        click.echo("\n".join(removed))


def register(cli: click.Group) -> None:
    cli.add_command(network)
