"""Real-time alerts (ALERT_NEW_CRASHES=true): one message in PATROL_CHANNEL when a workload
shows a crash fingerprint never seen before for it — never one per restart. A crash wave
(a bad rollout across a namespace) is capped: ALERT_BURST alerts per ALERT_WINDOW, the
rest held and posted as one summary when the window ends.

The recorder (bot/cluster) only knows a callback; this module supplies it, so nothing
below bot/slack imports Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError
from bot.patrol.durations import human_duration
from bot.patrol.history import CrashRecord
from bot.render.blocks import render_message
from bot.settings import Settings
from bot.slack.client import build_web_client

log = logging.getLogger("restart_patrol.alerts")


def new_crash_message(crash: CrashRecord, settings: Settings) -> dict[str, Any]:
    """The alert for a first-seen crash, from templates/alert.blocks.j2. With several
    clusters (KUBE_CONTEXTS) it names the cluster, and its hint names `cluster/namespace`."""
    several = len(settings.cluster.contexts) > 1
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


def held_crashes_message(crashes: Sequence[CrashRecord], settings: Settings
                         ) -> dict[str, Any]:
    """The summary of alerts held past ALERT_BURST, from templates/alerts_held.blocks.j2."""
    return render_message("alerts_held.blocks.j2", settings.templates_dir, crashes=crashes,
                          burst=settings.slack.alert_burst,
                          window=human_duration(settings.slack.alert_window),
                          several=len(settings.cluster.contexts) > 1)


class AlertGate:
    """At most `burst` alerts per `window` seconds go out one by one; later ones are held
    and go out together, as one summary, when the window ends. Thread-safe (the
    recorder's capture workers call it); the summary is posted from a timer thread."""

    def __init__(self, post_one: Callable[[CrashRecord], None],
                 post_held: Callable[[list[CrashRecord]], None], burst: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.post_one, self.post_held = post_one, post_held
        self.burst, self.window, self.clock = burst, window, clock
        self._sent: list[float] = []
        self._held: list[CrashRecord] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __call__(self, crash: CrashRecord) -> None:
        with self._lock:
            now = self.clock()
            self._sent = [t for t in self._sent if now - t < self.window]
            alone = len(self._sent) < self.burst and not self._held
            if alone:
                self._sent.append(now)
            else:
                self._held.append(crash)
                if self._timer is None:
                    wait = self.window - (now - self._sent[0]) if self._sent else self.window
                    self._timer = threading.Timer(max(wait, 0.0), self.flush)
                    self._timer.daemon = True
                    self._timer.start()
        if alone:
            self.post_one(crash)

    def flush(self) -> None:
        """Post what is held (the timer calls this when the window ends)."""
        with self._lock:
            held, self._held, self._timer = self._held, [], None
            if held:
                self._sent.append(self.clock())
        if held:
            self.post_held(held)


def new_crash_alerter(settings: Settings,
                      client: WebClient | None = None) -> Callable[[CrashRecord], None]:
    """The recorder's `on_new_crash` callback posting to PATROL_CHANNEL, capped by
    ALERT_BURST per ALERT_WINDOW."""
    channel = settings.slack.patrol_channel
    if not settings.slack.bot_token or not channel:
        raise ConfigError("ALERT_NEW_CRASHES=true needs SLACK_BOT_TOKEN and PATROL_CHANNEL")
    web = client or build_web_client(settings)

    def alert(crash: CrashRecord) -> None:
        post_new_crash(web, channel, crash, settings)

    def summary(crashes: list[CrashRecord]) -> None:
        try:
            web.chat_postMessage(channel=channel, **held_crashes_message(crashes, settings))
        except SlackApiError as exc:
            log.error("could not post the summary of %d new crashes: %s", len(crashes),
                      exc.response.get("error", exc))

    return AlertGate(alert, summary, settings.slack.alert_burst, settings.slack.alert_window)
