"""Behaviour shared by many commands: acting on several names, printing inspect output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from forklift.cli.format import OMITTED_FIELDS, TemplateError, human_size, parse
from forklift.errors import ForkliftError, InspectTemplateError, InvalidArgument, NotFound


def for_each(names: tuple[str, ...], fn: Callable[[str], Any], *, echo: bool = True,
             missing_ok: bool = False, forgive_missing: bool = False,
             wrap: Callable[[str, str], str] | None = None,
             summary: str | None = None) -> None:
    """Docker's multi-object commands: an error line per failing name, go on, exit 1 at the end.

    With one name its error is raised as is (one ``Error:`` line, its exit code).
    ``fn`` may return lines to print; otherwise the name is echoed when ``echo``.
    ``missing_ok`` skips missing names silently; ``forgive_missing`` reports them but
    does not fail (``rm -f``/``rmi -f``: cleanup scripts under ``set -e`` rely on it).
    ``wrap(name, message)`` rewords an error as the command's Docker counterpart does;
    ``summary`` adds Docker's closing line naming every name that failed.
    """
    failed: list[str] = []
    for name in names:
        try:
            lines = fn(name)
        except ForkliftError as exc:
            missing = isinstance(exc, NotFound)
            if missing and missing_ok:
                continue
            if wrap is not None:
                exc.message = wrap(name, exc.message)
            forgiven = missing and forgive_missing
            if len(names) == 1 and not forgiven:
                raise
            click.echo(f"Error: {exc.message}", err=True)
            if not forgiven:
                failed.append(name)
            continue
        if isinstance(lines, list):
            for line in lines:
                click.echo(line)
        elif echo:
            click.echo(name)
    if failed:
        if summary:
            click.echo(f"Error: {summary}: {', '.join(failed)}", err=True)
        raise SystemExit(1)


def inspect_each(names: tuple[str, ...], lookup: Callable[[str], dict[str, Any]],
                 fmt: str | None) -> None:
    """``inspect``: print every object found, then one error line per missing name (exit 1),
    as Docker does; a malformed template is refused before anything is looked up."""
    template = _parse_template(fmt)
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in names:
        try:
            results.append(lookup(name))
        except NotFound as exc:
            errors.append(exc.message)
    try:
        _print_objects(results, fmt, template)
    finally:
        for message in errors:
            click.echo(f"Error: {message}", err=True)
    if errors:
        raise SystemExit(1)


def print_objects(results: list[dict[str, Any]], fmt: str | None) -> None:
    """``inspect``: a JSON array, or each object through a ``--format`` template."""
    _print_objects(results, fmt, _parse_template(fmt))


def _parse_template(fmt: str | None) -> Any:
    if not fmt:
        return None
    try:
        return parse(fmt)
    except TemplateError as exc:
        raise InspectTemplateError(exc.message) from None


def _print_objects(results: list[dict[str, Any]], fmt: str | None, template: Any) -> None:
    if template is not None:
        for item in results:
            try:
                text = template.execute(item, OMITTED_FIELDS)
            except InvalidArgument as exc:  # Docker words an execution error this way too
                raise InvalidArgument(f"template parsing error: {exc.message}") from None
            click.echo(text)
    else:
        click.echo(json.dumps(results, indent=4))


MAX_SIZE_HELP = ("Refuse a layer larger than SIZE decompressed, e.g. 512m or 20g"
                 " (default: max-layer-size in the store's config.toml, else 32g)")


def label_flags(items: Iterable[str]) -> dict[str, str]:
    """``--label k=v`` flags as a dict (``k`` alone: an empty value; the last one wins)."""
    return {key: value for key, _, value in (item.partition("=") for item in items)}


def confirm(warning: str, force: bool) -> bool:
    """Docker's prune prompt: the WARNING text, then ``Are you sure you want to continue?
    [y/N]``; anything but y/yes (end of input too) declines."""
    if force:
        return True
    click.echo(warning)
    click.echo("Are you sure you want to continue? [y/N] ", nl=False)
    line = sys.stdin.readline()
    return line.strip().lower() in ("y", "yes")


def print_deleted(heading: str, lines: list[str]) -> None:
    """A prune's ``Deleted …:`` section (nothing when nothing went), then a blank line."""
    if lines:
        click.echo(heading)
        click.echo("\n".join(lines) + "\n")


def print_reclaimed(size: int) -> None:
    click.echo(f"Total reclaimed space: {human_size(size, 4)}")


class ShortBool(click.ParamType):
    """A boolean flag value also written Go's way after a short name (``-H=false``), which
    click hands over as ``=false``."""

    name = "boolean"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith("="):
            value = value[1:]
        return click.BOOL.convert(value, param, ctx)
