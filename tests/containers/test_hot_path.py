"""What the lifecycle hot paths load and run: ``run --rm``, ``run -d``, ``exec`` and ``stop``
through the real CLI keep the modules only other commands need out of the interpreter, and
``stop`` signals the container's init without a runc process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from support import Forklift

pytestmark = pytest.mark.root

# Never on any of the four paths: other commands' machinery.
ELSEWHERE = {"hashlib", "tarfile", "gzip", "zstandard", "rich", "httpx", "jsonschema",
             "forklift.gotemplate", "forklift.archive", "forklift.tarreader",
             "forklift.engine.filters", "forklift.engine.runflags", "forklift.engine.copy",
             "forklift.engine.psfilter", "forklift.registry"}
# Not on exec's and stop's path either: click (cli/fast.py reads their command lines), the
# store's image and layer modules, the overlay mounts (ctypes), log timestamps, platform.
NOT_EXEC_STOP = {"click", "forklift.cli.main", "forklift.store.images", "forklift.store.layers",
                 "forklift.runtime.overlay", "ctypes", "forklift.engine.timestamps", "platform",
                 "uuid"}

# Nor on a plain exec's: records are slotted classes, runc is posix_spawn'ed, typing is
# imported only by the type checker, and its scratch is removed without shutil (each of
# these imports costs more than the work exec does with it).
NOT_EXEC = {"dataclasses", "inspect", "ast", "dis", "subprocess", "threading", "selectors",
            "shutil", "bz2", "lzma", "forklift.oci", "forklift.digest", "typing"}
# Nor on exec's common case (no terminal, in the foreground, a running container), which
# engine/quickexec runs: the store's record read through _sqlite3 (store/peek), JSON
# through _json (fastjson), none of the ordinary path's modules (sqlite3 loads datetime,
# json re and enum, the store's open its recovery; signal loads enum; _sqlite3's own
# functools is a stand-in).
NOT_PLAIN_EXEC = {"json", "re", "enum", "sqlite3", "datetime", "contextlib", "signal",
                  "functools", "collections",
                  "forklift.store.db", "forklift.store.containers", "forklift.store.recovery",
                  "forklift.engine.exec", "forklift.engine.lifecycle",
                  "forklift.engine.rootfs", "forklift.runtime.runc", "forklift.records"}

# Nor on run's, --rm or -d: CNI plugins and iptables only (subprocess, locale), network create
# only (ipaddress: engine/bridgenet does its own IPv4 arithmetic), a failed monitor only
# (traceback, textwrap), a pull's download handoff only (queue), diff only, the rare flags'
# modules; nor typing and dataclasses (inspect, ast, dis): the records reading an image
# needs (oci, reference, limits, the store's image, layer and volume rows) are slotted;
# nor threading: its threads are forklift.threads' (_thread); nor the sqlite3 package (its
# datetime adapters): the store uses the _sqlite3 extension it re-exports.
NOT_RUN = {"subprocess", "locale", "ipaddress", "traceback", "textwrap", "shutil", "bz2", "lzma",
           "queue", "heapq", "shlex", "forklift.changes", "forklift.engine.update",
           "forklift.engine.inspectdoc", "forklift.engine.fsdiff", "uuid", "platform",
           "typing", "dataclasses", "inspect", "ast", "dis", "threading", "sqlite3",
           "datetime"}
# And a foreground run starts no monitor and opens no terminal; its network code uses the
# C _socket (socket imports selectors and builds four enums), its threads _thread.
NOT_RUN_RM = {"forklift.engine.monitor", "forklift.engine.tty", "forklift.engine.health",
              "forklift.engine.restart", "termios", "tty", "socket", "selectors"}


def _modules_after(fl: Forklift, tmp_path: Path, *args: str) -> tuple[set[str], int]:
    """The modules a fresh interpreter holds after ``forklift ARGS`` on ``fl``'s store, and
    the command's exit status."""
    out = tmp_path / "modules.json"
    # json is not imported here: exec must load neither it nor re
    script = ("import atexit, sys\n"
              f"atexit.register(lambda: open({str(out)!r}, 'w').write('\\n'.join(sys.modules)))\n"
              "from forklift.cli.fast import main\n"  # the console script's entry point
              f"sys.argv = ['forklift', '--root', {str(fl.root)!r}, *{list(args)!r}]\n"
              "main()\n")
    import subprocess

    proc = subprocess.run([sys.executable, "-c", script], env=fl.environ(), check=False,
                          capture_output=True, text=True, timeout=120)
    assert out.exists(), proc.stderr
    return set(out.read_text().splitlines()), proc.returncode


def _heavy(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m in ELSEWHERE or m.split(".")[0] in ELSEWHERE
            or any(m.startswith(p + ".") for p in ELSEWHERE)}


def test_run_rm_run_d_exec_stop_stay_light(fl: Forklift, name: str, tmp_path: Path) -> None:
    loaded, code = _modules_after(fl, tmp_path, "run", "--rm", "busybox", "true")
    assert code == 0
    assert not _heavy(loaded)
    assert not {"click", "forklift.cli.main"} & loaded  # cli/fast.py reads run's plain lines
    assert not (NOT_RUN | NOT_RUN_RM) & loaded, (NOT_RUN | NOT_RUN_RM) & loaded
    loaded, code = _modules_after(fl, tmp_path, "run", "-d", "--name", name, "busybox",
                                  "sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.05; done")
    assert code == 0
    assert not _heavy(loaded)
    assert not {"click", "forklift.cli.main"} & loaded
    assert not NOT_RUN & loaded, NOT_RUN & loaded
    try:
        loaded, code = _modules_after(fl, tmp_path, "exec", name, "true")
        assert code == 0
        assert not _heavy(loaded)
        assert "forklift.engine.runner" not in loaded  # exec starts nothing
        assert not NOT_EXEC_STOP & loaded, NOT_EXEC_STOP & loaded
        assert not NOT_EXEC & loaded, NOT_EXEC & loaded
        assert not NOT_PLAIN_EXEC & loaded, NOT_PLAIN_EXEC & loaded
        for line in (["-i", "-u", "nobody", "-w", "/tmp", "-e", "A=1"], ["-it"], ["-d"]):
            # the light path's options; a terminal or -d: the ordinary one, still light
            loaded, code = _modules_after(fl, tmp_path, "exec", *line, name, "true")
            assert code == 0
            assert not _heavy(loaded)
            assert not {"click", "forklift.cli.main"} & loaded
            assert ("forklift.engine.quickexec" in loaded) == (line[0] == "-i")
            assert not (NOT_PLAIN_EXEC & loaded if line[0] == "-i" else {"json", "re"} - loaded)
        loaded, code = _modules_after(fl, tmp_path, "stop", name)
        assert code == 0
        assert not _heavy(loaded)
        # stop neither starts nor execs anything
        assert not {"forklift.engine.runner", "forklift.engine.exec", "forklift.engine.rootfs",
                    "forklift.engine.network"} & loaded
        assert not NOT_EXEC_STOP & loaded, NOT_EXEC_STOP & loaded
        assert fl.inspect(name)["State"]["ExitCode"] == 3  # its TERM trap ran
    finally:
        fl("rm", "-f", name)


def test_stop_and_kill_signal_the_init_without_runc(fl: Forklift, name: str,
                                                    tmp_path: Path) -> None:
    """runc's own kill is not run for a signal to a live init: with a runc that refuses
    every ``kill`` first on the PATH, ``stop`` and ``kill -s TERM`` still deliver TERM (were
    runc asked, stop would end in its SIGKILL, refused too, and fail)."""
    fl("run", "-d", "--name", name, "busybox", "sh", "-c",
       "trap 'exit 7' TERM; while true; do sleep 0.05; done")
    try:
        wrapper = _failing_kill_runc(tmp_path)
        env: dict[str, Any] = {"PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
        fl("stop", "-t", "20", name, env=env)
        assert fl.inspect(name)["State"]["ExitCode"] == 7
        fl("start", name)
        fl("kill", "-s", "TERM", name, env=env)
        assert fl.out("wait", name) == "7"
    finally:
        fl("rm", "-f", name)


def _failing_kill_runc(tmp_path: Path) -> Path:
    """A ``runc`` that refuses ``kill`` and runs the real one for anything else."""
    import shutil

    real = shutil.which("runc")
    assert real is not None
    path = tmp_path / "bin" / "runc"
    path.parent.mkdir()
    path.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = kill ] && { echo "kill refused" >&2;'
                    f' exit 1; }}; done\nexec {real} "$@"\n')
    path.chmod(0o755)
    return path


def test_leaving_early_keeps_exit_codes_output_and_a_clean_store(fl: Forklift, busybox_tar: Path) -> None:
    """The CLI leaves with ``os._exit`` (cli/main._leave): every byte written is still
    flushed, exit codes pass through, and the store is left clean (an import marks it
    dirty; the marker goes when the store is closed or at exit)."""
    res = fl("run", "--rm", "busybox", "sh", "-c", "seq 1 50000; exit 3", check=False)
    assert res.code == 3
    assert res.out.split() == [str(n) for n in range(1, 50001)]
    assert fl("inspect", "nosuch-at-all", check=False).code == 1
    image_id = fl.out("import", str(busybox_tar), "leave-test:1")
    assert image_id.startswith("sha256:")
    assert not [n for n in os.listdir(fl.root / "tmp") if "-dirty-" in n]
    fl("rmi", "leave-test:1")


def test_the_fast_entry_point_answers_as_click_does(fl: Forklift, name: str) -> None:
    """exec, stop, kill, run and create through cli/fast.py (the console script, ``python -m forklift``)
    and through click (cli/main.py) give the same output, errors and exit codes."""
    import subprocess

    fl("run", "-d", "--name", name, "busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")
    lines = [["exec", name, "sh", "-c", "echo out; echo err >&2; exit 3"],
             ["exec", "-e", "A=1", "-u", "nobody", name, "sh", "-c", "echo $A $(id -u)"],
             ["exec", "no-such", "true"], ["exec", name, "no-such-program"],
             ["kill", "-s", "NOPE", name], ["kill", "no-such"], ["stop", "no-such"],
             ["kill", "-s", "0", name, "no-such"], ["kill", "-s", "USR1", name],
             ["run", "--rm", "-e", "A=1", "busybox", "sh", "-c", "echo $A; echo err >&2; exit 3"],
             ["run", "--rm", "busybox", "no-such-program"],
             ["run", "--rm", "--pull", "never", "no-such-image"],
             ["run", "-d", "--name", name, "busybox", "true"], ["create", "--name", name, "busybox"],
             ["run", "--rm", "--network", "no-such-net", "busybox", "true"],
             ["stop", "-t", "5", name], ["stop", name], ["container", "exec", name, "true"]]
    try:
        for argv in lines:
            answers = []
            for entry in ("forklift.cli.fast", "forklift.cli.main"):
                proc = subprocess.run(
                    [sys.executable, "-c", f"import sys; from {entry} import main; main()",
                     "--root", str(fl.root), *argv],
                    env=fl.environ(), capture_output=True, text=True, timeout=120, check=False)
                answers.append((proc.returncode, proc.stdout, proc.stderr))
            assert answers[0] == answers[1], argv
        assert "is not running" in answers[0][2]  # the last exec: stopped by then
    finally:
        fl("rm", "-f", name)
