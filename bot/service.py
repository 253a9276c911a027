"""The composition root: `serve`, `record` and `demo` are wired here, and only here.

Each builds its process inside one `bot.runtime.Runtime`, which owns every thread, pool
and server, installs the only signal handler and stops everything in reverse start order
under one deadline (SIGTERM → exit 0 within 10 s whatever is in flight). The clusters,
the store and the Slack Web API clients are opened once here and handed down; nothing
below this module wires processes (`bot.slack` turns Slack requests into calls and
results into messages).

`serve`, in start order (stopped in reverse):
1. the clusters and the store (closed last);
2. Slack: the Web API clients and the Bolt app on two runtime pools (`slack-listen`,
   `slack-work`): a question still running at shutdown is answered, or told "restarting —
   ask again in a minute" before the process exits; the one digest scheduler
   (`bot.schedule.scheduler`), which each led cluster adds its digest series to;
3. leadership, one per served cluster (`Leadership`): that cluster's leader-only jobs —
   its recorder and its digest — run while this replica leads it. With
   LEADER_ELECTION=true the leader is the holder of a Lease *in that cluster*
   (`bot.cluster.lease`), so a cluster that is down stops only its own jobs; without it,
   this replica leads every cluster. SIGTERM stops the jobs and releases the leases (a
   successor takes over at once);
4. the HTTP server (/slack/events in HTTP mode, /healthz, /readyz, /metrics) and, in
   Socket Mode, the Socket Mode connection: stopped first, so no new question arrives
   while the rest stops.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from socketserver import BaseServer
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, make_wsgi_app

from bot.cluster.client import ClusterClient, connect
from bot.cluster.fleet import Fleet, connect_fleet
from bot.cluster.lease import LeaseElector
from bot.errors import ConfigError, PatrolError
from bot.patrol.routing import ChannelScope, Routes
from bot.recording.service import NewCrash, RecorderService
from bot.runtime import Runtime, RuntimeStopped, Workers
from bot.schedule.daily import digest_trigger, longest_gap
from bot.schedule.digest_job import DigestJob
from bot.schedule.scheduler import DigestScheduler
from bot.settings import ClusterSettings, Settings
from bot.slack.access import Access
from bot.slack.alerts import CrashAlerts, new_crash_alerter
from bot.slack.digests import SlackDigestPoster
from bot.slack.posting import Services
from bot.slack.serving import SlackFrontend, WsgiApp
from bot.store import Store

if TYPE_CHECKING:
    from bot.sim.world import World

log = logging.getLogger("restart_patrol")
REQUESTS = Counter("restart_patrol_http_requests", "HTTP requests served", ["path"])
LEADING = Gauge("restart_patrol_leader",
                "1 while this replica runs the cluster's leader-only jobs", ["cluster"])
StartResponse = Callable[..., Any]
HTTP_WORKERS = 16  # requests served at once (each ack takes milliseconds)


# ---- what every process opens once -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Opened:
    """The clusters and the store, opened once and closed when the runtime stops."""

    fleet: Fleet
    store: Store


def open_clusters_and_store(settings: Settings, runtime: Runtime) -> Opened:
    fleet = connect_fleet(settings, runtime=runtime)
    runtime.on_stop(fleet.close, "clusters")
    store = Store.open(settings.store.database_url)
    runtime.on_stop(store.close, "store")
    return Opened(fleet, store)


# ---- leader-only jobs, per cluster ---------------------------------------------------------
CHART_DAYS = timedelta(days=14)  # the history a drill-down's chart draws


def keep_counts_for(settings: Settings) -> timedelta:
    """How long retention keeps compact crash rows, so it never changes a count: the
    longest window a digest can cover (DIGEST_CATCHUP + the schedule's longest gap + a
    day) or the chart's 14 days, whichever is longer."""
    try:
        digest = settings.schedule.catchup + longest_gap(settings) + timedelta(days=1)
    except ConfigError:  # no valid schedule (no digest): the chart's window
        digest = timedelta(0)
    return max(digest, CHART_DAYS)


def recorder(cluster: ClusterClient, store: Store, settings: Settings, runtime: Runtime,
             alert: NewCrash | None) -> RecorderService:
    """One cluster's flight recorder, started as a service of `runtime`."""
    return runtime.service(RecorderService(cluster, store, settings, runtime,
                                           on_new_crash=alert,
                                           keep_counts_for=keep_counts_for(settings)))


ClusterJobs = Callable[[ClusterClient, Runtime], None]


def cluster_jobs(services: Services, frontend: SlackFrontend, identity: str,
                 scheduler: DigestScheduler | None) -> ClusterJobs:
    """What one cluster's leader runs, started in that cluster's leadership runtime:
    - the flight recorder (it alerts on new crashes with ALERT_NEW_CRASHES);
    - the digest series on the one scheduler: one per channel that gets this cluster's
      digest (`digest_routes`: the DIGEST_CHANNELS teams whose patterns can match the
      cluster, and PATROL_CHANNEL), each posted exactly once per slot."""
    settings = services.settings
    alert = (new_crash_alerter(settings, frontend.runtime, frontend.client, services.store)
             if settings.slack.alert_new_crashes else None)
    routes = digest_routes(settings)

    def start(cluster: ClusterClient, runtime: Runtime) -> None:
        watching = recorder(cluster, services.store, settings, runtime, alert)
        if isinstance(alert, CrashAlerts):  # repeats into their alert threads
            runtime.service(alert.follower(cluster.name, runtime))
        if scheduler is None:
            return
        for channel in digest_channels(routes, cluster.name):
            scope = ChannelScope(routes, channel, cluster.name) if routes.teams else None
            poster = SlackDigestPoster(services, channel, frontend.digest_client,
                                       scope=scope.describe() if scope else None)
            digest = DigestJob(cluster, services.store, settings, poster,
                               owner=f"{identity}/{uuid.uuid4().hex[:6]}",
                               recorder=watching)
            runtime.service(scheduler.series(digest))

    return start


def digest_routes(settings: Settings) -> Routes:
    """Who gets digests: the DIGEST_CHANNELS teams and the PATROL_CHANNEL catch-all."""
    return Routes(settings.slack.digest_channels or {}, settings.slack.patrol_channel or None)


def unheard_teams(routes: Routes, access: Access) -> list[str]:
    """Team channels that get digests but may see no namespace under CHANNEL_NAMESPACES
    (their buttons would all be refused)."""
    if access.open:
        return []
    return [ch for ch in routes.teams if access.allowed(ch) == ()]


def digest_channels(routes: Routes, cluster: str) -> list[str]:
    """The channels with a digest series for `cluster`: every team whose patterns can
    match it, and the catch-all."""
    return [ch for ch in routes.channels if ChannelScope(routes, ch, cluster).may_carry()]


def replica_identity() -> str:
    """This replica's name in the leases and in digest claims: host (the pod name in a
    cluster), pid and a random suffix (a restarted container is a new candidate)."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


class Leadership:
    """One cluster's leader-only jobs, run while this replica leads that cluster: with
    LEADER_ELECTION, while it holds the Lease LEASE_NAMESPACE/LEASE_NAME in that cluster;
    without, always. The jobs run in a child runtime of their own, stopped at once when
    the lease is lost (or at shutdown, within its deadline). A runtime service."""

    JOBS_STOP = 3.0  # seconds the jobs get to stop when the lease is lost

    def __init__(self, cluster: ClusterClient, settings: Settings, runtime: Runtime,
                 jobs: ClusterJobs, identity: str) -> None:
        self.cluster = cluster
        self.settings = settings
        self.runtime = runtime
        self.jobs = jobs
        self.identity = identity
        self.name = f"leadership-{cluster.name}"
        self.elector: LeaseElector | None = None
        self._running: Runtime | None = None
        self._deadline = float("inf")
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._running is not None

    def running(self) -> list[str]:
        """The leader-only jobs running now (none unless leading)."""
        running = self._running
        return [] if running is None else running.owned()

    def start(self) -> None:
        lease = self.settings.cluster
        if not lease.leader_election:
            self._lead()
            return
        self.elector = LeaseElector(self.cluster, lease.lease_namespace, lease.lease_name,
                                    self.identity, lease.lease_duration,
                                    on_started=self._lead, on_stopped=self._step_down,
                                    runtime=self.runtime)
        self.elector.start()
        log.info("campaigning for lease %s/%s in cluster %s as %s", lease.lease_namespace,
                 lease.lease_name, self.cluster.name, self.identity)

    def _lead(self) -> None:
        with self._lock:
            if self._running is not None:
                return
            try:
                running = self.runtime.child(f"leader-{self.cluster.name}")
            except RuntimeStopped:
                return
            try:
                self.jobs(self.cluster, running)
            except (PatrolError, RuntimeStopped) as exc:
                log.error("cluster %s: leader-only jobs did not start: %s",
                          self.cluster.name, exc)
            self._running = running
            LEADING.labels(self.cluster.name).set(1)
            log.info("cluster %s: leader-only jobs started", self.cluster.name)

    def _step_down(self) -> None:
        with self._lock:
            running, self._running = self._running, None
        if running is None:
            return
        LEADING.labels(self.cluster.name).set(0)
        running.stop_by(min(self._deadline, time.monotonic() + self.JOBS_STOP))
        log.info("cluster %s: leader-only jobs stopped", self.cluster.name)

    def stop(self, deadline: float) -> None:
        """Stop the jobs, then release the lease (the successor takes over at once)."""
        self._deadline = deadline
        if self.elector is not None:
            self.elector.stop(deadline)  # steps down (the jobs stop), then releases
        self._step_down()


# ---- HTTP -----------------------------------------------------------------------------
class _PooledWSGIServer(WSGIServer):
    """A WSGI server that serves each connection on a runtime pool (named threads, a
    bounded number of them) instead of a new thread per connection."""

    request_queue_size = 128  # the default 5 drops SYNs under bursts: 1 s retransmits
    pool: Workers

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            self.pool.submit(self._serve, request, client_address)
        except RuntimeStopped:
            self.shutdown_request(request)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


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
    """The WSGI app on host:port as a runtime service: accepts in a runtime thread
    (`rp-http`), serves connections on a runtime pool (`rp-http-request-N`)."""

    name = "http"

    def __init__(self, app: WsgiApp, port: int, runtime: Runtime,
                 host: str = "0.0.0.0") -> None:
        self.runtime = runtime
        self.httpd = make_server(host, port, app, server_class=_PooledWSGIServer,
                                 handler_class=_QuietHandler)
        self.port = int(self.httpd.server_address[1])
        self._serving: threading.Thread | None = None

    def start(self) -> None:
        self.httpd.pool = self.runtime.executor("http-request", HTTP_WORKERS)
        self._serving = self.runtime.thread("http", self._serve)

    def _serve(self) -> None:
        BaseServer.serve_forever(self.httpd, 0.1)

    def stop(self, deadline: float) -> None:
        if self._serving is not None:
            self.httpd.shutdown()  # returns within serve_forever's poll interval
        self.httpd.server_close()


# ---- serve ----------------------------------------------------------------------------
def check_settings(settings: Settings) -> None:
    """Refuse a configuration `serve` cannot run with, before connecting to anything."""
    if not settings.slack.bot_token:
        raise ConfigError("serve needs SLACK_BOT_TOKEN (see .env.example)")
    if not settings.slack.app_token and not settings.slack.signing_secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for "
                          "Socket Mode)")
    posting = bool(digest_routes(settings).channels)
    if posting:
        digest_trigger(settings)
    if settings.slack.alert_new_crashes and not posting:
        raise ConfigError("ALERT_NEW_CRASHES=true needs PATROL_CHANNEL or DIGEST_CHANNELS "
                          "(where to post)")
    if settings.cluster.leader_election and settings.store.database_url.startswith("sqlite"):
        raise ConfigError("LEADER_ELECTION=true needs a database all replicas share: set "
                          "DATABASE_URL to PostgreSQL (SQLite is one replica's file)")


def serve(settings: Settings, runtime: Runtime) -> int:
    """The bot, until SIGTERM/SIGINT; returns the exit code (the caller stops the
    runtime)."""
    check_settings(settings)
    runtime.install_signals()
    access = Access(settings.slack.channel_namespaces)
    if access.open:
        log.warning("CHANNEL_NAMESPACES is unset: every channel may see every namespace")
    digest_to = digest_routes(settings)
    for channel in unheard_teams(digest_to, access):
        log.warning("DIGEST_CHANNELS sends %s a digest, but CHANNEL_NAMESPACES gives it no "
                    "namespace: the Why?, Silence and Acknowledge buttons there will be "
                    "refused (add %s=<its namespaces> to CHANNEL_NAMESPACES)", channel, channel)
    if not digest_to.channels:
        log.warning("PATROL_CHANNEL is unset: no daily digest will be posted")
    elif digest_to.catch_all is None:
        log.warning("PATROL_CHANNEL is unset: namespaces no DIGEST_CHANNELS team claims "
                    "get no digest and no alert")
    opened = open_clusters_and_store(settings, runtime)
    fleet, store = opened.fleet, opened.store
    services = Services(settings, fleet.primary, store, fleet)
    frontend = SlackFrontend(services, access, runtime)
    identity = replica_identity()
    series = sum(len(digest_channels(digest_to, c.name)) for c in fleet)
    scheduler = (runtime.service(DigestScheduler(settings, runtime, series=series))
                 if series else None)
    jobs = cluster_jobs(services, frontend, identity, scheduler)
    for cluster in fleet:
        runtime.service(Leadership(cluster, settings, runtime, jobs, identity))

    def ready() -> None:
        """The database answers and at least one cluster does (one cluster down must not
        take the bot out of service for the others)."""
        store.latest_snapshot(fleet.primary.name)
        problems: list[str] = []
        for cluster in fleet:
            try:
                cluster.bounded(settings.limits.query_deadline, "QUERY_DEADLINE").server_now()
                return
            except PatrolError as exc:
                problems.append(f"{cluster.name}: {exc}")
        raise PatrolError("; ".join(problems))

    http = runtime.service(HttpServer(
        routes(None if frontend.socket_mode else frontend.events_endpoint(), ready),
        settings.slack.port, runtime))
    if frontend.socket_mode:
        runtime.service(frontend.socket())
        log.info("Socket Mode connected; health on :%d", http.port)
    else:
        log.info("listening on :%d (/slack/events, /healthz, /readyz, /metrics)", http.port)
    log.info("serving; threads: %s", ", ".join(runtime.threads()))
    runtime.wait()
    return 0


# ---- record ---------------------------------------------------------------------------
def record(settings: Settings, runtime: Runtime) -> int:
    """The flight recorder alone, for every served cluster, until SIGTERM/SIGINT."""
    runtime.install_signals()
    opened = open_clusters_and_store(settings, runtime)
    alert = None
    if settings.slack.alert_new_crashes:
        from bot.slack.client import build_web_client

        alert = new_crash_alerter(settings, runtime, build_web_client(settings), opened.store)
    for cluster in opened.fleet:
        recorder(cluster, opened.store, settings, runtime, alert)
        if isinstance(alert, CrashAlerts):
            runtime.service(alert.follower(cluster.name, runtime))
    log.info("recording restarts in %s of %s", ", ".join(settings.cluster.namespaces)
             or "all namespaces", ", ".join(f"cluster {c.name}" for c in opened.fleet))
    runtime.wait()
    return 0


# ---- demo -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Demo:
    """The demo's parts: the simulated cluster served in-process, a client for it, a
    throwaway store, and a Slack client when Slack is configured."""

    settings: Settings
    cluster: ClusterClient
    store: Store
    url: str
    world: World
    slack: Any | None  # a slack_sdk WebClient (bot.slack builds it)


@contextmanager
def demo(settings: Settings, runtime: Runtime) -> Iterator[Demo]:
    """The demo's process: everything it opens is closed when the runtime stops."""
    from bot.sim.scenario import build_world
    from bot.sim.server import SimServer

    world, _ = build_world()
    tmp = tempfile.TemporaryDirectory(prefix="restart-patrol-demo-")
    runtime.on_stop(tmp.cleanup, "demo files")
    server = runtime.service(SimServer(world, runtime=runtime))
    kubeconfig = Path(tmp.name) / "kubeconfig"
    kubeconfig.write_text(server.kubeconfig())
    shown = replace(settings, cluster=ClusterSettings(kubeconfig=str(kubeconfig)),
                    store=replace(settings.store,
                                  database_url=f"sqlite:///{tmp.name}/demo.db"))
    cluster = connect(shown, runtime=runtime)
    runtime.on_stop(cluster.close, "cluster")
    store = Store.open(shown.store.database_url)
    runtime.on_stop(store.close, "store")
    slack = None
    if settings.slack.bot_token and settings.slack.patrol_channel:
        from bot.slack.client import build_web_client

        slack = build_web_client(settings)
    yield Demo(shown, cluster, store, server.url, world, slack)
