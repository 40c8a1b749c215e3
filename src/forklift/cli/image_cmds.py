"""Image commands: ls, history, inspect, tag, rm, import."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli import fast
from forklift.cli.common import MAX_SIZE_HELP, ShortBool, for_each, inspect_each
from forklift.cli.format import ago, ellipsis, human_size, rfc3339, short_id, stamp
from forklift.cli.listing import Listing
from forklift.engine import images as engine
from forklift.engine.filters import Filters
from forklift.engine.images import HistoryRow, ImageRow

IMAGES = Listing({"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"},
                 ["Repository", "Tag", "ID", "CreatedSince", "Size"], unique_quiet=True,
                 go_type="*formatter.imageContext")
HISTORY = Listing({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY",
                   "CreatedAt": "CREATED AT"},
                  ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"],
                  go_type="*image.historyContext")


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
    wanted = Filters.parse(filters)
    if reference:
        wanted.add("reference", reference)
    rows = [_image_row(r, no_trunc) for r in engine.list_images(state.store, show_all, wanted)]
    columns = ["Repository", "Tag", *(["Digest"] if digests else []), "ID", "CreatedSince", "Size"]
    IMAGES.print(rows, quiet=quiet, fmt=fmt, columns=columns)


def _image_row(r: ImageRow, no_trunc: bool) -> dict[str, str]:
    # Docker's CLI knows the shared/unique sizes and container counts only in system df -v
    return {"Repository": r.repository, "Tag": r.tag, "ID": short_id(r.id, no_trunc),
            "Digest": r.digest, "CreatedSince": ago(r.created), "CreatedAt": stamp(r.created),
            "Size": human_size(r.size), "VirtualSize": human_size(r.size, 4),
            "SharedSize": "N/A", "UniqueSize": "N/A", "Containers": "N/A"}


@click.command("history")
@click.argument("image")
@click.option("-H", "--human", type=ShortBool(), default=True, help="Print sizes and dates in human readable format")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def history_cmd(state: Any, image: str, human: bool, no_trunc: bool, quiet: bool, fmt: str | None) -> None:
    """Show the history of an image."""
    rows = [_history_row(r, human, no_trunc) for r in engine.history(state.store, image)]
    created = "CreatedSince" if human else "CreatedAt"
    HISTORY.print(rows, quiet=quiet, fmt=fmt,
                  columns=["ID", created, "CreatedBy", "Size", "Comment"])


def _history_row(r: HistoryRow, human: bool, no_trunc: bool) -> dict[str, str]:
    created_by = r.created_by.replace("\t", " ")
    created_at = rfc3339(r.created)
    return {"ID": short_id(r.image, no_trunc),
            "CreatedSince": ago(r.created) if human else created_at, "CreatedAt": created_at,
            "CreatedBy": created_by if no_trunc else ellipsis(created_by, 45),
            "Size": human_size(r.size) if human else str(r.size), "Comment": r.comment}


@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def inspect_cmd(state: Any, images: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more images."""
    inspect_each(images, lambda name: engine.inspect(state.store, name), fmt)


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_obj
def tag_cmd(state: Any, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    engine.tag(state.store, source, target)


@click.command("rm")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.pass_obj
def rm_cmd(state: Any, images: tuple[str, ...], force: bool, no_prune: bool) -> None:
    """Remove one or more images."""
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
    fast.import_(state, source, repository, changes, message, platform, max_size)
