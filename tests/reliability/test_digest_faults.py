"""The digest under Slack faults: an outage keeps the window, an answer lost after Slack
accepted the post does not post it twice, a missed slot is caught up once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.store.slots import CLAIMED, FAILED, POSTED, SUPERSEDED
from tests.conftest import Sim
from tests.fakes.slack_api import FakeSlack
from tests.integration.test_slots import CHANNEL, DAY0, Rig
from tests.reliability.conftest import Held
from tests.support.waiting import wait_until

POD1 = json.dumps({"cl": "sim-qld2", "ns": "qld2-production", "kind": "Deployment",
                   "name": "pod1-deployment"},
                  separators=(",", ":"))


@pytest.fixture
def rig(sim: Sim, slack: FakeSlack, tmp_path: Path) -> Iterator[Rig]:
    made = Rig(sim, slack, f"sqlite:///{tmp_path}/faults.db")
    made.schedule_began()
    yield made
    made.close()


def pod1_row(message: dict) -> str:
    return next(b["text"]["text"] for b in message["blocks"]
                if (b.get("accessory") or {}).get("value") == POD1)


def run_day(rig: Rig, day: int) -> None:
    rig.now = DAY0 + timedelta(days=day, seconds=1)
    rig.job(owner=f"day-{day}").tick(rig.workers)


def test_slack_outage_keeps_the_window_for_the_next_digest(rig: Rig, slack: FakeSlack,
                                                           held: Held) -> None:
    held("Slack down (503) for a whole digest slot",
         "no blind re-post; slot left open; the next digest covers both days (+6, 2d)")
    run_day(rig, 0)
    rig.sim.world.advance(timedelta(days=1))
    slack.outage = True
    run_day(rig, 1)
    # within the slot: one post (its answer lost), then each retry reads the history first
    # (it might have been accepted), so no blind second post
    assert len(slack.calls_to("chat.postMessage (503)")) == 1
    assert len(slack.calls_to("conversations.history (503)")) == 3
    slack.outage = False
    assert rig.states()[DAY0 + timedelta(days=1)] == FAILED
    rig.sim.world.advance(timedelta(days=1))
    run_day(rig, 2)
    _first, last = rig.digests()
    assert "`+6`" in pod1_row(last)  # +3 a day: the failed day's restarts are not lost
    assert "(2d)" in slack.text_of(last)
    assert rig.states() == {DAY0: POSTED, DAY0 + timedelta(days=1): SUPERSEDED,
                            DAY0 + timedelta(days=2): POSTED}


@pytest.mark.parametrize("fault", ["accept_then_500", "drop"])
def test_accepted_then_lost_answer_posts_exactly_once(rig: Rig, slack: FakeSlack,
                                                      fault: str, held: Held) -> None:
    what = "then 500" if fault == "accept_then_500" else "then connection dropped"
    held(f"chat.postMessage accepted, {what}",
         "found in the channel history (read failing once); one digest")
    slack.fail_next["chat.postMessage"] = [fault]
    slack.fail_next["conversations.history"] = ["500"]  # and the first look fails too
    run_day(rig, 0)
    (digest,) = rig.digests()
    (slot,) = rig.store.slots.history(rig.cluster.name, CHANNEL)
    assert slot.state == POSTED and slot.message_ts == digest["ts"]
    assert len(slack.calls_to("conversations.history")) == 1  # found it there


def test_a_500_that_was_not_accepted_is_posted_again_once(rig: Rig, slack: FakeSlack,
                                                          held: Held) -> None:
    held("chat.postMessage 500 twice, not accepted", "history checked; posted once")
    slack.fail_next["chat.postMessage"] = ["500", "500"]
    run_day(rig, 0)
    assert len(rig.digests()) == 1
    assert len(slack.calls_to("chat.postMessage (500)")) == 2
    assert rig.states() == {DAY0: POSTED}


def test_a_missed_slot_is_caught_up_once(rig: Rig, slack: FakeSlack, held: Held) -> None:
    held("bot down over a digest slot, restarted 5 h later (twice)",
         "the missed slot posted once (DIGEST_CATCHUP 6 h)")
    run_day(rig, 0)
    rig.sim.world.advance(timedelta(days=1))
    rig.now = DAY0 + timedelta(days=1, hours=5)  # down from 08:00 to 14:00
    for replica in ("restarted", "restarted-again"):
        rig.job(owner=replica).tick(rig.workers)
    assert len(rig.digests()) == 2
    assert rig.states() == {DAY0: POSTED, DAY0 + timedelta(days=1): POSTED}


def slot_state(rig: Rig, when: datetime) -> str | None:
    slot = rig.store.slots.get(rig.key(when))
    return None if slot is None else slot.state


def test_a_hung_post_is_cut_at_the_deadline_and_never_blocks_the_next_slot(
        sim: Sim, slack: FakeSlack, tmp_path: Path, held: Held) -> None:
    held("chat.postMessage never answers", "the call is cut at the slot's deadline (slot "
         "failed, nothing posted); the next slot posts while Slack still holds it")
    rig = Rig(sim, slack, f"sqlite:///{tmp_path}/hung.db", PATROL_SCHEDULE="*/5 * * * *")
    try:
        rig.schedule_began()
        slack.fail_next["chat.postMessage"] = ["hang"]
        rig.now = DAY0 + timedelta(minutes=4, seconds=52)  # 3 s before the next slot's 5 s margin
        rig.job(owner="a").tick(rig.workers)
        # the post still hangs in Slack, but the slot's own call ended at its deadline
        wait_until(lambda: slot_state(rig, DAY0) not in (None, CLAIMED),
                   "the hung slot to end at its deadline", timeout=20)
        failed = rig.store.slots.get(rig.key(DAY0))
        assert failed is not None and failed.state == FAILED
        assert "did not answer" in (failed.error or "")
        assert not slack.release_hangs.is_set()  # Slack still holds that post
        rig.now = DAY0 + timedelta(minutes=5, seconds=1)
        rig.job(owner="b").tick(rig.workers)
        (digest,) = rig.digests()
        assert digest["metadata"]["event_payload"]["slot"] == (
            DAY0 + timedelta(minutes=5)).isoformat()
        assert rig.states() == {DAY0: SUPERSEDED, DAY0 + timedelta(minutes=5): POSTED}
        assert len(slack.calls_to("chat.postMessage (hang)")) == 1
    finally:
        rig.close()


def test_stop_returns_at_once_during_a_hung_post(rig: Rig, slack: FakeSlack,
                                                 held: Held) -> None:
    held("SIGTERM while a digest post hangs", "the digest job returns at once; the "
         "stopped slot never posts nor reports afterwards")
    slack.fail_next["chat.postMessage"] = ["hang"]
    rig.now = DAY0 + timedelta(seconds=1)
    job = rig.job()  # a daily slot: its deadline is 30 minutes away
    ticking = threading.Thread(target=job.tick, args=(rig.workers,))
    ticking.start()
    slack.wait_for(lambda: slack.calls_to("chat.postMessage (hang)"))
    job.stop()
    ticking.join()  # returns without waiting for Slack (pytest's timeout would fail it)
    assert slot_state(rig, DAY0) == CLAIMED  # its post was still waiting for Slack
    slack.release_hangs.set()  # now Slack answers that post (500, not accepted)
    wait_until(lambda: slot_state(rig, DAY0) == FAILED, "the stopped slot to end")
    assert slack.messages(CHANNEL) == []  # no digest, no failure notice after the stop
    # the whole conversation with Slack: the hung post (answered 500 once released)
    assert [c.method for c in slack.calls] == ["chat.postMessage (hang)",
                                               "chat.postMessage (500)"]


@pytest.mark.parametrize(("every_call", "retry_after", "budget"), [
    (False, 20, 10), (True, 1, 3)], ids=["retry-after-20", "429-on-every-call"])
def test_a_slot_throttled_past_its_deadline_never_posts_later(
        sim: Sim, slack: FakeSlack, tmp_path: Path, held: Held, every_call: bool,
        retry_after: int, budget: int) -> None:
    what = "429 on every call, Retry-After: 1" if every_call else (
        "429 with Retry-After: 20 on the post")
    held(f"Slack throttles a digest slot past its deadline ({what})",
         "no retry after the deadline (slack_sdk's handler bounded by it); the slot never "
         "posts later; the next slot covers both windows")
    rig = Rig(sim, slack, f"sqlite:///{tmp_path}/throttled.db", PATROL_SCHEDULE="*/5 * * * *")
    try:
        rig.schedule_began()
        rig.job(owner="first").run_slot(DAY0 - timedelta(minutes=5))  # the baseline
        rig.sim.world.advance(timedelta(minutes=10))
        slack.retry_after = retry_after
        throttled = ["chat.postMessage", "conversations.history"] if every_call else [
            "chat.postMessage"]
        for method in throttled:
            slack.rate_limit[method] = 10**6  # until lifted below
        rig.now = DAY0 + timedelta(minutes=5, seconds=-5 - budget)  # `budget` s left
        rig.job(owner="a").tick(rig.workers)
        returned = time.monotonic()
        slack.rate_limit.clear()  # Slack would take it now: a late retry would post
        wait_until(lambda: slot_state(rig, DAY0) not in (None, CLAIMED),
                   "slot A to end", timeout=40)
        assert slot_state(rig, DAY0) == FAILED
        assert slack.calls_to("chat.postMessage (429)")  # it was throttled
        assert [c.method for c in slack.calls if c.at > returned] == []
        rig.sim.world.advance(timedelta(minutes=5))
        rig.now = DAY0 + timedelta(minutes=5, seconds=1)
        rig.job(owner="b").tick(rig.workers)
        first, digest = rig.digests()
        assert first["metadata"]["event_payload"]["slot"] == (
            DAY0 - timedelta(minutes=5)).isoformat()
        assert digest["metadata"]["event_payload"]["slot"] == (
            DAY0 + timedelta(minutes=5)).isoformat()
        assert "(15m)" in slack.text_of(digest)  # from the baseline: slot A's window too
        assert rig.states()[DAY0] == SUPERSEDED
    finally:
        rig.close()
