"""The served bot (`restart-patrol serve`, HTTP mode) against bot/sim and the fake Slack,
driven with requests signed exactly as Slack signs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack

SECRET = "test-signing-secret"
OPS, ONCALL, NEW = "COPS", "CALL", "CNEW"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bot:
    def __init__(self, port: int, slack: FakeSlack, proc: subprocess.Popen[str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.slack = slack
        self.proc = proc

    def post(self, body: str, content_type: str, *, timestamp: int | None = None,
             signature: str | None = None) -> tuple[int, str, float]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sig = signature or SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        request = urllib.request.Request(
            f"{self.url}/slack/events", data=body.encode(), method="POST",
            headers={"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                     "X-Slack-Signature": sig})
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode(), time.monotonic() - start
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode(), time.monotonic() - start

    def command(self, text: str, channel: str = OPS, key: str = "r", **kw: int | str
                ) -> tuple[int, str, float]:
        body = urlencode({"token": "legacy", "team_id": "T0001", "channel_id": channel,
                          "channel_name": "ops", "user_id": "U123", "user_name": "sre",
                          "command": "/restarts", "text": text, "trigger_id": "1.2.3",
                          "response_url": self.slack.response_url(key),
                          "api_app_id": "A1"})
        return self.post(body, "application/x-www-form-urlencoded", **kw)  # type: ignore[arg-type]

    def click(self, value: str, channel: str, message_ts: str) -> tuple[int, str, float]:
        payload = {
            "type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U123"},
            "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2.3",
            "channel": {"id": channel}, "container": {"type": "message",
                                                      "message_ts": message_ts,
                                                      "channel_id": channel},
            "message": {"ts": message_ts, "type": "message", "text": "digest"},
            "response_url": self.slack.response_url("click"),
            "actions": [{"action_id": "why", "block_id": "b1", "type": "button",
                         "value": value, "action_ts": "1.1"}],
        }
        return self.post(urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded")

    def mention(self, text: str, channel: str, thread_ts: str | None) -> tuple[int, str, float]:
        event = {"type": "app_mention", "user": "U123", "text": text, "channel": channel,
                 "ts": "1700000999.000100", "event_ts": "1700000999.000100"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        body = json.dumps({"token": "legacy", "team_id": "T0001", "api_app_id": "A1",
                           "type": "event_callback", "event_id": f"Ev{time.time_ns()}",
                           "event_time": int(time.time()), "event": event,
                           "authorizations": [{"user_id": "UBOT", "is_bot": True}]})
        return self.post(body, "application/json")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bot, Sim]]:
    tmp = tmp_path_factory.mktemp("served")
    sim = start_sim(tmp)
    slack = FakeSlack().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PATROL_"))}
    env.update({
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.base_url, "PORT": str(port), "KUBECONFIG": str(sim.kubeconfig),
        "DATABASE_URL": f"sqlite:///{tmp}/bot.db", "PATROL_CHANNEL": ONCALL,
        "CHANNEL_NAMESPACES": f"{OPS}=qld2-production,payments;{ONCALL}=*;{NEW}=*",
    })
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bot = Bot(port, slack, proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{bot.url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    if proc.poll() is not None:
        pytest.fail(f"serve exited: {proc.communicate()[0]}")
    try:
        yield bot, sim
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
        slack.stop()
        sim.server.stop()
        assert "Traceback" not in out, out
    assert not slack.violations


def wait_message(bot: Bot, channel: str, needle: str, *, thread_ts: str | None = None,
                 top_level: bool = False) -> dict:
    def find() -> dict | None:
        for m in bot.slack.messages(channel):
            if top_level and m.get("thread_ts"):
                continue
            if thread_ts is not None and m.get("thread_ts") != thread_ts:
                continue
            if needle in bot.slack.text_of(m):
                return m
        return None
    return bot.slack.wait_for(find)


def wait_response(bot: Bot, needle: str) -> dict:
    return bot.slack.wait_for(lambda: next(
        (r for r in bot.slack.responses if needle in json.dumps(r)), None))


def test_drilldown_posts_a_parent_then_the_go_panic_in_its_thread(served: tuple[Bot, Sim]
                                                                   ) -> None:
    bot, _ = served
    status, body, _ = bot.command("qld2-production pod1-deployment")
    assert (status, body) == (200, "")  # a bare ack: the answer comes through the Web API
    parent = wait_message(bot, OPS, "qld2-production/pod1-deployment", top_level=True)
    reply = wait_message(bot, OPS, "Go panic", thread_ts=parent["ts"])
    text = bot.slack.text_of(reply)
    assert "Go panic: runtime error: invalid memory address or nil pointer dereference" in text
    assert "exit 2" in text and "Go unrecovered panic" in text
    assert "```panic: runtime error: invalid memory address" in text


def test_namespace_table_then_button_answers_in_the_digest_thread(served: tuple[Bot, Sim]
                                                                   ) -> None:
    bot, _ = served
    bot.command("qld2-production")
    table = wait_message(bot, OPS, "Restart patrol", top_level=True)
    blocks = table["blocks"]
    rows = [b for b in blocks if b.get("accessory", {}).get("action_id") == "why"]
    pod1 = next(b for b in rows if "pod1-deployment" in b["text"]["text"])
    assert "exit 2" in pod1["text"]["text"]
    status, body, _ = bot.click(pod1["accessory"]["value"], OPS, table["ts"])
    assert (status, body) == (200, "")
    wait_message(bot, OPS, "Go panic", thread_ts=table["ts"])


def test_long_logs_go_up_as_a_file_in_the_thread(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.command("payments settlement-worker")
    parent = wait_message(bot, OPS, "payments/settlement-worker", top_level=True)
    reply = wait_message(bot, OPS, "uploaded as a file", thread_ts=parent["ts"])
    assert "UnknownHostException" in bot.slack.text_of(reply)
    done = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to(
        "files.completeUploadExternal") if c.args.get("thread_ts") == parent["ts"]])
    file_id = json.loads(done[0].args["files"])[0]["id"] if isinstance(
        done[0].args["files"], str) else done[0].args["files"][0]["id"]
    assert b"Caused by: java.net.UnknownHostException" in bot.slack.uploads[file_id]


def test_forged_and_stale_signatures_are_refused(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    before = len(bot.slack.calls)
    assert bot.command("qld2-production", signature="v0=" + "0" * 64)[0] == 401
    assert bot.command("qld2-production", timestamp=int(time.time()) - 600)[0] == 401
    time.sleep(0.5)
    assert len(bot.slack.calls) == before


def test_forbidden_namespace_is_refused_naming_the_allowed_ones(served: tuple[Bot, Sim]
                                                                 ) -> None:
    bot, _ = served
    bot.command("edge node-agent", key="forbidden")
    refusal = wait_response(bot, "may not see namespace")
    assert refusal["response_type"] == "ephemeral"
    assert "`qld2-production`" in json.dumps(refusal) and "`payments`" in json.dumps(refusal)


def test_a_forged_button_value_is_refused(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    forged = json.dumps({"ns": "edge", "kind": "DaemonSet", "name": "node-agent"})
    bot.click(forged, OPS, "1700000000.000001")
    refusal = wait_response(bot, "`edge`")
    assert refusal["response_type"] == "ephemeral"
    assert not bot.slack.replies(OPS, "1700000000.000001")


def test_unknown_pod_gets_did_you_mean(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.command("qld2-production pod1-deploymnt")
    answer = wait_response(bot, "Did you mean")
    assert "pod1-deployment" in json.dumps(answer) and answer["response_type"] == "ephemeral"


def test_help_and_usage(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.command("help")
    assert wait_response(bot, "/restarts <namespace> <pod|workload|pod-prefix>")
    bot.command("a b c d e")
    assert wait_response(bot, "too many words")


def test_summary_lists_only_the_channels_namespaces(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.command("")
    summary = wait_message(bot, OPS, "Restarts by namespace", top_level=True)
    text = bot.slack.text_of(summary)
    assert "`qld2-production`" in text and "`payments`" in text
    assert "`edge`" not in text and "`batch`" not in text


def test_mention_in_a_thread_answers_in_that_thread(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    status, _, _ = bot.mention("<@UBOT> why qld2-production pod1-deployment", ONCALL,
                                  "1699999999.000500")
    assert status == 200
    wait_message(bot, ONCALL, "Go panic", thread_ts="1699999999.000500")


def test_not_in_channel_tells_how_to_invite(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.slack.not_in_channel.add(NEW)
    bot.command("qld2-production", channel=NEW)
    answer = wait_response(bot, "/invite @restart-patrol")
    assert answer["response_type"] == "ephemeral"


def test_rate_limits_are_retried_after_retry_after(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.slack.rate_limit["chat.postMessage"] = 1
    bot.command("qld2-production pod3-deployment")
    wait_message(bot, OPS, "qld2-production/pod3-deployment", top_level=True)
    limited = bot.slack.calls_to("chat.postMessage (429)")
    assert limited
    order = [c.method for c in bot.slack.calls
             if "pod3-deployment" in c.args.get("text", "")
             and c.method.startswith("chat.postMessage")]
    assert order[:2] == ["chat.postMessage (429)", "chat.postMessage"]


def test_health_readiness_and_metrics(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    for path, needle in (("/healthz", "ok"), ("/readyz", "ready"),
                         ("/metrics", "restart_patrol_http_requests")):
        with urllib.request.urlopen(bot.url + path, timeout=5) as resp:
            assert resp.status == 200 and needle in resp.read().decode()


def test_all_uploads_the_full_table_as_a_file(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    bot.command("payments --all")
    done = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to(
        "files.completeUploadExternal") if c.args.get("channel_id") == OPS
        and "Restarts in payments" in json.dumps(c.args.get("files"))])
    files = done[0].args["files"]
    file_id = (json.loads(files) if isinstance(files, str) else files)[0]["id"]
    table = bot.slack.uploads[file_id].decode()
    assert "NAMESPACE" in table and "ledger-api" in table and "settlement-worker" in table
