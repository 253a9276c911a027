"""Smoke tier: the served bot (`restart-patrol serve`, HTTP mode) as a process against
bot/sim and the fake Slack, driven with requests signed exactly as Slack signs them.

What the bot says to each command, click and mention is tested in-process, request by
request, in tests/integration/test_slack_app.py; this file checks the process around it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.processes import diagnosable, stop

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
        self.output: str | None = None

    def stop(self, within: float, signum: signal.Signals = signal.SIGTERM) -> str:
        """Stop the process (see tests/support/processes.stop); its whole output, once."""
        if self.output is None:
            self.output = stop(self.proc, within, signum=signum)
        return self.output

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


@contextmanager
def served_bot(tmp: Path, sim: Sim, slack: FakeSlack, **env_extra: str) -> Iterator[Bot]:
    """`restart-patrol serve` until the block ends; fails the test if it logged a traceback."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PATROL_"))}
    env.update({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.base_url, "PORT": str(port),
                "KUBECONFIG": str(sim.kubeconfig), "DATABASE_URL": f"sqlite:///{tmp}/bot.db",
                **env_extra})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=diagnosable(env),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bot = Bot(port, slack, proc)
    deadline = time.monotonic() + 60
    healthy = False
    while time.monotonic() < deadline and proc.poll() is None and not healthy:
        try:
            with urllib.request.urlopen(f"{bot.url}/healthz", timeout=1) as resp:
                healthy = resp.status == 200
        except OSError:
            time.sleep(0.05)
    if not healthy and proc.poll() is None:
        proc.kill()
        raise AssertionError(f"serve never answered /healthz in 60 s: {proc.communicate()[0]}")
    try:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.communicate()[0]}")
        yield bot
    finally:
        out = bot.stop(30)
        assert "Traceback" not in out, out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Bot, Sim]]:
    sim = start_sim(tmp_path)
    slack = FakeSlack().start()
    try:
        with served_bot(tmp_path, sim, slack, PATROL_CHANNEL=ONCALL, CHANNEL_NAMESPACES=(
                f"{OPS}=qld2-production,payments;{ONCALL}=*;{NEW}=*")) as bot:
            yield bot, sim
    finally:
        slack.stop()
        sim.server.stop()
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


def test_a_signed_slash_command_is_acked_then_answered_in_a_thread(served: tuple[Bot, Sim]
                                                                   ) -> None:
    bot, _ = served
    assert bot.command("qld2-production", signature="v0=" + "0" * 64)[0] == 401
    status, body, _ = bot.command("qld2-production pod1-deployment")
    assert (status, body) == (200, "")  # a bare ack: the answer comes through the Web API
    parent = wait_message(bot, OPS, "qld2-production/pod1-deployment", top_level=True)
    reply = wait_message(bot, OPS, "Go panic", thread_ts=parent["ts"])
    assert "Go panic: runtime error: invalid memory address or nil pointer dereference" in \
        bot.slack.text_of(reply)


def test_health_readiness_and_metrics(served: tuple[Bot, Sim]) -> None:
    bot, _ = served
    for path, needle in (("/healthz", "ok"), ("/readyz", "ready"),
                         ("/metrics", "restart_patrol_http_requests")):
        with urllib.request.urlopen(bot.url + path, timeout=5) as resp:
            assert resp.status == 200 and needle in resp.read().decode()
