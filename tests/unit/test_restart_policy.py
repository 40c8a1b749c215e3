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


def test_health_record_follows_dockers_rules() -> None:
    from forklift.engine import health

    cfg = {"Retries": 2, "StartPeriod": 10 * health.NS}
    state: dict[str, object] = {"Status": "starting", "FailingStreak": 0, "Log": []}

    def probe(code: int, since: float) -> None:
        health.record(state, {"ExitCode": code, "Output": str(code)}, since, cfg)

    probe(1, 1.0)  # within the start period while starting: not counted
    assert state["Status"] == "starting" and state["FailingStreak"] == 0
    probe(1, 11.0)
    assert state["Status"] == "starting" and state["FailingStreak"] == 1
    probe(1, 12.0)
    assert state["Status"] == "unhealthy" and state["FailingStreak"] == 2
    probe(0, 13.0)
    assert state["Status"] == "healthy" and state["FailingStreak"] == 0
    for i in range(6):
        probe(i + 1, 14.0 + i)
    assert [e["Output"] for e in state["Log"]] == ["2", "3", "4", "5", "6"]  # type: ignore[attr-defined]


def test_health_config_and_command() -> None:
    from forklift.engine import health

    image = {"Test": ["CMD", "check"], "Interval": 5 * health.NS, "Retries": 7}
    assert health.config(image, None, None, None, None, None, False) is image
    assert health.config(image, "probe", "1s", None, None, None, False) == {
        "Test": ["CMD-SHELL", "probe"], "Interval": health.NS, "Retries": 7}
    assert health.config(None, None, None, None, None, None, True) == {"Test": ["NONE"]}
    assert health.test_command({"Test": ["CMD-SHELL", "a b"]}) == ["/bin/sh", "-c", "a b"]
    assert health.test_command({"Test": ["CMD", "x", "y"]}) == ["x", "y"]
    assert health.test_command({"Test": ["NONE"]}) is None
    assert health.test_command(None) is None


def test_health_duration_text_is_gos() -> None:
    from forklift.engine.health import duration_text

    assert [duration_text(x) for x in (0.5, 2, 90, 3600, 3661.5, 0)] == [
        "500ms", "2s", "1m30s", "1h0m0s", "1h1m1.5s", "0s"]
