"""Honest partial answers: what could not be read is said, what could be read is used.

The simulator refuses resources as RBAC would (`forbidden_resources`,
`forbidden_namespaces`), over real HTTP.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.answers.investigation import Question, investigate
from bot.answers.patrol import PatrolPlan, patrol
from bot.cluster.client import connect
from bot.patrol.history import FAILED
from bot.render.blocks import render_message
from bot.render.digest_json import digest_to_json
from bot.render.terminal import digest_text, reports_text
from bot.slack.posting import Services, digest_message
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.reliability.conftest import Held
from tests.support.recording import RunningRecorder

FORBIDDEN_LOG = "pods/log is forbidden for this service account (403)"


def test_a_403_on_pods_log_still_reads_events_and_keeps_the_probe_kill(sim: Sim,
                                                                        held: Held) -> None:
    sim.server.forbidden_resources.add("pods/log")
    cluster = connect(sim.settings())
    try:
        found = investigate(cluster, sim.settings(), Question("edge", "ingress-gateway",
                                                              max_pods=1))
    finally:
        cluster.close()
    (report,) = found.answers
    assert sim.server.statuses[403] >= 1
    assert report.log_tail is None
    problem = report.not_read("pods/log")
    assert problem is not None and problem.why == "forbidden"
    assert any("Liveness probe failed" in e.message for e in report.events)
    assert report.diagnosis is not None and report.diagnosis.category == "probe-kill"
    text = reports_text(found, 20)
    assert f"previous log: not read — {FORBIDDEN_LOG}" in text
    assert "none kept by the kubelet" not in text
    assert "recent events: none" not in text and "Liveness probe failed" in text
    held("403 on pods/log (why)", "events still read; probe-kill kept; says logs are forbidden")


def test_a_403_on_events_still_reads_the_log(sim: Sim, held: Held) -> None:
    sim.server.forbidden_resources.add("events")
    cluster = connect(sim.settings())
    try:
        found = investigate(cluster, sim.settings(), Question("qld2-production",
                                                              "pod1-deployment", max_pods=1))
    finally:
        cluster.close()
    (report,) = found.answers
    assert report.log_tail is not None and "panic:" in report.log_tail
    assert report.diagnosis is not None and report.diagnosis.category == "go-panic"
    problem = report.not_read("events")
    assert problem is not None and problem.why == "forbidden"
    text = reports_text(found, 20)
    assert "recent events: not read — events are forbidden for this service account" in text
    held("403 on events (why)", "log still read; go-panic kept; says events are forbidden")


def test_a_patrol_whose_diagnoses_lack_logs_says_so_in_every_output(sim: Sim,
                                                                     tmp_path: Path,
                                                                     held: Held) -> None:
    sim.server.forbidden_resources.add("pods/log")
    settings = sim.settings()
    cluster = connect(settings)
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    try:
        run = patrol(cluster, store, settings, PatrolPlan.adhoc())
        blocks = digest_message(run, Services(settings, cluster, store))
    finally:
        store.close()
        cluster.close()
    (problem,) = run.unreadable
    assert (problem.what, problem.why) == ("pods/log", "forbidden")
    assert problem.count == len(run.diagnoses) > 1
    gateway = run.diagnoses[("edge", "Deployment", "ingress-gateway")]
    assert gateway.category == "probe-kill"  # from the events, without the log
    line = f"Not read for {problem.count} diagnoses (previous logs): {FORBIDDEN_LOG}"
    assert line in digest_text(run.digest, run.diagnoses, unreadable=run.unreadable)
    assert line in json.dumps(blocks, ensure_ascii=False)
    as_json = digest_to_json(run.digest, run.diagnoses, [u.to_json() for u in run.unreadable])
    assert as_json["unreadable"] == [{"what": "pods/log", "why": "forbidden",
                                      "detail": problem.detail, "count": problem.count}]
    held("403 on pods/log (patrol)", "digest, Block Kit and --json say the diagnoses lack logs")


def test_a_forbidden_namespace_is_named_and_the_others_are_patrolled(sim: Sim, tmp_path: Path,
                                                                     held: Held) -> None:
    settings = sim.settings()
    cluster = connect(settings)
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    try:
        patrol(cluster, store, settings, PatrolPlan.adhoc(["payments", "qld2-production"]))
        sim.world.advance(timedelta(hours=6))
        sim.server.forbidden_namespaces.add("payments")
        run = patrol(cluster, store, settings, PatrolPlan.adhoc(["payments", "qld2-production"]))
    finally:
        store.close()
        cluster.close()
    assert [u.what for u in run.unreadable] == ["namespace payments"]
    text = digest_text(run.digest, run.diagnoses, unreadable=run.unreadable)
    assert ("Not patrolled: namespace payments is forbidden for this service account (403)"
            in text)
    assert {w.namespace for w in run.digest.workloads} == {"qld2-production"}
    assert not run.digest.vanished  # payments' pods are unread, not gone
    held("403 listing one of the patrolled namespaces",
         "the others patrolled; the digest names it; its pods not called vanished")


def test_the_slack_drill_down_says_the_log_was_not_read(sim: Sim, held: Held) -> None:
    sim.server.forbidden_resources.add("pods/log")
    cluster = connect(sim.settings())
    try:
        found = investigate(cluster, sim.settings(), Question("edge", "ingress-gateway",
                                                              max_pods=1))
    finally:
        cluster.close()
    (report,) = found.answers
    message = render_message("why.blocks.j2", None, r=report, events=report.events[:10],
                             history="", log_inline=None, log_file=False, log_lines=0,
                             recorded_logs=False, unreachable=None, log_repeated=False,
                             window_to=found.window_to, span="24h")
    text = json.dumps(message, ensure_ascii=False)
    assert f"Previous log not read: {FORBIDDEN_LOG}" in text
    assert "keeps no previous log" not in text and "Liveness probe failed" in text
    held("403 on pods/log (Slack drill-down)", "events shown; says the log was not read")


def test_the_recorder_under_a_403_on_pods_log_keeps_events_and_the_probe_kill(
        tmp_path: Path, held: Held) -> None:
    gateway = {"name": "gateway", "image": "gateway:5.0.3", "memory": "1Gi",
               "liveness": "http:8080", "restarts": 3,
               "crash": {"every": "1h", "first_after": "30m", "exit_code": 137,
                         "reason": "Error", "kind": "liveness"}}
    running = start_sim(tmp_path, {"cluster": "shop", "nodes": ["n1"], "namespaces": {
        "edge": {"workloads": [{"kind": "Deployment", "name": "ingress-gateway",
                                "age": "5d", "containers": [gateway]}]}}})
    running.server.forbidden_resources.add("pods/log")
    settings = running.settings()
    cluster = connect(settings)
    store = Store.open(f"sqlite:///{tmp_path}/r.db")
    recorder = RunningRecorder(cluster, store, settings)
    try:
        recorder.settle(running.world.resource_version)
        running.world.advance(timedelta(minutes=40))
        recorder.settle(running.world.resource_version)
        (crash,) = store.history.history("shop", "edge", workload=("Deployment", "ingress-gateway"))
    finally:
        recorder.stop()
        cluster.close()
        store.close()
        running.server.stop()
    assert running.server.statuses[403] >= 1
    assert crash.capture == FAILED and not crash.log_captured  # says the log was not read
    assert any("Liveness probe failed" in e.message for e in crash.events)
    assert crash.category == "probe-kill"
    held("403 on pods/log (recorder)", "events still recorded; probe-kill kept; capture failed")
