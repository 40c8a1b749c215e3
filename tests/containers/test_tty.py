"""Terminals and stdin: run -it through a real pty, -i with pipes, exec -it."""

from __future__ import annotations

import time
from typing import Any

import pexpect
import pytest

pytestmark = pytest.mark.root


def _spawn(fl: Any, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(fl.argv[0], [*fl.argv[1:], *args], encoding="utf-8", timeout=20,
                          dimensions=(30, 100))
    return child


def test_run_it_terminal(fl: Any, name: str) -> None:
    child = _spawn(fl, "run", "-it", "--name", name, "busybox", "sh")
    child.expect(r"[#$] ")
    child.sendline("tty; echo size=$(stty size)")
    child.expect("/dev/pts/0")
    child.expect("size=30 100")
    # line editing: the erase key goes through the container's terminal
    child.send("echo $((1+1))X\x7f1\r")
    child.expect("\r\n21\r\n")
    # Ctrl-C interrupts the foreground command in the container, not forklift
    child.sendline("sleep 30")
    time.sleep(1)
    child.sendcontrol("c")
    child.sendline("echo $((40+2))")
    child.expect("\r\n42\r\n", timeout=10)
    # resize is forwarded (SIGWINCH)
    child.setwinsize(40, 132)
    time.sleep(0.5)  # busybox sh answers SIGWINCH with a cursor query (ESC[6n) first
    child.sendline("stty size")
    child.expect("40 132")
    child.sendline("exit 7")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 7
    assert fl.inspect(name)["State"]["ExitCode"] == 7
    fl("rm", name)


def test_run_i_with_pipes(fl: Any) -> None:
    proc = fl("run", "-i", "--rm", "busybox", "cat", input="hi\nthere\n")
    assert proc.out == "hi\nthere\n"
    proc = fl("run", "-i", "--rm", "busybox", "sh", "-c", "wc -l; exit 3", input="a\nb\n", check=False)
    assert proc.out.strip() == "2" and proc.code == 3
    # without -i stdin is not connected
    assert fl("run", "--rm", "busybox", "cat", input="ignored\n").out == ""


def test_run_t_without_i(fl: Any) -> None:
    child = _spawn(fl, "run", "-t", "--rm", "busybox", "sh", "-c", "tty; exit 2")
    child.expect("/dev/pts/")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_exec_it(fl: Any, name: str) -> None:
    fl("run", "-d", "--name", name, "busybox", "sleep", "1000")
    child = _spawn(fl, "exec", "-it", name, "sh")
    child.expect(r"[#$] ")
    child.sendline("tty; ps | grep -c 'sleep 1000'")
    child.expect("/dev/pts/")
    child.sendline("exit 4")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    fl("rm", "-f", name)


def test_run_detached_tty_logs(fl: Any, name: str) -> None:
    fl("run", "-d", "-t", "--name", name, "busybox", "sh", "-c", "tty; echo done")
    assert fl.out("wait", name) == "0"
    logs = fl.out("logs", name)
    assert "/dev/pts/0" in logs and "done" in logs
    fl("rm", name)


def test_start_attach_interactive(fl: Any, name: str) -> None:
    fl("create", "-i", "--name", name, "busybox", "sh", "-c", "read x; echo got $x")
    proc = fl("start", "-a", "-i", name, input="hey\n", timeout=20)
    assert proc.out.strip() == "got hey"
    fl("rm", name)
