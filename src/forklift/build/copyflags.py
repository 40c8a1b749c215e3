"""COPY/ADD's BuildKit flags: ``--exclude``, ``--parents``, ``--link``, ``--keep-git-dir``.

* ``--exclude=PATTERN`` (repeatable): ``.dockerignore`` patterns, matched against each
  source's own name and against the paths below a directory source, relative to it.
  What they match is neither copied nor part of the step's key.
* ``--parents``: each source keeps its directories from the context root (or the image
  root for ``--from``) under the destination, or from a ``/./`` pivot in the pattern
  (``x/./y/*.txt`` keeps ``y/``); ``**`` matches any number of directories.
* ``--link``: the step writes into an empty directory instead of an overlay of the
  parent, so the layer does not depend on the base (see ``Builder._copy``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from forklift.build.context import Context, Ignore, go_clean
from forklift.errors import InvalidArgument

PIVOT = "/./"


@dataclass(frozen=True)
class CopyFlags:
    excludes: tuple[str, ...] = ()
    parents: bool = False
    link: bool = False
    keep_git_dir: bool = False

    def key(self, patterns: list[str]) -> list[str]:
        """Words for the step's key; none when no flag is set, so older keys stay valid.
        Under --parents the patterns too: their pivots place the same files elsewhere."""
        words = [f"exclude={e}" for e in self.excludes]
        words += [name for name, on in (("parents", self.parents), ("link", self.link),
                                        ("keep-git-dir", self.keep_git_dir)) if on]
        return words + ([f"pattern={p}" for p in patterns] if self.parents else [])

    @cached_property
    def _ignore(self) -> Ignore | None:
        return Ignore(self.excludes) if self.excludes else None

    @property
    def exclude(self) -> Callable[[str], bool] | None:
        ignore = self._ignore
        return ignore.excluded if ignore is not None else None


NONE = CopyFlags()


def boolean(flag: str, value: str | None) -> bool:
    """``--flag``, ``--flag=true`` or ``--flag=false`` (absent: false)."""
    if value is None:
        return False
    if value in ("", "true", "True", "TRUE", "1"):
        return True
    if value in ("false", "False", "FALSE", "0"):
        return False
    raise InvalidArgument(f'invalid value for --{flag}: "{value}" (true or false)')


def parse(flags: dict[str, str], excludes: list[str]) -> CopyFlags:
    for pattern in excludes:
        if not pattern.strip():
            raise InvalidArgument("--exclude needs a pattern")
    return CopyFlags(tuple(excludes), boolean("parents", flags.get("parents")),
                     boolean("link", flags.get("link")),
                     boolean("keep-git-dir", flags.get("keep-git-dir")))


def split_pivot(pattern: str) -> tuple[str, str]:
    """A --parents pattern → (pivot directory, pattern below it), both clean and relative;
    the pivot is the part before the first ``/./`` (the root without one)."""
    text = pattern.lstrip("/")
    while text.startswith("./"):
        text = text[2:]
    head, sep, tail = text.partition(PIVOT)
    if not sep:
        return "", go_clean(text) if text else "."
    pivot, below = go_clean(head), go_clean(tail) if tail else "."
    if pivot == ".." or pivot.startswith("../") or below == ".." or below.startswith("../"):
        raise InvalidArgument(f"forbidden path outside the build context: {pattern}")
    return ("" if pivot == "." else pivot), below


def context_sources(context: Context, patterns: list[str], flags: CopyFlags
                    ) -> list[tuple[str, str | None, str]]:
    """(host path, path kept under the destination or None, pivot) of each source."""
    if not flags.parents:
        return [(str(p), None, "") for p in context.sources(patterns)]
    out: list[tuple[str, str | None, str]] = []
    for pattern in patterns:
        pivot, below = split_pivot(pattern)
        full = os.path.join(pivot, below) if pivot else below
        for path in context.sources([full], doublestar=True):
            rel = os.path.relpath(path, os.path.join(context.root, pivot))
            out.append((str(path), None if rel == "." else rel, pivot))
    return out


def image_pattern(pattern: str, flags: CopyFlags) -> tuple[str, str]:
    """A COPY --from pattern → (pattern from the image root, pivot)."""
    if not flags.parents:
        return pattern, ""
    pivot, below = split_pivot(pattern)
    return (os.path.join(pivot, below) if pivot else below), pivot
