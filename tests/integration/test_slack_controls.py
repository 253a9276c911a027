"""The alerts' controls in-process (bot/slack/interactions.py): Silence, Acknowledge,
`/restarts silences` with Unsilence, Why? on an alert, and the App Home tab — each as a
request signed exactly as Slack signs it, dispatched to the Bolt app (inline executor),
against the fake Slack Web API and a real store. Clicks are authorised again on click."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import App, BoltResponse

from bot.cluster.client import connect
from bot.patrol.alerting import AlertedWorkload
from bot.patrol.history import CAPTURED, CrashRecord
from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack.access import Access
from bot.slack.alerts import AlertThreads, CrashAlerts
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_slack_app import (
    NEW,
    ONCALL,
    OPS,
    RULES,
    Bot,
    InlineExecutor,
)
from tests.support.settings import amend

CLUSTER = "sim-qld2"


@dataclass
class Rig:
    bot: Bot
    settings: Settings
    store: Store
    slack: FakeSlack
    runtime: Runtime

    def alert(self, namespace: str = "qld2-production", workload: str = "pod1-deployment",
              channel: str = OPS, n: int = 1, fingerprint: str = "f00d") -> dict[str, Any]:
        """Record a new crash and alert it in `channel`; the alert (thread parent)."""
        crash = record(self.store, namespace, workload, n, fingerprint)
        alerts = CrashAlerts(AlertThreads(self.settings, self.store,
                                          build_web_client(self.settings)),
                             lambda _crash: (channel,), self.runtime)
        alerts(crash)
        return [m for m in self.slack.messages(channel) if not m.get("thread_ts")][-1]

    def act(self, action: dict[str, Any], channel: str, message_ts: str, *,
            user: str = "U123", signature: str | None = None) -> BoltResponse:
        payload = {
            "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": user},
            "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2.3",
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "message": {"ts": message_ts, "type": "message", "text": "alert"},
            "response_url": self.slack.response_url("click"),
            "actions": [{"block_id": "alert", "action_ts": "1.1", **action}],
        }
        return self.bot.dispatch(urlencode({"payload": json.dumps(payload)}),
                                 "application/x-www-form-urlencoded", signature=signature)

    def silence(self, choice: str, channel: str, ts: str, **kw: Any) -> BoltResponse:
        return self.act({"action_id": "silence", "type": "static_select",
                         "selected_option": {"value": choice}}, channel, ts, **kw)

    def ack(self, channel: str, ts: str, **kw: Any) -> BoltResponse:
        return self.act({"action_id": "acknowledge", "type": "button", "value": "ack"},
                        channel, ts, **kw)

    def unsilence(self, silence_id: int | str, channel: str) -> BoltResponse:
        return self.act({"action_id": "unsilence", "type": "button",
                         "value": str(silence_id)}, channel, "1700000000.000001")

    def replies(self, channel: str, ts: str) -> list[str]:
        return [self.slack.text_of(m) for m in self.slack.replies(channel, ts)]

    def now_reads(self, channel: str, ts: str) -> str:
        return self.slack.text_of(self.slack.current(channel, ts))

    def ephemeral(self) -> list[str]:
        return [json.dumps(r) for r in self.slack.responses
                if r.get("response_type") == "ephemeral"]


def record(store: Store, namespace: str, workload: str, n: int,
           fingerprint: str = "f00d") -> CrashRecord:
    now = datetime.now(UTC)
    stored = store.crashes.record(CrashRecord(
        cluster=CLUSTER, namespace=namespace, pod_name=f"{workload}-abc12",
        pod_uid=f"uid-{workload}", container="app", container_kind="container",
        workload_kind="Deployment", workload_name=workload, restart_count=n, exit_code=2,
        reason="Error", finished_at=now, recorded_at=now, category="go-panic",
        fingerprint=fingerprint, capture=CAPTURED, summary="Go panic: runtime error",
        signature=("panic: runtime error: invalid memory address",)), "log")
    assert stored is not None
    return stored


def make_app(settings: Settings, store: Store) -> App:
    cluster = connect(settings)
    return build_app(Services(settings, cluster, store), build_web_client(settings),
                     Access(settings.slack.channel_namespaces), executor=InlineExecutor())


@pytest.fixture
def rig(sim: Sim, tmp_path: Path, runtime: Runtime) -> Iterator[Rig]:
    from tests.integration.test_slack_app import SECRET

    slack = FakeSlack().start()
    settings = sim.settings(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                            SLACK_API_URL=slack.base_url, PATROL_CHANNEL=ONCALL,
                            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
    settings = amend(settings, CHANNEL_NAMESPACES={
        channel: tuple(namespaces.split(","))
        for channel, namespaces in (rule.split("=") for rule in RULES.split(";"))})
    store = Store.open(settings.store.database_url)
    try:
        yield Rig(Bot(make_app(settings, store), slack, sim), settings, store, slack, runtime)
    finally:
        store.close()
        slack.stop()
    assert not slack.violations


def test_silence_by_an_allowed_user_is_stored_audited_and_shown(rig: Rig) -> None:
    alert = rig.alert()
    response = rig.silence("crash:24h", OPS, alert["ts"])
    assert (response.status, response.body) == (200, "")
    (silence,) = rig.store.silences.active(datetime.now(UTC))
    assert (silence.created_by, silence.identity, silence.channel) == ("U123", "f00d", OPS)
    assert silence.workload == AlertedWorkload(CLUSTER, "qld2-production", "Deployment",
                                               "pod1-deployment")
    left = silence.until - silence.created_at
    assert left == timedelta(hours=24) and silence.reason
    (audit,) = rig.replies(OPS, alert["ts"])
    assert "<@U123> silenced this crash until" in audit
    assert "silenced by <@U123> until" in rig.now_reads(OPS, alert["ts"])
    assert rig.ephemeral() == []


def test_a_workload_silence_and_its_lifting_by_a_new_crash(rig: Rig) -> None:
    alert = rig.alert()
    rig.silence("workload:7d", OPS, alert["ts"])
    (silence,) = rig.store.silences.active(datetime.now(UTC))
    assert silence.identity is None
    rig.alert(n=2, fingerprint="beef")  # a new crash in the silenced workload
    assert rig.store.silences.active(datetime.now(UTC)) == []
    parents = [m for m in rig.slack.messages(OPS) if not m.get("thread_ts")]
    assert len(parents) == 2  # the new crash's alert went out
    assert any("lifted early: a new crash appeared" in r for r in rig.replies(OPS, alert["ts"]))


def test_acknowledge_shows_who_is_on_it(rig: Rig) -> None:
    alert = rig.alert()
    rig.ack(OPS, alert["ts"], user="U456")
    assert "<@U456> is on it (since " in rig.now_reads(OPS, alert["ts"])
    (audit,) = rig.replies(OPS, alert["ts"])
    assert audit.startswith(":eyes: <@U456> is on it.")
    (thread,) = rig.store.threads.recent(datetime.now(UTC) - timedelta(hours=1))
    assert thread.acked_by == "U456" and thread.acked_at is not None


def test_restarts_silences_lists_them_and_unsilence_lifts_one(rig: Rig) -> None:
    alert = rig.alert()
    rig.silence("crash:1h", OPS, alert["ts"])
    rig.bot.command("silences", channel=OPS)
    (listing,) = rig.ephemeral()
    assert "1 active silence this channel can see" in listing
    assert "qld2-production/pod1-deployment" in listing and '"action_id": "unsilence"' in listing
    (silence,) = rig.store.silences.active(datetime.now(UTC))
    rig.unsilence(silence.id, OPS)
    lifted = rig.store.silences.get(silence.id)
    assert lifted is not None and lifted.lifted_by == "U123" and lifted.lifted_at
    assert "<@U123> lifted the silence of this crash" in rig.replies(OPS, alert["ts"])[-1]
    assert "silenced by" not in rig.now_reads(OPS, alert["ts"])
    after = rig.ephemeral()[-1]
    assert "Lifted silence #" in after and "No active silences" in after
    rig.unsilence(silence.id, OPS)  # twice: explained, nothing else happens
    assert "has already ended" in rig.ephemeral()[-1]


def test_a_forged_click_is_refused_before_any_work(rig: Rig) -> None:
    alert = rig.alert()
    forged = rig.silence("workload:7d", OPS, alert["ts"], signature="v0=" + "0" * 64)
    assert forged.status == 401
    assert rig.ack(OPS, alert["ts"], signature="v0=" + "1" * 64).status == 401
    assert rig.store.silences.active(datetime.now(UTC)) == []
    assert rig.replies(OPS, alert["ts"]) == [] and rig.slack.updates() == []


def test_an_out_of_scope_click_is_refused_and_explained(rig: Rig) -> None:
    # an alert about `edge` in OPS (e.g. CHANNEL_NAMESPACES changed since it was posted)
    alert = rig.alert(namespace="edge", workload="node-agent")
    rig.silence("workload:7d", OPS, alert["ts"])
    rig.ack(OPS, alert["ts"])
    refusals = rig.ephemeral()
    assert len(refusals) == 2 and all("may not see namespace `edge`" in r for r in refusals)
    assert rig.store.silences.active(datetime.now(UTC)) == []
    assert rig.replies(OPS, alert["ts"]) == [] and rig.slack.updates() == []
    # a silence of `edge` set elsewhere cannot be listed or lifted from OPS
    elsewhere = rig.alert(namespace="edge", workload="node-agent", channel=ONCALL, n=2,
                          fingerprint="e0e0")
    rig.silence("crash:1h", ONCALL, elsewhere["ts"])
    (silence,) = rig.store.silences.active(datetime.now(UTC))
    rig.bot.command("silences", channel=OPS)
    assert "No active silences this channel can see" in rig.ephemeral()[-1]
    rig.unsilence(silence.id, OPS)
    assert "may not see namespace `edge`" in rig.ephemeral()[-1]
    assert rig.store.silences.get(silence.id).lifted_at is None  # type: ignore[union-attr]


def test_controls_on_a_message_that_is_no_alert_are_explained(rig: Rig) -> None:
    alert = rig.alert()
    rig.silence("crash:1h", NEW, alert["ts"])  # the right ts in another channel
    rig.silence("crash:2w", OPS, alert["ts"])  # a choice the menu does not offer
    rig.unsilence("drop table", OPS)
    first, second, third = rig.ephemeral()
    assert "not on an alert I know" in first
    assert "not one I offer" in second and "carries no silence I can read" in third
    assert rig.store.silences.active(datetime.now(UTC)) == []


def test_why_on_an_alert_answers_in_its_thread(rig: Rig) -> None:
    alert = rig.alert()
    (actions,) = [b for b in alert["blocks"] if b["type"] == "actions"]
    why = next(e for e in actions["elements"] if e["action_id"] == "why")
    rig.act({"action_id": "why", "type": "button", "value": why["value"]}, OPS, alert["ts"])
    replies = rig.replies(OPS, alert["ts"])
    assert replies and "Go panic" in replies[0]
    assert len([m for m in rig.slack.messages(OPS) if not m.get("thread_ts")]) == 1


def test_silences_survive_a_restart_of_the_bot(rig: Rig) -> None:
    alert = rig.alert()
    rig.silence("crash:7d", OPS, alert["ts"])
    rig.store.close()
    fresh = Store.open(rig.settings.store.database_url)  # a new process, same database
    try:
        rig.bot.app = make_app(rig.settings, fresh)
        rig.bot.command("silences", channel=OPS)
        assert "1 active silence this channel can see" in rig.ephemeral()[-1]
        rig.ack(OPS, alert["ts"])  # the alert is still known
        assert "<@U123> is on it" in rig.now_reads(OPS, alert["ts"])
    finally:
        fresh.close()


def home_opened(rig: Rig, user: str) -> BoltResponse:
    return rig.bot.dispatch(json.dumps({
        "token": "legacy", "team_id": "T0001", "api_app_id": "A1", "type": "event_callback",
        "event_id": f"Ev{time.time_ns()}", "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home",
                  "event_ts": "1700000999.000100"},
        "authorizations": [{"user_id": "UBOT", "is_bot": True}]}), "application/json")


def test_the_home_tab_shows_what_the_users_channels_may_see(rig: Rig) -> None:
    rig.alert()
    rig.alert(namespace="edge", workload="node-agent", channel=ONCALL)
    alert = rig.alert(namespace="payments", workload="ledger-api")
    rig.silence("crash:24h", OPS, alert["ts"])
    rig.slack.members = {"U123": {OPS, "CELSEWHERE"}, "U999": {ONCALL}}
    assert home_opened(rig, "U123").status == 200
    (view,) = rig.slack.published("U123")
    text = json.dumps(view["view"])
    assert "qld2-production/pod1-deployment" in text and "payments/ledger-api" in text
    assert "edge/node-agent" not in text  # OPS may not see edge
    assert "Crashing now" in text and "New crashes" in text and "Next digest" in text
    assert "by <@U123> until" in text  # the silence
    assert "For the namespaces your 1 channel may see" in text
    home_opened(rig, "U999")  # on call: every namespace
    assert "edge/node-agent" in json.dumps(rig.slack.published("U999")[0]["view"])
    home_opened(rig, "UNOBODY")  # in no configured channel: nothing
    empty = json.dumps(rig.slack.published("UNOBODY")[0]["view"])
    assert "Nothing crashed in the last hour" in empty and "pod1-deployment" not in empty


def test_a_silenced_crash_is_still_counted_in_the_table_marked_with_its_silence(
        rig: Rig) -> None:
    def pod_row(name: str) -> str:
        rig.bot.command("qld2-production")
        table = [m for m in rig.slack.messages(OPS) if not m.get("thread_ts")][-1]
        (row,) = [b["text"]["text"] for b in table["blocks"]
                  if f"/ {name}*" in b.get("text", {}).get("text", "")]
        return str(row)

    alert = rig.alert()
    before = pod_row("pod1-deployment")
    rig.silence("crash:24h", OPS, alert["ts"])
    after = pod_row("pod1-deployment")
    counted, _, mark = after.rpartition("\n")
    counted_before, _, link_only = before.rpartition("\n")
    assert link_only.endswith("|:thread: alert thread>")  # the alert's link, no silence
    assert counted == counted_before  # silenced: the same row, the same counts
    assert mark.startswith(":no_bell: _silenced by <@U123> until ")
    assert "(go-panic), still counted_" in mark  # the label of the alerted crash
    link = f"https://fake.slack.com/archives/{OPS}/p{alert['ts'].replace('.', '')}"
    assert mark.endswith(f" · <{link}|:thread: alert thread>")
    other = pod_row("pod2-deployment")
    assert "silenced" not in other and "alert thread" not in other


def post_digest(rig: Rig, channel: str) -> dict[str, Any]:
    """Run a daily-digest slot for `channel` as the scheduler does; the posted digest."""
    from bot.schedule.digest_job import DigestJob
    from bot.slack.digests import EVENT_TYPE, SlackDigestPoster

    cluster = connect(rig.settings)
    try:
        services = Services(rig.settings, cluster, rig.store)
        job = DigestJob(cluster, rig.store, rig.settings,
                        SlackDigestPoster(services, channel), owner="test")
        job.run_slot(datetime.now(UTC).replace(microsecond=0))
    finally:
        cluster.close()
    return [m for m in rig.slack.messages(channel)
            if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE][-1]


def digest_row_blocks(digest: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """`namespace / workload` → (the row's text, the block id of its controls or None)."""
    blocks = digest["blocks"]
    found: dict[str, tuple[str, str | None]] = {}
    for i, b in enumerate(blocks):
        if b["type"] == "section" and "* (" in b["text"]["text"]:
            after = blocks[i + 1] if i + 1 < len(blocks) else {}
            found[b["text"]["text"].split("*")[1]] = (
                b["text"]["text"], after.get("block_id") if after.get("type") == "actions"
                else None)
    return found


def test_the_scheduled_digest_links_each_row_to_its_alert_thread_in_that_channel(
        rig: Rig) -> None:
    alert = rig.alert()  # pod1-deployment's alert thread, in OPS
    rig.alert(workload="pod2-deployment", channel=ONCALL)  # another channel's thread
    digest = post_digest(rig, OPS)
    row = {name: text for name, (text, _) in digest_row_blocks(digest).items()}
    link = f"https://fake.slack.com/archives/{OPS}/p{alert['ts'].replace('.', '')}"
    assert row["qld2-production / pod1-deployment"].endswith(
        f"<{link}|:thread: alert thread>")
    assert "alert thread" not in row["qld2-production / pod2-deployment"]  # not OPS's


def test_silence_and_acknowledge_on_a_digest_row(rig: Rig) -> None:
    digest = post_digest(rig, OPS)
    rows = digest_row_blocks(digest)
    _, block = rows["qld2-production / pod1-deployment"]
    assert block is not None and block.startswith("row:")
    actions = next(b for b in digest["blocks"] if b.get("block_id") == block)
    assert [e["action_id"] for e in actions["elements"]] == ["silence", "acknowledge"]
    posted = rig.store.digest_rows(OPS, digest["ts"])
    assert posted is not None
    (recorded,) = [r for r in posted.rows if r.name == "pod1-deployment"]

    def click(action: dict[str, Any], block_id: str = block, channel: str = OPS,
              ts: str = digest["ts"]) -> BoltResponse:
        payload_message = rig.slack.current(OPS, digest["ts"])
        action = action | {"block_id": block_id}
        payload = {
            "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U123"},
            "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2.3",
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel},
            "message": payload_message | {"ts": ts},
            "response_url": rig.slack.response_url("click"),
            "actions": [{"action_ts": "1.1", **action}]}
        return rig.bot.dispatch(urlencode({"payload": json.dumps(payload)}),
                                "application/x-www-form-urlencoded")

    silence = {"action_id": "silence", "type": "static_select",
               "selected_option": {"value": "crash:24h"}}
    assert click(silence).status == 200
    (stored,) = rig.store.silences.active(datetime.now(UTC))
    assert (stored.workload.name, stored.identity, stored.created_by, stored.channel) == (
        "pod1-deployment", recorded.identity, "U123", OPS)
    assert stored.thread_ts == digest["ts"]  # no alert thread: its audit is the digest's
    (said,) = rig.replies(OPS, digest["ts"])
    assert said.startswith(":no_bell: <@U123> silenced the ") and \
        "*qld2-production/pod1-deployment*" in said
    row_now = digest_row_blocks(rig.slack.current(OPS, digest["ts"]))
    text, _ = row_now["qld2-production / pod1-deployment"]
    assert text.endswith("still counted_") and "silenced by <@U123> until" in text
    assert "silenced" not in row_now["qld2-production / pod2-deployment"][0]

    assert click({"action_id": "acknowledge", "type": "button", "value": "ack"}).status == 200
    assert rig.replies(OPS, digest["ts"])[-1].startswith(
        ":eyes: <@U123> is on it: *qld2-production/pod1-deployment*")
    text, _ = digest_row_blocks(rig.slack.current(OPS, digest["ts"]))[
        "qld2-production / pod1-deployment"]
    assert ":eyes: <@U123> is on it (since " in text
    rig.bot.command("silences", channel=OPS)
    assert "1 active silence this channel can see" in rig.ephemeral()[-1]

    # refused: a block id that is no row of that digest, the digest's ts from another
    # channel, and a row of a namespace this channel may not see
    before = len(rig.ephemeral())
    click(silence, block_id="row:0000")
    click(silence, channel=ONCALL)
    edge = next((b for name, (_, b) in rows.items() if name.startswith("edge /") and b),
                None)
    assert edge is not None  # the catch-all digest carries edge; OPS may not see it
    click(silence, block_id=edge)
    refusals = rig.ephemeral()[before:]
    assert len(refusals) == 3
    assert "not one that digest recorded" in refusals[0]
    assert "not on a digest I posted in this channel" in refusals[1]
    assert "edge" in refusals[2]
    assert len(rig.store.silences.active(datetime.now(UTC))) == 1  # nothing more stored
