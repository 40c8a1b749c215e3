"""Plain records for the hot paths: what a dataclass gives (value equality, unhashable,
a repr naming every field) for a class that lists its fields in ``__slots__``, without
dataclasses' import (inspect, ast, dis) and the methods it generates with ``exec``."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: its import is on the hot paths
if TYPE_CHECKING:
    from typing import Self


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


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record (dataclasses' error of that name)."""


def _rebuild(cls: type[FrozenRecord], values: dict[str, object]) -> FrozenRecord:
    return cls(**values)


class FrozenRecord(SlotRecord):
    """A frozen dataclass's interface: immutable, hashable by value (fields named in
    ``_unhashed`` left out, as ``field(hash=False)``), copied and pickled through its
    keywords. Its ``__init__`` sets its fields through ``_set``."""

    __slots__: tuple[str, ...] = ()
    _unhashed: tuple[str, ...] = ()

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(getattr(self, n) for n in self.__slots__ if n not in self._unhashed))

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (type(self), {n: getattr(self, n) for n in self.__slots__})

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` (dataclasses.replace)."""
        return type(self)(**{**{n: getattr(self, n) for n in self.__slots__}, **changes})
