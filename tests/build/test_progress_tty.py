"""``build --progress tty`` (and ``auto`` on a terminal) through the real CLI on a
pseudo-terminal: the live display while steps run, the screen it leaves, a failing and an
interrupted build; ``plain`` on the same terminal and ``auto`` on a pipe stay plain."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Callable, Iterator

import pytest
from support import Forklift
from support.store import assert_clean
from support.terminal import Terminal

pytestmark = pytest.mark.root

COLUMNS = 160
WHOLE_LINE = re.compile(r"\[\+\] Building \d+\.\ds \(\d+/\d+\)( \w+)?"
                        r"| => (CACHED |ERROR |CANCELED )?\[.*\S +\d+\.\ds"
                        r"|#\d+ .*|Error: .*|Successfully (built|tagged) .*")


@pytest.fixture
def terminal(fl: Forklift) -> Iterator[Callable[..., Terminal]]:
    """``terminal("--progress", "tty", ctx)``: ``forklift build --network none …`` on a
    new pty; whatever still runs at the end is stopped."""
    opened: list[Terminal] = []
    env = fl.environ({"TERM": "xterm"})
    for name in ("COLUMNS", "LINES"):   # pytest-xdist sets them; they would win over the pty's size
        env.pop(name, None)

    def start(*args: str, stdout_pipe: bool = False) -> Terminal:
        term = Terminal([*fl.argv, "build", "--network", "none", *args], env,
                        columns=COLUMNS, stdout_pipe=stdout_pipe)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def steps(lines: list[str]) -> dict[str, str]:
    """The display's step lines: label → status word and duration (``CACHED 0.0s``)."""
    found = {}
    for line in lines:
        m = re.fullmatch(r" => (CACHED |ERROR |CANCELED )?(\[.*?\S) +(\d+\.\ds)", line)
        if m:
            found[m[2]] = f"{m[1] or ''}{m[3]}"
    return found


def assert_sane(term: Terminal) -> list[str]:
    """The terminal after the build: the cursor shown, every line whole. Its lines."""
    screen = term.screen()
    assert screen.cursor_visible, screen.text
    for line in screen.lines:
        assert WHOLE_LINE.fullmatch(line), f"{line!r} in\n{screen.text}"
    return screen.lines


def test_steps_run_live_then_show_their_durations_or_cached(fl, ctx, terminal):
    root = ctx("FROM busybox\nCOPY a.txt /a.txt\n"
               "RUN --mount=type=bind,target=/ctx for i in 1 2 3 4 5 6 7 8; do echo out-$i; done;"
               " until [ -e /ctx/go ]; do sleep 0.05; done\n"
               "RUN echo after\n", **{"a.txt": uuid.uuid4().hex})
    term = terminal("--progress", "tty", "-t", "live:1", str(root))
    term.expect(r" => => # out-8")   # the running step's last lines, under it
    run_row = r" => \[3/4\] RUN --mount[^\r\n]*? (\d+\.\d)s"

    def ticked(text: str) -> bool:   # its elapsed time moves while it runs
        return len(set(re.findall(run_row, text[text.index("out-8"):]))) >= 2

    term.wait_for(ticked, "the running step's time ticking")
    (root / "go").touch()
    assert term.finish() == 0
    lines = assert_sane(term)
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(4/4\) FINISHED", lines[0]), lines
    shown = steps(lines)
    assert list(shown) == ["[1/4] FROM busybox", "[2/4] COPY a.txt /a.txt",
                           "[3/4] RUN --mount=type=bind,target=/ctx for i in 1 2 3 4 5 6 7 8; do"
                           " echo out-$i; done; until [ -e /ctx/go ]; do sleep 0.05; done",
                           "[4/4] RUN echo after"], lines
    assert all(re.fullmatch(r"\d+\.\ds", t) for t in shown.values()), shown
    assert not any("=> => #" in line or "out-8" in line for line in lines)   # folded away
    assert lines[-2:] == [f"Successfully built {lines[-2].split()[-1]}", "Successfully tagged live:1"]

    (root / "go").unlink()   # the context as the cached steps saw it
    term = terminal("--progress", "tty", str(root))
    assert term.finish() == 0
    shown = steps(assert_sane(term))
    assert [t.split()[0] for t in shown.values()][1:] == ["CACHED", "CACHED", "CACHED"], shown


def _after_display(lines: list[str]) -> list[str]:
    """The lines from the failing step's plain header on, its times made T."""
    start = next(i for i, line in enumerate(lines) if line.startswith("#2 [2/2]"))
    return [re.sub(r"^(#2) \d+\.\d{3} ", r"\1 T ", line) for line in lines[start:]]


def test_a_failing_step_ends_the_display_and_prints_as_plain_does(fl, ctx, terminal):
    nonce = uuid.uuid4().hex[:8]
    root = ctx(f"FROM busybox\nRUN echo {nonce}; seq 12; exit 3\n")
    term = terminal("--progress", "tty", str(root))
    assert term.finish() == 1
    tty_lines = assert_sane(term)
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(1/2\) ERROR", tty_lines[0]), tty_lines
    command = f"echo {nonce}; seq 12; exit 3"
    assert re.fullmatch(rf" => ERROR \[2/2\] RUN {command} +\d+\.\ds", tty_lines[2])
    after = _after_display(tty_lines)
    assert after == [f"#2 [2/2] RUN {command}", *(f"#2 T {i}" for i in range(3, 13)),
                     f'#2 ERROR: process "/bin/sh -c {command}" did not complete successfully:'
                     " exit code: 3",
                     f"Error: The command '/bin/sh -c {command}' returned a non-zero code: 3"]

    term = terminal("--progress", "plain", str(root))   # the same terminal, plain output
    assert term.finish() == 1
    assert "\x1b" not in term.text
    plain_lines = term.screen().lines
    assert plain_lines[0] == "#1 [1/2] FROM busybox"
    plain = _after_display(plain_lines)
    assert plain[:4] == [after[0], f"#2 T {nonce}", "#2 T 1", "#2 T 2"]
    assert plain[-12:] == after[1:]   # the last ten lines, the error, Docker's message
    assert fl.out("ps", "-aq") == ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_build_leaves_the_terminal_sane(fl, ctx, terminal, sig):
    root = ctx(f"FROM busybox\nRUN echo started-{sig.name}; sleep 60\n")
    term = terminal("--progress", "tty", str(root))
    term.expect(rf" => => # started-{sig.name}")
    term.proc.send_signal(sig)
    assert term.finish() == 130
    lines = assert_sane(term)
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(1/2\) CANCELED", lines[0]), lines
    assert re.fullmatch(rf" => CANCELED \[2/2\] RUN echo started-{sig.name}; sleep 60 +\d+\.\ds",
                        lines[2])
    assert lines[-1] == "#2 ERROR: canceled"
    assert fl.out("ps", "-aq") == ""
    assert_clean(fl.root)


def test_auto_is_the_display_on_a_terminal_and_plain_on_a_pipe(fl, ctx, terminal):
    root = ctx(f"FROM busybox\nLABEL auto={uuid.uuid4().hex}\n")
    res = fl("build", str(root))   # auto, on pipes
    assert res.lines[0] == "#1 [1/2] FROM busybox" and re.fullmatch(r"#1 DONE \d+\.\ds", res.lines[1])
    assert "\x1b" not in res.out + res.err
    term = terminal(str(root), stdout_pipe=True)   # auto, stderr on a terminal
    assert term.finish() == 0
    shown = steps(assert_sane(term))
    assert list(shown.values())[1].startswith("CACHED "), shown
    assert term.proc.stdout is not None
    out = term.proc.stdout.read().decode()   # the classic builder's last lines stay on stdout
    assert re.fullmatch(r"Successfully built [0-9a-f]{12}\n", out)


def test_only_the_live_display_imports_rich(fl, ctx):
    root = ctx(f"FROM busybox\nLABEL imports={uuid.uuid4().hex}\n")
    timing = {"PYTHONPROFILEIMPORTTIME": "1"}

    def imported(*args: str) -> set[str]:
        res = fl("build", *args, str(root), env=timing)
        return set(re.findall(r"^import time:.*\| +(\S+)$", res.err, re.M))

    assert not {m for m in imported("--progress", "plain") if m.split(".")[0] == "rich"}
    assert {"rich.live", "forklift.build.ttyprogress"} <= imported("--progress", "tty")
