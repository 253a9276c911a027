"""HTTP serving: Bolt's WSGI adapter at /slack/events behind a threaded stdlib WSGI server,
plus /healthz (process up), /readyz (database and cluster answer) and /metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, make_wsgi_app
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.errors import PatrolError

log = logging.getLogger("restart_patrol.http")
REQUESTS = Counter("restart_patrol_http_requests", "HTTP requests served", ["path"])

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under bursts: 1 s retransmits


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _plain(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def router(bolt: App | None, ready: Callable[[], None]) -> WsgiApp:
    """The WSGI app: Slack events (when serving HTTP mode), health, readiness, metrics."""
    slack = SlackRequestHandler(bolt) if bolt is not None else None
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        REQUESTS.labels(path if path in ("/slack/events", "/healthz", "/readyz", "/metrics")
                        else "other").inc()
        if path == "/slack/events" and slack is not None:
            return slack(environ, start_response)
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            try:
                ready()
            except PatrolError as exc:
                return _plain(start_response, "503 Service Unavailable", f"{exc}\n")
            return _plain(start_response, "200 OK", "ready\n")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        return _plain(start_response, "404 Not Found", "not found\n")

    return app


class HttpServer:
    """A threaded WSGI server on 0.0.0.0:port."""

    def __init__(self, app: WsgiApp, port: int, host: str = "0.0.0.0") -> None:
        self.httpd = make_server(host, port, app, server_class=_ThreadingWSGIServer,
                                 handler_class=_QuietHandler)
        self.port = int(self.httpd.server_address[1])

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> HttpServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True,
                         name="http").start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
