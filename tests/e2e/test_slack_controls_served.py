"""The served bot (`restart-patrol serve`, HTTP mode) with ALERT_NEW_CRASHES against
bot/sim with its clock moving and the fake Slack: a crash opens a thread, its repeats
update the parent and reply in the thread; signed clicks silence and acknowledge it; a
forged click and an out-of-scope click are refused; the silence outlives a restart of
the bot and is lifted with Unsilence from `/restarts silences`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.conftest import start_sim
from tests.e2e.test_slack_served import Bot, served_bot
from tests.fakes.slack_api import FakeSlack
from tests.integration.test_recorder import shop

ALERTS, PAYMENTS = "CALERT", "CPAY"
ENV = {"PATROL_CHANNEL": ALERTS, "ALERT_NEW_CRASHES": "true", "ALERT_THREAD_POLL": "0.2s",
       "CHANNEL_NAMESPACES": f"{ALERTS}=shop;{PAYMENTS}=payments", "KUBE_CONTEXTS": "",
       "PATROL_SCHEDULE": "0 9 * * *"}


def act(bot: Bot, action: dict[str, Any], channel: str, ts: str, key: str,
        signature: str | None = None) -> int:
    payload = {"type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U123"},
               "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2.3",
               "channel": {"id": channel},
               "container": {"type": "message", "message_ts": ts, "channel_id": channel},
               "message": {"ts": ts, "type": "message", "text": "alert"},
               "response_url": bot.slack.response_url(key),
               "actions": [{"block_id": "alert", "action_ts": "1.1", **action}]}
    kw = {"signature": signature} if signature else {}
    return bot.post(urlencode({"payload": json.dumps(payload)}),
                    "application/x-www-form-urlencoded", **kw)[0]


def silence(choice: str) -> dict[str, Any]:
    return {"action_id": "silence", "type": "static_select",
            "selected_option": {"value": choice}}


def wait(slack: FakeSlack, predicate: Callable[[], Any]) -> Any:
    return slack.wait_for(predicate, timeout=30)


def test_threads_and_controls_of_a_served_bot(tmp_path: Path) -> None:
    scenario = shop()  # never restarted before the bot was installed: its crash is new
    scenario["namespaces"]["shop"]["workloads"][0]["containers"][0]["restarts"] = 0
    sim = start_sim(tmp_path, scenario)
    slack = FakeSlack().start()
    try:
        with served_bot(tmp_path, sim, slack, **ENV) as bot:
            wait(slack, lambda: any("watch=true" in r for r in list(sim.server.requests)))
            sim.world.advance(timedelta(hours=1))
            parent = wait(slack, lambda: next(
                (m for m in slack.messages(ALERTS) if not m.get("thread_ts")), None))
            assert "New crash in shop / orders" in slack.text_of(parent)
            ts = parent["ts"]

            def replies() -> list[str]:
                return [slack.text_of(m) for m in slack.replies(ALERTS, ts)]

            def reads() -> str:
                return slack.text_of(slack.current(ALERTS, ts))

            sim.world.advance(timedelta(hours=1))  # a repeat: replied at once
            wait(slack, lambda: "×2*" in reads())
            wait(slack, replies)
            # another within the hour of that reply (the bot's clock): the parent counts
            # it, no second reply (one after the other, so the reply's count is known:
            # two restarts a moment apart may be counted together or one by one)
            sim.world.advance(timedelta(hours=1))
            wait(slack, lambda: "×3*" in reads())
            time.sleep(1)  # more polls: still one reply this hour
            (repeat,) = replies()
            assert "×1 more since" in repeat and "×2 since the alert" in repeat

            assert act(bot, silence("workload:7d"), ALERTS, ts, "forged",
                       signature="v0=" + "0" * 64) == 401
            assert act(bot, silence("workload:7d"), ALERTS, ts, "s") == 200
            wait(slack, lambda: "silenced by <@U123> until" in reads())
            assert "<@U123> silenced the whole workload *shop/orders*" in replies()[-1]
            assert act(bot, {"action_id": "acknowledge", "type": "button", "value": "ack"},
                       ALERTS, ts, "a") == 200
            wait(slack, lambda: "<@U123> is on it (since" in reads())
            sim.world.advance(timedelta(hours=1))  # silenced: counted, not replied
            wait(slack, lambda: "×4*" in reads())
            assert len(replies()) == 3  # the repeat, the silence, the acknowledgement
            assert len([m for m in slack.messages(ALERTS) if not m.get("thread_ts")]) == 1

        with served_bot(tmp_path, sim, slack, **ENV) as bot:  # a restart, same database
            bot.command("silences", channel=PAYMENTS, key="pay")
            listing = wait(slack, lambda: next((r for r in slack.responses
                                                if "active silence" in json.dumps(r)), None))
            assert "No active silences this channel can see" in json.dumps(listing)
            bot.command("silences", channel=ALERTS, key="list")
            listing = wait(slack, lambda: next(
                (r for r in slack.responses if "1 active silence" in json.dumps(r)), None))
            (button,) = [b["accessory"] for b in listing["blocks"] if b.get("accessory")]
            unsilence = {"action_id": "unsilence", "type": "button", "value": button["value"]}
            assert act(bot, unsilence, PAYMENTS, "1700000000.000001", "out") == 200
            refused = wait(slack, lambda: next(
                (r for r in slack.responses if "may not see namespace" in json.dumps(r)), None))
            assert "`shop`" in json.dumps(refused)
            assert act(bot, unsilence, ALERTS, "1700000000.000001", "lift") == 200
            wait(slack, lambda: any("<@U123> lifted the silence of *shop/orders*" in r
                                    for r in replies()))
            wait(slack, lambda: "silenced by" not in reads())
            sim.world.advance(timedelta(hours=1))  # the thread is followed after a restart
            wait(slack, lambda: "×5*" in reads())
    finally:
        slack.stop()
        sim.server.stop()
    assert not slack.violations
