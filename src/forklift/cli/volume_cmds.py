"""``volume create/ls/inspect/rm/prune``."""

from __future__ import annotations

import os
import time
from typing import Any

import click


def volume_info(store: Any, vol: Any) -> dict[str, Any]:
    from forklift.store import volumes as volume_store

    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(vol.created))
    info: dict[str, Any] = {"CreatedAt": created, "Driver": "local", "Labels": vol.labels or None,
                            "Mountpoint": vol.path(store), "Name": vol.name, "Options": None,
                            "Scope": "local"}
    if vol.anonymous:
        info["Labels"] = {**(vol.labels or {}), "com.docker.volume.anonymous": ""}
    info["UsedBy"] = volume_store.users(store, vol.name)
    return info


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
    from forklift.errors import InvalidArgument
    from forklift.store import volumes as volume_store

    if driver != "local":
        raise InvalidArgument(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
    if opts:
        raise InvalidArgument("driver options (-o) are not supported by the local driver here")
    lab = {}
    for item in labels:
        k, _, v = item.partition("=")
        lab[k] = v
    vol, _ = volume_store.ensure(state.store, name or os.urandom(32).hex(), anonymous=False,
                                 labels=lab)
    click.echo(vol.name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (dangling=true, name=…, label=…)")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def ls_cmd(state: Any, quiet: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List volumes."""
    from forklift.cli.format import render_rows, table
    from forklift.store import volumes as volume_store

    vols = volume_store.all_volumes(state.store)
    for f in filters:
        key, _, value = f.partition("=")
        if key == "dangling":
            want = value.lower() in ("true", "1")
            vols = [v for v in vols if (not volume_store.users(state.store, v.name)) == want]
        elif key == "name":
            vols = [v for v in vols if value in v.name]
        elif key == "label":
            k, sep, val = value.partition("=")
            vols = [v for v in vols if k in v.labels and (not sep or v.labels[k] == val)]
    if quiet:
        if vols:
            click.echo("\n".join(v.name for v in vols))
        return
    if fmt:
        out = render_rows(fmt, [{"Driver": "local", "Name": v.name, "Mountpoint": v.path(state.store),
                                 "Scope": "local", "Labels": ",".join(f"{k}={x}" for k, x in v.labels.items())}
                                for v in vols], {"Name": "VOLUME NAME"})
        if out:
            click.echo(out)
        return
    click.echo(table(["DRIVER", "VOLUME NAME"], [["local", v.name] for v in vols]))


@volume.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def inspect_cmd(state: Any, names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more volumes."""
    from forklift.cli.common import inspect_each
    from forklift.errors import NotFound
    from forklift.store import volumes as volume_store

    def lookup(name: str) -> dict[str, Any]:
        vol = volume_store.get(state.store, name)
        if vol is None:
            raise NotFound(f"No such volume: {name}")
        info = volume_info(state.store, vol)
        info.pop("UsedBy")
        return info

    inspect_each(names, lookup, fmt)


@volume.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes")
@click.pass_obj
def rm_cmd(state: Any, names: tuple[str, ...], force: bool) -> None:
    """Remove one or more volumes."""
    from forklift.cli.common import for_each
    from forklift.store import volumes as volume_store

    for_each(names, lambda n: volume_store.remove(state.store, n, force=False),
             missing_ok=force)


@volume.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (label=…)")
@click.pass_obj
def prune_cmd(state: Any, all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused local volumes (anonymous ones only, unless -a)."""
    from forklift.cli.format import human_size
    from forklift.store import volumes as volume_store

    if not force:
        click.echo("WARNING! This will remove anonymous local volumes not used by at least one container.")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    removed, reclaimed = [], 0
    for vol in volume_store.all_volumes(state.store):
        if volume_store.users(state.store, vol.name) or not (vol.anonymous or all_):
            continue
        skip = False
        for f in filters:
            key, _, value = f.partition("=")
            if key == "label":
                k, sep, val = value.partition("=")
                skip |= not (k in vol.labels and (not sep or vol.labels[k] == val))
        if skip:
            continue
        reclaimed += _du(vol.path(state.store))
        volume_store.remove(state.store, vol.name)
        removed.append(vol.name)
    if removed:
        click.echo("Deleted Volumes:")
        click.echo("\n".join(removed))
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


def _du(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def register(cli: click.Group) -> None:
    cli.add_command(volume)
