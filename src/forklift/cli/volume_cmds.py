"""``volume create/ls/inspect/rm/prune``."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli.common import (
    confirm,
    for_each,
    inspect_each,
    label_flags,
    print_deleted,
    print_reclaimed,
)
from forklift.cli.listing import LABELS, Listing
from forklift.engine import system, volumes
from forklift.engine.filters import Filters
from forklift.store.volumes import Volume

VOLUMES = Listing({"Name": "VOLUME NAME"}, ["Driver", "Name"], quiet_field="Name",
                  label_method=True, go_type="*formatter.volumeContext")


@click.group("volume", context_settings={"help_option_names": ["--help"]})
def volume() -> None:
    """Manage volumes."""


@volume.command("create")
@click.argument("name", required=False)
@click.option("-d", "--driver", default="local", help='Specify volume driver name (default "local")')
@click.option("--label", "labels", multiple=True, help="Set metadata for a volume")
@click.option("-o", "--opt", "opts", multiple=True, help="Set driver specific options")
@click.pass_obj
def create_cmd(state: Any, name: str | None, driver: str, labels: tuple[str, ...],
               opts: tuple[str, ...]) -> None:
    """Create a volume."""
    vol = volumes.create(state.store, name, driver=driver, labels=label_flags(labels),
                         options=list(opts))
    click.echo(vol.name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (dangling=true, name=…, label=…)")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def ls_cmd(state: Any, quiet: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List volumes."""
    found = volumes.list_volumes(state.store, Filters.parse(filters))
    VOLUMES.print([_row(state.store, v) for v in found], quiet=quiet, fmt=fmt)


def _row(store: Any, vol: Volume) -> dict[str, Any]:
    # Docker's CLI knows a volume's links and size only in system df -v
    return {"Driver": "local", "Name": vol.name, "Mountpoint": vol.path(store), "Scope": "local",
            "Labels": ",".join(f"{k}={x}" for k, x in vol.labels.items()), "Links": "N/A",
            "Size": "N/A", LABELS: vol.labels}


@volume.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def inspect_cmd(state: Any, names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more volumes."""
    inspect_each(names, lambda name: volumes.inspect(state.store, name), fmt)


@volume.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes")
@click.pass_obj
def rm_cmd(state: Any, names: tuple[str, ...], force: bool) -> None:
    """Remove one or more volumes."""
    for_each(names, lambda n: volumes.remove(state.store, n), missing_ok=force)


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (label=…)")
@click.pass_obj
def prune_cmd(state: Any, all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused local volumes (anonymous ones only, unless -a)."""
    wanted = Filters.parse(filters)
    system.check_prune_filters("volumes", wanted)
    which = "all" if all_ else "anonymous"
    if not confirm(f"WARNING! This will remove {which} local volumes not used by at least"
                   " one container.", force):
        return
    result = system.prune_volumes(state.store, all_volumes=all_, filters=wanted)
    print_deleted("Deleted Volumes:", result.deleted)
    print_reclaimed(result.reclaimed)
