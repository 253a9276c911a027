"""The Slack Web API client, built once from Settings with slack_sdk's retry handlers
(rate limits honour Retry-After; 5xx and connection errors retry with backoff)."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.settings import Settings


def build_web_client(settings: Settings, *, replay_safe: bool = True) -> WebClient:
    """WebClient(base_url=SLACK_API_URL) with rate-limit, server-error and connection
    retries on. `replay_safe=False` keeps only the rate-limit retry (a 429 was not
    accepted): a 5xx or a dropped connection may follow an accepted post, and replaying it
    would post twice — the digest reconciles those through the channel history instead."""
    base_url = settings.slack.api_url if settings.slack.api_url.endswith("/") else (
        settings.slack.api_url + "/")
    return WebClient(
        token=settings.slack.bot_token,
        base_url=base_url,
        timeout=30,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ] if replay_safe else [RateLimitErrorRetryHandler(max_retry_count=3)],
    )
