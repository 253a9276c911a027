"""`restart-patrol serve`: the composition root.

Builds the process from Settings: cluster client, store, the Slack front end (every
replica serves Slack), the HTTP server (/slack/events in HTTP mode, /healthz, /readyz,
/metrics), the leader-only jobs, and the signal handling. Nothing below this module
wires processes; `bot.slack` only turns Slack requests into calls and results into
messages.

Leader-only jobs (see `leader_jobs`): the digest scheduler and the flight recorder. They
run on one replica at a time, started when it becomes leader and stopped at once when it
stops being leader. With LEADER_ELECTION=true the leader is the holder of a Lease
(`bot.cluster.lease`); without it the single replica is always leader. SIGTERM stops the
jobs, releases the lease (the successor takes over at once) and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from types import FrameType
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, make_wsgi_app

from bot.cluster.fleet import connect_fleet
from bot.cluster.lease import LeaseElector
from bot.cluster.recorder import Recorder
from bot.errors import ConfigError, PatrolError
from bot.schedule.daily import DigestSchedule, digest_trigger
from bot.schedule.digest_job import DigestJob
from bot.settings import Settings
from bot.slack.access import Access
from bot.slack.alerts import new_crash_alerter
from bot.slack.digests import SlackDigestPoster
from bot.slack.posting import Services
from bot.slack.serving import SlackFrontend, WsgiApp
from bot.store import Store

log = logging.getLogger("restart_patrol")
REQUESTS = Counter("restart_patrol_http_requests", "HTTP requests served", ["path"])
LEADING = Gauge("restart_patrol_leader", "1 while this replica runs the leader-only jobs")
StartResponse = Callable[..., Any]


# ---- leader-only jobs -----------------------------------------------------------------
class LeaderJob(Protocol):
    """Work that must run on one replica only. `start()` returns once running; `stop()`
    returns promptly (it must not wait for slow I/O: losing the lease stops jobs at once)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def leader_jobs(services: Services, frontend: SlackFrontend, identity: str
                ) -> list[LeaderJob]:
    """The leader-only jobs, built fresh each time this replica becomes leader:
    - the flight recorder (always; it alerts on new crashes with ALERT_NEW_CRASHES);
    - the digest scheduler (when PATROL_CHANNEL is set): exactly one post per slot.
    Each served cluster (KUBE_CONTEXTS) gets its own recorder and digest job, so a cluster
    that is down delays only its own digest (which then says why)."""
    settings = services.settings
    alert = (new_crash_alerter(settings, frontend.client) if settings.slack.alert_new_crashes
             else None)
    crashes = services.store.crashes
    jobs: list[LeaderJob] = [Recorder(cluster, crashes, settings, on_new_crash=alert)
                             for cluster in services.clusters]
    if settings.slack.patrol_channel:
        poster = SlackDigestPoster(services, settings.slack.patrol_channel)
        for cluster in services.clusters:
            digest = DigestJob(cluster, services.store, settings, poster,
                               owner=f"{identity}/{uuid.uuid4().hex[:6]}")
            jobs.append(DigestSchedule(settings, digest.tick, on_stop=digest.stop))
    return jobs


def replica_identity() -> str:
    """This replica's name in the lease and in digest claims: host (the pod name in a
    cluster), pid and a random suffix (a restarted container is a new candidate)."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


class LeaderJobs:
    """Starts and stops the leader-only jobs as one unit."""

    def __init__(self, build: Callable[[], list[LeaderJob]]) -> None:
        self._build = build
        self._running: list[LeaderJob] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = self._build()
            for job in self._running:
                job.start()
            LEADING.set(1)
            log.info("leader-only jobs started: %s",
                     ", ".join(type(j).__name__ for j in self._running) or "none")

    def stop(self) -> None:
        with self._lock:
            running, self._running = self._running, []
            LEADING.set(0)
        for job in reversed(running):
            try:
                job.stop()
            except Exception:
                log.exception("stopping %s failed", type(job).__name__)
        if running:
            log.info("leader-only jobs stopped")


# ---- HTTP -----------------------------------------------------------------------------
class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under bursts: 1 s retransmits


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger("restart_patrol.http").debug("%s " + format,
                                                       self.address_string(), *args)


def _plain(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def routes(slack: WsgiApp | None, ready: Callable[[], None]) -> WsgiApp:
    """/slack/events (HTTP mode), /healthz (process up), /readyz (this replica's database
    and cluster answer; leadership plays no part), /metrics."""
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
    """A threaded WSGI server on 0.0.0.0:port, served from a daemon thread."""

    def __init__(self, app: WsgiApp, port: int, host: str = "0.0.0.0") -> None:
        self.httpd = make_server(host, port, app, server_class=_ThreadingWSGIServer,
                                 handler_class=_QuietHandler)
        self.port = int(self.httpd.server_address[1])

    def start(self) -> HttpServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="http").start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- the process ----------------------------------------------------------------------
def check_settings(settings: Settings) -> None:
    """Refuse a configuration `serve` cannot run with, before connecting to anything."""
    if not settings.slack.bot_token:
        raise ConfigError("serve needs SLACK_BOT_TOKEN (see .env.example)")
    if not settings.slack.app_token and not settings.slack.signing_secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for "
                          "Socket Mode)")
    if settings.slack.patrol_channel:
        digest_trigger(settings)
    if settings.slack.alert_new_crashes and not settings.slack.patrol_channel:
        raise ConfigError("ALERT_NEW_CRASHES=true needs PATROL_CHANNEL (where to post)")
    if settings.cluster.leader_election and settings.store.database_url.startswith("sqlite"):
        raise ConfigError("LEADER_ELECTION=true needs a database all replicas share: set "
                          "DATABASE_URL to PostgreSQL (SQLite is one replica's file)")


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    check_settings(settings)
    access = Access(settings.slack.channel_namespaces)
    if access.open:
        log.warning("CHANNEL_NAMESPACES is unset: every channel may see every namespace")
    if not settings.slack.patrol_channel:
        log.warning("PATROL_CHANNEL is unset: no daily digest will be posted")
    fleet = connect_fleet(settings)
    store = Store.open(settings.store.database_url)
    services = Services(settings, fleet.primary, store, fleet)
    frontend = SlackFrontend(services, access)
    identity = replica_identity()
    jobs = LeaderJobs(lambda: leader_jobs(services, frontend, identity))

    def ready() -> None:
        """The database answers and at least one cluster does (one cluster down must not
        take the bot out of service for the others)."""
        store.latest_snapshot(fleet.primary.name)
        problems: list[str] = []
        for cluster in fleet:
            try:
                cluster.server_now()
                return
            except PatrolError as exc:
                problems.append(f"{cluster.name}: {exc}")
        raise PatrolError("; ".join(problems))

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    http = HttpServer(routes(None if frontend.socket_mode else frontend.events_endpoint(),
                             ready), settings.slack.port).start()
    elector: LeaseElector | None = None
    try:
        if frontend.socket_mode:
            frontend.connect()
            log.info("Socket Mode connected; health on :%d", http.port)
        else:
            log.info("listening on :%d (/slack/events, /healthz, /readyz, /metrics)",
                     http.port)
        if settings.cluster.leader_election:
            lease = settings.cluster
            elector = LeaseElector(fleet.primary, lease.lease_namespace, lease.lease_name,
                                   identity, lease.lease_duration, on_started=jobs.start,
                                   on_stopped=jobs.stop).start()
            log.info("campaigning for lease %s/%s as %s", settings.cluster.lease_namespace,
                     settings.cluster.lease_name, identity)
        else:
            jobs.start()
        stop.wait()
    finally:
        if elector is not None:
            elector.stop()  # stops the jobs first, then releases the lease
        jobs.stop()
        frontend.close()
        http.stop()
        store.close()
        fleet.close()
    return 0
