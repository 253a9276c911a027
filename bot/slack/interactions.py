"""The controls on alerts and the App Home tab: Silence, Acknowledge, Unsilence,
`/restarts silences`, and the Home tab each user sees.

Every click is authorised again, like a command, with the channel→namespace rules
(CHANNEL_NAMESPACES): the alert a click is on is found by the click's channel and
message (signed by Slack), never by what the button carries, and its namespace must be
one that channel may see. What is done is said in the alert's thread (who, what, until
when). Failures are raised as `bot.errors` (or `Forbidden`) and worded by the dispatcher
in `bot.slack.app`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot.errors import ConfigError, UsageError
from bot.patrol.alerting import AlertedWorkload, AlertThread, Silence, silence_length
from bot.render.blocks import render_message
from bot.schedule.daily import digest_trigger
from bot.slack.access import Access
from bot.slack.alerts import AlertThreads
from bot.slack.handlers import Forbidden, Reply
from bot.slack.posting import Services

log = logging.getLogger("restart_patrol.slack")
SILENCE_REASON = "set with the alert's Silence menu"
LIST_LIMIT = 40  # silences listed in one message (Block Kit: 50 blocks)
CRASHING_NOW = timedelta(hours=1)
NEW_SINCE = timedelta(hours=24)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Controls:
    """The work behind each control, after ack: one method per action."""

    def __init__(self, services: Services, access: Access,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.services, self.settings, self.store = services, services.settings, services.store
        self.access, self.clock = access, clock

    def _threads(self, client: WebClient) -> AlertThreads:
        return AlertThreads(self.settings, self.store, client, self.clock)

    def _authorize(self, channel: str, workload: AlertedWorkload) -> None:
        if not self.access.allows(channel, workload.namespace, workload.cluster):
            shown = f"{workload.cluster}/{workload.namespace}" if (
                self.services.clusters.several) else workload.namespace
            raise Forbidden(shown, self.access.describe(channel))

    def _clicked_alert(self, body: dict[str, Any]) -> tuple[str, str, AlertThread]:
        """(user, channel, thread) of a click on an alert, authorised for the channel."""
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        ts = (body.get("container") or {}).get("message_ts") or (
            body.get("message") or {}).get("ts")
        thread = self.store.threads.at(channel, str(ts)) if channel and ts else None
        if thread is None or not user:
            raise UsageError("this button is not on an alert I know (alerts from before "
                             "the bot kept threads have no controls)")
        self._authorize(channel, thread.workload)
        return user, channel, thread

    # ---- alert buttons ------------------------------------------------------------------
    def silence(self, body: dict[str, Any], client: WebClient) -> None:
        """Silence menu: `crash:1h|24h|7d` or `workload:1h|24h|7d`."""
        user, channel, thread = self._clicked_alert(body)
        now = self.clock()
        try:
            action = body["actions"][0]
            scope, _, length = str(action["selected_option"]["value"]).partition(":")
            until = now + silence_length(length)
        except (KeyError, IndexError, TypeError, ValueError):
            raise UsageError("this Silence choice is not one I offer") from None
        if scope not in ("crash", "workload"):
            raise UsageError("this Silence choice is not one I offer")
        silence = self.store.silences.add(
            thread.workload, thread.identity if scope == "crash" else None, by=user,
            now=now, until=until, reason=SILENCE_REASON, channel=channel,
            thread_ts=thread.ts)
        threads = self._threads(client)
        threads.audit(channel, thread.ts, "silenced", user=user, silence=silence)
        threads.refresh(thread)

    def acknowledge(self, body: dict[str, Any], client: WebClient) -> None:
        """Acknowledge: the alert shows "<@U…> is on it" and when; said in its thread."""
        user, channel, thread = self._clicked_alert(body)
        acked = self.store.threads.acknowledge(thread.id, user, self.clock())
        if acked is None:
            raise UsageError("this alert is gone from the record")
        threads = self._threads(client)
        threads.refresh(acked)
        threads.audit(channel, thread.ts, "acknowledged", user=user)

    def unsilence(self, body: dict[str, Any], client: WebClient, reply: Reply) -> None:
        """Unsilence (from `/restarts silences`): lift it now, say so where it was set."""
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        try:
            silence_id = int(body["actions"][0]["value"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise UsageError("this Unsilence button carries no silence I can read") from None
        found = self.store.silences.get(silence_id)
        if found is None:
            raise UsageError(f"there is no silence #{silence_id}")
        self._authorize(channel, found.workload)
        lifted = self.store.silences.lift(silence_id, by=user, now=self.clock(),
                                          reason=f"Unsilence in <#{channel}>")
        if lifted is None:
            raise UsageError(f"silence #{silence_id} has already ended")
        threads = self._threads(client)
        threads.audit(lifted.channel, lifted.thread_ts, "unsilenced", user=user,
                      silence=lifted)
        if lifted.channel and lifted.thread_ts:
            thread = self.store.threads.at(lifted.channel, lifted.thread_ts)
            if thread is not None:
                threads.refresh(thread)
        reply(self.silence_list(channel, lifted=lifted))

    # ---- /restarts silences -----------------------------------------------------------
    def silence_list(self, channel: str, lifted: Silence | None = None) -> dict[str, Any]:
        """The active silences this channel may see, each with an Unsilence button."""
        if self.access.allowed(channel) == ():
            raise Forbidden("any namespace", self.access.describe(channel))
        now = self.clock()
        visible = [s for s in self.store.silences.active(now)
                   if self.access.allows(channel, s.workload.namespace, s.workload.cluster)]
        return render_message("silence_list.blocks.j2", self.settings.templates_dir,
                              silences=visible[:LIST_LIMIT],
                              more=max(len(visible) - LIST_LIMIT, 0), lifted=lifted, now=now,
                              several=self.services.clusters.several)

    # ---- App Home -----------------------------------------------------------------------
    def home(self, user: str, client: WebClient) -> None:
        """Publish the user's Home tab: for the channels they are in (all namespaces when
        CHANNEL_NAMESPACES is not set), what is crashing now, crashes first seen in the
        last 24 h, active silences, and the next digest."""
        channels = None if self.access.open else self._channels_of(user, client)

        def visible(workload: AlertedWorkload) -> bool:
            return channels is None or any(
                self.access.allows(ch, workload.namespace, workload.cluster)
                for ch in channels)

        now = self.clock()
        overview = self.store.overview
        crashing = [c for c in overview.crashing_since(now - CRASHING_NOW)
                    if visible(c.workload)]
        first_seen = [f for f in overview.first_seen_since(now - NEW_SINCE)
                      if visible(f.workload)]
        silences = [s for s in self.store.silences.active(now) if visible(s.workload)]
        message = render_message(
            "home.blocks.j2", self.settings.templates_dir, crashing=crashing[:15],
            more_crashing=max(len(crashing) - 15, 0), first_seen=first_seen[:10],
            more_first_seen=max(len(first_seen) - 10, 0), silences=silences[:10],
            more_silences=max(len(silences) - 10, 0), next_digest=self._next_digest(now),
            channels=channels, now=now, several=self.services.clusters.several)
        client.views_publish(user_id=user, view={"type": "home",
                                                  "blocks": message["blocks"]})

    def _channels_of(self, user: str, client: WebClient) -> list[str]:
        """The configured channels (CHANNEL_NAMESPACES) `user` is a member of."""
        rules = self.access.rules or {}
        member: list[str] = []
        cursor = None
        for _ in range(20):  # 20 pages of 200: enough for anyone
            page = client.users_conversations(
                user=user, types="public_channel,private_channel", exclude_archived=True,
                limit=200, **({"cursor": cursor} if cursor else {}))
            found: list[dict[str, Any]] = page.get("channels") or []
            member += [c["id"] for c in found if c.get("id") in rules]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return member

    def _next_digest(self, now: datetime) -> datetime | None:
        """The next slot of PATROL_SCHEDULE, when any channel gets digests (PATROL_CHANNEL
        or a DIGEST_CHANNELS team: one schedule for all)."""
        if not (self.settings.slack.patrol_channel or self.settings.slack.digest_channels):
            return None
        try:
            moment = digest_trigger(self.settings).get_next_fire_time(None, now)
        except ConfigError:
            return None
        return moment.astimezone(UTC) if moment is not None else None
