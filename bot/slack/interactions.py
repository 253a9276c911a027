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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot.errors import ConfigError, UsageError
from bot.patrol.alerting import AlertedWorkload, AlertThread, Silence, silence_length
from bot.render.blocks import render_message
from bot.render.environment import phrase
from bot.render.rows import row_block_id
from bot.schedule.daily import digest_trigger
from bot.slack.access import Access
from bot.slack.alerts import AlertThreads
from bot.slack.client import SLACK_FAILURES, slack_failure
from bot.slack.handlers import Forbidden, Reply
from bot.slack.posting import Services

log = logging.getLogger("restart_patrol.slack")
SILENCE_REASON = "set with the alert's Silence menu"
ROW_REASON = "set from the digest's Silence menu"
ROW_BLOCK = "row:"  # the block id prefix of a digest row's controls (bot.render.rows)
LIST_LIMIT = 40  # silences listed in one message (Block Kit: 50 blocks)
CRASHING_NOW = timedelta(hours=1)
NEW_SINCE = timedelta(hours=24)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClickedRow:
    """A digest row a control was clicked on: its workload, its headline crash's
    identity and category, and that crash's alert thread in the digest's channel."""

    workload: AlertedWorkload
    identity: str
    category: str
    thread: AlertThread | None

    @property
    def label(self) -> str:
        """The crash as the row names it: its category."""
        return self.category


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

    def _clicked_row(self, body: dict[str, Any]) -> tuple[str, str, str, ClickedRow]:
        """(user, channel, digest ts, row) of a click on a digest row's controls: the
        digest is found by the click's channel and message, the row among the rows that
        digest recorded (by the block id), and its namespace authorised for the channel."""
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        ts = str((body.get("container") or {}).get("message_ts") or (
            body.get("message") or {}).get("ts") or "")
        block = str(((body.get("actions") or [{}])[0]).get("block_id", ""))
        posted = self.store.digest_rows(channel, ts) if channel and ts else None
        if posted is None or not user:
            raise UsageError("this button is not on a digest I posted in this channel")
        row = next((r for r in posted.rows
                    if row_block_id(r.namespace, r.kind, r.name) == block), None)
        if row is None:
            raise UsageError("this row is not one that digest recorded a crash for")
        workload = AlertedWorkload(posted.cluster, row.namespace, row.kind, row.name)
        self._authorize(channel, workload)
        thread = next((t for t in self.store.threads.in_workload(
            posted.cluster, row.namespace, row.kind, row.name)
            if t.channel == channel and t.identity == row.identity), None)
        return user, channel, ts, ClickedRow(workload, row.identity, row.category, thread)

    def _mark_row(self, body: dict[str, Any], client: WebClient, line: str) -> None:
        """Add `line` under the clicked row of the digest as Slack holds it (chat.update):
        the digest is not re-rendered — its counts stay those it was posted with."""
        message = body.get("message") or {}
        blocks: list[dict[str, Any]] = list(message.get("blocks") or [])
        block = str(body["actions"][0].get("block_id", ""))
        at = next((i for i, b in enumerate(blocks) if b.get("block_id") == block), None)
        if not at or blocks[at - 1].get("type") != "section":
            return  # not the shape we posted: the thread reply says it all
        row = dict(blocks[at - 1])
        row["text"] = dict(row["text"], text=f"{row['text']['text']}\n{line}")
        blocks[at - 1] = row
        try:
            client.chat_update(channel=str(body["channel"]["id"]), ts=str(message["ts"]),
                               blocks=blocks, text=str(message.get("text") or "digest"))
        except SLACK_FAILURES as exc:
            log.error("could not mark the digest row: %s", slack_failure("the update", exc))

    # ---- alert and digest-row buttons ----------------------------------------------------
    def silence(self, body: dict[str, Any], client: WebClient) -> None:
        """Silence menu: `crash:1h|24h|7d` or `workload:1h|24h|7d`, on an alert or on a
        digest row (block id `row:…`)."""
        now = self.clock()
        try:
            action = body["actions"][0]
            scope, _, length = str(action["selected_option"]["value"]).partition(":")
            until = now + silence_length(length)
        except (KeyError, IndexError, TypeError, ValueError):
            raise UsageError("this Silence choice is not one I offer") from None
        if scope not in ("crash", "workload"):
            raise UsageError("this Silence choice is not one I offer")
        if str(action.get("block_id", "")).startswith(ROW_BLOCK):
            self._silence_row(body, client, scope, until)
            return
        user, channel, thread = self._clicked_alert(body)
        silence = self.store.silences.add(
            thread.workload, thread.identity if scope == "crash" else None, by=user,
            now=now, until=until, reason=SILENCE_REASON, channel=channel,
            thread_ts=thread.ts)
        threads = self._threads(client)
        threads.audit(channel, thread.ts, "silenced", user=user, silence=silence)
        threads.refresh(thread)

    def _silence_row(self, body: dict[str, Any], client: WebClient, scope: str,
                     until: datetime) -> None:
        """Silence from a digest row: stored like an alert's (its audit goes to the
        crash's alert thread in this channel when it has one, else to the digest's
        thread), said in the digest's thread and marked under the row."""
        user, channel, ts, row = self._clicked_row(body)
        now = self.clock()
        identity = row.identity if scope == "crash" else None
        silence = self.store.silences.add(
            row.workload, identity, by=user, now=now, until=until, reason=ROW_REASON,
            channel=channel, thread_ts=row.thread.ts if row.thread else ts)
        threads = self._threads(client)
        threads.audit(channel, ts, "silenced", user=user, silence=silence, row=row)
        if row.thread is not None:
            threads.audit(channel, row.thread.ts, "silenced", user=user, silence=silence)
            threads.refresh(row.thread)
        what = row.label if identity else "the whole workload"
        self._mark_row(body, client, phrase("row_silenced", self.settings.templates_dir,
                                            user=user, until=until, what=what))

    def acknowledge(self, body: dict[str, Any], client: WebClient) -> None:
        """Acknowledge: the alert (or digest row) shows "<@U…> is on it" and when; said
        in its thread. On a digest row whose crash has an alert thread in this channel,
        that alert is acknowledged too."""
        if str(((body.get("actions") or [{}])[0]).get("block_id", "")).startswith(ROW_BLOCK):
            self._acknowledge_row(body, client)
            return
        user, channel, thread = self._clicked_alert(body)
        acked = self.store.threads.acknowledge(thread.id, user, self.clock())
        if acked is None:
            raise UsageError("this alert is gone from the record")
        threads = self._threads(client)
        threads.refresh(acked)
        threads.audit(channel, thread.ts, "acknowledged", user=user)

    def _acknowledge_row(self, body: dict[str, Any], client: WebClient) -> None:
        user, channel, ts, row = self._clicked_row(body)
        now = self.clock()
        threads = self._threads(client)
        if row.thread is not None:
            acked = self.store.threads.acknowledge(row.thread.id, user, now)
            if acked is not None:
                threads.refresh(acked)
                threads.audit(channel, row.thread.ts, "acknowledged", user=user)
        threads.audit(channel, ts, "acknowledged", user=user, row=row)
        self._mark_row(body, client, phrase("row_acknowledged", self.settings.templates_dir,
                                            user=user, since=now))

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
