"""``build`` (also ``image build``, ``builder build``) and ``builder prune``."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from forklift.cli.common import confirm, label_flags, print_reclaimed
from forklift.errors import InvalidArgument


def _build_args(items: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid build-arg: {item!r}")
        out[key] = value if sep else os.environ.get(key)
    return out


@click.command("build")
@click.argument("path")
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag in the 'name:tag' format")
@click.option("-f", "--file", "dockerfile", default=None, help="Name of the Dockerfile (default: 'PATH/Dockerfile')")
@click.option("--build-arg", "build_args", multiple=True, help="Set build-time variables")
@click.option("--target", default=None, help="Set the target build stage to build")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image")
@click.option("--label", "labels", multiple=True, help="Set metadata for an image")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the build output and print image ID on success")
@click.option("--iidfile", default=None, help="Write the image ID to the file")
@click.option("--network", default="bridge", help="Set the networking mode for the RUN instructions during build (bridge, host, none)")
@click.option("--progress", type=click.Choice(["plain", "auto", "tty", "quiet"]), default="auto",
              help="Set type of progress output (auto, plain, tty, quiet)")
@click.option("--platform", default=None, help="Set the target platform for the build (the host's only)")
@click.option("--add-host", "add_hosts", multiple=True, help="Add a custom host-to-IP mapping (host:ip)")
@click.option("--ulimit", "ulimits", multiple=True, help="Ulimit options")
@click.option("--shm-size", default=None, help="Size of /dev/shm of the RUN containers (default 64m)")
@click.option("--rm/--force-rm", "remove", default=True, hidden=True)
@click.option("-o", "--output", "output", default=None,
              help="Export the result: type=docker|oci|tar|local,dest=PATH (PATH alone: local)")
@click.option("--squash", is_flag=True, help="Squash the layers the build adds into one new layer")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the base images")
@click.option("--cache-to", default=None, help="Cache export destination (type=local,dest=DIR)")
@click.option("--cache-from", "cache_from", multiple=True, help="Cache import sources (type=local,src=DIR)")
@click.option("--no-cache-filter", "no_cache_filter", multiple=True,
              help="Do not cache the named stages (repeatable, or comma-separated)")
@click.option("--secret", "secrets", multiple=True, help="Secret to expose to the build (id=ID,src=FILE or id=ID,env=VAR)")
@click.pass_obj
def build_cmd(state: Any, path: str, tags: tuple[str, ...], dockerfile: str | None,
              build_args: tuple[str, ...], target: str | None, no_cache: bool,
              labels: tuple[str, ...], quiet: bool, iidfile: str | None, network: str,
              progress: str, platform: str | None, add_hosts: tuple[str, ...],
              ulimits: tuple[str, ...], shm_size: str | None, remove: bool,
              output: str | None, squash: bool, pull: bool, cache_to: str | None,
              cache_from: tuple[str, ...], no_cache_filter: tuple[str, ...],
              secrets: tuple[str, ...]) -> None:
    """Build an image from a Dockerfile."""
    from forklift.build import builder, cachedirs, display, outputs
    from forklift.limits import parse_size

    export = outputs.parse(output) if output is not None else None
    if export is not None:
        outputs.check_dest(export)
    # a tar on stdout: the progress goes to stderr
    shown = sys.stderr if export is not None and export.dest == "-" else sys.stdout

    quiet = quiet or progress == "quiet"
    opts = builder.BuildOptions(
        tags=list(tags), build_args=_build_args(build_args), target=target, no_cache=no_cache,
        labels=label_flags(labels), network=network, quiet=quiet, platform=platform,
        add_hosts=list(add_hosts), ulimits=list(ulimits), secrets=list(secrets),
        dockerfile_name=os.path.basename(dockerfile) if dockerfile and dockerfile != "-" else "Dockerfile")
    opts.source_date_epoch = builder.source_date_epoch(opts.build_args, dict(os.environ))
    opts.shm_size = parse_size(shm_size, "--shm-size") if shm_size else None
    opts.squash = squash
    opts.progress = display.resolve(progress, sys.stderr, dict(os.environ))
    opts.pull = pull
    opts.cache_to = cachedirs.parse(cache_to, "dest") if cache_to else None
    if opts.cache_to:
        cachedirs.check_dest(opts.cache_to)
    opts.cache_from = [cachedirs.parse(c, "src") for c in cache_from]
    opts.no_cache_filter = [n.lower() for item in no_cache_filter for n in item.split(",") if n]
    store = state.store
    image_id = builder.build_path(store, path, sys.stdin.buffer, dockerfile, opts,
                                  out=shown, err=sys.stderr)
    if iidfile:
        try:
            with open(iidfile, "w") as f:
                f.write(image_id)
        except OSError as exc:
            raise InvalidArgument(f"cannot write --iidfile {iidfile}: {exc.strerror}") from None
    if export is not None:
        outputs.export(store, image_id, export, list(tags))
    if quiet and shown is sys.stdout:
        click.echo(image_id)


@click.command("prune")
@click.option("-a", "--all", "all_entries", is_flag=True, help="Remove all unused build cache, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (until=24h)")
@click.pass_obj
def prune_cmd(state: Any, all_entries: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove build cache."""
    from forklift.build import cache
    from forklift.engine.filters import Filters

    parsed = Filters.parse(filters)
    parsed.validate(("until",))
    until = parsed.until()

    if not confirm("WARNING! This will remove all dangling build cache." if not all_entries
                   else "WARNING! This will remove all build cache.", force):
        return
    result = cache.prune(state.store, all_entries=all_entries, until=until)
    if result.entries:
        click.echo("Deleted build cache objects:")
        click.echo("\n".join(key[:25] for key in result.entries) + "\n")
    print_reclaimed(result.reclaimed)
