"""Presentation helpers: Docker's sizes, durations, tables and --format templates."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forklift.errors import InvalidArgument

if TYPE_CHECKING:
    from forklift.engine.containers import Status


def human_size(size: float, precision: int = 3) -> str:
    """Docker's units.HumanSizeWithPrecision: decimal units (``1.24MB``); listings use 3
    significant digits, ``system df`` and prune 4."""
    return _scaled(size, 1000, ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"), precision)


def binary_size(size: float) -> str:
    """Docker's units.BytesSize: binary units, 4 significant digits (``23.59GiB``)."""
    return _scaled(size, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), 4)


def _scaled(size: float, step: int, units: tuple[str, ...], precision: int) -> str:
    i = 0
    size = float(size)
    while size >= step and i < len(units) - 1:
        size /= step
        i += 1
    return f"{_go_g(size, precision)}{units[i]}"


def _go_g(value: float, precision: int) -> str:
    text = f"{value:.{precision}g}"
    if "e" in text:
        text = f"{value:.0f}"
    return text


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(timestamp: float) -> str:
    if not timestamp:
        return "N/A"
    return human_duration(max(0.0, time.time() - timestamp)) + " ago"


def stamp(timestamp: float) -> str:
    """A point in time as Docker's ``CreatedAt`` prints it (Go's time.String, in UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(timestamp)) if timestamp else ""


def go_time(text: str) -> str:
    """An RFC 3339 time (``2026-11-30T13:39:46.932917585Z``) as Go's time.String prints it
    in UTC (``2026-11-30 13:39:46.932917585 +0000 UTC``): the fraction kept to the
    nanosecond, trailing zeros dropped; a time with an offset is converted (to the second)."""
    if not text:
        return ""
    main, dot, rest = text.partition(".")
    digits = "".join(c for c in rest if c.isdigit())[:9].rstrip("0") if dot else ""
    zone = rest.lstrip("0123456789") if dot else main[19:]
    if zone not in ("Z", ""):
        from forklift.oci import parse_time

        return stamp(parse_time(text)) or "0001-01-01 00:00:00 +0000 UTC"
    frac = f".{digits}" if digits else ""
    return f"{main[:10]} {main[11:19]}{frac} +0000 UTC"


def rfc3339(timestamp: float) -> str:
    """A point in time as ``history``'s ``CreatedAt`` prints it (RFC 3339, in UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)) if timestamp else ""


def status_text(status: Status) -> str:
    """``ps``'s STATUS: "Up 5 minutes", "Up (Paused)", "Created", "Exited (0) 2 hours ago"."""
    if status.state == "running":
        up = "Up " + human_duration(max(0.0, time.time() - status.started))
        if status.health:
            up += " (health: starting)" if status.health == "starting" else f" ({status.health})"
        return up
    if status.state == "paused":
        return "Up (Paused)"
    if status.state == "created":
        return "Created"
    if status.state == "restarting":
        return f"Restarting ({status.exit_code}) {ago(status.finished)}"
    when = ago(status.finished) if status.finished else ""
    return f"Exited ({status.exit_code}) {when}".rstrip()


def short_id(ident: str, no_trunc: bool = False) -> str:
    """An ID as listings show it: 12 hex digits without the ``sha256:`` prefix, unless
    ``--no-trunc``; placeholders such as ``<missing>`` as they are."""
    if no_trunc or ident.startswith("<"):
        return ident
    return ident.split(":", 1)[-1][:12]


def ellipsis(text: str, width: int) -> str:
    """Docker's stringutils.Ellipsis: cut to ``width`` runes, ending with ``…``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], padding: int = 3,
          min_width: int = 10) -> str:
    """Columns as Docker's tabwriter aligns them: min 3 spaces between, every column but
    the last at least ``min_width`` wide with them (10 in listings, 20 in ``top``), padded
    even when the last is empty."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    widths = [max(w + padding, min_width) for w in widths]
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell
                 for i, cell in enumerate(row)]
        lines.append("".join(cells))   # an empty last cell keeps its padding, as Go's
    return "\n".join(lines)


# ----------------------------------------------------------------------------- templates
#
# --format templates are Go's text/template language (forklift.gotemplate, imported only
# when a template is rendered, to keep ``run`` fast). The data are the dicts a command
# prints as JSON; they stand for Docker's structs: a missing field is an error, except
# under the fields Docker declares as maps, where a missing key prints ``<no value>`` and
# a null is a nil map (``map[]``); a null in a field Docker declares as a slice is ``[]``.

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
# Fields Docker's types declare as maps: a missing key is "<no value>", not an error.
MAP_FIELDS = frozenset({"Labels", "Options", "DriverOpts", "ExposedPorts", "Volumes", "Ports",
                        "Networks", "Data", "PortBindings", "Tmpfs", "Sysctls", "StorageOpt"})
# Fields Docker's types declare as slices: a null prints "[]" (a nil slice), not "<nil>".
SLICE_FIELDS = frozenset({"Cmd", "Entrypoint", "Env", "OnBuild", "Shell", "RepoTags",
                          "RepoDigests", "Layers", "Args", "Mounts", "Binds", "Dns",
                          "DnsOptions", "DnsSearch", "ExtraHosts", "CapAdd", "CapDrop",
                          "SecurityOpt", "Links", "VolumesFrom", "GroupAdd", "Devices",
                          "DeviceCgroupRules", "Test", "Aliases", "Secrets", "Configs"})
# ... and those of container inspect's complete HostConfig and NetworkSettings (inspectdoc)
SLICE_FIELDS |= {"ExecIDs", "Ulimits", "BlkioWeightDevice", "BlkioDeviceReadBps",
                 "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
                 "DeviceRequests", "MaskedPaths", "ReadonlyPaths", "SecondaryIPAddresses",
                 "SecondaryIPv6Addresses"}
# Fields of Docker's inspect structs that its JSON leaves out when empty (omitempty) and
# forklift's documents too, with the zero value a template over the struct finds: Config's
# and ContainerConfig's, HostConfig's, State.Health, a container's sizes, an image's Variant
OMITTED_FIELDS: dict[str, Any] = {
    "ExposedPorts": None, "Healthcheck": None, "ArgsEscaped": False, "NetworkDisabled": False,
    "MacAddress": "", "StopSignal": "", "StopTimeout": None, "Shell": None,
    "StorageOpt": None, "Tmpfs": None, "Sysctls": None, "Mounts": None, "Init": None,
    "Health": None, "SizeRw": None, "SizeRootFs": None, "Node": None, "Variant": "",
}


class TemplateError(InvalidArgument):
    """A template Go's parser would refuse (Docker: exit 64 from inspect, 1 elsewhere)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"template parsing error: {detail}")
        self.detail = detail


class Template:
    """A parsed template: ``execute(data)`` renders it (``ExecError`` on Go's errors)."""

    def __init__(self, text: str) -> None:
        from forklift import gotemplate
        try:
            self._parsed = gotemplate.parse(text)
        except gotemplate.ParseError as exc:
            raise TemplateError(exc.message) from None

    def execute(self, data: Any, omitted: dict[str, Any] | None = None) -> str:
        return self._parsed.execute(data, MAP_FIELDS, SLICE_FIELDS, omitted)


class _Headers(dict):  # type: ignore[type-arg]
    """Every field is a column name: the command's, else the field's name in capitals;
    ``.Label "x"`` is its argument, as in Docker's header rows."""

    @property
    def methods(self) -> dict[str, Any]:
        from forklift.gotemplate import Func

        return {"Label": Func(lambda name: name, ("string",))}

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return key.upper()


def _header(body: str, headers: Mapping[str, str]) -> str:
    """A table's header line: Docker runs the row template over the column names (its
    functions give their argument back); where that fails, each action is its column."""
    from forklift import gotemplate
    text = body.replace("\\t", "\t").replace("\\n", "\n")
    try:
        return gotemplate.Template(text, gotemplate.HEADERS).execute(_Headers(headers))
    except gotemplate.ExecError:
        return _ACTION.sub(lambda m: headers.get(m.group(1).lstrip("."),
                                                 m.group(1).lstrip(".").upper()), text)


def parse(template: str) -> Template:
    """Parse ``template`` (``\\t`` and ``\\n`` are tab and newline, as in Docker's tables)."""
    return Template(template.replace("\\t", "\t").replace("\\n", "\n"))


def render(template: str, data: Any) -> str:
    return parse(template).execute(data)


def render_rows(template: str, rows: Sequence[Mapping[str, Any]],
                headers: Mapping[str, str], parse_error: str = "template parsing error") -> str:
    """``--format``: ``table ...`` gets a header line and aligned columns.

    The template is parsed before any row is rendered; ``parse_error`` is how the
    command words a parse failure (``ps`` says "failed to parse template")."""
    if template == "json":
        return "\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    body = template
    if template.startswith("table"):
        body = template[len("table"):].strip()
        if not body:
            raise InvalidArgument("template: 'table' needs a format, e.g. 'table {{.ID}}'")
    try:
        parsed = parse(body)
    except TemplateError as exc:
        exc.message = f"{parse_error}: {exc.detail}"
        raise
    if body is template:
        return "\n".join(parsed.execute(r) for r in rows)
    header = _header(body, headers)
    lines = [parsed.execute(r) for r in rows]
    split = [line.split("\t") for line in [header, *lines]]
    if all(len(s) == len(split[0]) for s in split) and len(split[0]) > 1:
        return table(split[0], split[1:])
    return "\n".join([header, *lines])
