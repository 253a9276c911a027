"""A thread per crash (bot/slack/alerts.py) against a real store (SQLite and PostgreSQL)
and the fake Slack Web API: the first alert opens the thread, repeats update its parent
and reply in it (capped), silences quiet it, a new crash lifts a workload silence, and
all of it survives a restart of the bot (a new store and alerter on the same database)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from bot.patrol.alerting import AlertedWorkload
from bot.patrol.history import CAPTURED, CrashRecord
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.slack.alerts import AlertThreads, CrashAlerts, ThreadFollower
from bot.slack.client import build_web_client
from bot.store import Store
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.settings import amend

CHANNEL = "CALERT"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ORDERS = AlertedWorkload("c", "shop", "Deployment", "orders")


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    settings: Settings
    url: str
    slack: FakeSlack
    runtime: Runtime
    clock: Clock = field(default_factory=Clock)
    stores: list[Store] = field(default_factory=list)

    def alerter(self) -> tuple[CrashAlerts, ThreadFollower, Store]:
        """A fresh store and alerter on the database (as after a restart of the bot)."""
        store = Store.open(self.url)
        self.stores.append(store)
        threads = AlertThreads(self.settings, store, build_web_client(self.settings),
                               self.clock)
        alerts = CrashAlerts(threads, lambda _crash: (CHANNEL,), self.runtime)
        return alerts, alerts.follower("c"), store

    def parent(self) -> dict:
        (first, *_) = [m for m in self.slack.messages(CHANNEL) if not m.get("thread_ts")]
        return first

    def replies(self) -> list[str]:
        return [self.slack.text_of(m)
                for m in self.slack.replies(CHANNEL, self.parent()["ts"])]

    def parent_text(self) -> str:
        return self.slack.text_of(self.slack.current(CHANNEL, self.parent()["ts"]))


@pytest.fixture
def rig(database_url: str, slack: FakeSlack, runtime: Runtime) -> Iterator[Rig]:
    settings = amend(load_settings({}), SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.base_url,
                     PATROL_CHANNEL=CHANNEL, ALERT_NEW_CRASHES=True)
    made = Rig(settings, database_url, slack, runtime)
    yield made
    for store in made.stores:
        store.close()


def record(store: Store, n: int, at: datetime, *, fingerprint: str | None = "f00d",
           category: str = "go-panic", container: str = "app",
           workload: str = "orders", namespace: str = "shop") -> CrashRecord:
    """Store restart `n` of the workload's pod as the recorder does; the stored crash."""
    stored = store.crashes.record(CrashRecord(
        cluster="c", namespace=namespace, pod_name=f"{workload}-7d9f-x2x",
        pod_uid=f"uid-{workload}",
        container=container, container_kind="container", workload_kind="Deployment",
        workload_name=workload, restart_count=n, exit_code=2, reason="Error", finished_at=at,
        recorded_at=at, category=category, fingerprint=fingerprint, capture=CAPTURED,
        summary="Go panic: runtime error: invalid memory address or nil pointer dereference",
        signature=("panic: runtime error: invalid memory address",)), "log")
    assert stored is not None
    return stored


def test_repeats_update_the_parent_and_reply_in_its_thread_at_most_hourly(rig: Rig) -> None:
    alerts, follower, store = rig.alerter()
    alerts(record(store, 1, T0))
    (parent,) = rig.slack.messages(CHANNEL)
    assert "New crash in shop / orders" in rig.slack.text_of(parent)
    actions = [b for b in parent["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["why", "silence",
                                                                 "acknowledge"]
    rig.clock.now = T0 + timedelta(minutes=5)
    record(store, 2, T0 + timedelta(minutes=4))
    follower.follow()
    assert "×2*, last 09:04 UTC" in rig.parent_text()
    assert len(rig.replies()) == 1 and "×1 more since 09:00 UTC" in rig.replies()[0]
    rig.clock.now = T0 + timedelta(minutes=20)
    record(store, 3, T0 + timedelta(minutes=15))
    record(store, 4, T0 + timedelta(minutes=19))
    follower.follow()
    assert "×4*, last 09:19 UTC" in rig.parent_text()
    assert len(rig.replies()) == 1  # capped: one reply an hour
    follower.follow()
    assert len(rig.slack.updates(CHANNEL)) == 2  # nothing new: no update either
    rig.clock.now = T0 + timedelta(minutes=66)  # an hour after the reply: the count since
    follower.follow()
    assert len(rig.replies()) == 2
    assert "×2 more since 09:05 UTC, last 09:19 UTC" in rig.replies()[1]
    assert "×4 since the alert" in rig.replies()[1]
    assert len([m for m in rig.slack.messages(CHANNEL) if not m.get("thread_ts")]) == 1


def test_the_callback_counts_a_repeat_once_whoever_offers_it(rig: Rig) -> None:
    alerts, follower, store = rig.alerter()
    alerts(record(store, 1, T0))
    repeat = record(store, 2, T0 + timedelta(minutes=1))
    alerts(repeat)  # a recorder that passes every crash
    follower.follow()  # and the poll sees it too
    alerts(repeat)
    (thread,) = store.threads.recent(T0 - timedelta(hours=1))
    assert thread.count == 2 and len(rig.replies()) == 1


def test_the_follower_and_the_callback_racing_never_count_a_crash_twice(rig: Rig) -> None:
    """The follower reads the crashes past a thread's last counted one (2 and 3); before
    it counts them, the recorder's callback counts crash 2. The follower's count then adds
    crash 3 alone: the store sums what lies past the thread's last crash when it counts."""
    alerts, _, store = rig.alerter()
    alerts(record(store, 1, T0))
    second = record(store, 2, T0 + timedelta(minutes=1))
    third = record(store, 3, T0 + timedelta(minutes=2))
    rig.clock.now = T0 + timedelta(minutes=3)
    (found,) = store.threads.pending("c", T0 - timedelta(hours=1))
    assert found[1] == 2  # the follower's tally: crashes 2 and 3
    alerts(second)  # the callback wins the race for crash 2
    alerts.threads.repeat(found[2], CHANNEL)  # then the follower counts up to crash 3
    (thread,) = store.threads.recent(T0 - timedelta(hours=1))
    assert thread.count == 3 and thread.last_crash_id == third.id
    assert "×3*" in rig.parent_text()


def test_threads_survive_a_restart_of_the_bot(rig: Rig) -> None:
    alerts, _, store = rig.alerter()
    alerts(record(store, 1, T0))
    store.close()
    rig.clock.now = T0 + timedelta(minutes=3)
    _, follower, fresh = rig.alerter()  # a new process on the same database
    record(fresh, 2, T0 + timedelta(minutes=2))
    follower.follow()
    assert len(rig.slack.messages(CHANNEL)) == 2  # the parent and one reply in its thread
    assert "×2*, last 09:02 UTC" in rig.parent_text()
    assert len(rig.replies()) == 1


def test_a_crash_without_fingerprint_threads_by_its_category(rig: Rig) -> None:
    alerts, follower, store = rig.alerter()
    alerts(record(store, 1, T0, fingerprint=None, category="oom-killed"))
    record(store, 2, T0 + timedelta(minutes=1), fingerprint=None, category="oom-killed")
    record(store, 3, T0 + timedelta(minutes=2), fingerprint="other")  # another crash
    record(store, 4, T0 + timedelta(minutes=3), fingerprint=None, category="oom-killed",
           container="sidecar")  # another container
    rig.clock.now = T0 + timedelta(minutes=5)
    follower.follow()
    (thread,) = store.threads.recent(T0 - timedelta(hours=1))
    assert (thread.identity, thread.count) == ("OOMKilled", 2)


def test_a_silenced_crash_is_counted_in_place_but_not_replied(rig: Rig) -> None:
    alerts, follower, store = rig.alerter()
    alerts(record(store, 1, T0))
    store.silences.add(ORDERS, "f00d", by="U777", now=T0, until=T0 + timedelta(hours=24),
                       reason="known; fix in 1.14.3")
    rig.clock.now = T0 + timedelta(minutes=2)
    record(store, 2, T0 + timedelta(minutes=1))
    follower.follow()
    text = rig.parent_text()
    assert "×2*" in text and "silenced by <@U777> until 2026-12-02 09:00 UTC" in text
    assert rig.replies() == []


def test_a_new_crash_lifts_a_workload_silence_and_is_alerted(rig: Rig) -> None:
    alerts, _, store = rig.alerter()
    alerts(record(store, 1, T0))
    parent_ts = rig.parent()["ts"]
    silence = store.silences.add(ORDERS, None, by="U777", now=T0,
                                 until=T0 + timedelta(days=7), reason="rollout in progress",
                                 channel=CHANNEL, thread_ts=parent_ts)
    rig.clock.now = T0 + timedelta(hours=1)
    new = record(store, 2, T0 + timedelta(hours=1), fingerprint="beef", category="python-exception")
    assert new.is_new
    alerts(new)
    parents = [m for m in rig.slack.messages(CHANNEL) if not m.get("thread_ts")]
    assert len(parents) == 2 and "python-exception" in rig.slack.text_of(parents[1])
    lifted = store.silences.get(silence.id)
    assert lifted is not None and lifted.lifted_at == rig.clock.now
    assert lifted.lifted_by == "restart-patrol"
    (audit,) = rig.replies()
    assert "lifted early: a new crash appeared" in audit
    assert store.silences.for_workload(ORDERS, rig.clock.now) == []


def test_a_crash_silenced_for_its_workload_posts_nothing(rig: Rig) -> None:
    alerts, _, store = rig.alerter()
    store.silences.add(ORDERS, "f00d", by="cli:ops", now=T0, until=T0 + timedelta(hours=1),
                       reason="maintenance")
    alerts(record(store, 1, T0))  # new, but this very crash is silenced
    assert rig.slack.messages(CHANNEL) == []
    assert len(store.history.history("c", "shop", limit=10)) == 1  # still recorded


def test_alerts_go_to_the_team_channels_claiming_the_namespace_one_thread_each(
        rig: Rig) -> None:
    from bot.slack.alerts import new_crash_alerter

    settings = amend(rig.settings, DIGEST_CHANNELS="CPAY=shop;CSHOP=shop,web")
    store = Store.open(rig.url)
    rig.stores.append(store)
    alert = new_crash_alerter(settings, rig.runtime, build_web_client(settings), store)
    alert(record(store, 1, T0))
    alert(record(store, 1, T0, workload="web", namespace="web", fingerprint="cafe"))
    assert isinstance(alert, CrashAlerts)
    record(store, 2, T0 + timedelta(minutes=1))
    alert.follower("c").follow()
    assert rig.slack.messages(CHANNEL) == []  # claimed by teams: not the catch-all
    for team, alerts in (("CPAY", 1), ("CSHOP", 2)):
        parents = [m for m in rig.slack.messages(team) if not m.get("thread_ts")]
        assert len(parents) == alerts and "shop / orders" in rig.slack.text_of(parents[0])
        assert len(rig.slack.replies(team, parents[0]["ts"])) == 1  # the repeat, in each
    assert "web / web" in rig.slack.text_of(rig.slack.messages("CSHOP")[1])
    assert len(store.threads.recent(T0 - timedelta(hours=1))) == 3


def test_a_thread_quiet_for_weeks_gets_its_crashs_next_repeat(rig: Rig) -> None:
    alerts, follower, store = rig.alerter()
    alerts(record(store, 1, T0))
    rig.clock.now = T0 + timedelta(days=30)
    record(store, 2, rig.clock.now - timedelta(minutes=1))
    follower.follow()
    assert "×2*" in rig.parent_text() and len(rig.replies()) == 1


def test_slack_down_loses_no_count_and_stops_no_follower(rig: Rig) -> None:
    alerts, follower, store = rig.alerter()
    alerts(record(store, 1, T0))
    rig.slack.outage = True
    record(store, 2, T0 + timedelta(minutes=1))
    follower.follow()  # every call answers 503: logged, not raised
    rig.slack.outage = False
    record(store, 3, T0 + timedelta(minutes=2))
    rig.clock.now = T0 + timedelta(minutes=3)
    follower.follow()
    assert "×3*, last 09:02 UTC" in rig.parent_text()  # the count kept through the outage
