"""Helpers every test directory may import (a unique module name: importing from
``conftest`` gets whichever conftest pytest loaded last)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_cli(root: str, *args: str, input: bytes | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run([sys.executable, "-m", "forklift", "--root", root, *args],
                          input=input, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return Result(proc.returncode, proc.stdout.decode(errors="replace"),
                  proc.stderr.decode(errors="replace"))


def unmount_under(root: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(root + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


