"""Block Kit templates render to valid messages within Slack's limits, at any size."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.answers.restarts import NamespaceTotals
from bot.diagnosis.engine import Evidence, diagnose
from bot.patrol.history import CrashRecord
from bot.patrol.model import ContainerKind, ContainerObservation, Termination
from bot.patrol.story import ContainerStory, CrashStory
from bot.render.blocks import MAX_BLOCKS, fit_message, render_message, slack_escape
from bot.render.environment import phrase, render
from bot.render.rows import DigestRow, NamespaceTotal
from tests.fakes.slack_api import block_kit_problems

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def row(i: int, summary: str = "Go panic: boom") -> DigestRow:
    return DigestRow(namespace="prod", name=f"api-{i}", kind="Deployment", restarts=i,
                     total=i * 10, exit_code=2, reason="Error", summary=summary,
                     flags=("no probes",), age="46d", unknown_pods=0, fingerprint="f",
                     spark="▁▃█", streak=3, button=json.dumps({"ns": "prod", "name": f"a{i}"}))


def crash(category: str, fingerprint: str | None, summary: str = "Go panic: boom",
          **kw: object) -> CrashRecord:
    return CrashRecord("c1", "prod", "api-1", "uid", "app", "container", "Deployment", "api",
                       restart_count=3, exit_code=2, reason="Error", category=category,
                       fingerprint=fingerprint, summary=summary, image="api:1.2",
                       finished_at=NOW - timedelta(minutes=5), **kw)  # type: ignore[arg-type]


def story(latest: CrashRecord, restarts: int = 1, **kw: object) -> CrashStory:
    return CrashStory(cluster="c1", namespace="prod", workload_kind="Deployment",
                      workload_name="api", container=latest.container,
                      identity=latest.identity, latest=latest, restarts=restarts,
                      crashes=restarts, first_at=NOW - timedelta(hours=3),
                      last_at=latest.finished_at, **kw)  # type: ignore[arg-type]


def recorded_row(i: int) -> DigestRow:
    """A row with the flight recorder's stories (a new one after a rollout)."""
    return replace(row(i), vanished_restarts=1, stories=(
        story(crash("go-panic", "9132f7f37885"), 3, new=True,
              changed_at=NOW - timedelta(hours=4)),
        story(crash("oom-killed", None, "OOM-killed: over 512Mi"), 1,
              seen_since=NOW - timedelta(days=3))))


def answer(**kw: object) -> ContainerStory:
    base: dict[str, object] = {
        "cluster": "c1", "namespace": "prod", "pod": "api-1", "pod_uid": "uid",
        "workload_kind": "Deployment", "workload_name": "api", "container": "app",
        "container_kind": ContainerKind.APP, "live": ContainerObservation("app", 3),
        "diagnosis": None}
    return ContainerStory(**(base | kw))  # type: ignore[arg-type]


def why(r: ContainerStory, **kw: object) -> dict:
    context: dict[str, object] = {
        "r": r, "events": list(r.fresh_events), "history": "", "log_inline": None,
        "log_file": False, "log_lines": 0, "recorded_logs": False, "unreachable": None,
        "log_repeated": False,
        "window_to": NOW, "span": "24h"}
    return render_message("why.blocks.j2", None, **(context | kw))


def digest(rows: list[DigestRow], **kw: object) -> dict:
    context: dict[str, object] = {
        "cluster": "c1", "scope": "prod", "first_run": False, "rows": rows, "more": 0,
        "total_rows": len(rows), "restarts_in_window": 7, "window_from": NOW - timedelta(days=1),
        "window_to": NOW, "span": "1d", "pods_scanned": 98, "vanished": 2, "recorded": True,
        "dropped": 1, "vanished_restarts": 4, "unreadable": [], "source": "snapshots",
        "unreachable": None, "notes": []}
    return render_message("digest.blocks.j2", None, **(context | kw))


@pytest.mark.parametrize("rows", [0, 1, 15, 200])
def test_digest_fits_slack_limits_at_any_size(rows: int) -> None:
    message = digest([recorded_row(i) for i in range(rows)])
    assert block_kit_problems(message) == []
    assert message["text"]
    if rows == 0:
        assert "All quiet" in json.dumps(message)
    if rows == 200:
        assert len(message["blocks"]) == MAX_BLOCKS
        assert "more blocks not shown" in json.dumps(message["blocks"][-1])


def test_digest_first_run_says_baseline() -> None:
    message = digest([row(1)], first_run=True)
    assert "baseline set" in message["blocks"][1]["elements"][0]["text"]


def test_huge_section_text_is_cut_and_code_blocks_stay_closed() -> None:
    log = "x" * 10_000
    message = fit_message([{"type": "section", "text": {"type": "mrkdwn",
                                                        "text": f"```{log}```"}}], "t")
    text = message["blocks"][0]["text"]["text"]
    assert len(text) <= 3000 and text.endswith("```") and text.startswith("```")


def test_header_and_button_value_limits() -> None:
    message = fit_message([
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 400}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x"},
         "accessory": {"type": "button", "value": "v" * 3000}}], "")
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    assert "accessory" not in message["blocks"][1]
    assert message["text"]


def test_log_text_is_escaped_inside_code_blocks() -> None:
    assert slack_escape("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    log = "if x < 0 && y > 1 { panic() }"
    term = Termination(2, "Error", finished_at=NOW - timedelta(minutes=3))
    report = answer(live=ContainerObservation("app", 3, ContainerKind.APP, term),
                    diagnosis=diagnose(Evidence(exit_code=2, log="panic: <nil> & friends\n"
                                                "goroutine 1 [running]:\nmain.main()")),
                    log_tail=log)
    message = why(report, log_inline=log, log_lines=1)
    text = json.dumps(message)
    assert "x &lt; 0 &amp;&amp; y &gt; 1" in text
    assert "panic: &lt;nil&gt; &amp; friends" in text
    assert block_kit_problems(message) == []


def test_why_without_diagnosis_or_log() -> None:
    report = answer(live=ContainerObservation("app", 0), workload_kind="Pod",
                    workload_name="api-1", note="this container has not restarted")
    message = why(report)
    assert "keeps no previous log" in json.dumps(message)
    assert block_kit_problems(message) == []


@pytest.mark.parametrize("kind", ["help", "forbidden", "not_found", "error", "usage",
                                  "not_in_channel", "looking", "slack_refused",
                                  "unexpected"])
def test_every_notice_renders(kind: str) -> None:
    message = render_message("notice.blocks.j2", None, kind=kind, namespace="edge",
                             allowed="`prod`", message="m <x>", suggestions="`prod`",
                             target="api", error="invalid_blocks")
    assert message["text"] and block_kit_problems(message) == []
    assert "<x>" not in json.dumps(message)  # user-supplied text is escaped


def test_phrases_come_from_the_templates() -> None:
    assert phrase("table_file_title", None, namespace="prod") == \
        "Restarts in prod (all workloads)"
    assert phrase("listing_pods", None, count=12345) == "listing pods… 12,345"
    assert phrase("sim_serving", None, url="http://x", kubeconfig=None) == \
        "simulated cluster at http://x"


def test_summary_renders_its_window_and_source() -> None:
    view = NamespaceTotals("c1", NOW - timedelta(days=1), NOW, "record",
                           (NamespaceTotal("prod", 3, 2, "api"),))
    message = render_message("summary.blocks.j2", None, view=view, span="24h")
    assert block_kit_problems(message) == []
    text = json.dumps(message, ensure_ascii=False)
    assert "• `prod` +3 in 2 workloads (most: api)" in text
    assert ("Last 24h, 2026-11-27 09:00 UTC → 2026-11-28 09:00 UTC · counted from the flight "
            "recorder") in text
    quiet = render_message("summary.blocks.j2", None, span="6h", view=replace(
        view, source="snapshots", totals=(), window_from=NOW - timedelta(hours=6)))
    text = json.dumps(quiet, ensure_ascii=False)
    assert "counted from snapshots (the flight recorder is not running)" in text
    assert "All quiet: nothing restarted in the last 6h" in text


def test_digest_rows_render_the_same_numbers_in_the_terminal_and_in_slack() -> None:
    rows = [row(3), DigestRow(namespace="prod", name="fresh", kind="Pod", restarts=None,
                              total=4, exit_code=None, reason=None, summary="", flags=(),
                              age=None, unknown_pods=0, fingerprint=None)]
    slack = json.dumps(digest(rows), ensure_ascii=False)
    assert "`+3` · 30 total · age 46d" in slack and "exit 2 Error — Go panic: boom" in slack
    assert "`lifetime` · 4 total" in slack and "no exit recorded" in slack
    table = render("digest.txt.j2", None, cluster="c1", pods_scanned=9, workloads_scanned=2,
                   first_run=False, window_from=NOW - timedelta(days=1), window_to=NOW,
                   span="1d", restarts_in_window=3, shown_total=2, rows=rows, more=0,
                   vanished=[], notes=[], recorded=False, dropped=0, vanished_restarts=0,
                   unreadable=[], source="snapshots", unreachable=None)
    header, first, _, second = table.split("\n\n")[1].splitlines()[:4]
    assert header.split() == ["NAMESPACE", "WORKLOAD", "KIND", "RESTARTS", "TOTAL", "EXIT",
                              "AGE", "FLAGS"]
    assert first.split() == ["prod", "api-3", "Deployment", "+3", "30", "2", "Error", "46d",
                             "no", "probes"]
    assert second.split() == ["prod", "fresh", "Pod", "—", "4", "—", "—", "—"]
    assert first.index("+3") == header.index("RESTARTS") == second.index("—")


def test_events_are_listed_escaped_with_counts() -> None:
    from bot.diagnosis.engine import EventNote

    events = (EventNote("Warning", "BackOff", "Back-off <restarting> " + "x" * 400, 7),
              EventNote("Normal", "Pulled", "Container image already present", 1))
    message = why(answer(events=events))
    section = next(b["text"]["text"] for b in message["blocks"]
                   if b.get("text", {}).get("text", "").startswith("*Recent events*"))
    first, second = section.split("\n")[1:]
    assert first.startswith("• Warning *BackOff* ×7: Back-off &lt;restarting&gt; xxx")
    assert first.endswith("…") and len(first) < 340
    assert second == "• Normal *Pulled*: Container image already present"


def test_a_row_with_stories_tells_each_crash_with_its_own_tally_and_no_streak() -> None:
    at_install = story(crash("go-panic", "bbbbbb222222", "Go panic: other"), 2,
                       known_at_install=True, seen_since=NOW - timedelta(days=9))
    recorded = replace(recorded_row(2), stories=(*recorded_row(2).stories, at_install),
                       streak=4)
    section = next(b["text"]["text"] for b in digest([recorded])["blocks"]
                   if b.get("accessory"))
    header, new, chronic, installed, gone = section.split("\n")
    assert header.startswith("*prod / api-2* (Deployment)  `+2` · 20 total · age 46d  ▁▃█ · "
                             "_no probes_")
    assert new == ("• ×3 between 06:00 and 08:55 · exit 2 Error · go-panic · *new* — "
                   "Go panic: boom (_first seen 60m after image api:1.2 rolled out_)")
    assert chronic == ("• ×1 at 08:55 · exit 2 Error · OOMKilled · first seen "
                       "3d ago — OOM-killed: over 512Mi")
    assert installed.startswith("• ×2 between 06:00 and 08:55 · exit 2 Error · go-panic · "
                                "_already crashing at install_ — Go panic: other")
    assert gone == "_1 of these by pods gone since_"
    assert "same crash" not in section  # the streak speaks only when nothing is recorded
    table = render("digest.txt.j2", None, cluster="c1", pods_scanned=9, workloads_scanned=2,
                   first_run=False, window_from=NOW - timedelta(days=1), window_to=NOW,
                   span="1d", restarts_in_window=2, shown_total=1, rows=[recorded], more=0,
                   vanished=[], notes=[], recorded=True, dropped=0, vanished_restarts=1,
                   unreadable=[], source="record", unreachable=None)
    assert "counted from the flight recorder" in table
    assert "  ↳ ×3 between 06:00 and 08:55 · exit 2 Error · go-panic · NEW — Go panic" in table
    assert "· already crashing at install — Go panic: other" in table
