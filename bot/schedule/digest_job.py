"""The digest job of one series (cluster, channel): each scheduled slot is posted exactly
once, or not at all, and nothing posts after the slot's deadline.

Per slot (cluster, channel, scheduled time):
1. claim it in the database (`DigestSlots.claim`, an INSERT only one replica wins); a claim
   left unfinished by another process (killed, deposed, or failed) is taken over. Earlier
   unfinished slots whose post may have reached Slack are looked up first;
2. run the digest patrol, its snapshot recorded as *pending*, and attach it to the claim —
   from then on a message may exist in Slack;
3. post with a slot marker in the message metadata; Slack's answer is the only proof. When
   the answer is lost (5xx, timeout, dropped connection) the job looks for the marker in
   the channel's history before posting again, so "accepted, then 500" posts once;
4. on Slack's ts: the slot is posted and its snapshot becomes the next digest's baseline.

Failures are decided by type, never by message: a `TransientError` (the database, Slack or
the cluster did not answer) is retried with backoff within the slot's budget, from the
step that failed; any other `PatrolError` ends the slot at once. A slot that gives up
leaves its window open (the next posted digest covers it) and tells the channel once,
naming the cluster and why — unless Slack itself is what failed.

Time: `tick()` is what the scheduler (`bot.schedule.scheduler`) runs at each fire time
and once when the series is added (catch-up). It picks the latest slot within
DIGEST_CATCHUP (several missed slots → one post) and runs it on the scheduler's slot pool
under a `Deadline` just before the next fire. Every Slack call of the slot is bounded by
that deadline, slack_sdk's own retries included (`bot.slack.client.bounded_by`), and so
is the patrol (PATROL_DEADLINE, shortened to what is left). `tick()` returns when the slot
is done, at its deadline, or at once on `stop()`; a slot it leaves behind is cancelled,
so it can never post later.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter

from bot.answers.patrol import PatrolPlan, PatrolRun, RecorderView, patrol
from bot.cluster.client import ClusterClient
from bot.errors import (
    ClusterError,
    PatrolError,
    SlackError,
    SlackUnavailable,
    StoreError,
    TransientError,
)
from bot.runtime import RuntimeStopped, Workers
from bot.schedule.daily import digest_trigger, latest_fire, next_fire
from bot.schedule.deadline import Deadline
from bot.settings import Settings
from bot.store import Store
from bot.store.slots import Slot, SlotKey

log = logging.getLogger("restart_patrol.digest")
DIGESTS = Counter("restart_patrol_digests", "Digest slots by outcome", ["outcome"])
RETRIES = Counter("restart_patrol_digest_retries",
                  "Digest attempts that failed transiently and were retried, by what failed",
                  ["cause"])
GRACE = timedelta(minutes=10)  # a scheduled run this late still posts its slot
MAX_RUN = timedelta(minutes=30)
NOTICE_TIME = 5.0  # seconds kept at the end of a slot to tell the channel it gave up


class DigestPoster(Protocol):
    """Slack's side of the digest (implemented in bot.slack.digests). Every call sends
    nothing after `deadline`."""

    channel: str

    def render(self, run: PatrolRun) -> dict[str, Any]:
        """The digest message for a patrol."""
        ...

    def post(self, message: dict[str, Any], slot: SlotKey, deadline: Deadline) -> str:
        """Post once (no blind retry of 5xx/connection errors), marked with the slot;
        returns Slack's ts. SlackUnavailable: it may have been accepted; SlackError: not."""
        ...

    def find(self, slot: SlotKey, deadline: Deadline) -> str | None:
        """The ts of this slot's message if Slack has it (SlackUnavailable when the
        history cannot be read)."""
        ...

    def report_failure(self, slot: SlotKey, reason: str | None, deadline: Deadline) -> None:
        """Best effort: tell the channel this slot was not posted, and why (None: its
        time ran out)."""
        ...


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempts within one slot and the backoff between them (doubling, with jitter); the
    slot's deadline ends them too, whichever comes first."""

    attempts: int = 12
    first: float = 2.0
    cap: float = 60.0


@dataclass
class _Progress:
    """How far one run of a slot got; kept across its attempts, so a retry resumes at the
    step that failed (a patrol is not run twice to post one message)."""

    due_checked: bool = False  # the slot is after the channel's schedule began
    slot: Slot | None = None
    run: PatrolRun | None = None
    message: dict[str, Any] | None = None
    attached: bool = False  # the run's snapshot is recorded on the claim
    maybe_posted: bool = False  # a post may have reached Slack: look before posting again
    posted_ts: str | None = None  # Slack's answer, until the database has recorded it


def _cause(exc: TransientError) -> str:
    """The metric label of a transient failure: which system did not answer."""
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, SlackError):
        return "slack"
    return "cluster" if isinstance(exc, ClusterError) else "other"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DigestJob:
    """Posts each digest slot of one (cluster, channel) series exactly once; see the module
    docstring."""

    def __init__(self, cluster: ClusterClient, store: Store, settings: Settings,
                 poster: DigestPoster, *, owner: str,
                 clock: Callable[[], datetime] = _utcnow, retry: Retry | None = None,
                 recorder: RecorderView | None = None) -> None:
        self.cluster = cluster
        self.recorder = recorder  # the cluster's flight recorder: a digest reconciles with it
        self.store = store
        self.settings = settings
        self.poster = poster
        self.owner = owner
        self.clock = clock
        self.retry = retry or Retry()
        self.trigger = digest_trigger(settings)
        self.lookback = max(settings.schedule.catchup, GRACE)
        self.started_at = clock()
        self.stopping = threading.Event()
        self._since: datetime | None = None
        self._running: Deadline | None = None  # the deadline of the latest slot run

    def stop(self) -> None:
        """Stop at once: no new attempt, call or post starts after this (the running
        slot's deadline is cancelled)."""
        self.stopping.set()
        if self._running is not None:
            self._running.cancel()

    # ---- scheduling -----------------------------------------------------------------
    @property
    def series(self) -> str:
        """This series' name: `cluster/channel` (the scheduler's job id)."""
        return f"{self.cluster.name}/{self.poster.channel}"

    def tick(self, workers: Workers | None = None) -> None:
        """Run the latest due slot (if any) under its deadline. On `workers` (the
        scheduler's slot pool) this returns when the slot is done, at its deadline, or as
        soon as the job is stopped — a slot left running is cancelled: it sends nothing
        more. Without `workers` the slot runs in the caller's thread (one-shot callers):
        its calls are still bounded by the deadline, and `stop()` still cancels it."""
        if self.stopping.is_set():
            return
        now = self.clock()
        slot_time = latest_fire(self.trigger, now, self.lookback)
        if slot_time is None:
            self._note_schedule_start()
            return
        slot_time = slot_time.astimezone(UTC)
        deadline = Deadline.after(self._budget(slot_time, now).total_seconds())
        self._running = deadline
        if self.stopping.is_set():  # stopped meanwhile: stop() may have missed it
            return
        if workers is None:
            self.run_slot(slot_time, deadline, if_due=True)
            return
        try:
            slot = workers.submit(self.run_slot, slot_time, deadline, if_due=True)
        except RuntimeStopped:
            return  # shutting down
        while True:
            try:
                slot.result(timeout=min(0.2, max(deadline.remaining(), 0.01)))
                return
            except FutureTimeout:
                pass
            except Exception:  # a bug: Workers logged it with its traceback
                return
            if self.stopping.is_set():
                deadline.cancel()
                log.info("digest slot %s of %s: stopping", slot_time.isoformat(),
                         self.series)
                return
            if deadline.passed:
                deadline.cancel()
                log.error("digest slot %s of %s: deadline passed; abandoned (it sends "
                          "nothing more; the next digest covers its window)",
                          slot_time.isoformat(), self.series)
                DIGESTS.labels("abandoned").inc()
                return

    def _budget(self, slot_time: datetime, now: datetime) -> timedelta:
        following = next_fire(self.trigger, now)
        if following is None:
            return MAX_RUN
        margin = min(timedelta(seconds=5), (following - slot_time) / 10)
        return min(MAX_RUN, max(following - now - margin, timedelta(seconds=1)))

    def _note_schedule_start(self) -> None:
        """Record when this channel's schedule began (this job's start) on the first tick,
        even when no slot is due; a database that does not answer now is asked again at
        the next tick (the value recorded is the start either way)."""
        try:
            self._schedule_since()
        except PatrolError as exc:
            log.warning("could not record when the digest schedule began: %s", exc)

    def _schedule_since(self) -> datetime:
        if self._since is None:
            self._since = self.store.slots.schedule_since(
                self.cluster.name, self.poster.channel, self.started_at)
        return self._since

    # ---- one slot -------------------------------------------------------------------
    def run_slot(self, slot_time: datetime, deadline: Deadline | None = None, *,
                 if_due: bool = False) -> None:
        """Post the slot unless it is finished; with `if_due` (what `tick` does), only if
        it was due — after this channel's schedule began (a fresh install does not post
        yesterday's slot). Transient failures are retried within the budget; on giving up
        the slot's window stays open and the channel is told once. Raises no
        PatrolError: every failure is decided here."""
        final = deadline or Deadline.after(MAX_RUN.total_seconds())
        work = final.sooner(min(NOTICE_TIME, final.remaining() / 10))
        key = SlotKey(self.cluster.name, self.poster.channel, slot_time.astimezone(UTC))
        progress = _Progress(due_checked=not if_due)
        error: PatrolError | None = None
        delay = self.retry.first
        attempt = 0
        while not self.stopping.is_set() and not work.passed:
            attempt += 1
            try:
                if self._attempt(key, progress, work):
                    return
                continue  # its time ran out before posting
            except TransientError as exc:
                error = exc
                RETRIES.labels(_cause(exc)).inc()
            except PatrolError as exc:
                error = exc
                break  # permanent: refused, forbidden, misconfigured — retrying cannot help
            if attempt >= self.retry.attempts or work.passed or self.stopping.is_set():
                break
            log.warning("digest slot %s of %s, attempt %d: %s; retrying",
                        key.scheduled_at.isoformat(), key.cluster, attempt, error)
            work.pause(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.retry.cap)
        self._give_up(progress, key, error, final)

    def _attempt(self, key: SlotKey, p: _Progress, work: Deadline) -> bool:
        """One pass from where the last one stopped; True when the slot needs nothing
        more from this run (posted, or someone else's, or never due), False when its
        time ran out before posting."""
        slots = self.store.slots
        if not p.due_checked:
            if key.scheduled_at <= self._schedule_since():
                return True
            p.due_checked = True
        if p.slot is None:
            self._reconcile_earlier(key, work)
            p.slot = self._claim(key)
            if p.slot is None:
                return True
            p.maybe_posted = p.slot.snapshot_id is not None  # an earlier attempt's post
        slot = p.slot
        if p.posted_ts is None and p.maybe_posted:
            p.posted_ts = self.poster.find(slot.key, work)
            p.maybe_posted = False
        if p.posted_ts is None:
            if p.run is None:
                p.run = self._patrol(work)
            if p.message is None:
                p.message = self.poster.render(p.run)
            if not p.attached:
                if p.run.snapshot is not None:
                    slots.attach_snapshot(slot, p.run.snapshot.id)
                p.attached = True
            if work.passed or self.stopping.is_set():
                return False
            p.maybe_posted = True
            p.posted_ts = self.poster.post(p.message, slot.key, work)
            p.maybe_posted = False
        slots.mark_posted(slot, p.posted_ts, self.clock())
        DIGESTS.labels("posted").inc()
        log.info("digest slot %s of %s posted (ts %s)", key.scheduled_at.isoformat(),
                 key.cluster, p.posted_ts)
        return True

    def _claim(self, key: SlotKey) -> Slot | None:
        """Claim the slot, or take over an unfinished claim of a process that is gone;
        None when it is finished or another replica's claim is live."""
        slots = self.store.slots
        slot = slots.claim(key, self.owner, self.clock())
        if slot is not None:
            return slot
        existing = slots.get(key)
        if existing is None or existing.finished:
            return None
        if existing.claimed_by == self.owner or existing.claimed_at >= self.started_at:
            return None  # a live claim: this job's own, or another replica's in progress
        slot = slots.take_over(existing, self.owner, self.clock())
        if slot is not None:
            log.info("digest slot %s: taking over the unfinished claim of %s (attempt %d)",
                     key.scheduled_at.isoformat(), existing.claimed_by, slot.attempts)
        return slot

    def _patrol(self, work: Deadline) -> PatrolRun:
        """The digest patrol, its snapshot pending until Slack confirms the post, bounded
        by what is left of the slot (PATROL_DEADLINE at most)."""
        limits = self.settings.limits
        settings = replace(self.settings, limits=replace(
            limits, patrol_deadline=max(min(limits.patrol_deadline, work.remaining()), 0.1)))
        return patrol(self.cluster, self.store, settings,
                      PatrolPlan.digest(confirmed_by_post=True, channel=self.poster.channel),
                      recorder=self.recorder)

    def _reconcile_earlier(self, key: SlotKey, work: Deadline) -> None:
        """Earlier unfinished slots whose post may have reached Slack: if it did, record
        it (its snapshot becomes the baseline, so this digest does not count it twice).
        Slack not answering is not a reason to hold this slot back: it is logged."""
        slots = self.store.slots
        for earlier in slots.unfinished(key.cluster, key.channel, self.clock() - self.lookback):
            if earlier.key.scheduled_at >= key.scheduled_at or earlier.snapshot_id is None:
                continue
            try:
                ts = self.poster.find(earlier.key, work)
            except SlackError as exc:
                log.warning("could not check Slack for the digest of %s: %s",
                            earlier.key.scheduled_at.isoformat(), exc)
                continue
            if ts is not None:
                slots.mark_posted(earlier, ts, self.clock())
                log.info("digest slot %s was posted (ts %s): recorded",
                         earlier.key.scheduled_at.isoformat(), ts)

    def _give_up(self, p: _Progress, key: SlotKey, error: PatrolError | None,
                 final: Deadline) -> None:
        """The slot ends unposted (or posted but not recorded): log it once, record the
        failure if the database answers, and tell the channel once — not when the slot
        was stopped or abandoned, and not when Slack itself failed."""
        when = key.scheduled_at.isoformat()
        reason = None if error is None else str(error)
        if p.posted_ts is not None:
            log.error("digest slot %s of %s posted (ts %s) but not recorded: %s (the next "
                      "run finds it in the channel history)", when, key.cluster,
                      p.posted_ts, reason)
            return
        if p.slot is None and error is None and self.stopping.is_set():
            return  # stopped before it began
        DIGESTS.labels("failed").inc()
        log.error("digest slot %s of %s not posted: %s (its window stays open for the next "
                  "digest)", when, key.cluster, reason or "its time ran out")
        if p.slot is not None:
            try:
                self.store.slots.mark_failed(p.slot, reason or "its time ran out")
            except StoreError as exc:
                log.error("could not record the failure of digest slot %s: %s", when, exc)
        if self.stopping.is_set() or final.cancelled.is_set():
            return
        if isinstance(error, SlackUnavailable):
            return  # Slack did not answer: it cannot be told either (logged above)
        self.poster.report_failure(key, reason, final)
