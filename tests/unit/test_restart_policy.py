"""The restart policy's decisions (`forklift.engine.restart`): when and how soon."""

from __future__ import annotations

from forklift.engine import restart


def _hc(name: str, maximum: int = 0) -> dict[str, object]:
    return {"RestartPolicy": {"Name": name, "MaximumRetryCount": maximum}}


def test_should_restart() -> None:
    assert not restart.should_restart({}, 1, 0)
    assert not restart.should_restart(_hc("no"), 1, 0)
    for name in ("always", "unless-stopped"):
        assert restart.should_restart(_hc(name), 0, 100)
        assert restart.should_restart(_hc(name), 3, 0)
    assert not restart.should_restart(_hc("on-failure"), 0, 0)
    assert restart.should_restart(_hc("on-failure"), 3, 1000)
    assert restart.should_restart(_hc("on-failure", 2), 3, 1)
    assert not restart.should_restart(_hc("on-failure", 2), 3, 2)


def test_backoff_doubles_to_a_minute_and_resets_after_10_s() -> None:
    delay, seen = restart.FIRST_DELAY, []
    for _ in range(12):
        seen.append(delay)
        delay = restart.next_delay(delay, 0.5)
    assert seen[:4] == [0.1, 0.2, 0.4, 0.8]
    assert seen[-1] == 60.0
    assert restart.next_delay(60.0, 10.0) == 0.1
