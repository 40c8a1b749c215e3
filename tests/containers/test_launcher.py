"""The ``forklift`` command scripts/install.sh writes (scripts/write-launcher.sh): the
console script under ``python -S``, with the venv's packages and forklift's directory on
the path, answering as ``python -m forklift`` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import Forklift

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_command_starts_without_site(fl: Forklift, name: str,
                                                  tmp_path: Path) -> None:
    command = tmp_path / "forklift"
    subprocess.run(["bash", str(REPO / "scripts" / "write-launcher.sh"),
                    str(Path(sys.executable).parent.parent), str(command)], check=True)
    assert command.read_text().splitlines()[0] == f"#!{sys.executable} -S"

    def both(*args: str) -> list[tuple[int, str, str]]:
        answers = []
        for argv in ([str(command)], [sys.executable, "-m", "forklift"]):
            proc = subprocess.run([*argv, "--root", str(fl.root), *args], env=fl.environ(),
                                  capture_output=True, text=True, timeout=120, check=False)
            answers.append((proc.returncode, proc.stdout, proc.stderr))
        return answers

    fl("run", "-d", "--name", name, "busybox", "sh", "-c",
       "trap 'exit 0' TERM; while true; do sleep 0.05; done")
    try:
        for args in (["--version"], ["exec", name, "sh", "-c", "echo out; echo err >&2; exit 3"],
                     ["exec", "no-such", "true"], ["ps", "--format", "{{.Names}}"],
                     ["inspect", "--format", "{{.State.Status}}", name]):
            launched, by_module = both(*args)
            assert launched == by_module, args
        assert both("exec", name, "true")[0][0] == 0
    finally:
        fl("rm", "-f", name)
