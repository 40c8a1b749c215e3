"""Running programs from tests: one result type, and the real forklift CLI on one store."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any


@dataclass(frozen=True, repr=False)
class Result:
    """What a command did. ``data`` is stdout as bytes (``save`` to stdout writes a tar),
    ``out`` the same as text (decoded on first use, newlines as written), ``err`` stderr."""

    argv: tuple[str, ...]
    code: int
    data: bytes
    err: str

    @cached_property
    def out(self) -> str:
        return self.data.decode(errors="replace")

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"

    def __str__(self) -> str:
        return (f"{' '.join(self.argv)} exited {self.code}\n"
                f"stdout: {self.out[-4000:]}\nstderr: {self.err[-4000:]}")


def run(argv: Sequence[str], *, input: str | bytes | None = None, stdin: Path | None = None,
        env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
        timeout: float = 120, check: bool = True, memory: int | None = None) -> Result:
    """Run ``argv`` to its end (a hang fails at ``timeout``) and return its Result.

    Standard input is ``input``, else the file ``stdin`` (a real file descriptor, for
    commands that read a seekable file in place), else /dev/null. ``memory`` bounds the
    command's address space (RLIMIT_AS). ``check`` fails the test on a non-zero exit,
    with both streams in the message."""
    data = input.encode() if isinstance(input, str) else input
    bound = None if memory is None else (lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                     (memory, memory)))
    with open(stdin, "rb") if stdin is not None else open(os.devnull, "rb") as source:
        proc = subprocess.run(list(argv), input=data, stdin=None if data is not None else source,
                              capture_output=True, timeout=timeout, cwd=cwd,
                              env=dict(env) if env is not None else None, preexec_fn=bound)
    result = Result(tuple(map(str, argv)), proc.returncode, proc.stdout,
                    proc.stderr.decode(errors="replace"))
    if check and result.code != 0:
        raise AssertionError(str(result))
    return result


class Forklift:
    """The real CLI, ``python -m forklift --root ROOT``, on one store.

    ``fl("images")`` runs a command and fails the test if it exits non-zero (``check=False``
    to look at a failure); ``fl.out(…)`` is its stripped stdout. ``env``, ``cwd``,
    ``memory`` and ``timeout`` given here apply to every command (``env`` and ``timeout``
    per call add to and override them)."""

    def __init__(self, root: Path | str, *, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, memory: int | None = None,
                 timeout: float = 120) -> None:
        self.root = Path(root)
        self.env = dict(env or {})
        self.cwd = cwd
        self.memory = memory
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Forklift({str(self.root)!r})"

    @property
    def argv(self) -> list[str]:
        """The command line up to the subcommand, for Popen, pexpect or a shell pipeline."""
        return [sys.executable, "-m", "forklift", "--root", str(self.root)]

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("FORKLIFT_CRASH_AT", None)  # a crash checkpoint is armed per call, never inherited
        env.update(self.env)
        env.update(extra or {})
        return env

    def __call__(self, *args: str, check: bool = True, input: str | bytes | None = None,
                 stdin: Path | None = None, env: Mapping[str, str] | None = None,
                 timeout: float | None = None, cwd: Path | None = None) -> Result:
        return run([*self.argv, *args], input=input, stdin=stdin, env=self.environ(env),
                   cwd=cwd or self.cwd, timeout=timeout or self.timeout, check=check,
                   memory=self.memory)

    def out(self, *args: str, **kw: Any) -> str:
        return self(*args, **kw).out.strip()

    def inspect(self, name: str) -> dict[str, Any]:
        """``inspect`` of one container or image, as a dict."""
        return dict(json.loads(self.out("inspect", name))[0])

    def status(self, name: str) -> str:
        return self.out("inspect", "-f", "{{.State.Status}}", name)

    def monitor_pid(self, name: str) -> int:
        """The pid recorded for a container: its monitor's, for a detached one."""
        cid = self.out("inspect", "-f", "{{.Id}}", name)
        return int(self.db_value("SELECT pid FROM containers WHERE id=?", cid))

    def db_value(self, sql: str, *params: object) -> Any:
        """The first column of the first row of ``sql`` on the store's database."""
        conn = sqlite3.connect(self.root / "forklift.db")
        try:
            return conn.execute(sql, params).fetchone()[0]
        finally:
            conn.close()


def one_line_error(res: Result) -> str:
    """A refusal: non-zero exit and exactly one ``Error: …`` line on stderr, no traceback and
    no internal error. Returns the line."""
    assert res.code != 0, f"accepted: {res}"
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
    assert "Traceback" not in res.err and "internal error" not in res.err, res.err
    return lines[0]


def wait_for(pred: Callable[[], object], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
