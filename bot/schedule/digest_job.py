"""The digest job: each scheduled slot is posted exactly once, or not at all.

Per slot (cluster, channel, scheduled time):
1. claim it in the database (`DigestSlots.claim`, an INSERT only one replica wins); a claim
   left unfinished by another process (killed, deposed, or failed) is taken over;
2. run the digest patrol, its snapshot recorded as *pending*, and attach it to the claim —
   from then on a message may exist in Slack;
3. post with a slot marker in the message metadata; Slack's answer is the only proof. When
   the answer is lost (5xx, timeout, dropped connection) the job looks for the marker in
   the channel's history before posting again, so "accepted, then 500" posts once;
4. on Slack's ts: the slot is posted and its snapshot becomes the next digest's baseline.
   Failures retry within the slot (bounded backoff); then the slot stays unfinished and
   the next posted digest covers its window too.

`tick()` is what APScheduler runs at each fire time and once at start-up (catch-up): it
picks the latest slot within DIGEST_CATCHUP (several missed slots → one post) and runs it
in a daemon thread under a deadline (before the next fire), so a hung patrol or Slack call
never blocks later slots nor shutdown.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter

from bot.cluster.client import ClusterClient
from bot.errors import PatrolError, SlackError, SlackUnavailable, StoreError, UsageError
from bot.runner import PatrolRun, run_patrol
from bot.schedule.daily import digest_trigger, latest_fire, next_fire
from bot.settings import Settings
from bot.store import Store
from bot.store.slots import Slot, SlotKey

log = logging.getLogger("restart_patrol.digest")
DIGESTS = Counter("restart_patrol_digests", "Digest slots by outcome", ["outcome"])
GRACE = timedelta(minutes=10)  # a scheduled run this late still posts its slot
MAX_RUN = timedelta(minutes=30)


class DigestPoster(Protocol):
    """Slack's side of the digest (implemented in bot.slack.digests)."""

    channel: str

    def render(self, run: PatrolRun) -> dict[str, Any]:
        """The digest message for a patrol."""
        ...

    def post(self, message: dict[str, Any], slot: SlotKey) -> str:
        """Post once (no blind retry of 5xx/connection errors), marked with the slot;
        returns Slack's ts. SlackUnavailable: it may have been accepted; SlackError: not."""
        ...

    def find(self, slot: SlotKey) -> str | None:
        """The ts of this slot's message if Slack has it (SlackUnavailable when the
        history cannot be read)."""
        ...

    def report_failure(self, reason: str) -> None:
        """Best effort: tell the channel the digest could not be produced, and why."""
        ...


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempts within one slot and the backoff between them (doubling, with jitter)."""

    attempts: int = 5
    first: float = 2.0
    cap: float = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DigestJob:
    """Posts each digest slot of one channel exactly once; see the module docstring."""

    def __init__(self, cluster: ClusterClient, store: Store, settings: Settings,
                 poster: DigestPoster, *, owner: str,
                 clock: Callable[[], datetime] = _utcnow, retry: Retry | None = None) -> None:
        self.cluster = cluster
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

    def stop(self) -> None:
        """Stop at once: no new attempt or post starts after this."""
        self.stopping.set()

    # ---- scheduling -----------------------------------------------------------------
    def tick(self) -> None:
        """Run the latest due slot (if any) under a deadline; returns by the deadline or
        as soon as the job is stopped, abandoning a hung attempt (it cannot post later:
        every post checks the deadline first)."""
        if self.stopping.is_set():
            return
        now = self.clock()
        slot_time = self.due_slot(now)
        if slot_time is None:
            return
        deadline = time.monotonic() + self._budget(slot_time, now).total_seconds()
        done = threading.Event()

        def work() -> None:
            try:
                self.run_slot(slot_time, deadline)
            except Exception:
                log.exception("digest slot %s failed unexpectedly", slot_time.isoformat())
            finally:
                done.set()

        threading.Thread(target=work, daemon=True, name="digest-slot").start()
        while not done.wait(0.2):
            if self.stopping.is_set():
                log.info("digest slot %s: stopping", slot_time.isoformat())
                return
            if time.monotonic() >= deadline:
                log.error("digest slot %s: deadline passed; abandoned (the next digest "
                          "covers its window)", slot_time.isoformat())
                DIGESTS.labels("abandoned").inc()
                return

    def due_slot(self, now: datetime) -> datetime | None:
        """The latest fire time within the look-back, if this channel's schedule had
        begun by then (a fresh install does not post yesterday's slot)."""
        since = self._schedule_since()
        slot_time = latest_fire(self.trigger, now, self.lookback)
        if slot_time is None or slot_time <= since:
            return None
        return slot_time.astimezone(UTC)

    def _schedule_since(self) -> datetime:
        if self._since is None:
            self._since = self.store.slots.schedule_since(
                self.cluster.name, self.poster.channel, self.started_at)
        return self._since

    def _budget(self, slot_time: datetime, now: datetime) -> timedelta:
        following = next_fire(self.trigger, now)
        if following is None:
            return MAX_RUN
        margin = min(timedelta(seconds=5), (following - slot_time) / 10)
        return min(MAX_RUN, max(following - now - margin, timedelta(seconds=1)))

    # ---- one slot -------------------------------------------------------------------
    def run_slot(self, slot_time: datetime, deadline: float | None = None) -> None:
        """Claim (or take over) the slot and post it, unless it is finished."""
        key = SlotKey(self.cluster.name, self.poster.channel, slot_time.astimezone(UTC))
        slots = self.store.slots
        self._reconcile_earlier(key)
        slot = slots.claim(key, self.owner, self.clock())
        if slot is None:
            existing = slots.get(key)
            if existing is None or existing.finished:
                return
            if existing.claimed_by == self.owner or existing.claimed_at >= self.started_at:
                return  # a live claim: this job's own, or another replica's in progress
            slot = slots.take_over(existing, self.owner, self.clock())
            if slot is None:
                return
            log.info("digest slot %s: taking over the unfinished claim of %s (attempt %d)",
                     key.scheduled_at.isoformat(), existing.claimed_by, slot.attempts)
        self._complete(slot, deadline)

    def _reconcile_earlier(self, key: SlotKey) -> None:
        """Earlier unfinished slots whose post may have reached Slack: if it did, record
        it (its snapshot becomes the baseline, so this digest does not count it twice)."""
        slots = self.store.slots
        for earlier in slots.unfinished(key.cluster, key.channel, self.clock() - self.lookback):
            if earlier.key.scheduled_at >= key.scheduled_at or earlier.snapshot_id is None:
                continue
            try:
                ts = self.poster.find(earlier.key)
            except SlackError as exc:
                log.warning("could not check Slack for the digest of %s: %s",
                            earlier.key.scheduled_at.isoformat(), exc)
                continue
            if ts is not None:
                slots.mark_posted(earlier, ts, self.clock())
                log.info("digest slot %s was posted (ts %s): recorded",
                         earlier.key.scheduled_at.isoformat(), ts)

    def _may_continue(self, deadline: float | None) -> bool:
        return not self.stopping.is_set() and (deadline is None or time.monotonic() < deadline)

    def _complete(self, slot: Slot, deadline: float | None) -> None:
        slots = self.store.slots
        when = slot.key.scheduled_at.isoformat()
        uncertain = slot.snapshot_id is not None  # an earlier attempt may have posted
        run: PatrolRun | None = None
        message: dict[str, Any] | None = None
        error = "stopped before posting"
        delay = self.retry.first
        for attempt in range(1, self.retry.attempts + 1):
            if not self._may_continue(deadline):
                break
            try:
                if uncertain:
                    found = self.poster.find(slot.key)
                    if found is not None:
                        self._record_posted(slot, found)
                        return
                    uncertain = False
                if run is None or message is None:
                    run = run_patrol(self.cluster, self.store, self.settings, digest_run=True,
                                     confirm_later=True)
                    message = self.poster.render(run)
                    if run.snapshot is not None:
                        slots.attach_snapshot(slot, run.snapshot.id)
                if not self._may_continue(deadline):
                    break
                ts = self.poster.post(message, slot.key)
            except SlackUnavailable as exc:
                uncertain = True
                error = str(exc)
            except (UsageError, SlackError) as exc:
                error = str(exc)
                break  # Slack refused (or a setting is wrong): retrying cannot help
            except PatrolError as exc:  # the cluster or the database: may recover
                error = str(exc)
            else:
                self._record_posted(slot, ts)
                return
            log.warning("digest slot %s, attempt %d/%d: %s", when, attempt,
                        self.retry.attempts, error)
            if attempt < self.retry.attempts:
                self._pause(delay, deadline)
                delay = min(delay * 2, self.retry.cap)
        log.error("digest slot %s not posted: %s (its window stays open for the next "
                  "digest)", when, error)
        DIGESTS.labels("failed").inc()
        try:
            slots.mark_failed(slot, error)
        except StoreError as exc:
            log.error("could not record the failure: %s", exc)
        if run is None and not self.stopping.is_set():
            self.poster.report_failure(error)

    def _record_posted(self, slot: Slot, ts: str) -> None:
        """Slack confirmed: record it (retried; if the database stays down, the slot stays
        unfinished with its snapshot attached, and the next run finds the message)."""
        delay = self.retry.first
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self.store.slots.mark_posted(slot, ts, self.clock())
            except StoreError as exc:
                log.warning("digest posted (ts %s) but not recorded yet: %s", ts, exc)
                if attempt < self.retry.attempts:
                    self._pause(delay, None)
                    delay = min(delay * 2, self.retry.cap)
                continue
            DIGESTS.labels("posted").inc()
            log.info("digest slot %s posted (ts %s)", slot.key.scheduled_at.isoformat(), ts)
            return

    def _pause(self, delay: float, deadline: float | None) -> None:
        wait = delay * random.uniform(0.8, 1.2)
        if deadline is not None:
            wait = min(wait, max(deadline - time.monotonic(), 0))
        self.stopping.wait(wait)
