"""forklift.threads: `start` runs the function in another thread, `join` waits for it
to return or raise (and returns at once after), and the thread inherits the caller's
signal mask, as a threading.Thread does."""

from __future__ import annotations

import _thread
import signal
import sys
import time

import pytest

from forklift import threads


def test_join_waits_for_the_function_and_returns_at_once_after() -> None:
    seen: list[object] = []

    def work(a: int, b: int) -> None:
        time.sleep(0.1)
        seen.append((a + b, _thread.get_ident()))

    started = threads.start(work, 1, 2)
    assert seen == []
    started.join()
    assert seen[0][0] == 3 and seen[0][1] != _thread.get_ident()  # type: ignore[index]
    started.join()  # again: at once


def test_a_function_that_raises_still_ends_its_join(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: reported.append(info.exc_value))

    def fail() -> None:
        raise ValueError("reported, not raised in the caller")

    threads.start(fail).join()
    deadline = time.monotonic() + 10
    while not reported and time.monotonic() < deadline:  # the hook runs after the release
        time.sleep(0.01)
    assert isinstance(reported[0], ValueError)


def test_the_thread_inherits_the_callers_signal_mask() -> None:
    masks: list[set[int]] = []
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        started = threads.start(lambda: masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, set())))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    started.join()
    assert signal.SIGUSR1 in masks[0]
