"""Slack's Block Kit limits at scale: a namespace of 5,000 crash-looping pods (bot/sim's
crashloop_scenario: 60 long-named Deployments of 3 crash-looping containers whose logs
stretch every limit, plus a 4,400-pod StatefulSet) against the served bot.

Every message the bot sends — the digest, `/restarts <ns>`, the drill-down thread, the
recorder's new-crash alerts — is checked against Slack's documented limits (written out in
slack_served.py, not imported from the renderer), and must summarise rather than fail:
the hidden rows are counted, the full table goes up as a file, the end of each crash log
(where the crash is) stays visible."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cluster.client import connect
from bot.schedule.digest_job import DigestJob
from bot.sim.generator import CRASHLOOP_LOGS, crashloop_scenario
from bot.slack.digests import SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.reliability.conftest import Held
from tests.reliability.slack_served import Bot, block_kit_limit_problems, served_bot
from tests.support.settings import amend

NS = "crashloop"
PODS = 5000
WORKLOADS = 61  # 60 Deployments + the fleet StatefulSet
ALERT_BURST = 2
LONG = "payments-settlement-reconciliation-worker-for-the-asia-pacific-region"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bot, Sim, Path]]:
    tmp = tmp_path_factory.mktemp("limits")
    sim = start_sim(tmp, crashloop_scenario(PODS, namespace=NS))
    assert sim.world.count("pods") == PODS
    slack = FakeSlack().start()
    try:
        with served_bot(tmp, sim, slack, ALERT_NEW_CRASHES="true", PATROL_CHANNEL="CALERT",
                        ALERT_BURST=str(ALERT_BURST), ALERT_WINDOW="5s",
                        DIGEST_CATCHUP="0") as bot:  # no digest caught up in CALERT
            yield bot, sim, tmp
    finally:
        slack.stop()
        sim.server.stop()
    assert not slack.violations


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


def test_namespace_table_shows_its_cap_and_uploads_the_rest(
        served: tuple[Bot, Sim, Path], held: Held) -> None:
    bot, _, _ = served
    assert bot.command(f"{NS} --all", channel="CTABLE")[0] == 200
    table = bot.slack.wait_for(lambda: next(
        (m for m in bot.slack.messages("CTABLE") if "Restart patrol" in m["text"]), None))
    rows = rows_of(table)
    assert 0 < len(rows) < WORKLOADS
    more = re.search(r"… and (\d+) more workloads with restarts", bot.slack.text_of(table))
    assert more and int(more.group(1)) == WORKLOADS - len(rows), bot.slack.text_of(table)
    for row in rows:  # summarised, not cut: every row still ends with its flags
        assert "_CrashLoopBackOff_" in row, row[-300:]
    done = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to(
        "files.completeUploadExternal") if c.args.get("channel_id") == "CTABLE"])
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
        served: tuple[Bot, Sim, Path], number: str, held: Held) -> None:
    bot, _, _ = served
    workload = next(w["name"] for w in crashloop_scenario(PODS, namespace=NS)["namespaces"][NS][
        "workloads"] if w["name"].startswith(f"{LONG}-{number}"))
    channel = f"CDRILL{number}"
    bot.command(f"{NS} {workload}", channel=channel)
    parent = bot.slack.wait_for(lambda: next(
        (m for m in bot.slack.messages(channel) if not m.get("thread_ts")), None))

    def replies() -> list[dict] | None:
        found = bot.slack.replies(channel, parent["ts"])
        return found if len(found) >= 9 else None  # 3 pods (the cap) × 3 containers

    thread = bot.slack.wait_for(replies)
    uploads = {c.args.get("thread_ts") for c in bot.slack.calls_to(
        "files.completeUploadExternal")}
    for reply in thread:
        text = bot.slack.text_of(reply)
        container = re.search(r"container `c\d-([a-z-]+)`", text)
        assert container, text[:300]
        last_line = CRASHLOOP_LOGS[container.group(1)].rstrip("\n").split("\n")[-1]
        if "uploaded as a file" in text:
            assert parent["ts"] in uploads
        else:  # shown inline: the crash at the end of the log must be there, escaped
            assert html.escape(last_line, quote=False).strip() in text, (
                container.group(1), text[-400:])
    assert_within_limits(bot.slack)
    held(f"5,000 crash-looping pods: drill-down {number} (long lines, <>&)",
         "3 pods × 3 containers, each reply within limits; each log's last line shown "
         "inline or in the uploaded file")


def test_fleet_drilldown_is_capped_at_three_pods(served: tuple[Bot, Sim, Path],
                                                held: Held) -> None:
    bot, _, _ = served
    bot.command(f"{NS} fleet", channel="CFLEET")
    parent = bot.slack.wait_for(lambda: next(
        (m for m in bot.slack.messages("CFLEET") if not m.get("thread_ts")), None))
    thread = bot.slack.wait_for(lambda: (bot.slack.replies("CFLEET", parent["ts"])
                                         if len(bot.slack.replies("CFLEET", parent["ts"])) >= 3
                                         else None))
    assert len({re.search(r"\*(fleet-\d+)\*", bot.slack.text_of(m)).group(1)  # type: ignore[union-attr]
                for m in thread}) == 3
    assert_within_limits(bot.slack)
    held("5,000 crash-looping pods: a 4,400-pod StatefulSet drill-down",
         "the 3 pods with the most restarts, within limits")


def test_digest_of_5000_crashlooping_pods(served: tuple[Bot, Sim, Path], held: Held) -> None:
    bot, sim, tmp = served
    settings = amend(sim.settings(), SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=bot.slack.base_url,
                       PATROL_CHANNEL="CDIGEST")
    store = Store.open(f"sqlite:///{tmp}/digest.db")
    try:
        services = Services(settings, connect(settings), store)
        DigestJob(services.cluster, store, settings, SlackDigestPoster(services, "CDIGEST"),
                  owner="limits-test").run_slot(datetime.now(UTC))
    finally:
        store.close()
    digest = bot.slack.messages("CDIGEST")[-1]
    rows = rows_of(digest)
    assert 0 < len(rows) < WORKLOADS
    more = re.search(r"… and (\d+) more workloads with restarts", bot.slack.text_of(digest))
    assert more and int(more.group(1)) == WORKLOADS - len(rows)
    assert all("_CrashLoopBackOff_" in row for row in rows)
    assert_within_limits(bot.slack)
    held("5,000 crash-looping pods: the daily digest",
         f"{len(rows)} rows + \"… and {WORKLOADS - len(rows)} more\", header of a 148-char "
         "cluster name clipped, within Block Kit limits")


def test_a_crash_wave_is_a_few_alerts_and_a_summary(served: tuple[Bot, Sim, Path],
                                                    held: Held) -> None:
    bot, sim, _ = served
    deadline = time.monotonic() + 60  # the recorder must be watching before the wave
    while not any("watch=" in r for r in list(sim.server.requests)):
        assert time.monotonic() < deadline, "the recorder never started watching"
        time.sleep(0.05)
    sim.world.advance(timedelta(minutes=10))  # every pod of the 60 Deployments crashes
    summary = bot.slack.wait_for(lambda: next(
        (m for m in bot.slack.messages("CALERT") if "more new crash" in m["text"]), None),
        timeout=90)
    alerts = [m for m in bot.slack.messages("CALERT")
              if m["text"].startswith("New crash in") or "more new crash" in m["text"]]
    before = alerts[:alerts.index(summary)]
    assert 0 < len(before) <= ALERT_BURST
    assert all(m["text"].startswith(f"New crash in {NS} / {LONG}") for m in before)
    held_count = int(re.search(r"\*(\d+) more new crash", bot.slack.text_of(summary)).group(1))  # type: ignore[union-attr]
    assert held_count >= 1
    assert_within_limits(bot.slack)
    held("5,000 crash-looping pods: a crash wave under ALERT_NEW_CRASHES",
         f"{len(before)} alerts, then one summary of the next {held_count} (ALERT_BURST "
         f"{ALERT_BURST} per ALERT_WINDOW 5s), all within limits")
