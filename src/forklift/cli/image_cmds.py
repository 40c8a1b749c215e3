"""Image commands: ls, history, inspect, tag, rm, import."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli.common import MAX_SIZE_HELP
from forklift.cli.format import ago, ellipsis, human_size, render_rows, table


def _short(image_id: str, no_trunc: bool) -> str:
    return image_id if no_trunc else image_id.split(":", 1)[-1][:12]


@click.command("ls")
@click.argument("reference", required=False)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images (default hides intermediate images)")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE, reference=PATTERN)")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def ls_cmd(state: Any, reference: str | None, show_all: bool, quiet: bool, no_trunc: bool,
           digests: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List images."""
    from forklift.engine import images
    from forklift.engine.filters import Filters

    wanted = Filters.parse(filters)
    if reference:
        wanted.add("reference", reference)
    rows = images.list_images(state.store, show_all, wanted)
    if quiet:
        seen = []
        for r in rows:
            ident = _short(r.id, no_trunc)
            if ident not in seen:
                seen.append(ident)
        if seen:
            click.echo("\n".join(seen))
        return
    if fmt:
        data = [{"Repository": r.repository, "Tag": r.tag, "ID": _short(r.id, no_trunc),
                 "Digest": r.digest, "CreatedSince": ago(r.created),
                 "CreatedAt": _stamp(r.created), "Size": human_size(r.size)} for r in rows]
        out = render_rows(fmt, data, {"ID": "IMAGE ID", "CreatedSince": "CREATED",
                                      "CreatedAt": "CREATED AT"})
        if out:
            click.echo(out)
        return
    headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    body = [[r.repository, r.tag] + ([r.digest] if digests else [])
            + [_short(r.id, no_trunc), ago(r.created), human_size(r.size)] for r in rows]
    click.echo(table(headers, body))


def _stamp(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(ts)) if ts else ""


@click.command("history")
@click.argument("image")
@click.option("-H", "--human", type=bool, default=True, help="Print sizes and dates in human readable format")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def history_cmd(state: Any, image: str, human: bool, no_trunc: bool, quiet: bool, fmt: str | None) -> None:
    """Show the history of an image."""
    from forklift.engine import images

    rows = images.history(state.store, image)
    if quiet:
        click.echo("\n".join(r.image if r.image == "<missing>" else _short(r.image, no_trunc) for r in rows))
        return

    def created_by(r: Any) -> str:
        text = r.created_by.replace("\t", " ")
        return text if no_trunc else ellipsis(text, 45)

    if fmt:
        data = [{"ID": r.image if r.image == "<missing>" else _short(r.image, no_trunc),
                 "CreatedSince": ago(r.created), "CreatedAt": _stamp(r.created),
                 "CreatedBy": created_by(r), "Size": human_size(r.size) if human else str(r.size),
                 "Comment": r.comment} for r in rows]
        click.echo(render_rows(fmt, data, {"ID": "IMAGE", "CreatedSince": "CREATED",
                                           "CreatedBy": "CREATED BY", "CreatedAt": "CREATED AT"}))
        return
    body = [[r.image if r.image == "<missing>" else _short(r.image, no_trunc),
             ago(r.created) if human else _stamp(r.created), created_by(r),
             human_size(r.size) if human else str(r.size), r.comment] for r in rows]
    click.echo(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], body))


@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def inspect_cmd(state: Any, images: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more images."""
    from forklift.cli.common import inspect_each
    from forklift.engine import images as engine

    inspect_each(images, lambda name: engine.inspect(state.store, name), fmt)


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_obj
def tag_cmd(state: Any, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    from forklift.engine import images

    images.tag(state.store, source, target)


@click.command("rm")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.pass_obj
def rm_cmd(state: Any, images: tuple[str, ...], force: bool, no_prune: bool) -> None:
    """Remove one or more images."""
    from forklift.cli.common import for_each
    from forklift.engine import images as engine

    for_each(images, lambda n: engine.remove(state.store, n, force=force, prune=not no_prune),
             forgive_missing=force)


@click.command("import")
@click.argument("source")
@click.argument("repository", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", default=None, help="Set platform (only linux/<this machine> is supported)")
@click.option("--max-size", default=None, metavar="SIZE", help=MAX_SIZE_HELP)
@click.pass_obj
def import_cmd(state: Any, source: str, repository: str | None, changes: tuple[str, ...],
               message: str, platform: str | None, max_size: str | None) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from forklift.engine import images

    image_id = images.import_tarball(state.store, source, repository, list(changes), message,
                                     max_size=max_size)
    click.echo(image_id)


def register(cli: click.Group, group: click.Group) -> None:
    for cmd in (ls_cmd, history_cmd, inspect_cmd, tag_cmd, rm_cmd, import_cmd):
        group.add_command(cmd)
    group.add_command(ls_cmd, "list")
    cli.add_command(ls_cmd, "images")
    cli.add_command(history_cmd)
    cli.add_command(tag_cmd)
    cli.add_command(rm_cmd, "rmi")
    cli.add_command(import_cmd)
