"""Digest slots, exactly once: the claim, take-over after a crash, catch-up after downtime,
on SQLite and PostgreSQL, with the digest job against bot/sim and the fake Slack."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cluster.client import connect
from bot.runtime import Runtime
from bot.schedule.deadline import Deadline
from bot.schedule.digest_job import DigestJob, Retry
from bot.slack.digests import EVENT_TYPE, SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from bot.store.slots import CLAIMED, FAILED, POSTED, SUPERSEDED, SlotKey
from bot.store.snapshots import PURPOSE_DIGEST, PURPOSE_DIGEST_PENDING
from tests.conftest import Sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.settings import amend

CHANNEL = "CALL"
FAST = Retry(attempts=4, first=0.01, cap=0.05)
DAY0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday; the schedule is 09:00 daily


class Rig:
    """The digest job's world: one database, the sim, the fake Slack and a clock."""

    def __init__(self, sim: Sim, slack: FakeSlack, database_url: str, **changes: object
                 ) -> None:
        self.sim = sim
        self.slack = slack
        chosen: dict[str, object] = {"PATROL_SCHEDULE": "0 9 * * *"} | changes
        self.settings = amend(sim.settings(), SLACK_BOT_TOKEN=TOKEN,
                                SLACK_API_URL=slack.base_url, PATROL_CHANNEL=CHANNEL,
                                DATABASE_URL=database_url, **chosen)  # type: ignore[arg-type]
        self.cluster = connect(self.settings)
        self.store = Store.open(database_url)
        self.services = Services(self.settings, self.cluster, self.store)
        self.now = DAY0 - timedelta(hours=1)
        self.runtime = Runtime("digest-test")
        self.workers = self.runtime.executor("digest-slot", 4)  # as the scheduler's pool

    def job(self, owner: str = "replica-a", retry: Retry = FAST,
            clock: Callable[[], datetime] | None = None) -> DigestJob:
        return DigestJob(self.cluster, self.store, self.settings,
                         SlackDigestPoster(self.services, CHANNEL), owner=owner,
                         clock=clock or (lambda: self.now), retry=retry)

    def schedule_began(self, when: datetime = DAY0 - timedelta(days=1)) -> None:
        """As if a replica had run the schedule since `when` (it records that at start)."""
        self.store.slots.schedule_since(self.cluster.name, CHANNEL, when)

    def key(self, when: datetime) -> SlotKey:
        return SlotKey(self.cluster.name, CHANNEL, when)

    def states(self) -> dict[datetime, str]:
        return {s.key.scheduled_at: s.state
                for s in self.store.slots.history(self.cluster.name, CHANNEL)}

    def digests(self) -> list[dict]:
        return [m for m in self.slack.messages(CHANNEL)
                if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE]

    def close(self) -> None:
        self.runtime.stop()
        self.store.close()
        self.cluster.close()


@pytest.fixture
def rig(sim: Sim, slack: FakeSlack, database_url: str) -> Iterator[Rig]:
    made = Rig(sim, slack, database_url)
    yield made
    made.close()


def test_a_slot_is_claimed_once_and_the_loser_gets_none(rig: Rig) -> None:
    slots = rig.store.slots
    key = rig.key(DAY0)
    winners = []
    barrier = threading.Barrier(4)

    def claim(owner: str) -> None:
        barrier.wait()
        if slots.claim(key, owner, DAY0) is not None:
            winners.append(owner)

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    stored = slots.get(key)
    assert stored is not None and stored.claimed_by == winners[0] and stored.state == CLAIMED
    assert slots.claim(key, "late", DAY0) is None


def test_take_over_is_a_compare_and_set(rig: Rig) -> None:
    slots = rig.store.slots
    claimed = slots.claim(rig.key(DAY0), "dead", DAY0)
    assert claimed is not None
    first = slots.take_over(claimed, "a", DAY0 + timedelta(minutes=1))
    second = slots.take_over(claimed, "b", DAY0 + timedelta(minutes=1))
    assert first is not None and first.claimed_by == "a" and first.attempts == 2
    assert second is None
    slots.mark_posted(first, "1.000001", DAY0)
    assert slots.take_over(first, "c", DAY0) is None  # finished slots stay finished


def test_posting_confirms_the_snapshot_and_supersedes_earlier_slots(rig: Rig) -> None:
    rig.now = DAY0 + timedelta(seconds=5)
    rig.job().run_slot(DAY0)
    (posted,) = rig.store.slots.history(rig.cluster.name, CHANNEL)
    assert posted.state == POSTED and posted.message_ts == rig.digests()[0]["ts"]
    assert posted.snapshot_id is not None
    latest = rig.store.latest_snapshot(rig.cluster.name, purpose=PURPOSE_DIGEST)
    assert latest is not None and latest.id == posted.snapshot_id
    stale = rig.store.slots.claim(rig.key(DAY0 + timedelta(days=1)), "dead", rig.now)
    assert stale is not None
    rig.now = DAY0 + timedelta(days=2, seconds=5)
    rig.job().run_slot(DAY0 + timedelta(days=2))
    assert rig.states() == {DAY0: POSTED, DAY0 + timedelta(days=1): SUPERSEDED,
                            DAY0 + timedelta(days=2): POSTED}
    assert len(rig.digests()) == 2


def test_a_claim_killed_before_posting_is_completed_on_restart(rig: Rig) -> None:
    rig.schedule_began()
    rig.now = DAY0 + timedelta(seconds=1)
    assert rig.store.slots.claim(rig.key(DAY0), "killed-replica", rig.now) is not None
    rig.now = DAY0 + timedelta(minutes=3)  # restarted three minutes later
    rig.job().tick(rig.workers)
    (slot,) = rig.store.slots.history(rig.cluster.name, CHANNEL)
    assert slot.state == POSTED and slot.attempts == 2
    assert [m["ts"] for m in rig.digests()] == [slot.message_ts]
    rig.job(owner="replica-b").tick(rig.workers)  # and again: nothing more
    assert len(rig.digests()) == 1


def test_a_post_that_reached_slack_before_the_crash_is_recorded_not_repeated(rig: Rig
                                                                               ) -> None:
    rig.schedule_began()
    rig.now = DAY0 + timedelta(seconds=1)
    dead = rig.job(owner="killed-replica")
    slot = rig.store.slots.claim(rig.key(DAY0), dead.owner, rig.now)
    assert slot is not None
    # the killed replica got as far as posting (its snapshot pending), not recording
    from bot.answers.patrol import PatrolPlan, patrol

    run = patrol(rig.cluster, rig.store, rig.settings,
                 PatrolPlan.digest(confirmed_by_post=True))
    assert run.snapshot is not None and run.snapshot.purpose == PURPOSE_DIGEST_PENDING
    rig.store.slots.attach_snapshot(slot, run.snapshot.id)
    ts = dead.poster.post(dead.poster.render(run), slot.key, Deadline.after(30))
    rig.now = DAY0 + timedelta(minutes=2)
    rig.job().tick(rig.workers)
    (done,) = rig.store.slots.history(rig.cluster.name, CHANNEL)
    assert done.state == POSTED and done.message_ts == ts
    assert len(rig.digests()) == 1
    confirmed = rig.store.latest_snapshot(rig.cluster.name, purpose=PURPOSE_DIGEST)
    assert confirmed is not None and confirmed.id == run.snapshot.id


def test_missed_slots_are_caught_up_once_and_coalesced(rig: Rig) -> None:
    rig.schedule_began()
    rig.now = DAY0 + timedelta(seconds=2)
    rig.job().tick(rig.workers)  # day 0 posted on time
    rig.sim.world.advance(timedelta(days=2))
    rig.now = DAY0 + timedelta(days=2, hours=2)  # down from day 0 to day 2, 11:00
    restarted = rig.job(owner="restarted")
    restarted.tick(rig.workers)
    restarted.tick(rig.workers)
    rig.job(owner="restarted-again").tick(rig.workers)
    digests = rig.digests()
    assert len(digests) == 2  # day 0, then one catch-up for days 1 and 2
    assert set(rig.states()) == {DAY0, DAY0 + timedelta(days=2)}
    assert "(2d)" in rig.slack.text_of(digests[-1])


def test_no_catch_up_beyond_digest_catchup_nor_before_the_schedule_began(
        sim: Sim, slack: FakeSlack, database_url: str) -> None:
    rig = Rig(sim, slack, database_url, DIGEST_CATCHUP=timedelta(hours=1))
    try:
        rig.now = DAY0 + timedelta(hours=3)  # first start ever, after today's slot
        rig.job().tick(rig.workers)
        assert rig.digests() == []  # the schedule began after it: never due
        rig.now = DAY0 + timedelta(days=1, hours=2)  # next slot missed by 2 h > 1 h
        rig.job(owner="later").tick(rig.workers)
        assert rig.digests() == [] and rig.states() == {}
        rig.now = DAY0 + timedelta(days=2, minutes=30)  # missed by 30 min: caught up
        rig.job(owner="later-still").tick(rig.workers)
        assert len(rig.digests()) == 1
    finally:
        rig.close()


def test_a_live_claim_of_another_replica_is_left_alone(rig: Rig) -> None:
    rig.schedule_began()
    rig.now = DAY0 + timedelta(seconds=1)
    job = rig.job()
    rig.now = DAY0 + timedelta(seconds=2)  # claimed after this job started: in progress
    assert rig.store.slots.claim(rig.key(DAY0), "busy-replica", rig.now) is not None
    job.tick(rig.workers)
    assert rig.digests() == []
    assert rig.states() == {DAY0: CLAIMED}


def test_a_failing_patrol_is_reported_and_the_slot_stays_open(sim: Sim, slack: FakeSlack,
                                                              tmp_path: Path) -> None:
    rig = Rig(sim, slack, f"sqlite:///{tmp_path}/f.db", PATROL_NAMESPACES=("qld2-production",))
    try:
        sim.server.forbidden_namespaces.add("qld2-production")
        rig.schedule_began()
        rig.now = DAY0 + timedelta(seconds=1)
        rig.job().tick(rig.workers)  # forbidden is permanent: one attempt, then the channel is told
        (told,) = [slack.text_of(m) for m in slack.messages(CHANNEL)]
        assert "digest for *sim-qld2* due 2026-11-02 09:00 UTC was not posted" in told
        assert "forbidden (403)" in told
        assert rig.states() == {DAY0: FAILED}
        assert len(slack.calls_to("chat.postMessage")) == 1
        assert rig.digests() == []
    finally:
        rig.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    opened: list[Store] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        barrier.wait()
        try:
            opened.append(Store.open(database_url))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in opened:
        store.close()
    assert failures == [] and len(opened) == 4
