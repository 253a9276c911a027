"""Real-time alerts (ALERT_NEW_CRASHES=true), one thread per crash.

A workload's crash fingerprint never seen before opens a thread in each channel that
watches its namespace (the DIGEST_CHANNELS teams claiming it, else PATROL_CHANNEL): the
parent says what crashed and carries Why?, Silence and Acknowledge. Repeats of that
crash (same cluster, workload, container and identity) never open another alert: they
update the parent in place ("×N, last 09:40 UTC") and reply in its thread — the first
repeat at once, later ones at most once an hour with the count since. Threads are stored
(bot.store.threads), so they outlive a restart of the bot. A crash wave (a bad rollout
across a namespace) is capped: ALERT_BURST new alerts per ALERT_WINDOW, the rest held and
posted as one summary when the window ends.

Silences (bot.store.silences) stop posting, never recording or counting. A crash whose
identity is new lifts a silence of its whole workload, and its alert goes out.

The recorder only knows a callback taking a stored CrashRecord; this module supplies it
(`CrashAlerts.__call__`: new crashes open threads, others count as repeats), and its
`ThreadFollower` polls the record for repeats the callback is not given. Nothing below
bot/slack imports Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot.errors import ConfigError, PatrolError, StoreError
from bot.patrol.alerting import (
    AlertedWorkload,
    AlertThread,
    Silence,
    lifted_by_new,
    reply_due,
    silence_for,
)
from bot.patrol.durations import human_duration
from bot.patrol.history import CrashRecord
from bot.patrol.routing import Routes, channels_for
from bot.render.blocks import render_message
from bot.render.links import Link, fill_links
from bot.render.rows import DigestRow
from bot.runtime import Runtime, RuntimeStopped
from bot.settings import Settings
from bot.slack.client import SLACK_FAILURES, build_web_client, slack_failure
from bot.store import Store

FOLLOW_FOR = timedelta(days=7)  # threads whose last crash is older are left alone
Channels = Callable[[CrashRecord], Sequence[str]]  # the channels that watch a crash

log = logging.getLogger("restart_patrol.alerts")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _scope(crash: CrashRecord, settings: Settings) -> str:
    """The namespace, or `cluster/namespace` when several clusters are served."""
    several = len(settings.cluster.contexts) > 1
    return f"{crash.cluster}/{crash.namespace}" if several else crash.namespace


def new_crash_message(crash: CrashRecord, settings: Settings,
                      thread: AlertThread | None = None, silence: Silence | None = None,
                      now: datetime | None = None) -> dict[str, Any]:
    """The alert (a thread's parent), from templates/alert.blocks.j2: the crash, its count
    and last time once it repeated, who silenced it or is on it, and the buttons."""
    return render_message("alert.blocks.j2", settings.templates_dir, c=crash,
                          scope=_scope(crash, settings), thread=thread, silence=silence,
                          now=now or _utcnow(), links=crash_links(crash, settings))


LINKS_BEFORE = timedelta(hours=1)  # an alert's links look at the hour before its crash
LINKS_AFTER = timedelta(minutes=5)  # and a little after


def crash_links(crash: CrashRecord, settings: Settings) -> list[Link]:
    """LINK_TEMPLATES filled for an alert's crash: its pod and container, and the window
    from an hour before it ended (or was recorded) to five minutes after."""
    if not settings.slack.links:
        return []
    moment = crash.finished_at or crash.recorded_at or _utcnow()
    return fill_links(settings.slack.links, cluster=crash.cluster, namespace=crash.namespace,
                      workload=crash.workload_name, pod=crash.pod_name,
                      container=crash.container, since=moment - LINKS_BEFORE,
                      until=moment + LINKS_AFTER)


def post_new_crash(client: WebClient, channel: str, crash: CrashRecord,
                   settings: Settings) -> str | None:
    """Post one alert; its ts, or None when Slack refused (logged: the recorder must keep
    recording)."""
    try:
        return str(client.chat_postMessage(channel=channel,
                                           **new_crash_message(crash, settings))["ts"])
    except SLACK_FAILURES as exc:
        log.error("could not post the new-crash alert for %s/%s: %s", crash.namespace,
                  crash.workload_name, slack_failure("the alert", exc))
        return None


def audit_message(kind: str, settings: Settings, **context: object) -> dict[str, Any]:
    """A thread reply saying who did what to an alert (templates/alert_audit.blocks.j2)."""
    defaults: dict[str, object] = {"user": "", "silence": None, "thread": None,
                                   "crash": None, "channel": "", "row": None}
    return render_message("alert_audit.blocks.j2", settings.templates_dir, kind=kind,
                          **(defaults | context))


class AlertThreads:
    """Alert threads in Slack: open, count repeats, re-render the parent, audit. Shared
    by the recorder's callback and the buttons (bot.slack.interactions)."""

    def __init__(self, settings: Settings, store: Store, client: WebClient,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.settings, self.store, self.client, self.clock = settings, store, client, clock

    def silences(self, crash: CrashRecord) -> list[Silence]:
        return self.store.silences.for_workload(AlertedWorkload.of(crash), self.clock())

    def open(self, crash: CrashRecord, channel: str) -> AlertThread | None:
        """Post the parent of a new crash's thread in `channel` and store the thread (a
        thread the crash already has there counts it as a repeat instead)."""
        existing = self.store.threads.find(crash, channel)
        if existing is not None:
            return self.repeat(crash, channel)
        ts = post_new_crash(self.client, channel, crash, self.settings)
        if ts is None:
            return None
        return self.store.threads.open(crash, channel, ts, self.clock())

    def repeat(self, crash: CrashRecord, channel: str) -> AlertThread | None:
        """Count the thread's crashes up to `crash` not counted yet (the store sums them,
        so the recorder's callback and the follower never count one twice) in the crash's
        thread in `channel`: update the parent, and reply when one is due and the crash
        is not silenced. None when there is no thread or it was counted already."""
        thread = self.store.threads.find(crash, channel)
        if thread is None or crash.id is None:
            return None
        counted = self.store.threads.count(thread, crash.finished_at or self.clock(),
                                           crash.id)
        if counted is None:
            return None
        self.follow_up(counted, crash)
        return counted

    def follow_up(self, thread: AlertThread, crash: CrashRecord) -> None:
        """Update the parent; reply with the count since the last reply when due."""
        now = self.clock()
        silence = silence_for(self.silences(crash), crash, now)
        self.refresh(thread, crash)
        if silence is None and reply_due(thread, now) and self.store.threads.replied(
                thread, now):
            self._post(thread.channel, thread.ts, render_message(
                "alert_repeat.blocks.j2", self.settings.templates_dir, c=crash,
                thread=thread, more=thread.count - thread.replied_count,
                since=thread.replied_at or thread.opened_at, now=now))

    def refresh(self, thread: AlertThread, crash: CrashRecord | None = None) -> None:
        """Re-render the thread's parent in place (chat.update) from its newest crash,
        with the silence that quiets it now, if any."""
        crash = crash or self.store.threads.crash(thread.workload.cluster,
                                                  thread.last_crash_id)
        if crash is None:  # pruned: the parent stays as it was
            return
        now = self.clock()
        silence = silence_for(self.silences(crash), crash, now)
        message = new_crash_message(crash, self.settings, thread, silence, now)
        try:
            self.client.chat_update(channel=thread.channel, ts=thread.ts, **message)
        except SLACK_FAILURES as exc:
            log.error("could not update the alert for %s/%s: %s", crash.namespace,
                      crash.workload_name, slack_failure("the update", exc))

    def audit(self, channel: str | None, thread_ts: str | None, kind: str,
              **context: object) -> None:
        """Say in the alert's thread who did what (nothing when there is no thread)."""
        if channel and thread_ts:
            self._post(channel, thread_ts, audit_message(kind, self.settings, **context))

    def _post(self, channel: str, thread_ts: str, message: dict[str, Any]) -> None:
        try:
            self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message)
        except SLACK_FAILURES as exc:
            log.error("could not reply in the alert thread %s in %s: %s", thread_ts,
                      channel, slack_failure("the reply", exc))


def held_crashes_message(crashes: Sequence[CrashRecord], settings: Settings
                         ) -> dict[str, Any]:
    """The summary of alerts held past ALERT_BURST, from templates/alerts_held.blocks.j2."""
    return render_message("alerts_held.blocks.j2", settings.templates_dir, crashes=crashes,
                          burst=settings.slack.alert_burst,
                          window=human_duration(settings.slack.alert_window),
                          several=len(settings.cluster.contexts) > 1)


@dataclass(frozen=True, slots=True)
class RowMark:
    """What a digest row says about its alerts: who silenced what until when (`silences`:
    (who, until, what) with `what` a crash's label or "the whole workload"), and a link to
    its alert thread in the digest's channel (None without one, or without a link)."""

    silences: tuple[tuple[str, datetime, str], ...] = ()
    thread_url: str | None = None


Permalink = Callable[[str, str], "str | None"]  # (channel, ts) → the message's URL


def row_marks(store: Store, cluster: str, rows: Sequence[DigestRow], now: datetime,
              channel: str | None = None, permalink: Permalink | None = None
              ) -> dict[str, RowMark]:
    """Per digest row (keyed `namespace/kind/name`), its active silences and, given the
    digest's `channel` and a `permalink`, the link to the newest alert thread of the
    workload in that channel. Rows with neither are left out. A silenced crash is still
    counted in the row: this only marks it."""
    marks: dict[str, RowMark] = {}
    for row in rows:
        workload = AlertedWorkload(cluster, row.namespace, row.kind, row.name)
        active = store.silences.for_workload(workload, now)
        threads = store.threads.in_workload(cluster, row.namespace, row.kind, row.name) \
            if active or (channel is not None and permalink is not None) else []
        labels = {story.identity: story.label for story in row.stories}
        silences = tuple((s.created_by, s.until, "the whole workload" if s.identity is None
                          else labels.get(s.identity) or _label(store, threads, s.identity))
                         for s in active)
        url = None
        if channel is not None and permalink is not None:
            thread = next((t for t in threads if t.channel == channel), None)
            url = permalink(channel, thread.ts) if thread is not None else None
        if silences or url:
            marks[f"{row.namespace}/{row.kind}/{row.name}"] = RowMark(silences, url)
    return marks


def _label(store: Store, threads: Sequence[AlertThread], identity: str) -> str:
    """A silenced crash's label (go-panic, OOMKilled …) from its alert thread's crash."""
    for thread in threads:
        if thread.identity == identity:
            crash = store.threads.crash(thread.workload.cluster, thread.last_crash_id)
            if crash is not None:
                return crash.label
    return f"crash {identity}"


def slack_permalink(client: WebClient) -> Permalink:
    """chat.getPermalink (no scope needed), None when Slack has no such message."""
    def link(channel: str, ts: str) -> str | None:
        try:
            return str(client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except (*SLACK_FAILURES, KeyError):
            return None
    return link


class AlertGate:
    """At most `burst` alerts per `window` seconds go out one by one; later ones are held
    and go out together, as one summary, when the window ends. Thread-safe (the
    recorder's capture workers call it); the summary is posted from a thread of the
    runtime, at the window's end or when the runtime stops."""

    def __init__(self, post_one: Callable[[CrashRecord], None],
                 post_held: Callable[[list[CrashRecord]], None], burst: int, window: float,
                 clock: Callable[[], float] = time.monotonic, *, runtime: Runtime) -> None:
        self.post_one, self.post_held = post_one, post_held
        self.burst, self.window, self.clock = burst, window, clock
        self.runtime = runtime  # owns the summary's wait; its stop posts what is held
        self._sent: list[float] = []
        self._held: list[CrashRecord] = []
        self._timer: bool | None = None  # a wait for the window's end is running
        self._lock = threading.Lock()

    def __call__(self, crash: CrashRecord) -> None:
        flush_now = False
        with self._lock:
            now = self.clock()
            self._sent = [t for t in self._sent if now - t < self.window]
            alone = len(self._sent) < self.burst and not self._held
            if alone:
                self._sent.append(now)
            else:
                self._held.append(crash)
                if self._timer is None:
                    wait = self.window - (now - self._sent[0]) if self._sent else self.window
                    self._timer = self._after(max(wait, 0.0))
                    flush_now = self._timer is None
        if alone:
            self.post_one(crash)
        elif flush_now:
            self.flush()

    def _after(self, wait: float) -> bool | None:
        """Flush after `wait` seconds, in a thread of the runtime (its shutdown wakes the
        wait, so held alerts are posted before the process exits); None when the runtime
        is stopping (the caller posts now)."""
        runtime = self.runtime

        def wait_then_flush() -> None:
            runtime.stopping.wait(wait)
            self.flush()

        try:
            runtime.thread("alerts-held", wait_then_flush)
            return True
        except RuntimeStopped:
            return None

    def flush(self) -> None:
        """Post what is held (at the window's end, or when the runtime stops)."""
        with self._lock:
            held, self._held, self._timer = self._held, [], None
            if held:
                self._sent.append(self.clock())
        if held:
            self.post_held(held)


class CrashAlerts:
    """The recorder's callback (a stored CrashRecord): a new crash opens its thread in each
    channel that watches it — unless silenced, after lifting the workload silences it
    overrides — capped by ALERT_BURST per ALERT_WINDOW; any other crash counts as a repeat
    in the threads it has."""

    def __init__(self, threads: AlertThreads, channels: Channels, runtime: Runtime) -> None:
        self.threads, self.channels = threads, channels
        settings = threads.settings
        self.gate = AlertGate(self._open, self._summary, settings.slack.alert_burst,
                              settings.slack.alert_window, runtime=runtime)

    def __call__(self, crash: CrashRecord) -> None:
        try:
            if not crash.is_new:
                for channel in self.channels(crash):
                    self.threads.repeat(crash, channel)
                return
            now = self.threads.clock()
            silences = self.threads.silences(crash)
            for lifted in lifted_by_new(silences, crash, now):
                done = self.threads.store.silences.lift(
                    lifted.id, by="restart-patrol", now=now,
                    reason=f"a new crash appeared: {crash.summary or crash.label}")
                if done is not None:
                    self.threads.audit(lifted.channel, lifted.thread_ts, "lifted_by_new",
                                       silence=done, crash=crash)
            if silence_for(silences, crash, now) is not None:
                return  # recorded and counted; not posted
        except StoreError as exc:
            log.error("alerting %s/%s: %s", crash.namespace, crash.workload_name, exc)
            return
        self.gate(crash)

    def follower(self, cluster: str, runtime: Runtime | None = None) -> ThreadFollower:
        """The service that follows this cluster's threads (run it on the leader, as a
        service of `runtime`, which owns its thread)."""
        return ThreadFollower(self.threads, cluster,
                              self.threads.settings.slack.alert_thread_poll, runtime)

    def _open(self, crash: CrashRecord) -> None:
        for channel in self.channels(crash):
            try:
                self.threads.open(crash, channel)
            except StoreError as exc:
                log.error("could not keep the alert thread of %s/%s: %s", crash.namespace,
                          crash.workload_name, exc)

    def _summary(self, crashes: list[CrashRecord]) -> None:
        by_channel: dict[str, list[CrashRecord]] = {}
        for crash in crashes:
            for channel in self.channels(crash):
                by_channel.setdefault(channel, []).append(crash)
        for channel, held in by_channel.items():
            try:
                self.threads.client.chat_postMessage(
                    channel=channel, **held_crashes_message(held, self.threads.settings))
            except SLACK_FAILURES as exc:
                log.error("could not post the summary of %d new crashes: %s", len(held),
                          slack_failure("the summary", exc))


class ThreadFollower:
    """Polls the record of one cluster every `every` seconds for repeats of alerted
    crashes (crashes of a thread's key past its last counted crash) and for replies that
    became due; counts them into their threads. A runtime service run on the cluster's
    leader, next to its recorder, so one replica follows each thread."""

    def __init__(self, threads: AlertThreads, cluster: str, every: float,
                 runtime: Runtime | None = None) -> None:
        self.name = f"alert-threads-{cluster}"
        self.threads, self.cluster, self.every = threads, cluster, every
        self.runtime = runtime  # the owner of its thread (the cluster's leadership runtime)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self) -> None:
        """One poll (tests call it directly)."""
        since = self.threads.clock() - FOLLOW_FOR
        store = self.threads.store.threads
        for thread, _restarts, crash in store.pending(self.cluster, since):
            self.threads.repeat(crash, thread.channel)
        for thread in store.due(self.cluster, since):
            if reply_due(thread, self.threads.clock()):
                newest = store.crash(self.cluster, thread.last_crash_id)
                if newest is not None:
                    self.threads.follow_up(thread, newest)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.follow()
            except (PatrolError, *SLACK_FAILURES) as exc:  # the next poll tries again
                log.error("cluster %s: following alert threads: %s", self.cluster, exc)

    def start(self) -> None:
        """Poll in a thread of the runtime it was given (the runtime joins it at stop)."""
        if self.runtime is None:
            raise RuntimeError(f"{self.name}: started without a runtime to own its thread")
        self._thread = self.runtime.thread(self.name, self._run)

    def stop(self, deadline: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max((deadline or time.monotonic() + 3) - time.monotonic(), 0))


def new_crash_alerter(settings: Settings, runtime: Runtime, client: WebClient | None = None,
                      store: Store | None = None) -> Callable[[CrashRecord], None]:
    """The recorder's `on_new_crash` callback: a thread per crash in each team channel of
    DIGEST_CHANNELS that claims its namespace, else in PATROL_CHANNEL (the catch-all);
    new alerts capped by ALERT_BURST per ALERT_WINDOW; the held ones wait in a thread of
    `runtime`, whose shutdown posts them at once. Without a store (older wiring) it
    posts plain alerts to PATROL_CHANNEL, one per new crash, with no thread kept."""
    channel = settings.slack.patrol_channel
    if not settings.slack.bot_token or not (channel or settings.slack.digest_channels):
        raise ConfigError("ALERT_NEW_CRASHES=true needs SLACK_BOT_TOKEN and PATROL_CHANNEL "
                          "or DIGEST_CHANNELS")
    web = client or build_web_client(settings)
    if store is None:
        if not channel:
            raise ConfigError("ALERT_NEW_CRASHES=true without a store needs PATROL_CHANNEL")
        def alert(crash: CrashRecord) -> None:
            if crash.is_new:
                post_new_crash(web, channel, crash, settings)

        def summary(crashes: list[CrashRecord]) -> None:
            try:
                web.chat_postMessage(channel=channel,
                                     **held_crashes_message(crashes, settings))
            except SLACK_FAILURES as exc:
                log.error("could not post the summary of %d new crashes: %s",
                          len(crashes), slack_failure("the summary", exc))

        return AlertGate(alert, summary, settings.slack.alert_burst,
                         settings.slack.alert_window, runtime=runtime)
    routes = Routes(settings.slack.digest_channels or {}, channel or None)

    def channels(crash: CrashRecord) -> tuple[str, ...]:
        return channels_for(routes, crash.cluster, crash.namespace)

    return CrashAlerts(AlertThreads(settings, store, web), channels, runtime)
