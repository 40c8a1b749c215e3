"""``image save`` / ``image load`` (and the ``save`` / ``load`` shortcuts)."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli import fast
from forklift.cli.common import MAX_SIZE_HELP
from forklift.engine import transfer

FORMATS = ("docker-archive", "oci-archive", "oci-dir")


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Write to a file (or directory for oci-dir), instead of STDOUT")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="docker-archive",
              show_default=True, help="Archive format")
@click.option("--compress", type=click.Choice(("gzip", "zstd", "none")), default=None,
              help="Layer compression for oci-archive/oci-dir (default gzip)")
@click.pass_obj
def save_cmd(state: Any, images: tuple[str, ...], output: str | None, fmt: str,
             compress: str | None) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    transfer.save(state.store, list(images), output, fmt, compress)


@click.command("load")
@click.option("-i", "--input", "source", default=None, metavar="FILE",
              help="Read from tar archive file or OCI layout directory, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True,
              help="Suppress progress output (forklift shows none; Loaded lines still print)")
@click.option("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
              help="Image platform to load from a multi-platform archive (default: this machine)")
@click.option("--max-size", default=None, metavar="SIZE", help=MAX_SIZE_HELP)
@click.pass_obj
def load_cmd(state: Any, source: str | None, quiet: bool, platform: str | None,
             max_size: str | None) -> None:
    """Load images from a tar archive or STDIN (docker-archive, OCI archive or layout)."""
    fast.load(state, source, quiet, platform, max_size)
