"""Builds whose image is exported as a directory (``build -o DIR``), for tests that look
at the files directly."""

from __future__ import annotations

from pathlib import Path

from support.cli import Forklift


def build_to(fl: Forklift, root: Path, out: Path, *args: str) -> str:
    """Build ``root`` with the image's files written to ``out``; returns the progress."""
    res = fl("build", "--progress", "plain", *args, "-o", str(out), str(root))
    return res.out + res.err


def tree(top: Path) -> list[str]:
    """Every path under ``top``, relative, directories with a trailing ``/``."""
    return sorted(str(p.relative_to(top)) + ("/" if p.is_dir() and not p.is_symlink() else "")
                  for p in top.rglob("*"))
