"""System commands (store-wide); grows with the reliability work."""

from __future__ import annotations

from typing import Any

import click


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


def register(cli: click.Group, group: click.Group) -> None:
    group.add_command(info_cmd)
    cli.add_command(info_cmd)
