"""The Slack app in-process, in the style of bolt-python's own tests.

Each test builds the Bolt app (`build_app`) against its own fake Slack Web API (real HTTP,
tests/fakes/slack_api.py) and its own simulated cluster, signs each request exactly as
Slack does (slack_sdk's SignatureVerifier), and calls `app.dispatch()`. The app runs on an
inline executor, so the work after ack has finished when `dispatch` returns: every
assertion below, including "nothing else was posted", is about a completed request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.cluster.client import connect
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.settings import amend

SECRET = "test-signing-secret"
OPS, ONCALL, NEW = "COPS", "CALL", "CNEW"
RULES = f"{OPS}=qld2-production,payments;{ONCALL}=*;{NEW}=*"


class InlineExecutor(Executor):
    """Runs each task in the caller's thread, before `submit` returns."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@dataclass
class Bot:
    app: App
    slack: FakeSlack
    sim: Sim

    def dispatch(self, body: str, content_type: str, *, timestamp: int | None = None,
                 signature: str | None = None) -> BoltResponse:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sig = signature or SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        return self.app.dispatch(BoltRequest(body=body, headers={
            "content-type": [content_type], "x-slack-request-timestamp": [ts],
            "x-slack-signature": [sig]}))

    def command(self, text: str, channel: str = OPS, **kw: Any) -> BoltResponse:
        body = urlencode({"token": "legacy", "team_id": "T0001", "channel_id": channel,
                          "channel_name": "ops", "user_id": "U123", "user_name": "sre",
                          "command": "/restarts", "text": text, "trigger_id": "1.2.3",
                          "response_url": self.slack.response_url("command"),
                          "api_app_id": "A1"})
        return self.dispatch(body, "application/x-www-form-urlencoded", **kw)

    def click(self, value: str, channel: str, message_ts: str) -> BoltResponse:
        payload = {
            "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U123"},
            "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2.3",
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "message": {"ts": message_ts, "type": "message", "text": "digest"},
            "response_url": self.slack.response_url("click"),
            "actions": [{"action_id": "why", "block_id": "b1", "type": "button",
                         "value": value, "action_ts": "1.1"}],
        }
        return self.dispatch(urlencode({"payload": json.dumps(payload)}),
                             "application/x-www-form-urlencoded")

    def mention(self, text: str, channel: str, thread_ts: str | None) -> BoltResponse:
        event: dict[str, str] = {"type": "app_mention", "user": "U123", "text": text,
                                 "channel": channel, "ts": "1700000999.000100",
                                 "event_ts": "1700000999.000100"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.dispatch(json.dumps({
            "token": "legacy", "team_id": "T0001", "api_app_id": "A1",
            "type": "event_callback", "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()), "event": event,
            "authorizations": [{"user_id": "UBOT", "is_bot": True}]}), "application/json")

    # ---- what the fake Slack saw ----------------------------------------------------
    def top_level(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(channel) if not m.get("thread_ts")]

    def ephemeral(self) -> list[dict[str, Any]]:
        return [r for r in self.slack.responses if r.get("response_type") == "ephemeral"]

    def text(self, message: dict[str, Any]) -> str:
        return self.slack.text_of(message)


@pytest.fixture
def bot(sim: Sim, tmp_path: Path) -> Iterator[Bot]:
    slack = FakeSlack().start()
    settings = sim.settings(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                            SLACK_API_URL=slack.base_url, PATROL_CHANNEL=ONCALL,
                            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db")
    settings = amend(settings, CHANNEL_NAMESPACES={
        channel: tuple(namespaces.split(","))
        for channel, namespaces in (rule.split("=") for rule in RULES.split(";"))})
    cluster = connect(settings)
    store = Store.open(settings.store.database_url)
    app = build_app(Services(settings, cluster, store), build_web_client(settings),
                    Access(settings.slack.channel_namespaces), executor=InlineExecutor())
    try:
        yield Bot(app, slack, sim)
    finally:
        store.close()
        cluster.close()
        slack.stop()
    assert not slack.violations  # every message respected Block Kit's limits


def files_of(call_args: dict[str, Any]) -> list[dict[str, Any]]:
    files = call_args["files"]
    return json.loads(files) if isinstance(files, str) else files


# ---- /restarts ----------------------------------------------------------------------
def test_summary_lists_only_the_namespaces_this_channel_may_see(bot: Bot) -> None:
    response = bot.command("")
    assert (response.status, response.body) == (200, "")  # a bare ack
    (summary,) = bot.top_level(OPS)
    text = bot.text(summary)
    assert "Restarts by namespace · sim-qld2" in text
    assert "`qld2-production`" in text and "`payments`" in text
    assert "`edge`" not in text and "`batch`" not in text
    assert "(most: pod1-deployment)" in text


def test_namespace_table_has_a_why_button_per_row(bot: Bot) -> None:
    bot.command("qld2-production")
    (table,) = bot.top_level(OPS)
    rows = [b for b in table["blocks"] if b.get("accessory", {}).get("action_id") == "why"]
    pod1 = next(b for b in rows if "pod1-deployment" in b["text"]["text"])
    assert "exit 2 Error — Go panic: runtime error" in pod1["text"]["text"]
    assert json.loads(pod1["accessory"]["value"]) == {
        "cl": "sim-qld2", "ns": "qld2-production", "kind": "Deployment", "name": "pod1-deployment"}
    assert not bot.slack.calls_to("files.completeUploadExternal")  # no --all, no file


def test_all_uploads_the_whole_table_as_a_file(bot: Bot) -> None:
    bot.command("payments --all")
    (done,) = bot.slack.calls_to("files.completeUploadExternal")
    (upload,) = files_of(done.args)
    assert upload["title"] == "Restarts in payments (all workloads)"
    table = bot.slack.uploads[upload["id"]].decode()
    assert "NAMESPACE" in table and "ledger-api" in table and "settlement-worker" in table


def test_drilldown_is_a_parent_message_and_the_diagnosis_in_its_thread(bot: Bot) -> None:
    bot.command("qld2-production pod1-deployment")
    (parent,) = bot.top_level(OPS)
    assert "qld2-production/pod1-deployment" in bot.text(parent)
    replies = bot.slack.replies(OPS, parent["ts"])
    assert replies, "the diagnosis goes into the parent's thread"
    text = bot.text(replies[0])
    assert "Go panic: runtime error: invalid memory address or nil pointer dereference" in text
    assert "exit 2" in text and "Go unrecovered panic" in text
    assert "```panic: runtime error: invalid memory address" in text
    assert len(bot.slack.messages(OPS)) == 1 + len(replies)  # nothing outside the thread


def test_a_long_log_goes_up_as_a_file_in_the_thread(bot: Bot) -> None:
    bot.command("payments settlement-worker")
    (parent,) = bot.top_level(OPS)
    reply = next(m for m in bot.slack.replies(OPS, parent["ts"])
                 if "uploaded as a file" in bot.text(m))
    assert "UnknownHostException" in bot.text(reply)
    (done,) = [c for c in bot.slack.calls_to("files.completeUploadExternal")
               if c.args.get("thread_ts") == parent["ts"]]
    (upload,) = files_of(done.args)
    assert b"Caused by: java.net.UnknownHostException" in bot.slack.uploads[upload["id"]]


# ---- buttons and mentions -------------------------------------------------------------
def test_why_button_answers_in_the_digest_thread(bot: Bot) -> None:
    bot.command("qld2-production")
    (table,) = bot.top_level(OPS)
    pod1 = next(b for b in table["blocks"]
                if "pod1-deployment" in b.get("text", {}).get("text", "")
                and b.get("accessory"))
    response = bot.click(pod1["accessory"]["value"], OPS, table["ts"])
    assert (response.status, response.body) == (200, "")
    replies = bot.slack.replies(OPS, table["ts"])
    assert replies and "Go panic" in bot.text(replies[0])
    assert len(bot.top_level(OPS)) == 1


def test_a_forged_button_value_for_a_forbidden_namespace_is_refused(bot: Bot) -> None:
    forged = json.dumps({"ns": "edge", "kind": "DaemonSet", "name": "node-agent"})
    assert bot.click(forged, OPS, "1700000000.000001").status == 200
    (refusal,) = bot.ephemeral()
    assert "may not see namespace `edge`" in json.dumps(refusal)
    assert "`qld2-production`" in json.dumps(refusal)
    assert bot.slack.messages() == []  # nothing about edge was posted anywhere


def test_an_unreadable_button_value_is_explained(bot: Bot) -> None:
    bot.click("not json", OPS, "1700000000.000001")
    (answer,) = bot.ephemeral()
    assert "this button carries no workload I can read" in json.dumps(answer)
    assert bot.slack.messages() == []


def test_a_mention_in_a_thread_answers_in_that_thread(bot: Bot) -> None:
    response = bot.mention("<@UBOT> why qld2-production pod1-deployment", ONCALL,
                           "1699999999.000500")
    assert response.status == 200
    replies = bot.slack.replies(ONCALL, "1699999999.000500")
    assert replies and "Go panic" in bot.text(replies[0])
    assert bot.top_level(ONCALL) == []


def test_a_mention_that_is_not_a_question_gets_an_ephemeral_hint(bot: Bot) -> None:
    bot.mention("<@UBOT> hello there", ONCALL, "1699999999.000500")
    (hint,) = [c for c in bot.slack.calls_to("chat.postEphemeral")]
    assert hint.args["user"] == "U123" and hint.args["channel"] == ONCALL
    assert "@restart-patrol why &lt;namespace&gt;" in bot.text(hint.args)
    assert bot.slack.messages() == []


# ---- refusals and bad input: always an ephemeral answer, never silence --------------
@pytest.mark.parametrize(("text", "needle"), [
    ("help", "/restarts <namespace> <pod|workload|pod-prefix>"),
    ("a b c d e", "too many words"),
    ("qld2-production pod1-deploymnt", "Did you mean `pod1-deployment`"),
    ("qld2-production pod1-deployment nosuchcontainer", "has no container"),
    ("edge node-agent", "may not see namespace `edge`"),
])
def test_bad_input_gets_an_ephemeral_answer(bot: Bot, text: str, needle: str) -> None:
    bot.command(text)
    (answer,) = bot.ephemeral()
    assert needle in json.dumps(answer)
    assert bot.slack.messages() == []


def test_a_channel_without_the_bot_is_told_how_to_invite_it(bot: Bot) -> None:
    bot.slack.not_in_channel.add(NEW)
    bot.command("qld2-production", channel=NEW)
    (answer,) = bot.ephemeral()
    assert "/invite @restart-patrol" in json.dumps(answer)
    assert bot.slack.messages() == []
    assert bot.slack.calls_to("conversations.join") == []  # the bot never joins by itself


def test_forged_and_stale_signatures_are_refused_before_any_work(bot: Bot) -> None:
    forged = bot.command("qld2-production", signature="v0=" + "0" * 64)
    stale = bot.command("qld2-production", timestamp=int(time.time()) - 600)
    assert (forged.status, stale.status) == (401, 401)
    assert bot.slack.messages() == [] and bot.slack.responses == []


def test_rate_limits_are_retried_after_retry_after(bot: Bot) -> None:
    bot.slack.rate_limit["chat.postMessage"] = 1
    bot.command("qld2-production pod3-deployment")
    order = [c.method for c in bot.slack.calls if c.method.startswith("chat.postMessage")]
    assert order[:2] == ["chat.postMessage (429)", "chat.postMessage"]
    (parent,) = bot.top_level(OPS)
    assert "qld2-production/pod3-deployment" in bot.text(parent)
