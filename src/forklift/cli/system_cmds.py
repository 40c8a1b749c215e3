"""System commands (store-wide): info, check, df, prune; and image/container prune."""

from __future__ import annotations

import sys
from typing import Any

import click


def _size(n: float) -> str:
    """Sizes as ``system df`` and prune print them (4 significant digits)."""
    from forklift.cli.format import human_size

    return human_size(n, 4)


def _confirm(warning: str, force: bool) -> bool:
    """Docker's prompt: the WARNING text, then ``Are you sure you want to continue? [y/N]``."""
    if force:
        return True
    click.echo(warning)
    click.echo("Are you sure you want to continue? [y/N] ", nl=False)
    line = sys.stdin.readline()
    return line.strip().lower() in ("y", "yes")


def _reclaimed(n: int) -> None:
    click.echo(f"Total reclaimed space: {_size(n)}")


@click.command("info")
@click.pass_obj
def info_cmd(state: Any) -> None:
    """Display store-wide information."""
    store = state.store
    n_images = store.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    n_containers = store.conn.execute("SELECT COUNT(*) FROM containers").fetchone()[0]
    n_layers = store.conn.execute("SELECT COUNT(*) FROM layers").fetchone()[0]
    click.echo(f"Root Dir: {store.root}")
    click.echo(f"Containers: {n_containers}")
    click.echo(f"Images: {n_images}")
    click.echo(f"Layers: {n_layers}")
    click.echo("Storage Driver: overlay")
    click.echo("Runtime: runc")


@click.command("check")
@click.option("--repair", is_flag=True, help="Remove what cannot be trusted and say what was removed")
@click.option("--full", is_flag=True,
              help="Also re-hash every layer blob and compare it with its extracted directory")
@click.option("--grace", type=float, default=None, metavar="SECONDS",
              help="Leave container/volume directories younger than this alone (default 60)")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no summary")
@click.pass_obj
def check_cmd(state: Any, repair: bool, full: bool, grace: float | None, quiet: bool) -> None:
    """Verify the store: blobs, layers, images, tags, containers, volumes, scratch."""
    from forklift.engine import system
    from forklift.store.check import DEFAULT_GRACE

    result = system.check(state.store, repair=repair, full=full,
                          grace=DEFAULT_GRACE if grace is None else grace)
    for line in result.problems:
        click.echo(line)
    for line in result.repaired:
        click.echo(f"repaired: {line}")
    if repair and result.repaired:
        for line in result.remaining:
            click.echo(f"remaining: {line}")
    if not quiet:
        c = result.counts
        summary = (f"checked {c.get('blobs', 0)} blobs, {c.get('layers', 0)} layers,"
                   f" {c.get('images', 0)} images, {c.get('tags', 0)} tags,"
                   f" {c.get('containers', 0)} containers, {c.get('volumes', 0)} volumes")
        if result.remaining:
            summary += f": {len(result.remaining)} problem(s)"
        else:
            summary += ": store is consistent"
        click.echo(summary)
    if result.remaining:
        raise SystemExit(1)


@click.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def df_cmd(state: Any, verbose: bool, fmt: str | None) -> None:
    """Show forklift disk usage."""
    from forklift.cli.format import ago, ellipsis, render_rows, table
    from forklift.engine import system

    usage = system.disk_usage(state.store)
    rows = usage.summary()

    def reclaim(size: int, part: int, percent: bool) -> str:
        if percent and size > 0:
            return f"{_size(part)} ({part * 100 // size}%)"
        return _size(part)

    if fmt and not verbose:
        data = [{"Type": k, "TotalCount": t, "Active": a, "Size": _size(s),
                 "Reclaimable": reclaim(s, r, k != "Build Cache")} for k, t, a, s, r in rows]
        click.echo(render_rows(fmt, data, {"TotalCount": "TOTAL", "Reclaimable": "RECLAIMABLE"}))
        return
    if not verbose:
        body = [[k, str(t), str(a), _size(s), reclaim(s, r, k != "Build Cache")]
                for k, t, a, s, r in rows]
        click.echo(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], body))
        return
    click.echo("Images space usage:\n")
    body = []
    for img in usage.images:
        short = img.id.split(":", 1)[-1][:12]
        for name in img.names or ["<none>:<none>"]:
            repo, _, tag = name.rpartition(":") if "@" not in name else (name, "", "<none>")
            if "/" in tag:  # a registry port, not a tag
                repo, tag = name, "<none>"
            body.append([repo, tag, short, ago(img.created), _size(img.size),
                         _size(img.shared_size), _size(img.size - img.shared_size),
                         str(img.containers)])
    click.echo(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                      "UNIQUE SIZE", "CONTAINERS"], body))
    click.echo("\nContainers space usage:\n")
    body = [[c.id[:12], c.image, '"' + ellipsis(c.command, 20) + '"', str(c.local_volumes),
             _size(c.size), ago(c.created), c.status, c.names] for c in usage.containers]
    click.echo(table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                      "STATUS", "NAMES"], body))
    click.echo("\nLocal Volumes space usage:\n")
    body = [[v.name, str(v.links), _size(v.size)] for v in usage.volumes]
    click.echo(table(["VOLUME NAME", "LINKS", "SIZE"], body))
    click.echo(f"\nBuild cache usage: {_size(usage.build_cache_size)}\n")
    click.echo(table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], []))


_SYSTEM_WARNING = "WARNING! This will remove:"


@click.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images not just dangling ones")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_obj
def system_prune_cmd(state: Any, all_images: bool, volumes: bool, force: bool) -> None:
    """Remove unused data."""
    from forklift.engine import system

    items = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        items.append("all anonymous volumes not used by at least one container")
    if all_images:
        items += ["all images without at least one container associated to them",
                  "all build cache"]
    else:
        items += ["all dangling images", "unused build cache"]
    warning = _SYSTEM_WARNING + "\n" + "\n".join(f"  - {i}" for i in items) + "\n"
    if not _confirm(warning, force):
        return
    result = system.prune_system(state.store, all_images=all_images, volumes=volumes)
    if result.containers.deleted:
        click.echo("Deleted Containers:")
        click.echo("\n".join(result.containers.deleted) + "\n")
    if result.volumes and result.volumes.deleted:
        click.echo("Deleted Volumes:")
        click.echo("\n".join(result.volumes.deleted) + "\n")
    if result.images.deleted:
        click.echo("Deleted Images:")
        click.echo("\n".join(result.images.deleted) + "\n")
    _reclaimed(result.reclaimed)


@click.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, hidden=True)
@click.pass_obj
def image_prune_cmd(state: Any, all_images: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused images."""
    from forklift.engine import system
    from forklift.errors import InvalidArgument

    if filters:
        raise InvalidArgument("image prune --filter is not supported yet")
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if all_images else "WARNING! This will remove all dangling images.")
    if not _confirm(warning, force):
        return
    result = system.prune_images(state.store, all_images=all_images)
    if result.deleted:
        click.echo("Deleted Images:")
        click.echo("\n".join(result.deleted) + "\n")
    _reclaimed(result.reclaimed)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, hidden=True)
@click.pass_obj
def container_prune_cmd(state: Any, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    from forklift.engine import system
    from forklift.errors import InvalidArgument

    if filters:
        raise InvalidArgument("container prune --filter is not supported yet")
    if not _confirm("WARNING! This will remove all stopped containers.", force):
        return
    result = system.prune_containers(state.store)
    if result.deleted:
        click.echo("Deleted Containers:")
        click.echo("\n".join(result.deleted) + "\n")
    _reclaimed(result.reclaimed)


def register(cli: click.Group, group: click.Group) -> None:
    group.add_command(info_cmd)
    cli.add_command(info_cmd)
    group.add_command(check_cmd)
    group.add_command(df_cmd)
    group.add_command(system_prune_cmd)
    # ``image prune`` and ``container prune`` live here too; main.py defines those
    # groups before registering any commands, so they are already in ``cli.commands``.
    image_group = cli.commands.get("image")
    if isinstance(image_group, click.Group):
        image_group.add_command(image_prune_cmd)
    container_group = cli.commands.get("container")
    if isinstance(container_group, click.Group):
        container_group.add_command(container_prune_cmd)
