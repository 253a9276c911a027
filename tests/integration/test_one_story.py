"""Issue 13, "one story per crash": each observation a test (sim over HTTP, the flight
recorder running, the Slack app against a fake Slack, events expired by advancing the
sim clock). Every view — the drill-down, `why`, `/restarts <ns>`, `/restarts`, the
digest — tells a crash the way the record does, over a window it states."""
# ruff: noqa: F811 (the make_rig fixture is imported, then requested by name)

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from bot.answers.investigation import Question, investigate
from bot.answers.patrol import PatrolPlan, patrol
from bot.cluster.client import ClusterClient, connect
from bot.cluster.fleet import Fleet
from bot.render.terminal import reports_text
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services, digest_message
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_recorder import Rig, make_rig  # noqa: F401 (fixture)
from tests.integration.test_slack_app import SECRET, Bot, InlineExecutor

OPS = "COPS"
PANIC = ["panic: runtime error: invalid memory address or nil pointer dereference",
         "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8a1f2c]", "",
         "goroutine 7 [running]:", "wave/internal/fan.(*Fan).out(0xc0003a2000)",
         "\t/src/internal/fan/fan.go:42 +0x8c"]


def scenario(cluster: str, namespace: str, *workloads: dict) -> dict:
    return {"cluster": cluster, "nodes": ["n1"],
            "namespaces": {namespace: {"workloads": list(workloads)}}}


def gateway(every: str = "3h") -> dict:
    """A Deployment whose liveness probe kills it (exit 137, reason Error): only the
    events at the crash say it was the probe."""
    return {"kind": "Deployment", "name": "gateway", "replicas": 1, "age": "5d",
            "containers": [{"name": "gateway", "image": "gateway:5.0.3", "memory": "1Gi",
                            "liveness": "http:8080", "restarts": 3,
                            "crash": {"every": every, "first_after": "30m", "exit_code": 137,
                                      "reason": "Error", "kind": "liveness"}}]}


def wave(every: str = "1h", log: list[str] | None = None, replicas: int = 1) -> dict:
    """A Deployment panicking (Go, exit 2) every `every`."""
    return {"kind": "Deployment", "name": "wave", "replicas": replicas, "age": "5d",
            "containers": [{"name": "wave", "image": "wave:2.0", "memory": "256Mi",
                            "liveness": "http:8080",
                            "crash": {"every": every, "first_after": "5m", "exit_code": 2,
                                      "log": log or PANIC}}]}


@contextmanager
def slack_bot(sim: Sim, clusters: list[ClusterClient], store: Store) -> Iterator[Bot]:
    """The Bolt app over these clusters and the recorder's store, against a fake Slack."""
    slack = FakeSlack().start()
    settings = sim.settings(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                            SLACK_API_URL=slack.base_url)
    services = Services(settings, clusters[0], store, fleet=Fleet(clusters))
    app = build_app(services, build_web_client(settings), Access(None),
                    executor=InlineExecutor())
    try:
        yield Bot(app, slack, sim)
    finally:
        slack.stop()
    assert not slack.violations


def thread_text(bot: Bot, channel: str = OPS) -> str:
    """The drill-down: its parent and every reply, as text."""
    (parent,) = bot.top_level(channel)
    return "\n".join(bot.text(m) for m in bot.slack.replies(channel, parent["ts"]))


# ---- 1. a live pod whose events expired ---------------------------------------------
def test_a_drilldown_after_the_events_expired_tells_the_recorded_crash(make_rig) -> None:
    rig: Rig = make_rig(scenario("shop", "shop", gateway()))
    rig.advance(minutes=40)  # the probe kills it at 30m; the recorder keeps the events
    rig.advance(hours=2)  # Kubernetes forgets them after an hour; no crash since
    assert not [e for _, e, _ in rig.sim.world.items("events")
                if "Liveness" in e.get("message", "")]
    with slack_bot(rig.sim, [rig.cluster], rig.store) as bot:
        bot.command("shop gateway")
        text = thread_text(bot)
    assert "probe" in text.split("\n")[2].lower(), text  # the headline: the probe killed it
    assert "as the flight recorder captured it" in text
    assert re.search(r"\*Events at that crash\* \(recorded [\d-]+ [\d:]+ UTC\)\n• Warning "
                     r"\*Unhealthy\*[^\n]*Liveness probe failed", text), text
    assert "×1 at" in text and "probe-kill" in text  # its history agrees with the headline
    assert "category unknown" not in text and "unknown" not in text.split("\n")[2]

    found = investigate(rig.cluster, rig.sim.settings(), Question("shop", "gateway"),
                        store=rig.store)
    (answer,) = found.answers
    assert answer.headline is not None and answer.diagnosis is not None
    assert answer.diagnosis.category == answer.headline.category == "probe-kill"
    why = reports_text(found, 20)
    assert "events at that crash (recorded" in why and "Liveness probe failed" in why


# ---- 2. /restarts says the window it counts, from the record ----------------------------
def test_restarts_counts_the_last_24h_from_the_record_even_right_after_a_patrol(
        make_rig) -> None:
    rig: Rig = make_rig(scenario("shop", "shop", gateway(every="3h")))
    for _ in range(26):  # crashes at 0.5h, 3.5h … 24.5h
        rig.advance(hours=1)
    patrol(rig.cluster, rig.store, rig.sim.settings(), PatrolPlan.adhoc())  # a CLI patrol
    with slack_bot(rig.sim, [rig.cluster], rig.store) as bot:
        bot.command("shop")
        bot.command("shop --since 6h", channel="CSIX")
        bot.command("", channel="CALL")
        (table,) = bot.top_level(OPS)
        (six,) = bot.top_level("CSIX")
        (summary,) = bot.top_level("CALL")
        day, quarter, everything = bot.text(table), bot.text(six), bot.text(summary)
    assert "All quiet" not in day
    assert re.search(r"Window [\d-]+ [\d:]+ UTC → [\d-]+ [\d:]+ UTC \(24h\) · counted from "
                     r"the flight recorder", day), day
    assert "*shop / gateway* (Deployment)  `+8`" in day  # 2.5h … 23.5h after the window began
    assert "×8 between" in day and "probe-kill" in day
    assert "`+2`" in quarter and "(6h)" in quarter
    assert "Last 24h" in everything and "• `shop` +8 in 1 workload (most: gateway)" in everything


def test_restarts_is_quiet_only_when_nothing_was_recorded_in_the_window(make_rig) -> None:
    rig: Rig = make_rig(scenario("shop", "shop", gateway(every="30h")))
    for _ in range(3):
        rig.advance(hours=10)  # one crash at 0.5h, 30 h ago by the end
    with slack_bot(rig.sim, [rig.cluster], rig.store) as bot:
        bot.command("shop")
        bot.command("shop --since 3d", channel="CWEEK")
        quiet, week = bot.text(bot.top_level(OPS)[0]), bot.text(bot.top_level("CWEEK")[0])
    assert "All quiet" in quiet and "counted from the flight recorder" in quiet
    assert "All quiet" not in week and "`+1`" in week


# ---- 3. a digest row's headline is its tally's -----------------------------------------
def test_a_digest_row_headlines_the_crash_it_counts(make_rig) -> None:
    rig: Rig = make_rig(scenario("shop", "shop", gateway(every="3h")))
    settings = rig.sim.settings()
    services = Services(settings, rig.cluster, rig.store)
    patrol(rig.cluster, rig.store, settings, PatrolPlan.digest())
    for _ in range(12):
        rig.advance(hours=1)
    first = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest())
    for _ in range(12):
        rig.advance(hours=1)
    second = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest())
    for run, marks in ((first, "*new*"), (second, "first seen")):
        message = digest_message(run, services)
        (row,) = [b["text"]["text"] for b in message["blocks"] if b.get("accessory")]
        assert "`+4`" in row and "×4 between" in row, row
        line = row.split("\n")[1]  # the one story of the row: its tally and its headline
        assert "exit 137 Error · probe-kill" in line and marks in line, row
        assert "same crash" not in row and "unknown" not in row.lower()
        (w,) = run.digest.workloads
        assert w.headline is not None and w.headline.latest.category == "probe-kill"


# ---- 5. a cluster that is down answers from the record ----------------------------------
def test_an_unreachable_cluster_is_answered_from_the_record_and_named(make_rig,
                                                                      tmp_path) -> None:
    rig: Rig = make_rig(scenario("staging", "wave", wave()))
    rig.advance(hours=3)
    prod = start_sim(tmp_path, scenario("prod", "payments", gateway()))
    rig.sim.server.stop()  # staging is unreachable from now on (a new client: no pooled
    clusters = [connect(prod.settings()), connect(rig.sim.settings())]  # connection)
    try:
        fleet = Fleet(clusters)
        scope = fleet.locate("staging/wave")
        found = investigate(scope.cluster, rig.sim.settings(), Question("wave", "wave"),
                            store=rig.store)
        assert found.unreachable is not None and found.answers
        why = reports_text(found, 20)
        assert re.match(r"cluster staging unreachable — from the record, last seen "
                        r"\d\d:\d\d \(.+\)\n", why), why
        assert "Go panic: runtime error" in why and "×3 between" in why
        with slack_bot(rig.sim, clusters, rig.store) as bot:
            bot.command("staging/wave wave")
            drill = thread_text(bot)
            bot.command("staging/wave", channel="CNS")
            table = bot.text(bot.top_level("CNS")[0])
            bot.command("", channel="CALL")
            summaries = [bot.text(m) for m in bot.top_level("CALL")]
        assert ":warning: cluster staging unreachable — from the record, last seen" in drill
        assert "Go panic: runtime error" in drill
        assert "cluster staging unreachable — from the record" in table
        assert "*wave / wave* (Deployment)  `+3`" in table
        assert any("· staging" in s and "unreachable" in s and "`wave` +3" in s
                   for s in summaries), summaries
        assert any("· prod" in s for s in summaries)  # the other cluster still answers
    finally:
        for cluster in clusters:
            cluster.close()
        prod.server.stop()


# ---- 6. quiet drill-downs ------------------------------------------------------------------
def test_identical_crashes_are_one_line_and_each_log_is_uploaded_once(make_rig) -> None:
    noise = [f"2026/11/29 10:00:{i % 60:02d} INFO batch {i} fanned out to 1200 subscribers"
             for i in range(120)]
    rig: Rig = make_rig(scenario("shop", "shop", wave(every="10m", log=noise + PANIC,
                                                      replicas=2)))
    for _ in range(5):
        rig.advance(minutes=20)  # each pod crashes every 10 minutes: 20 crashes
    with slack_bot(rig.sim, [rig.cluster], rig.store) as bot:
        bot.command("shop wave")
        text = thread_text(bot)
        uploads = [data.decode() for data in bot.slack.uploads.values()
                   if not data.startswith(b"\x89PNG")]  # the logs, not the chart
    lines = [line for line in text.split("\n") if line.startswith("• ×")]
    moment = r"(\d\d-\d\d )?\d\d:\d\d"  # a date when the window crosses midnight
    assert len(lines) == 1 and re.match(rf"• ×20 between {moment} and {moment} · exit 2 "
                                        r"Error · go-panic", lines[0]), text
    assert "in the first reply" in text  # the second pod's reply does not tell it again
    logs = "".join(uploads)
    assert logs.count("panic: runtime error") == 1, [len(u) for u in uploads]
    assert sum(len(u) for u in uploads) < 20_000
    assert json.dumps(uploads).count("batch 119 fanned out") == 1
