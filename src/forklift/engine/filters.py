"""``--filter key=value``: one parser, one validation and the matchers every listing and
prune uses, with the rules and wording of Docker's daemon (moby's ``filters.Args``).

A key may be given several times. What a key means, and whether its values are
alternatives or must all hold, is the listing's business (``engine/images``,
``engine/volumes``, ``engine/network``, ``engine/system``); each states the keys it
accepts and calls :meth:`Filters.validate` first, so an unknown key is refused before
anything is looked up or removed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from forklift.engine import timestamps
from forklift.errors import InvalidArgument, InvalidFilter, InvalidFlag

TRUE_WORDS = ("true", "1")
FALSE_WORDS = ("false", "0")


class Filters:
    """Filter values by key, each value once, in the order given."""

    def __init__(self, fields: Mapping[str, Iterable[str]] | None = None) -> None:
        self._fields: dict[str, list[str]] = {}
        for key, values in (fields or {}).items():
            for value in values:
                self.add(key, value)

    @classmethod
    def parse(cls, flags: Iterable[str]) -> Filters:
        """``--filter`` flags as Docker's CLI reads them: ``key=value`` with the key
        lower-cased and both sides trimmed; an empty flag is ignored.

        Raises InvalidFlag (exit 125) for a flag without ``=``.
        """
        out = cls()
        for flag in flags:
            if not flag:
                continue
            key, sep, value = flag.partition("=")
            if not sep:
                raise InvalidFlag(f'invalid argument "{flag}" for "-f, --filter" flag:'
                                   " bad format of filter (expected name=value)")
            out.add(key.strip().lower(), value.strip())
        return out

    def copy(self) -> Filters:
        return Filters(self._fields)

    def add(self, key: str, value: str) -> None:
        values = self._fields.setdefault(key, [])
        if value not in values:
            values.append(value)

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __bool__(self) -> bool:
        return bool(self._fields)

    def __repr__(self) -> str:
        return f"Filters({self._fields!r})"

    def keys(self) -> list[str]:
        return list(self._fields)

    def get(self, key: str) -> list[str]:
        return list(self._fields.get(key, ()))

    def validate(self, accepted: Collection[str]) -> None:
        """Raise InvalidFilter (``Invalid filter 'key'``) for the first key not in ``accepted``."""
        for key in self._fields:
            if key not in accepted:
                raise InvalidFilter(f"Invalid filter '{key}'")

    def invalid(self, key: str) -> InvalidFilter:
        """Docker's error for a key whose values make no sense: ``Invalid filter 'k=[a b]'``."""
        return InvalidFilter(f"Invalid filter '{key}=[{' '.join(self.get(key))}]'")

    # ------------------------------------------------------------------ matchers
    # Each is true when the key was not given: an absent filter keeps everything.

    def exact(self, key: str, source: str) -> bool:
        """``source`` is one of the key's values."""
        values = self._fields.get(key)
        return not values or source in values

    def match(self, key: str, source: str) -> bool:
        """One of the key's values equals ``source`` or is a regular expression found in it
        (Docker's ``name=``/``id=``: ``name=web`` keeps ``web-1`` and ``myweb``); a value that
        is no valid expression matches only exactly."""
        values = self._fields.get(key)
        if not values or source in values:
            return True
        for value in values:
            try:
                if re.search(value, source):
                    return True
            except re.error:
                continue
        return False

    def labels(self, labels: Mapping[str, str], key: str = "label") -> bool:
        """Every value of ``key`` holds: ``k`` (the label is set) or ``k=v`` (set to ``v``)."""
        for value in self._fields.get(key, ()):
            name, sep, wanted = value.partition("=")
            if name not in labels or (sep and labels[name] != wanted):
                return False
        return True

    def prune_labels(self, labels: Mapping[str, str]) -> bool:
        """The prunes' rule: every ``label=`` holds, and not every ``label!=`` holds (an
        object is kept only if it has all the labels ``label!`` names)."""
        if not self.labels(labels):
            return False
        return "label!" not in self or not self.labels(labels, "label!")

    # ------------------------------------------------------------------ typed values

    def single(self, key: str) -> str | None:
        """The key's one value (None when absent); InvalidFilter when it has several."""
        values = self._fields.get(key)
        if values and len(values) > 1:
            raise InvalidFilter(f'got more than one value for filter key "{key}"')
        return values[0] if values else None

    def choices(self, key: str, allowed: Collection[str]) -> list[str]:
        """The key's values, each one of ``allowed`` (InvalidFilter ``'key'='value'`` else)."""
        for value in self._fields.get(key, ()):
            if value not in allowed:
                raise InvalidFilter(f"invalid filter: '{key}'='{value}'")
        return self.get(key)

    def boolean(self, key: str, *, true: Collection[str] = TRUE_WORDS,
                false: Collection[str] = FALSE_WORDS, prefer: bool = True,
                error: str | None = None) -> bool | None:
        """The key as a boolean: None when absent. When its values hold both a true and a
        false word, ``prefer`` wins; when they hold neither, InvalidFilter (``error``, or
        Docker's usual ``Invalid filter 'key=[values]'``)."""
        values = self._fields.get(key)
        if not values:
            return None
        is_true = any(v in true for v in values)
        is_false = any(v in false for v in values)
        if is_true and is_false:
            return prefer
        if not (is_true or is_false):
            raise InvalidFilter(error) if error else self.invalid(key)
        return is_true

    def until(self, now: float | None = None) -> float | None:
        """``until=`` as epoch seconds (a duration back from now, a date, Unix seconds);
        None when absent. One value at most, as in Docker."""
        values = self._fields.get("until")
        if not values:
            return None
        if len(values) > 1:
            raise InvalidFilter("more than one until filter specified")
        try:
            return timestamps.parse(values[0], now)
        except InvalidArgument as exc:
            raise InvalidFilter(exc.message) from None

