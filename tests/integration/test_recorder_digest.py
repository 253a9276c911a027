"""What the record adds where the present is not enough: the digest's crash tallies, new
marks and restarts of vanished pods; alerts on new fingerprints; rollout correlation;
retention; the Slack drill-down's history and recorded logs."""
# ruff: noqa: F811 (the make_rig fixture is imported, then requested by name)

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.answers.investigation import Question, investigate
from bot.answers.patrol import PatrolPlan, patrol
from bot.patrol.history import CAPTURED, CrashRecord
from bot.render.digest_json import digest_to_json
from bot.render.terminal import digest_text
from bot.runtime import Runtime
from bot.slack.alerts import new_crash_alerter
from bot.slack.client import build_web_client
from bot.slack.posting import Services, post_drilldown
from bot.store import Store
from bot.store.schema import crashes
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_recorder import PANIC, Rig, make_rig  # noqa: F401 (fixture)
from tests.support.recording import RunningRecorder
from tests.support.settings import amend

OOM = {"every": "6h", "first_after": "4h", "exit_code": 137, "reason": "OOMKilled",
       "kind": "oom", "log": ["loading batch 1840233"]}


def two_workloads(**orders: object) -> dict:
    """shop/orders (Go panics every 2h, pods replaced every 5h) and shop/billing
    (OOMKilled every 6h from 4h on)."""
    return {"cluster": "shop", "nodes": ["n1"], "namespaces": {"shop": {"workloads": [
        {"kind": "Deployment", "name": "orders", "replicas": 1, "age": "5d",
         "containers": [{"name": "orders", "image": "orders:1.14.2", "memory": "256Mi",
                         "crash": {"every": "2h", "first_after": "30m", "exit_code": 2,
                                   "log": PANIC}}], **orders},
        {"kind": "Deployment", "name": "billing", "replicas": 1, "age": "30d",
         "containers": [{"name": "billing", "image": "billing:3.2", "memory": "512Mi",
                         "crash": OOM}]}]}}}


def test_the_digest_counts_vanished_pods_tallies_fingerprints_and_marks_new_ones(
        make_rig) -> None:
    rig: Rig = make_rig(two_workloads(replace_every="5h"))
    rig.advance(hours=3)  # orders' panic is seen before the digest window opens
    patrol(rig.cluster, rig.store, rig.recorder.settings, PatrolPlan.digest())
    for _ in range(24):  # half-hour steps: each crash is captured before its pod goes
        rig.advance(minutes=30)  # pods of orders are replaced at 5h, 10h and 15h
    run = patrol(rig.cluster, rig.store, rig.recorder.settings, PatrolPlan.digest())
    digest = run.digest
    assert digest.recorded and digest.dropped_captures == 0
    rows = {w.name: w for w in digest.workloads}
    orders = rows["orders"]
    # crashes at 4.5h, 5.5/7.5/9.5h, 10.5/12.5/14.5h, all by pods gone by 15h
    assert (orders.restarts, orders.vanished_restarts) == (7, 7)
    assert [(s.label, s.restarts, s.new) for s in orders.stories] == [("go-panic", 7, False)]
    billing = rows["billing"]
    assert (billing.restarts, billing.vanished_restarts) == (2, 0)  # at 4h and 10h
    assert [(s.label, s.restarts, s.new) for s in billing.stories] == [("OOMKilled", 2, True)]
    assert digest.restarts_in_window == 9
    text = digest_text(digest, run.diagnoses)
    # one line per crash: its tally and span, the latest crash's exit, category, headline
    assert re.search(r"↳ ×7 between [\d: -]+ and [\d: -]+ · exit 2 Error · go-panic · "
                     r"first seen 14h ago — Go panic: runtime error", text), text
    assert "(7 of these by pods gone since)" in text
    assert re.search(r"↳ ×2 between [\d: -]+ and [\d: -]+ · exit 137 OOMKilled · OOMKilled"
                     r" · NEW — OOM-killed", text), text
    assert "the flight recorder counted their restarts" in text
    data = digest_to_json(digest, run.diagnoses)
    (billing_json,) = [w for w in data["workloads"] if w["name"] == "billing"]
    assert billing_json["crashes"][0]["new"] is True and data["vanished_restarts"] == 7


def test_new_crashes_alert_once_each_and_name_the_rollout(make_rig, slack: FakeSlack,
                                                          runtime: Runtime) -> None:
    scenario = two_workloads(rollout_after="1h")
    scenario["namespaces"]["shop"]["workloads"][0]["containers"][0]["crash"][
        "first_after"] = "90m"  # the old pods never crash: replaced at 1h
    probe = make_rig(scenario)  # to build settings pointing at this fake Slack
    settings = amend(probe.recorder.settings, SLACK_BOT_TOKEN=TOKEN,
                       SLACK_API_URL=slack.base_url, PATROL_CHANNEL="CALERT",
                       ALERT_NEW_CRASHES=True)
    probe.recorder.stop()
    alert = new_crash_alerter(settings, runtime, build_web_client(settings))
    recorder = RunningRecorder(probe.cluster, probe.store, settings, on_new_crash=alert)
    rig = replace(probe, recorder=recorder)
    try:
        rig.settle()
        rig.advance(hours=7)
        rig.advance(hours=7)
        rows = rig.store.history.history("shop", "shop", limit=100)
        # new pods from the 1h rollout crash at 2.5h, 4.5h … 12.5h
        assert len([r for r in rows if r.workload_name == "orders"]) == 6
        messages = slack.messages("CALERT")
        assert len(messages) == 2  # one per new fingerprint, not one per restart
        texts = [slack.text_of(m) for m in messages]
        orders = next(t for t in texts if "shop / orders" in t)
        assert "go-panic" in orders and "panic: runtime error" in orders
        assert "first seen 90m after image orders:1.14.2 rolled out" in orders
        assert any("shop / billing" in t and "OOMKilled" in t for t in texts)
        first = min((r for r in rows if r.workload_name == "orders"),
                    key=lambda r: r.restart_count)
        assert first.is_new and first.changed_at is not None
        assert first.replica_set and first.template_hash
    finally:
        recorder.stop()


def crash(n: int, at: datetime, workload: str = "orders") -> CrashRecord:
    return CrashRecord(cluster="c", namespace="shop", pod_name=f"{workload}-a", pod_uid=workload,
                       container="app", container_kind="container", workload_kind="Deployment",
                       workload_name=workload, restart_count=n, exit_code=2, finished_at=at,
                       recorded_at=at, category="go-panic", fingerprint="f00d", capture=CAPTURED)


def test_retention_by_age_and_by_count_per_workload(database_url: str) -> None:
    store = Store.open(database_url)
    crashes = store.crashes
    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    for n in range(1, 9):  # one a day, the oldest 8 days ago
        assert crashes.record(crash(n, now - timedelta(days=9 - n)), "log") is not None
    assert crashes.record(crash(8, now), "again") is None  # the same restart: ignored
    for n in range(1, 3):
        crashes.record(crash(n, now - timedelta(hours=n), "billing"))
    removed, emptied = crashes.prune("c", now, older_than=now - timedelta(days=5),
                                     per_workload=3, keep_counts_since=now)
    kept = store.history.history("c", "shop", workload=("Deployment", "orders"), limit=100)
    assert [c.restart_count for c in kept] == [8, 7, 6]
    assert (removed, emptied) == (5, 0)
    assert len(store.history.history("c", "shop", workload=("Deployment", "billing"))) == 2
    store.close()


def test_the_drilldown_lists_recorded_crashes_and_uploads_their_logs(
        make_rig, slack: FakeSlack) -> None:
    rig: Rig = make_rig()
    rig.advance(minutes=40)
    rig.advance(hours=1)
    settings = amend(rig.recorder.settings, SLACK_BOT_TOKEN=TOKEN,
                       SLACK_API_URL=slack.base_url)
    services = Services(settings, rig.cluster, rig.store)
    found = investigate(rig.cluster, settings, Question("shop", "orders"), store=rig.store)
    client = build_web_client(settings)
    post_drilldown(client, "CWHY", "1700000000.000100", found, services)
    (reply,) = slack.replies("CWHY", "1700000000.000100")
    text = json.dumps(reply["blocks"], ensure_ascii=False)
    assert "Crashes in the last 24h" in text and "×2 between" in text and "go-panic" in text
    assert "Recorded log of that crash" in text and "hunter2" not in text
    # the one recorded log is the one shown: nothing uploads it again (the one upload is
    # the workload's crash-history chart)
    titles = [f["title"] for call in slack.calls_to("files.completeUploadExternal")
              for f in json.loads(call.args["files"])]
    assert titles == ["shop/orders: restarts per hour, last 14 days"]


def test_installed_on_a_busy_cluster_nothing_alerts_and_the_digest_says_so(
        make_rig, slack: FakeSlack, runtime: Runtime) -> None:
    """Issue 13.4: a workload with 41 restarts when the recorder is installed is the
    install's baseline — its crash is "already crashing at install", never `:new:` — and a
    crash it never showed before is still new."""
    scenario = two_workloads()
    orders = scenario["namespaces"]["shop"]["workloads"][0]["containers"][0]
    orders.update({"restarts": 41, "crash": {**orders["crash"], "first_after": "1m",
                                             "every": "30m"}})
    probe = make_rig(scenario)
    settings = amend(probe.recorder.settings, SLACK_BOT_TOKEN=TOKEN,
                     SLACK_API_URL=slack.base_url, PATROL_CHANNEL="CALERT",
                     ALERT_NEW_CRASHES=True)
    probe.recorder.stop()
    recorder = RunningRecorder(probe.cluster, probe.store, settings,
                               on_new_crash=new_crash_alerter(settings, runtime,
                                                              build_web_client(settings)))
    rig = replace(probe, recorder=recorder)
    try:
        rig.settle()
        patrol(rig.cluster, rig.store, settings, PatrolPlan.digest())
        rig.advance(hours=5)  # orders crashes ten more times, billing gets its first OOM
        run = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest())
        texts = [slack.text_of(m) for m in slack.messages("CALERT")]
        assert [t for t in texts if "shop / orders" in t] == []  # nothing new about it
        assert any("shop / billing" in t and "OOMKilled" in t for t in texts)
        rows = {w.name: w for w in run.digest.workloads}
        (story,) = rows["orders"].stories
        assert (story.known_at_install, story.new, story.restarts) == (True, False, 10)
        assert rows["billing"].stories[0].new
        text = digest_text(run.digest, run.diagnoses)
        assert "already crashing at install" in text
    finally:
        recorder.stop()


class LateRecorder:
    """A recorder view watching now, but only since `since` (it relisted, or started)."""

    def __init__(self, since: datetime) -> None:
        self.since = since

    def watching(self) -> bool:
        return True

    def watching_since(self) -> datetime | None:
        return self.since

    def present(self, pods: object) -> set[tuple[str, str]]:
        return set()


class ViewOnly:
    """The recorder as a RecorderView only (watching, since when, present): it offers no
    counts, so every digest lists its pods — as the daily reconciling list does."""

    def __init__(self, recorder: object) -> None:
        self.recorder = recorder

    def watching(self) -> bool:
        return self.recorder.watching()  # type: ignore[attr-defined]

    def watching_since(self) -> datetime | None:
        return self.recorder.watching_since()  # type: ignore[attr-defined]

    def present(self, pods: object) -> set[tuple[str, str]]:
        return self.recorder.present(pods)  # type: ignore[attr-defined]


def test_a_digest_reconciles_its_listed_restarts_with_the_recorded_ones(
        make_rig, caplog) -> None:
    rig: Rig = make_rig(two_workloads())
    settings = rig.recorder.settings
    view = ViewOnly(rig.recorder.service)  # the listing slots (recorder-counted: elsewhere)
    rig.advance(hours=3)
    patrol(rig.cluster, rig.store, settings, PatrolPlan.digest(), recorder=view)
    for _ in range(16):
        rig.advance(minutes=30)
    caplog.set_level("WARNING", logger="restart_patrol.patrol")
    run = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest(), recorder=view)
    rows = {w.name: w.restarts for w in run.digest.workloads}
    assert rows == {"orders": 4, "billing": 2}  # panics at 4.5-10.5h, OOMs at 4h and 10h
    assert "the pod list counts" not in caplog.text  # list and record agree
    for _ in range(12):  # orders panics at 12.5/14.5/16.5h; billing is OOM-killed at 16h
        rig.advance(minutes=30)
    with rig.store.engine.begin() as conn:  # the recorder missed billing's restart
        conn.execute(sa.delete(crashes).where(crashes.c.workload_name == "billing"))
    run = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest(), recorder=view)
    rows = {w.name: w.restarts for w in run.digest.workloads}
    assert rows == {"orders": 3, "billing": 1}  # the listed count is posted
    warnings = [r.getMessage() for r in caplog.records if "the pod list counts" in
                r.getMessage()]
    assert warnings == ["cluster shop: workload shop/Deployment billing: the pod list "
                        "counts 1 restarts in the window, the recorder 0; the digest posts 1"]
    caplog.clear()
    for _ in range(12):
        rig.advance(minutes=30)
    with rig.store.engine.begin() as conn:
        conn.execute(sa.delete(crashes).where(crashes.c.workload_name == "billing"))
    late = LateRecorder(rig.cluster.server_now())  # not watching since the window began
    patrol(rig.cluster, rig.store, settings, PatrolPlan.digest(), recorder=late)
    assert "the pod list counts" not in caplog.text  # no record to reconcile with
