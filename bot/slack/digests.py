"""The digest's Slack side: render it, post it once, find it again.

Each digest carries its slot in the message metadata (`restart_patrol_digest`, with the
cluster and the scheduled time). Posts go through a client without the 5xx/connection
retry handlers, and every unclear answer becomes `SlackUnavailable`: the digest job then
reads `conversations.history` (with metadata) to learn whether Slack kept the message
before posting again. Needs the `channels:history` scope (`groups:history` for private
channels).
"""

from __future__ import annotations

import http.client
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import SlackError, SlackUnavailable
from bot.runner import PatrolRun
from bot.slack.client import build_web_client
from bot.slack.posting import Services, digest_message, notice
from bot.store.slots import SlotKey

log = logging.getLogger("restart_patrol.slack")
EVENT_TYPE = "restart_patrol_digest"
HISTORY_PAGES = 10  # 2,000 messages since the slot was claimed
_TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout",
              "ratelimited", "rate_limited"}


def slot_marker(slot: SlotKey) -> dict[str, Any]:
    """The metadata that identifies a slot's message."""
    return {"event_type": EVENT_TYPE,
            "event_payload": {"cluster": slot.cluster, "slot": slot.scheduled_at.isoformat()}}


def _failure(what: str, exc: SlackApiError) -> SlackError:
    status = getattr(exc.response, "status_code", 200)
    error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
    reason = error or f"HTTP {status}"
    if status >= 500 or status == 429 or error in _TRANSIENT or error is None:
        return SlackUnavailable(f"Slack did not confirm {what} ({reason})")
    return SlackError(f"Slack refused {what} ({reason})")


class SlackDigestPoster:
    """`bot.schedule.digest_job.DigestPoster` for one channel."""

    def __init__(self, services: Services, channel: str,
                 client: WebClient | None = None) -> None:
        self.services = services
        self.channel = channel
        self.client = client or build_web_client(services.settings, replay_safe=False)

    def render(self, run: PatrolRun) -> dict[str, Any]:
        return digest_message(run, self.services)

    def post(self, message: dict[str, Any], slot: SlotKey) -> str:
        try:
            response = self.client.chat_postMessage(channel=self.channel,
                                                    metadata=slot_marker(slot), **message)
        except SlackApiError as exc:
            raise _failure("the digest", exc) from None
        except (OSError, http.client.HTTPException) as exc:
            raise SlackUnavailable(f"Slack did not confirm the digest ({exc})") from None
        return str(response["ts"])

    def find(self, slot: SlotKey) -> str | None:
        """Newest first through the channel history, until this slot's message, an earlier
        slot's digest (ours would be newer), or HISTORY_PAGES pages. No `oldest` bound:
        it would have to come from this host's clock, and Slack's ts are Slack's."""
        wanted = slot_marker(slot)["event_payload"]
        cursor: str | None = None
        try:
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
        except SlackApiError as exc:
            raise _failure("the channel history", exc) from None
        except (OSError, http.client.HTTPException) as exc:
            raise SlackUnavailable(f"Slack did not answer the history read ({exc})") from None
        log.warning("digest %s not found in the last %d history pages; assuming not posted",
                    wanted["slot"], HISTORY_PAGES)
        return None

    def report_failure(self, reason: str) -> None:
        try:
            self.client.chat_postMessage(channel=self.channel, **notice(
                "digest_failed", self.services.settings, message=reason))
        except (SlackApiError, OSError, http.client.HTTPException) as exc:
            log.error("could not report the failure to Slack: %s", exc)
