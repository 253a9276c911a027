"""A burst of 500 signed slash commands against the served bot (`restart-patrol serve`,
HTTP mode, loopback only): every one is acknowledged with a bare 200, and every one's
drill-down reaches the fake Slack (a parent in the channel and the diagnosis in its
thread). Ack and answer latencies are reported (p50/p99), never asserted."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import start_sim
from tests.fakes.slack_api import FakeSlack
from tests.reliability.conftest import Held
from tests.reliability.slack_served import Bot, percentile, served_bot

COMMANDS = 500
SENDERS = 32  # concurrent connections, as Slack opens them for a busy workspace
TARGETS = ["pod1-deployment", "pod2-deployment", "pod3-deployment", "pod4-deployment"]


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    sim = start_sim(tmp_path)
    slack = FakeSlack().start()
    try:
        with served_bot(tmp_path, sim, slack) as served:
            yield served
    finally:
        slack.stop()
        sim.server.stop()
    assert not slack.violations


def answer_times(slack: FakeSlack) -> dict[str, float]:
    """Per channel, when its drill-down answer (a reply in the parent's thread) arrived."""
    posts = [c for c in list(slack.calls) if c.method == "chat.postMessage"
             and c.result.get("ok")]
    parents = {(c.args["channel"], c.result["ts"]) for c in posts if not c.args.get("thread_ts")}
    first: dict[str, float] = {}
    for c in posts:
        key = (c.args["channel"], c.args.get("thread_ts"))
        if key in parents and "Go panic" in c.args.get("text", ""):
            first.setdefault(c.args["channel"], c.at)
    return first


def test_500_signed_commands_are_all_acked_and_answered(bot: Bot, held: Held) -> None:
    sent: dict[str, float] = {}

    def command(i: int) -> tuple[int, str, float]:
        channel = f"C{i:04d}"  # one channel each: every answer is attributable
        sent[channel] = time.monotonic()
        return bot.command(f"qld2-production {TARGETS[i % len(TARGETS)]}", channel=channel)

    with ThreadPoolExecutor(SENDERS) as pool:
        results = list(pool.map(command, range(COMMANDS)))
    assert [(status, body) for status, body, _ in results] == [(200, "")] * COMMANDS

    def replies() -> int | None:  # cheap: this runs on every call the fake records
        count = len({c.args["channel"] for c in list(bot.slack.calls)
                     if c.method == "chat.postMessage" and c.args.get("thread_ts")})
        return count if count >= COMMANDS else None

    bot.slack.wait_for(replies, timeout=110)
    done = answer_times(bot.slack)
    assert sorted(done) == sorted(sent)
    acks = [took for _, _, took in results]
    answers = [done[ch] - sent[ch] for ch in sent]
    held(f"a burst of {COMMANDS} signed slash commands ({SENDERS} at a time)",
         f"all acked 200 (p50 {statistics.median(acks) * 1000:.0f} ms, p99 "
         f"{percentile(acks, 99) * 1000:.0f} ms); every drill-down answered in its thread "
         f"(p50 {statistics.median(answers):.1f} s, p99 {percentile(answers, 99):.1f} s)")
