"""How every listing prints its rows: ``-q``, ``--format`` (a template, ``table …`` or
``json``) or Docker's default table. A command builds one dict of worded values per row
(the fields its ``--format`` knows) and hands them to its :class:`Listing`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from forklift.cli.format import render_rows, table

Row = Mapping[str, Any]
LABELS = "\0labels"   # a row's labels as a mapping, for its ``.Label`` method (not a field)


@dataclass(frozen=True)
class Listing:
    """One kind of listing: every ``--format`` field with its header in a ``table``
    template, the fields of the default table, and the field ``-q`` prints."""

    headers: Mapping[str, str]
    columns: Sequence[str]
    quiet_field: str = "ID"
    unique_quiet: bool = False        # ``images -q`` prints an image with several tags once
    parse_error: str = "template parsing error"
    label_method: bool = False        # rows have Docker's ``{{.Label "name"}}``
    go_type: str = ""                 # Docker's row type, named by a missing field's error
    exec_error: str = "template parsing error"   # how an execution error is prefixed

    def print(self, rows: Sequence[Row], *, quiet: bool = False, fmt: str | None = None,
              columns: Sequence[str] | None = None) -> None:
        """Print ``rows``: their quiet field, or through ``fmt``, or as the default table
        (``columns`` overrides its fields, e.g. ``images --digests``). No rows print
        nothing, or only the header of a table; a row rendered empty is an empty line."""
        if quiet:
            out = self.quiet_lines(rows)
        elif fmt:
            out = self.render(fmt, rows)
        else:
            out = self.table(rows, columns)
        if rows or out:
            click.echo(out)

    def render(self, fmt: str, rows: Sequence[Row]) -> str:
        from forklift.gotemplate import ExecError

        try:
            return render_rows(fmt, [self.struct(r) for r in rows], self.headers,
                               parse_error=self.parse_error)
        except ExecError as exc:
            exc.message = f"{self.exec_error}: {exc.message}"
            raise

    def struct(self, row: Row) -> Row:
        """A row as a template sees it: Docker's context, its fields in sorted order (as
        ``{{json .}}`` prints them), with a ``Label`` method where Docker's has one."""
        from forklift.gotemplate import Func, Struct

        fields = {k: row[k] for k in sorted(row) if k != LABELS}
        labels = row.get(LABELS) or {}
        methods = {"Label": Func(lambda name: str(labels.get(name, "")), ("string",))}
        return Struct(fields, methods if self.label_method else None, self.go_type)

    def quiet_lines(self, rows: Sequence[Row]) -> str:
        values = [str(r[self.quiet_field]) for r in rows]
        if self.unique_quiet:
            values = list(dict.fromkeys(values))
        return "\n".join(values)

    def table(self, rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
        fields = columns or self.columns
        return table([self.headers.get(f, f.upper()) for f in fields],
                     [[str(r[f]) for f in fields] for r in rows])
