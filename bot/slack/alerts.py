"""Real-time alerts (ALERT_NEW_CRASHES=true): one message in PATROL_CHANNEL when a workload
shows a crash fingerprint never seen before for it — never one per restart.

The recorder (bot/cluster) only knows a callback; this module supplies it, so nothing
below bot/slack imports Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError
from bot.patrol.history import CrashRecord
from bot.render.blocks import render_message
from bot.settings import Settings
from bot.slack.client import build_web_client

log = logging.getLogger("restart_patrol.alerts")


def new_crash_message(crash: CrashRecord, settings: Settings) -> dict[str, Any]:
    """The alert for a first-seen crash, from templates/alert.blocks.j2. With several
    clusters (KUBE_CONTEXTS) it names the cluster, and its hint names `cluster/namespace`."""
    several = len(settings.kube_contexts) > 1
    return render_message("alert.blocks.j2", settings.templates_dir, c=crash,
                          scope=f"{crash.cluster}/{crash.namespace}" if several
                          else crash.namespace)


def post_new_crash(client: WebClient, channel: str, crash: CrashRecord,
                   settings: Settings) -> None:
    """Post one alert; a Slack refusal is logged (the recorder must keep recording)."""
    try:
        client.chat_postMessage(channel=channel, **new_crash_message(crash, settings))
    except SlackApiError as exc:
        log.error("could not post the new-crash alert for %s/%s: %s", crash.namespace,
                  crash.workload_name, exc.response.get("error", exc))


def new_crash_alerter(settings: Settings,
                      client: WebClient | None = None) -> Callable[[CrashRecord], None]:
    """The recorder's `on_new_crash` callback posting to PATROL_CHANNEL."""
    channel = settings.patrol_channel
    if not settings.slack_bot_token or not channel:
        raise ConfigError("ALERT_NEW_CRASHES=true needs SLACK_BOT_TOKEN and PATROL_CHANNEL")
    web = client or build_web_client(settings)

    def alert(crash: CrashRecord) -> None:
        post_new_crash(web, channel, crash, settings)

    return alert
