"""Shutdown with questions in flight (issues 14.7, 15.1): `restart-patrol serve` as a
process, a drill-down stuck on a `pods/log` that never answers, then SIGTERM — and SIGTERM
then SIGKILL at the Deployment's grace period, as the kubelet does. The asker hears
something before the process is gone; the process exits 0 within 10 s."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import Sim, start_sim
from tests.e2e.test_slack_served import OPS, Bot, served_bot
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN = 10.0  # seconds: the README's promise
RESTARTING = "restarting — ask again in a minute"


def grace_period() -> float:
    """terminationGracePeriodSeconds of the Deployment in deploy/base."""
    deployment = yaml.safe_load((ROOT / "deploy/base/deployment.yaml").read_text())
    return float(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


@pytest.fixture
def stuck(tmp_path: Path) -> Iterator[tuple[Sim, FakeSlack, threading.Event]]:
    """A simulated cluster whose `pods/log` never answers (until the test ends)."""
    sim = start_sim(tmp_path)
    gate = threading.Event()
    sim.server.log_gate = gate
    slack = FakeSlack().start()
    try:
        yield sim, slack, gate
    finally:
        gate.set()
        slack.stop()
        sim.server.stop()


def _ask(bot: Bot, sim: Sim, count: int) -> None:
    for i in range(count):
        status, _, _ = bot.command("qld2-production pod1-deployment", key=f"ask-{i}")
        assert status == 200
    running = min(count, 4)  # the Slack work pool runs 4 at once; the rest queue
    deadline = time.monotonic() + 60
    while sim.server.api.log_waiting < running:
        assert time.monotonic() < deadline, "the drill-downs never reached pods/log"
        time.sleep(0.05)


def _told(slack: FakeSlack) -> list[str]:
    return [str(r) for r in slack.responses if RESTARTING in str(r)]


def test_sigterm_with_a_drill_down_stuck_on_a_slow_log(
        stuck: tuple[Sim, FakeSlack, threading.Event], tmp_path: Path) -> None:
    sim, slack, _gate = stuck
    with served_bot(tmp_path, sim, slack, CHANNEL_NAMESPACES=f"{OPS}=*") as bot:
        _ask(bot, sim, 1)
        assert _told(slack) == []
        sent = time.monotonic()
        bot.stop(EXIT_WITHIN)
        took = time.monotonic() - sent
        code = bot.proc.returncode
    print(f"SIGTERM → exit {code} in {took:.2f} s with a drill-down stuck on pods/log")
    assert code == 0
    assert len(_told(slack)) == 1  # before: nothing, and 58.5 s to exit


def test_sigterm_then_sigkill_at_the_grace_period_every_asker_hears_something(
        stuck: tuple[Sim, FakeSlack, threading.Event], tmp_path: Path) -> None:
    """Six questions: four stuck running, two queued behind them. The kubelet sends
    SIGTERM, waits terminationGracePeriodSeconds, then SIGKILL."""
    sim, slack, _gate = stuck
    with served_bot(tmp_path, sim, slack, CHANNEL_NAMESPACES=f"{OPS}=*") as bot:
        _ask(bot, sim, 6)
        # the kubelet would SIGKILL at the grace period: outliving it fails here, with a
        # faulthandler dump of every thread instead of the kill
        out = bot.stop(grace_period())
    assert len(_told(slack)) == 6, slack.responses
    assert re.search(r"slack-work: 6 task\(s\) abandoned at shutdown", out), out[-3000:]
