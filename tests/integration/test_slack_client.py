"""The Slack clients' deadline (bot/slack/client.py) against the fake Slack over HTTP:
slack_sdk's own retries happen only while they fit before the deadline, a cancel ends
their wait at once, and outside a deadline they work as slack_sdk's do."""

from __future__ import annotations

import threading
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import SlackError, SlackUnavailable
from bot.settings import Settings
from bot.slack.client import bounded_by, build_web_client, slack_failure
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.settings import amend


def client_for(slack: FakeSlack, *, replay_safe: bool) -> WebClient:
    settings = amend(Settings(), SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.base_url)
    return build_web_client(settings, replay_safe=replay_safe)


def test_a_retry_after_past_the_deadline_is_not_waited_for(slack: FakeSlack) -> None:
    slack.rate_limit["chat.postMessage"] = 1
    slack.retry_after = 20  # slack_sdk alone would sleep 20 s, then post
    client = client_for(slack, replay_safe=False)
    with bounded_by(time.monotonic() + 5), pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C1", text="hello")
    assert caught.value.response.status_code == 429
    assert isinstance(slack_failure("the post", caught.value), SlackUnavailable)
    assert [c.method for c in slack.calls] == ["chat.postMessage (429)"]


def test_a_cancel_ends_the_wait_before_a_retry(slack: FakeSlack) -> None:
    slack.rate_limit["chat.postMessage"] = 1
    slack.retry_after = 30  # fits the deadline: the handler waits for it
    cancelled = threading.Event()

    def cancel_once_throttled() -> None:
        slack.wait_for(lambda: slack.calls_to("chat.postMessage (429)"))
        cancelled.set()

    canceller = threading.Thread(target=cancel_once_throttled)
    canceller.start()
    client = client_for(slack, replay_safe=False)
    with bounded_by(time.monotonic() + 60, cancelled), pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="hello")
    canceller.join()
    assert [c.method for c in slack.calls] == ["chat.postMessage (429)"]  # no retry


def test_outside_a_deadline_rate_limits_are_retried(slack: FakeSlack) -> None:
    slack.rate_limit["chat.postMessage"] = 1
    client = client_for(slack, replay_safe=True)
    assert client.chat_postMessage(channel="C1", text="hello")["ok"]
    assert [c.method for c in slack.calls] == ["chat.postMessage (429)", "chat.postMessage"]


def test_refusals_are_permanent_and_lost_answers_transient(slack: FakeSlack) -> None:
    slack.not_in_channel.add("C1")
    client = client_for(slack, replay_safe=False)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C1", text="hello")
    refused = slack_failure("the post", caught.value)
    assert type(refused) is SlackError and "not_in_channel" in str(refused)
    assert isinstance(slack_failure("the post", ConnectionResetError("reset")),
                      SlackUnavailable)
