"""The digest's Slack side: render it, post it once, find it again, say it failed.

Each digest carries its slot in the message metadata (`restart_patrol_digest`, with the
cluster and the scheduled time). Posts go through the no-blind-replay client (no
5xx/connection retries), and every unclear answer becomes `SlackUnavailable`: the digest
job then reads `conversations.history` (with metadata) to learn whether Slack kept the
message before posting again. Every call runs inside the slot's deadline
(`bot.slack.client.bounded_by`): nothing is sent after it, not even by slack_sdk's own
retries. Needs the `channels:history` scope (`groups:history` for private channels).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from slack_sdk import WebClient

from bot.answers.patrol import PatrolRun
from bot.render.blocks import render_message
from bot.schedule.deadline import Deadline
from bot.slack.alerts import Permalink, slack_permalink
from bot.slack.client import SLACK_FAILURES, bounded_by, build_web_client, slack_failure
from bot.slack.posting import Services, digest_message
from bot.store.slots import SlotKey

log = logging.getLogger("restart_patrol.slack")
EVENT_TYPE = "restart_patrol_digest"
HISTORY_PAGES = 10  # 2,000 messages since the slot was claimed
LINK_BUDGET = 5.0  # seconds of chat.getPermalink per digest (alert-thread links)


def slot_marker(slot: SlotKey) -> dict[str, Any]:
    """The metadata that identifies a slot's message."""
    return {"event_type": EVENT_TYPE,
            "event_payload": {"cluster": slot.cluster, "slot": slot.scheduled_at.isoformat()}}


def failure_message(cluster: str, slot: datetime, reason: str | None,
                    templates_dir: str | None) -> dict[str, Any]:
    """What the channel is told when a slot gives up (templates/digest_failed.blocks.j2)."""
    return render_message("digest_failed.blocks.j2", templates_dir, cluster=cluster,
                          slot=slot, reason=reason)


def _budgeted(link: Permalink, seconds: float) -> Permalink:
    """`link` until `seconds` have been spent in it, then None for the rest."""
    spent = 0.0

    def bounded(channel: str, ts: str) -> str | None:
        nonlocal spent
        if spent >= seconds:
            return None
        began = time.monotonic()
        try:
            return link(channel, ts)
        finally:
            spent += time.monotonic() - began
    return bounded


class SlackDigestPoster:
    """`bot.schedule.digest_job.DigestPoster` for one channel. `client` is the digest kind
    of client (`build_web_client(settings, replay_safe=False)`), shared by every channel."""

    def __init__(self, services: Services, channel: str,
                 client: WebClient | None = None, *, scope: str | None = None) -> None:
        self.services = services
        self.channel = channel
        self.scope = scope  # a team channel's share (DIGEST_CHANNELS), named in the title
        self.client = client or build_web_client(services.settings, replay_safe=False)

    def render(self, run: PatrolRun) -> dict[str, Any]:
        """The digest for this channel, each row with Silence… and Acknowledge; rows
        link to their alert threads in this channel (chat.getPermalink, at most
        LINK_BUDGET seconds in all: a slow Slack costs the links, not the slot)."""
        return digest_message(run, self.services, scope=self.scope, channel=self.channel,
                              permalink=_budgeted(slack_permalink(self.client), LINK_BUDGET),
                              controls=True)

    def post(self, message: dict[str, Any], slot: SlotKey, deadline: Deadline) -> str:
        try:
            with bounded_by(deadline.at, deadline.cancelled):
                response = self.client.chat_postMessage(
                    channel=self.channel, metadata=slot_marker(slot), **message)
        except SLACK_FAILURES as exc:
            raise slack_failure("the digest", exc) from None
        return str(response["ts"])

    def find(self, slot: SlotKey, deadline: Deadline) -> str | None:
        """Newest first through the channel history, until this slot's message, an earlier
        slot's digest (ours would be newer), or HISTORY_PAGES pages. No `oldest` bound:
        it would have to come from this host's clock, and Slack's ts are Slack's."""
        wanted = slot_marker(slot)["event_payload"]
        cursor: str | None = None
        try:
            with bounded_by(deadline.at, deadline.cancelled):
                for _page in range(HISTORY_PAGES):
                    response = self.client.conversations_history(
                        channel=self.channel, limit=200, include_all_metadata=True,
                        cursor=cursor)
                    for message in response.get("messages") or []:
                        metadata = message.get("metadata") or {}
                        payload = metadata.get("event_payload") or {}
                        if (metadata.get("event_type") != EVENT_TYPE
                                or payload.get("cluster") != slot.cluster):
                            continue
                        if payload == wanted:
                            return str(message["ts"])
                        if str(payload.get("slot", "")) < wanted["slot"]:
                            return None
                    cursor = (response.get("response_metadata") or {}).get("next_cursor")
                    if not cursor:
                        return None
        except SLACK_FAILURES as exc:
            raise slack_failure("the channel history", exc) from None
        log.warning("digest %s not found in the last %d history pages; assuming not posted",
                    wanted["slot"], HISTORY_PAGES)
        return None

    def report_failure(self, slot: SlotKey, reason: str | None, deadline: Deadline) -> None:
        """Best effort, within the deadline: tell the channel this slot was not posted."""
        message = failure_message(slot.cluster, slot.scheduled_at, reason,
                                  self.services.settings.templates_dir)
        try:
            with bounded_by(deadline.at, deadline.cancelled):
                self.client.chat_postMessage(channel=self.channel, **message)
        except SLACK_FAILURES as exc:
            log.error("could not tell %s that the digest of %s was not posted: %s",
                      self.channel, slot.scheduled_at.isoformat(),
                      slack_failure("the failure notice", exc))
