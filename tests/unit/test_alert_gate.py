"""New-crash alerts are capped: ALERT_BURST one by one per ALERT_WINDOW, the rest of a
wave held and posted as one summary that fits Slack's limits however many crashes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from bot.patrol.history import CAPTURED, CrashRecord
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.slack.alerts import AlertGate, held_crashes_message
from tests.fakes.slack_api import block_kit_problems


def crash(n: int, namespace: str = "shop") -> CrashRecord:
    at = datetime(2026, 11, 30, 9, tzinfo=UTC)
    name = f"payments-settlement-reconciliation-worker-{n:03d}-" + "x" * 180
    return CrashRecord(cluster="c", namespace=namespace, pod_name=f"{name}-a", pod_uid=str(n),
                       container="app", container_kind="container", workload_kind="Deployment",
                       workload_name=name, restart_count=1, exit_code=2, finished_at=at,
                       recorded_at=at, category="go-panic", fingerprint=f"f{n}",
                       capture=CAPTURED, summary="Go panic: <nil> & " * 100, is_new=True)


def test_a_wave_is_burst_alerts_then_one_summary_then_alerts_again(runtime: Runtime) -> None:
    now = [0.0]
    one: list[CrashRecord] = []
    held: list[list[CrashRecord]] = []
    flushed = threading.Event()

    def post_held(crashes: list[CrashRecord]) -> None:
        held.append(crashes)
        flushed.set()

    gate = AlertGate(one.append, post_held, burst=3, window=0.05, clock=lambda: now[0],
                     runtime=runtime)
    for n in range(10):
        gate(crash(n))
    assert [c.pod_uid for c in one] == ["0", "1", "2"]
    assert flushed.wait(30)  # the window's wait posts what was held
    assert [[c.pod_uid for c in batch] for batch in held] == [[str(n) for n in range(3, 10)]]
    now[0] = 10.0  # long after: alerts go out one by one again
    gate(crash(11))
    assert one[-1].pod_uid == "11"


def test_the_summary_fits_slacks_limits_for_any_wave() -> None:
    settings = load_settings({})
    for size in (1, 7, 500):
        crashes = [crash(n, namespace=f"team-{n % 40:02d}") for n in range(size)]
        message = held_crashes_message(crashes, settings)
        assert block_kit_problems(message) == []
        assert len(message["blocks"]) <= 12
        text = " ".join(b.get("text", {}).get("text", "") for b in message["blocks"])
        assert f"*{size} more new crash" in text
        if size > 10:
            assert f"… and {size - 10} more." in str(message["blocks"][-1])


def test_held_alerts_are_posted_when_the_process_stops_not_lost() -> None:
    """Issue 15.1: the summary's wait belongs to the runtime; its stop posts what is held
    at once (before: a daemon Timer died with the process)."""
    one: list[CrashRecord] = []
    held: list[list[CrashRecord]] = []
    runtime = Runtime("alerts-test")
    gate = AlertGate(one.append, held.append, burst=1, window=3600, runtime=runtime)
    for n in range(3):
        gate(crash(n))
    assert [c.pod_uid for c in one] == ["0"] and held == []
    assert "rp-alerts-held" in runtime.threads()
    runtime.stop()
    assert [[c.pod_uid for c in batch] for batch in held] == [["1", "2"]]
    gate(crash(3))  # after the stop: posted at once, nothing waits
    assert [[c.pod_uid for c in batch] for batch in held] == [["1", "2"], ["3"]]
