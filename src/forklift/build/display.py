"""Which display a build reports to: ``--progress`` resolved, the Progress made. Apart from
``progress`` so that the live display, which builds on it, is imported only when chosen."""

from __future__ import annotations

from typing import IO

from forklift.build.progress import Progress


def resolve(mode: str, stream: IO[str], environ: dict[str, str]) -> str:
    """``--progress auto|plain|tty|quiet`` as the build shows it (plain, tty or quiet):
    ``auto`` is the live display when ``stream`` is a terminal, as BuildKit's is, unless
    the terminal says it cannot move the cursor (TERM=dumb)."""
    if mode != "auto":
        return mode
    return "tty" if stream.isatty() and environ.get("TERM") != "dumb" else "plain"


def make_progress(mode: str, out: IO[str] | None, err: IO[str] | None,
                  quiet: bool = False) -> Progress:
    """The display a build reports to: nothing (quiet), the live one drawn on ``err``
    (mode ``tty``) or BuildKit's plain lines on ``out``."""
    if quiet or out is None:
        return Progress(out, quiet=True)
    if mode == "tty" and err is not None:
        # rich is imported only for the live display
        from forklift.build import ttyprogress

        return ttyprogress.TtyProgress(out, ttyprogress.console_on(err))
    return Progress(out)
