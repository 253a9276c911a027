"""`restart-patrol serve`: the Slack app (Socket Mode or HTTP), the digest scheduler and
the health/metrics endpoints, wired from Settings."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.cluster.client import connect
from bot.errors import ConfigError, PatrolError, SlackError
from bot.runner import run_patrol
from bot.schedule.daily import digest_trigger, start_scheduler
from bot.settings import Settings
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services, digest_message, notice
from bot.slack.server import HttpServer, router
from bot.store import Store

log = logging.getLogger("restart_patrol")


def post_daily_digest(services: Services, client: WebClient, channel: str) -> str | None:
    """Run the digest patrol and post it; a failure is logged and reported in the channel.
    Returns the digest message's ts (its thread receives the Why? answers)."""
    settings = services.settings
    try:
        run = run_patrol(services.cluster, services.store, settings, digest_run=True)
        response = client.chat_postMessage(channel=channel, **digest_message(run, services))
        return str(response["ts"])
    except (PatrolError, SlackApiError) as exc:
        log.error("daily digest failed: %s", exc)
        try:
            client.chat_postMessage(channel=channel, **notice(
                "error", settings, message=f"The daily patrol failed: {exc}"))
        except SlackApiError as post_error:
            log.error("could not report the failure to Slack: %s", post_error)
        return None


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT."""
    if not settings.slack_bot_token:
        raise ConfigError("serve needs SLACK_BOT_TOKEN (see .env.example)")
    if not settings.slack_app_token and not settings.slack_signing_secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for "
                          "Socket Mode)")
    if settings.patrol_channel:
        digest_trigger(settings)  # validate before connecting to anything
    access = Access(settings.channel_namespaces)
    if access.open:
        log.warning("CHANNEL_NAMESPACES is unset: every channel may see every namespace")
    cluster = connect(settings)
    store = Store.open(settings.database_url)
    services = Services(settings, cluster, store)
    client = build_web_client(settings)
    try:
        app = build_app(services, client, access)
    except Exception as exc:  # Bolt raises its own errors for a bad token at start-up
        raise SlackError(f"Slack rejected the bot token: {exc}") from None

    def ready() -> None:
        store.latest_snapshot(cluster.name)
        cluster.server_now()

    def daily_digest() -> None:
        post_daily_digest(services, client, settings.patrol_channel or "")

    scheduler = start_scheduler(settings, daily_digest) if settings.patrol_channel else None
    if scheduler is None:
        log.warning("PATROL_CHANNEL is unset: no daily digest will be posted")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    socket_handler: SocketModeHandler | None = None
    if settings.slack_app_token:
        http = HttpServer(router(None, ready), settings.port).start()
        socket_handler = SocketModeHandler(app, settings.slack_app_token)
        socket_handler.connect()
        log.info("Socket Mode connected; health on :%d", http.port)
    else:
        http = HttpServer(router(app, ready), settings.port).start()
        log.info("listening on :%d (/slack/events, /healthz, /readyz, /metrics)", http.port)
    try:
        stop.wait()
    finally:
        if socket_handler is not None:
            socket_handler.close()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        http.stop()
        store.close()
        cluster.close()
    return 0
