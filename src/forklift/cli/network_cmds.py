"""``network create/ls/inspect/rm/prune``."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli.common import confirm, for_each, inspect_each, label_flags, print_deleted
from forklift.cli.format import go_time, short_id
from forklift.cli.listing import LABELS, Listing
from forklift.engine import network as net
from forklift.engine import system
from forklift.engine.filters import Filters

NETWORKS = Listing({"ID": "NETWORK ID"}, ["ID", "Name", "Driver", "Scope"], label_method=True,
                   go_type="*network.networkContext")


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
    rec = net.create(state.store, name, driver=driver, subnet=subnet, gateway=gateway,
                     internal=internal, labels=label_flags(labels))
    click.echo(rec["Id"])


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (name=, type=custom|builtin, driver=)")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def ls_cmd(state: Any, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List networks."""
    rows = [_row(n, no_trunc) for n in net.list_networks(state.store, Filters.parse(filters))]
    NETWORKS.print(rows, quiet=quiet, fmt=fmt)


def _row(n: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    labels = n.get("Labels") or {}
    return {"ID": short_id(n["Id"], no_trunc), "Name": n["Name"], "Driver": n["Driver"],
            "Scope": "local", "CreatedAt": go_time(n.get("Created", "")), "IPv6": "false",
            "Internal": str(bool(n.get("Internal"))).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()), LABELS: labels}


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def inspect_cmd(state: Any, names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more networks."""
    inspect_each(names, lambda n: net.inspect(state.store, n), fmt)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@click.pass_obj
def rm_cmd(state: Any, names: tuple[str, ...], force: bool) -> None:
    """Remove one or more networks."""
    for_each(names, lambda n: net.remove(state.store, n), missing_ok=force)


@network.command("connect")
@click.argument("name")
@click.argument("container")
@click.option("--alias", "aliases", multiple=True, help="Add network-scoped alias for the container")
@click.option("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)")
@click.option("--link", "links", multiple=True, help="Add link to another container")
@click.pass_obj
def connect_cmd(state: Any, name: str, container: str, aliases: tuple[str, ...], ip: str,
                links: tuple[str, ...]) -> None:
    """Connect a container to a network."""
    net.connect(state.store, name, container, list(aliases), ip, list(links))


@network.command("disconnect")
@click.argument("name")
@click.argument("container")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect from a network")
@click.pass_obj
def disconnect_cmd(state: Any, name: str, container: str, force: bool) -> None:
    """Disconnect a container from a network."""
    net.disconnect(state.store, name, container, force=force)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (until=…, label=…)")
@click.pass_obj
def prune_cmd(state: Any, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all unused networks."""
    wanted = Filters.parse(filters)
    system.check_prune_filters("networks", wanted)
    if not confirm("WARNING! This will remove all custom networks not used by at least one"
                   " container.", force):
        return
    print_deleted("Deleted Networks:", system.prune_networks(state.store, wanted).deleted)
