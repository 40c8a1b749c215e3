"""Points in time as Docker's CLI and daemon read them (moby's ``timetypes.GetTimestamp``):
``logs --since/--until`` and the ``until`` filter of the prunes."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from forklift.errors import InvalidArgument

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DATE = r"(\d{4})-(\d{2})-(\d{2})"


def go_duration(text: str) -> float | None:
    """Go's time.ParseDuration (``1h30m``, ``-5m``, ``1.5s``) in seconds, or None."""
    m = _DURATION.fullmatch(text)
    if not m:
        return None
    total = sum(float(num) * _DURATION_UNITS[unit] for num, unit in _DURATION_PART.findall(m.group(2)))
    return -total if m.group(1) == "-" else total


def parse(value: str, now: float | None = None) -> float:
    """Epoch seconds for a duration back from ``now``, an RFC 3339 date or date-time
    (local time without a zone), or Unix seconds (``1700000000.5``).

    Raises InvalidArgument worded as Docker's daemon words it. Pure: reads only the clock.
    """
    now = time.time() if now is None else now
    duration = go_duration(value)
    if value != "0" and duration is not None:
        return now - duration
    m = re.fullmatch(_DATE + _clock(value) + _zone(value), value)
    if m:
        return _from_fields(value, *m.groups())
    if "-" in value:
        raise InvalidArgument(f'parsing time "{value}": not an RFC 3339 date or time')
    m = re.fullmatch(r"([-+]?\d+)(?:\.([-+]?\d+))?", value)
    if not m:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')
    frac = m.group(2) or ""
    return int(m.group(1)) + (int(frac) / 10 ** len(frac.lstrip("+-")) if frac else 0.0)


def _zoned(value: str) -> bool:
    return any(c in value for c in "zZ+") or value.count("-") == 3


def _zone(value: str) -> str:
    return r"(Z|[+-]\d{2}:\d{2})" if _zoned(value) else "()"


def _clock(value: str) -> str:
    """The time-of-day part of the pattern: Docker accepts hours, hours:minutes or a full time."""
    if "." in value:
        return r"T(\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    if "T" not in value:
        return "()()()()"
    colons = value.count(":") - (1 if _zoned(value) and "Z" not in value.upper() else 0)
    if colons >= 2:
        return r"T(\d{2}):(\d{2}):(\d{2})()"
    return [r"T(\d{2})()()()", r"T(\d{2}):(\d{2})()()"][colons]


def _from_fields(value: str, y: str, mo: str, d: str, hh: str, mm: str, ss: str, frac: str,
                 tz: str) -> float:
    try:
        local = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
    except ValueError as exc:
        raise InvalidArgument(f'parsing time "{value}": {exc}') from None
    if not tz:
        return local.astimezone().timestamp() + float(frac or 0)
    offset = 0 if tz == "Z" else (int(tz[1:3]) * 60 + int(tz[4:6])) * (-1 if tz[0] == "-" else 1)
    return local.replace(tzinfo=UTC).timestamp() - offset * 60 + float(frac or 0)


def parse_timestamp(value: str, what: str, now: float | None = None) -> float:
    """``--since``/``--until`` as Docker's CLI reads them: :func:`parse`, its error naming
    the flag (``invalid value for "since": …``)."""
    try:
        return parse(value, now)
    except InvalidArgument as exc:
        raise InvalidArgument(f'invalid value for "{what}": {exc.message}') from None
