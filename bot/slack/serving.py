"""Slack's side of `serve`: the Bolt app, reachable over HTTP (a WSGI endpoint that
`bot.service` mounts at /slack/events) or over Socket Mode. The process around it
(cluster, store, scheduler, HTTP server, signals) is wired in `bot.service`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.errors import SlackError
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SlackFrontend:
    """The Bolt app and its Web API client, built once; every replica serves Slack."""

    def __init__(self, services: Services, access: Access) -> None:
        self.settings = services.settings
        self.client = build_web_client(services.settings)
        try:
            self.app = build_app(services, self.client, access)
        except Exception as exc:  # Bolt raises its own errors for a bad token at start-up
            raise SlackError(f"Slack rejected the bot token: {exc}") from None
        self._socket: SocketModeHandler | None = None

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

    def connect(self) -> None:
        """Open the Socket Mode connection (Socket Mode only)."""
        self._socket = SocketModeHandler(self.app, self.settings.slack.app_token)
        self._socket.connect()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
