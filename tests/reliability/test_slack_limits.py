"""Slack's Block Kit limits at scale: a namespace of 5,000 crash-looping pods (bot/sim's
crashloop_scenario: 60 long-named Deployments of 3 crash-looping containers whose logs
stretch every limit, plus a 4,400-pod StatefulSet).

Every message the bot sends — the digest, `/restarts <ns>`, the drill-down thread, the
recorder's new-crash alerts — is checked against Slack's documented limits (written out in
slack_served.py, not imported from the renderer), and must summarise rather than fail:
the hidden rows are counted, the full table goes up as a file, the end of each crash log
(where the crash is) stays visible.

Each test has its own simulated cluster (its own clock), fake Slack and bot: the Bolt app
in-process (requests signed as Slack signs them, slack_sdk over HTTP to the fake), and
for the crash wave `restart-patrol serve` with its recorder. Nothing is shared, so a test
that moves its clock moves only its own."""

from __future__ import annotations

import html
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cluster.client import connect
from bot.schedule.digest_job import DigestJob
from bot.sim.generator import CRASHLOOP_LOGS, crashloop_scenario
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.digests import SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_slack_app import SECRET, InlineExecutor
from tests.integration.test_slack_app import Bot as AppBot
from tests.reliability.conftest import Held
from tests.reliability.slack_served import block_kit_limit_problems, served_bot

NS = "crashloop"
PODS = 5000
WORKLOADS = 61  # 60 Deployments + the fleet StatefulSet
ALERT_BURST = 2
LONG = "payments-settlement-reconciliation-worker-for-the-asia-pacific-region"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    """This test's own 5,000-pod cluster."""
    running = start_sim(tmp_path, crashloop_scenario(PODS, namespace=NS))
    assert running.world.count("pods") == PODS
    yield running
    running.server.stop()


@pytest.fixture
def bot(sim: Sim, slack: FakeSlack, tmp_path: Path) -> Iterator[AppBot]:
    """This test's own bot: the Bolt app in-process over its cluster, store and Slack."""
    settings = sim.settings(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                            SLACK_API_URL=slack.base_url,
                            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
    cluster = connect(settings)
    store = Store.open(settings.store.database_url)
    app = build_app(Services(settings, cluster, store), build_web_client(settings),
                    Access(None), executor=InlineExecutor())
    try:
        yield AppBot(app, slack, sim)
    finally:
        store.close()
        cluster.close()


def posted(slack: FakeSlack) -> list[dict]:
    """Every message the bot tried to post (whatever Slack answered)."""
    return [c.args for c in slack.calls
            if c.method.split(" ")[0] in ("chat.postMessage", "chat.postEphemeral")]


def assert_within_limits(slack: FakeSlack) -> None:
    problems = {m.get("text", "")[:80]: p for m in posted(slack)
                if (p := block_kit_limit_problems(m))}
    assert not problems, problems
    assert all(c.result.get("ok") for c in slack.calls
               if c.method in ("chat.postMessage", "chat.postEphemeral")), [
        c.result for c in slack.calls if not c.result.get("ok")]


def rows_of(message: dict) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b.get("accessory")]


def test_namespace_table_shows_its_cap_and_uploads_the_rest(bot: AppBot, held: Held) -> None:
    assert bot.command(f"{NS} --all", channel="CTABLE").status == 200
    (table,) = [m for m in bot.slack.messages("CTABLE") if "Restart patrol" in m["text"]]
    rows = rows_of(table)
    assert 0 < len(rows) < WORKLOADS
    more = re.search(r"… and (\d+) more workloads with restarts", bot.slack.text_of(table))
    assert more and int(more.group(1)) == WORKLOADS - len(rows), bot.slack.text_of(table)
    for row in rows:  # summarised, not cut: every row still ends with its flags
        assert "_CrashLoopBackOff_" in row, row[-300:]
    done = [c for c in bot.slack.calls_to("files.completeUploadExternal")
            if c.args.get("channel_id") == "CTABLE"]
    files = done[0].args["files"]
    full = bot.slack.uploads[(json.loads(files) if isinstance(files, str) else files)[0]["id"]]
    names = {line.split()[1] for line in full.decode().splitlines()
             if line.startswith(f"{NS} ")}
    assert len(names) == WORKLOADS
    assert_within_limits(bot.slack)
    held("5,000 crash-looping pods: `/restarts <ns> --all`",
         f"{len(rows)} rows + \"… and {WORKLOADS - len(rows)} more\" within Block Kit limits "
         f"(summaries shortened, flags kept); all {WORKLOADS} workloads in the uploaded table")


@pytest.mark.parametrize("number", ["001", "003"])  # between them, every kind of log
def test_drilldown_of_a_long_named_workload_keeps_each_logs_end(
        bot: AppBot, number: str, held: Held) -> None:
    workload = next(w["name"] for w in crashloop_scenario(PODS, namespace=NS)["namespaces"][NS][
        "workloads"] if w["name"].startswith(f"{LONG}-{number}"))
    channel = f"CDRILL{number}"
    bot.command(f"{NS} {workload}", channel=channel)
    (parent,) = bot.top_level(channel)
    thread = bot.slack.replies(channel, parent["ts"])
    assert len(thread) == 9  # 3 pods (the cap) × 3 containers
    uploads = {c.args.get("thread_ts") for c in bot.slack.calls_to(
        "files.completeUploadExternal")}
    told: set[str] = set()  # each distinct log is shown once per thread
    for reply in thread:
        text = bot.slack.text_of(reply)
        container = re.search(r"container `c\d-([a-z-]+)`", text)
        assert container, text[:300]
        name = container.group(1)
        last_line = CRASHLOOP_LOGS[name].rstrip("\n").split("\n")[-1]
        if "the same as in an earlier reply" in text:
            assert name in told, (name, text[-300:])
        elif "uploaded as a file" in text:
            assert parent["ts"] in uploads
        else:  # shown inline: the crash at the end of the log must be there, escaped
            assert html.escape(last_line, quote=False).strip() in text, (name, text[-400:])
        told.add(name)
    assert len(told) == 3  # each of the three containers told
    assert_within_limits(bot.slack)
    held(f"5,000 crash-looping pods: drill-down {number} (long lines, <>&)",
         "3 pods × 3 containers, each reply within limits; each distinct log's last line "
         "shown once, inline or in the uploaded file")


def test_fleet_drilldown_is_capped_at_three_pods(bot: AppBot, held: Held) -> None:
    bot.command(f"{NS} fleet", channel="CFLEET")
    (parent,) = bot.top_level("CFLEET")
    thread = bot.slack.replies("CFLEET", parent["ts"])
    assert len(thread) >= 3
    assert len({re.search(r"\*(fleet-\d+)\*", bot.slack.text_of(m)).group(1)  # type: ignore[union-attr]
                for m in thread}) == 3
    assert_within_limits(bot.slack)
    held("5,000 crash-looping pods: a 4,400-pod StatefulSet drill-down",
         "the 3 pods with the most restarts, within limits")


def test_digest_of_5000_crashlooping_pods(sim: Sim, slack: FakeSlack, tmp_path: Path,
                                          held: Held) -> None:
    settings = sim.settings(SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.base_url,
                            PATROL_CHANNEL="CDIGEST")
    store = Store.open(f"sqlite:///{tmp_path}/digest.db")
    try:
        services = Services(settings, connect(settings), store)
        DigestJob(services.cluster, store, settings, SlackDigestPoster(services, "CDIGEST"),
                  owner="limits-test").run_slot(datetime.now(UTC))
    finally:
        store.close()
    digest = slack.messages("CDIGEST")[-1]
    rows = rows_of(digest)
    assert 0 < len(rows) < WORKLOADS
    more = re.search(r"… and (\d+) more workloads with restarts", slack.text_of(digest))
    assert more and int(more.group(1)) == WORKLOADS - len(rows)
    assert all("_CrashLoopBackOff_" in row for row in rows)
    assert_within_limits(slack)
    held("5,000 crash-looping pods: the daily digest",
         f"{len(rows)} rows + \"… and {WORKLOADS - len(rows)} more\", header of a 148-char "
         "cluster name clipped, within Block Kit limits")


def metric(url: str, name: str) -> float:
    """A metric of the served bot's recorder, from its /metrics (every label set)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


def test_a_crash_wave_is_a_few_alerts_and_a_summary(sim: Sim, slack: FakeSlack,
                                                    tmp_path: Path, held: Held) -> None:
    with served_bot(tmp_path, sim, slack, ALERT_NEW_CRASHES="true", PATROL_CHANNEL="CALERT",
                    ALERT_BURST=str(ALERT_BURST), ALERT_WINDOW="5s",
                    DIGEST_CATCHUP="0") as bot:  # no digest caught up in CALERT
        deadline = time.monotonic() + 60  # the recorder must be watching before the wave
        while (metric(bot.url, "restart_patrol_recorder_watched_pods") < PODS
               or metric(bot.url, "restart_patrol_recorder_pending") > 0):
            # listed, and what was crashing at install described (the baseline's seeds)
            assert time.monotonic() < deadline, "the recorder never listed the pods"
            time.sleep(0.05)
        # Crashing at install is the baseline (never alerted): a release brings a new bug
        # to every Deployment, so the wave is of new crashes.
        with sim.world.lock:
            for i, workload in enumerate(sim.simulation.workloads):
                name = "".join(chr(97 + (i // 26 ** k) % 26) for k in range(3))
                for pod in workload.pods:
                    for c in pod.containers:
                        if c.plan is not None:
                            c.plan.exit_code, c.plan.reason = 2, "Error"
                            c.plan.log = [f"panic: release {name} broke {c.name}",
                                          "", "goroutine 1 [running]:",
                                          f"main.{name}Handler()", "\t/src/main.go:7 +0x1d"]
        sim.world.advance(timedelta(minutes=10))  # every pod of the 60 Deployments crashes
        summary = slack.wait_for(lambda: next(
            (m for m in slack.messages("CALERT") if "more new crash" in m["text"]), None),
            timeout=90)
    alerts = [m for m in slack.messages("CALERT")
              if m["text"].startswith("New crash in") or "more new crash" in m["text"]]
    before = alerts[:alerts.index(summary)]
    assert 0 < len(before) <= ALERT_BURST
    assert all(m["text"].startswith(f"New crash in {NS} / {LONG}") for m in before)
    held_count = int(re.search(r"\*(\d+) more new crash", slack.text_of(summary)).group(1))  # type: ignore[union-attr]
    assert held_count >= 1
    assert_within_limits(slack)
    held("5,000 crash-looping pods: a crash wave under ALERT_NEW_CRASHES",
         f"{len(before)} alerts, then one summary of the next {held_count} (ALERT_BURST "
         f"{ALERT_BURST} per ALERT_WINDOW 5s), all within limits")
