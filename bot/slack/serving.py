"""Slack's side of `serve`: the Web API clients (built once), the Bolt app on runtime
pools, reachable over HTTP (a WSGI endpoint that `bot.service` mounts at /slack/events)
or over Socket Mode (a runtime service). The process around it (cluster, store, leader
jobs, HTTP server, signals) is wired in `bot.service`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot.errors import SlackError, SlackUnavailable
from bot.runtime import PREFIX, Runtime
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

WORKERS = 4  # concurrent drill-downs/patrols; more would only load the API server
# Of the shutdown's 8 s: a question still running after the first 4 s is told
# "restarting", with 4 s left to reach Slack even when the process is loaded.
TELL_RESERVE = 4.0
LISTENERS = 10  # Bolt's listeners: they only ack and queue (Bolt's default pool size)


class SlackFrontend:
    """The Bolt app and the Web API clients, built once; every replica serves Slack.

    `client` answers questions and posts alerts (slack_sdk's retry handlers on);
    `digest_client` posts digests (no blind replay of 5xx/dropped posts)."""

    def __init__(self, services: Services, access: Access, runtime: Runtime) -> None:
        self.settings = services.settings
        self.runtime = runtime
        self.client = build_web_client(services.settings)
        self.digest_client = build_web_client(services.settings, replay_safe=False)
        listeners = runtime.executor("slack-listen", LISTENERS)
        work = runtime.executor("slack-work", WORKERS, reserve=TELL_RESERVE)
        try:  # Bolt checks the token with auth.test at start-up
            self.app = build_app(services, self.client, access, executor=work,
                                 listeners=listeners)
        except OSError as exc:  # urllib's URLError: no answer at all
            reason = getattr(exc, "reason", exc)
            raise SlackUnavailable(
                f"cannot reach Slack at {self.client.base_url} ({reason}); check "
                "SLACK_API_URL, the network and the proxy") from None
        except BoltError as exc:
            raise SlackError(f"Slack rejected the bot token: {exc}") from None

    @property
    def socket_mode(self) -> bool:
        return self.settings.slack.app_token is not None

    def events_endpoint(self) -> WsgiApp:
        """Bolt's WSGI adapter: verifies the signature, acks, dispatches."""
        handler = SlackRequestHandler(self.app)

        def endpoint(environ: dict[str, Any], start_response: Callable[..., Any]
                     ) -> Iterable[bytes]:
            body: Iterable[bytes] = handler(environ, start_response)
            return body

        return endpoint

    def socket(self) -> SocketMode:
        """The Socket Mode connection, as a service to start with `runtime.service`."""
        token = self.settings.slack.app_token
        assert token is not None
        return SocketMode(self.app, token, self.client, self.runtime)


class SocketMode:
    """slack_bolt's built-in Socket Mode handler as a runtime service. Its client starts
    threads of its own in its constructor (the library offers no way to pass them in):
    they are named `rp-socket-…` here, and its message pool is a runtime pool, so the
    thread list still says what each thread is and nothing holds the process at exit."""

    name = "socket-mode"

    def __init__(self, app: Any, token: str, client: WebClient, runtime: Runtime) -> None:
        self.app = app
        self.token = token
        self.client = client
        self.runtime = runtime
        self.handler: SocketModeHandler | None = None

    def start(self) -> None:
        handler = SocketModeHandler(self.app, self.token, web_client=self.client)
        socket = handler.client
        socket.message_workers = self.runtime.executor(  # type: ignore[assignment]
            "socket-messages", LISTENERS)
        self.handler = handler
        self._name_threads()
        try:
            handler.connect()
        except Exception as exc:
            raise SlackError(f"cannot open the Socket Mode connection: {exc}") from None
        self._name_threads()  # the session monitor starts on the first connect

    def _name_threads(self) -> None:
        assert self.handler is not None
        socket = self.handler.client
        for role, runner in (("session", socket.current_session_runner),
                             ("monitor", socket.current_app_monitor),
                             ("messages", socket.message_processor)):
            if runner.thread is not None:
                runner.thread.name = f"{PREFIX}socket-{role}"

    def stop(self, deadline: float) -> None:
        """Close the connection and the library's threads, by `deadline` (the library's
        close joins its threads without a bound: it runs in a thread of its own here)."""
        if self.handler is None:
            return
        closer = threading.Thread(target=self.handler.close, daemon=True,
                                  name=f"{PREFIX}socket-close")
        closer.start()
        closer.join(max(0.0, deadline - time.monotonic()))
