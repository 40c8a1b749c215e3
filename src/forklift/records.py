"""Plain records for the hot paths: what a dataclass gives (value equality, unhashable,
a repr naming every field) for a class that lists its fields in ``__slots__``, without
dataclasses' import (inspect, ast, dis) and the methods it generates with ``exec``."""

from __future__ import annotations


class SlotRecord:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, SlotRecord)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass's

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"
