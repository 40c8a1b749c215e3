"""The live build display (``build/ttyprogress.py``) driven directly, drawing with a rich
Console into a StringIO as if it were a terminal; the screen it leaves is replayed by
``support.terminal.render``."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading

import pytest
from rich.console import Console
from support.terminal import render

from forklift.build import display, progress, ttyprogress
from forklift.errors import InvalidArgument

WIDTH = 100


def terminal(height: int = 40) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, force_interactive=True,
                   width=WIDTH, height=height, color_system="standard", highlight=False)


def screen_of(console: Console) -> list[str]:
    shown = render(console.file.getvalue(), WIDTH)  # type: ignore[attr-defined]
    assert shown.cursor_visible
    return shown.lines


def frame_lines(display: ttyprogress.TtyProgress) -> list[str]:
    """The frame the display would draw now, as text."""
    paper = Console(file=io.StringIO(), width=WIDTH, height=display.console.size.height,
                    color_system=None)
    paper.print(display.frame())
    return [line.rstrip() for line in paper.file.getvalue().rstrip("\n").splitlines()]  # type: ignore[attr-defined]


def step_row(lines: list[str], label: str) -> str:
    rows = [line for line in lines if label in line]
    assert len(rows) == 1, lines
    return rows[0]


def test_steps_their_durations_and_the_running_steps_last_lines():
    console, out = terminal(), io.StringIO()
    with ttyprogress.TtyProgress(out, console) as display:
        display.step("[1/3] FROM busybox").done()
        display.step("[2/3] COPY . /src").cached()
        make = display.step("[3/3] RUN make")
        for i in range(10):
            make.line(f"compiling {i}")
        make.started -= 50   # it has been running for 50 s
        now = frame_lines(display)
        assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(2/3\)", now[0].strip()), now
        assert re.fullmatch(r" => \[1/3\] FROM busybox +\d+\.\ds", step_row(now, "FROM"))
        assert re.fullmatch(r" => CACHED \[2/3\] COPY \. /src +\d+\.\ds", step_row(now, "COPY"))
        assert re.fullmatch(r" => \[3/3\] RUN make +5\d\.\ds", step_row(now, "RUN make"))
        assert now[now.index(step_row(now, "RUN make")) + 1:] == \
            [f" => => # compiling {i}" for i in range(4, 10)]   # the last six, under it
        make.done()
        display.note("[Warning] a note while the display runs")
    display.note("Successfully built 0123456789ab")   # the display has ended: plain, on out

    lines = screen_of(console)
    assert lines[0] == "[Warning] a note while the display runs"   # above the display
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(3/3\) FINISHED", lines[1]), lines
    assert re.fullmatch(r" => \[3/3\] RUN make +5\d\.\ds", step_row(lines, "RUN make"))
    assert len(lines) == 5 and not any("compiling" in line for line in lines)   # folded away
    assert out.getvalue() == "Successfully built 0123456789ab\n"


def _failing_step(display: progress.Progress) -> None:
    display.step("[1/2] FROM busybox").done()
    step = display.step("[2/2] RUN make")
    for i in range(12):
        step.line(f"line {i}")
    step.error('process "/bin/sh -c make" did not complete successfully: exit code: 2')


def _untimed(lines: list[str]) -> list[str]:
    return [re.sub(r"^(#\d+) \d+\.\d{3} ", r"\1 T ", line) for line in lines]


def test_a_failing_step_ends_the_display_then_prints_as_plain_mode_does():
    console, out = terminal(), io.StringIO()
    with ttyprogress.TtyProgress(out, console) as display:
        _failing_step(display)
        assert not display.drawing
    plain = io.StringIO()
    _failing_step(progress.Progress(plain))

    lines = screen_of(console)
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(1/2\) ERROR", lines[0]), lines
    assert re.fullmatch(r" => ERROR \[2/2\] RUN make +\d+\.\ds", lines[2])
    plain_lines = plain.getvalue().splitlines()
    # after the last frame: the step, its last ten lines and its error, as plain prints them
    assert _untimed(lines[3:]) == _untimed([plain_lines[2], *plain_lines[-11:]])
    assert lines[4].endswith(" line 2") and lines[-1].startswith("#2 ERROR: process")
    assert out.getvalue() == ""


@pytest.mark.parametrize("failure, word", [(KeyboardInterrupt, "CANCELED"),
                                           (InvalidArgument, "ERROR")])
def test_an_exception_ends_the_display_with_the_running_step_marked(failure, word):
    console = terminal()
    with pytest.raises(failure), ttyprogress.TtyProgress(io.StringIO(), console) as display:
        display.step("[1/2] FROM busybox").done()
        display.step("[2/2] COPY missing /").line("some output")
        raise failure("stop")
    lines = screen_of(console)
    assert re.fullmatch(rf"\[\+\] Building \d+\.\ds \(1/2\) {word}", lines[0]), lines
    assert re.fullmatch(rf" => {word} \[2/2\] COPY missing / +\d+\.\ds", lines[2])
    assert len(lines) == 3


def test_several_steps_running_at_once_from_threads():
    console = terminal()
    started = threading.Barrier(5)
    finish = threading.Event()

    def stage(n: int) -> None:
        step = display.step(f"[stage-{n} 2/2] RUN work {n}")
        for i in range(200):   # while the display draws
            step.line(f"stage {n} line {i}")
        started.wait()
        finish.wait()
        step.done()

    with ttyprogress.TtyProgress(io.StringIO(), console) as display:
        threads = [threading.Thread(target=stage, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        started.wait()
        now = frame_lines(display)
        for n in range(4):
            row = now.index(step_row(now, f"RUN work {n}"))
            assert now[row + 1:row + 7] == [f" => => # stage {n} line {i}" for i in range(194, 200)]
        finish.set()
        for t in threads:
            t.join()
    lines = screen_of(console)
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(4/4\) FINISHED", lines[0])
    assert sorted(re.sub(r" +\d+\.\ds$", "", line) for line in lines[1:]) == \
        [f" => [stage-{n} 2/2] RUN work {n}" for n in range(4)]
    assert len(lines) == 5


def test_a_short_terminal_shows_the_running_steps_first():
    console = terminal(height=12)
    with ttyprogress.TtyProgress(io.StringIO(), console) as display:
        for i in range(20):
            display.step(f"[{i + 1}/21] WORKDIR /w{i}").done()
        running = display.step("[21/21] RUN long")
        for i in range(8):
            running.line(f"out {i}")
        now = frame_lines(display)
        assert len(now) <= 11 and now[0].startswith("[+] Building")
        assert now[-7].startswith(" => [21/21] RUN long") and now[-1] == " => => # out 7"
        assert step_row(now, "/w19")   # the latest finished steps fill what is left
        console.height = 6   # then the running step's earliest lines go, never its own row
        short = frame_lines(display)
        assert len(short) == 5 and short[1].startswith(" => [21/21] RUN long")
        assert short[2:] == [" => => # out 5", " => => # out 6", " => => # out 7"]
        running.done()
    lines = screen_of(console)   # the last frame has every step
    assert len(lines) == 22 and all(step_row(lines, f"/w{i} ") for i in range(20))


def test_a_process_whose_main_thread_ends_without_closing_the_display_still_exits():
    script = ("import io, sys\n"
              "from rich.console import Console\n"
              "from forklift.build import ttyprogress\n"
              "console = Console(file=sys.stdout, force_terminal=True, force_interactive=True,"
              " width=80, height=20)\n"
              "display = ttyprogress.TtyProgress(io.StringIO(), console)\n"
              "display.step('[1/1] RUN forever').line('still here')\n")
    # bytes: text mode would read each carriage return as a new line
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                          check=True)
    shown = render(proc.stdout.decode(), 80)
    assert shown.cursor_visible and proc.stderr == b""
    assert shown.lines[1].startswith(" => [1/1] RUN forever"), shown.lines


def test_output_is_shown_as_a_terminal_would_leave_it():
    assert ttyprogress.visible("fetch 10%\rfetch 55%\r") == "fetch 55%"
    assert ttyprogress.visible("\x1b[31mred\x1b[0m\ttab\x07\x1b]0;title\x07") == "red     tab"
    assert ttyprogress.visible("\x00\x1b") == ""


def test_auto_is_the_live_display_on_a_terminal_only():
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert display.resolve("auto", tty, {"TERM": "xterm"}) == "tty"
            assert display.resolve("auto", tty, {"TERM": "dumb"}) == "plain"
            assert display.resolve("plain", tty, {}) == "plain"
    finally:
        os.close(master)
        os.close(slave)
    assert display.resolve("auto", io.StringIO(), {"TERM": "xterm"}) == "plain"
    assert display.resolve("tty", io.StringIO(), {}) == "tty"
    assert type(display.make_progress("tty", io.StringIO(), io.StringIO())).__name__ == "TtyProgress"
    assert type(display.make_progress("tty", io.StringIO(), None)) is progress.Progress
    assert display.make_progress("tty", io.StringIO(), io.StringIO(), quiet=True).out is None
