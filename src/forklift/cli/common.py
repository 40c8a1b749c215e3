"""Behaviour shared by many commands: acting on several names, printing inspect output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click


def for_each(names: tuple[str, ...], fn: Callable[[str], Any], *, echo: bool = True,
             missing_ok: bool = False) -> None:
    """Docker's multi-object commands: go on after an error, exit 1 at the end.

    With one name its error is raised as is (one ``Error:`` line, its exit code).
    ``fn`` may return lines to print; otherwise the name is echoed when ``echo``.
    """
    from forklift.errors import ForkliftError, NotFound

    failed = False
    for name in names:
        try:
            lines = fn(name)
        except NotFound:
            if missing_ok:
                continue
            if len(names) == 1:
                raise
            failed = True
            continue
        except ForkliftError as exc:
            if len(names) == 1:
                raise
            click.echo(f"Error: {exc.message}", err=True)
            failed = True
            continue
        if isinstance(lines, list):
            for line in lines:
                click.echo(line)
        elif echo:
            click.echo(name)
    if failed:
        raise SystemExit(1)


def print_objects(results: list[dict[str, Any]], fmt: str | None) -> None:
    """``inspect``: a JSON array, or each object through a ``--format`` template."""
    if fmt:
        from forklift.cli.format import render

        for item in results:
            click.echo(render(fmt, item))
    else:
        click.echo(json.dumps(results, indent=4))


MAX_SIZE_HELP = ("Refuse a layer larger than SIZE decompressed, e.g. 512m or 20g"
                 " (default: max-layer-size in the store's config.toml, else 32g)")
