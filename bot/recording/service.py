"""The flight recorder of one cluster, as an application service in stages:

    watch (bot.cluster.podwatch) → detect (bot.recording.detect) → ledger → capture
    (bot.recording.capture) → persist → notify

- **watch**: one thread per scope (`recorder-<cluster>-watch-<ns>`) lists, then watches;
  it only decodes and hands pods to the detector, which compares restart counts in memory
  and puts what it found in the ledger's bounded inbox (a full inbox slows the watch; it
  never drops).
- **ledger** (`recorder-<cluster>-ledger`): commits what was found, batched, in one
  transaction each: counts (never lowered), pending captures, pods gone, scopes listed
  (`bot.store.ledger`). A restart is durable from here on. A failed commit (the database
  blinked) is retried with backoff; nothing is dropped meanwhile. Committed captures go to
  the capture workers' bounded queues; one that does not fit is recorded at once from its
  termination alone ("dropped": counted, not described).
- **capture** (`recorder-<cluster>-capture-N`, RECORDER_WORKERS, a pod always on the same
  worker): describe, then persist the crash row, which completes its pending capture in
  the same transaction; a store failure is retried with backoff until it succeeds or the
  recorder stops (then it stays pending and is resumed by the next start).
- **notify** (`recorder-<cluster>-notify`): new fingerprints to `on_new_crash` (Slack), so a
  slow Slack never holds a capture.

The supervisor (`recorder-<cluster>`) reads the ledger's baseline and the pending captures
(retrying while the database is down), resumes them, starts the watches, then beats the
heartbeat and prunes once a day: evidence first, compact count rows kept for
`keep_counts_for` (the longest window a digest or a chart may count), so retention never
changes a count. Every thread belongs to the service's own child runtime; `stop()` ends
them within the deadline, committing what was already found first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import msgspec
from prometheus_client import Counter, Gauge, Histogram

from bot.cluster import wire
from bot.cluster.client import ClusterClient
from bot.cluster.podwatch import PodWatch
from bot.errors import PatrolError, StoreError
from bot.patrol.history import CrashRecord
from bot.patrol.model import KnownPod
from bot.recording.capture import Capturer, Described, PriorDiagnosis
from bot.recording.detect import Count, Detector, Found, Gone, Job, Listed, seed_group
from bot.runtime import Runtime
from bot.settings import Settings, namespaces_for
from bot.store import Store
from bot.store.ledger import LedgerBatch, Pending

log = logging.getLogger("restart_patrol.recorder")

HEARTBEAT = 30.0  # seconds between recorder_state heartbeats
PRUNE_EVERY = timedelta(days=1)
BATCH = 1_000  # findings per ledger commit (short write locks: SQLite has one writer)
# Findings waiting for the ledger (then the watches wait): two batches. A crash loop's
# round at 100k pods finds ~28k restarts at once; 20k waiting jobs were ~26 MB of small
# objects, and what the detector kept meanwhile pinned their pools after they went.
INBOX = 2 * BATCH
RETRY_FIRST, RETRY_MAX = 0.5, 10.0  # seconds: backoff of database retries
NOTIFY_QUEUE = 10_000

_L = ["cluster"]
RESTARTS = Counter("restart_patrol_recorder_restarts", "Container restarts recorded", _L)
CAPTURES = Counter("restart_patrol_recorder_captures", "Crash captures by outcome",
                   [*_L, "result"])
DROPPED_CAPTURES = Counter("restart_patrol_recorder_dropped_captures",
                           "Captures dropped because the capture queue was full", _L)
API_REQUESTS = Counter("restart_patrol_recorder_api_requests",
                       "API requests made for captures", [*_L, "kind"])
RELISTS = Counter("restart_patrol_recorder_relists", "Pod lists after the first", _L)
STORE_RETRIES = Counter("restart_patrol_recorder_store_retries",
                        "Recorder writes retried after a database failure", _L)
QUEUE_DEPTH = Gauge("restart_patrol_recorder_queue_depth", "Captures waiting", _L)
PENDING = Gauge("restart_patrol_recorder_pending",
                "Restarts found and not yet stored as crashes (inbox, queues, retries)", _L)
WATCHED_PODS = Gauge("restart_patrol_recorder_watched_pods", "Pods the recorder follows", _L)
CAPTURE_SECONDS = Histogram("restart_patrol_recorder_capture_seconds",
                            "From committing a restart to its crash row stored", _L,
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

NewCrash = Callable[[CrashRecord], None]
T = TypeVar("T")
_jobs = msgspec.json.Decoder(Job)
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """What the recorder did in this run (the same figures as /metrics, per cluster)."""

    restarts: int
    captures: dict[str, int]
    api_requests: dict[str, int]
    pods: int
    pending: int  # found, not yet stored as a crash
    relists: int
    failure: str | None
    resource_version: int  # every scope's pods delivered up to this version


@dataclass(slots=True)
class _Tally:
    captures: dict[str, int] = field(default_factory=dict)
    api_requests: dict[str, int] = field(default_factory=dict)


class RecorderService:
    """The flight recorder of one cluster (see the module docstring); a runtime service."""

    def __init__(self, cluster: ClusterClient, store: Store, settings: Settings,
                 runtime: Runtime, *, on_new_crash: NewCrash | None = None,
                 keep_counts_for: timedelta = timedelta(days=14), watch_seconds: int = 300,
                 heartbeat: float = HEARTBEAT) -> None:
        self.cluster = cluster
        self.store = store
        self.settings = settings
        self.parent = runtime
        self.on_new_crash = on_new_crash
        self.keep_counts_for = keep_counts_for
        self.heartbeat = heartbeat
        self.name = f"recorder-{cluster.name}"
        scopes = namespaces_for(settings, cluster.name)
        self.scopes: tuple[str | None, ...] = tuple(scopes) if scopes else (None,)
        self._stop = threading.Event()
        self._counting = threading.Lock()  # _outstanding and _progress
        self._inbox: queue.Queue[Found] = queue.Queue(maxsize=INBOX)
        workers = max(1, settings.recorder.workers)
        per_worker = max(1, settings.recorder.queue // workers)
        self._queues: list[queue.Queue[tuple[Pending, Job]]] = [
            queue.Queue(maxsize=per_worker) for _ in range(workers)]
        self._notify: queue.Queue[CrashRecord] = queue.Queue(maxsize=NOTIFY_QUEUE)
        self._outstanding = 0  # found or pending, not yet stored (RecorderStats.pending)
        self._progress: dict[str | None, int] = {}
        self._unstored: list[tuple[Pending, Job]] = []  # dropped records to store again
        # the install's seeds waiting to be described, by group: their pending capture ids
        # only (a big cluster's install has tens of thousands; the jobs wait in the ledger)
        self._seeds: dict[tuple[str, str, str, str], list[int]] = {}
        self._seeds_waiting = threading.Event()
        self._unstored_at = 0.0  # monotonic time of the next try
        self._skew = timedelta(0)
        self._tally = _Tally()
        self._lock = threading.Lock()
        self.failure: str | None = None
        self._since: datetime | None = None
        self.detector = Detector(self.scopes, self._found, self._progressed,
                                 relisted=RELISTS.labels(cluster.name).inc)
        self.watches = [PodWatch(cluster, ns, self.detector, watch_seconds=watch_seconds)
                        for ns in self.scopes]
        crashes = store.crashes
        self.capturer = Capturer(
            cluster, settings,
            PriorDiagnosis(crashes.last_described, crashes.images_since),
            count=self._api_request, clock=self.server_clock, stopping=self._stop)
        self._runtime: Runtime | None = None
        self._metric = cluster.name

    # ---- the clock -------------------------------------------------------------------
    def server_clock(self) -> datetime:
        """The API server's clock, from the last measured skew (no request). Used to
        stamp rows, never to decide whether a restart happened."""
        return datetime.now(UTC) + self._skew

    def _measure_clock(self) -> datetime:
        now = self.cluster.server_now()
        self._skew = now - datetime.now(UTC)
        return now

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the stages and return at once (the watches start once the ledger's
        baseline is read)."""
        # The stages' own runtime, owned by this service (stopped by `stop()`, which the
        # parent runtime calls in its place in the order).
        rt = self._runtime = Runtime(f"{self.parent.name}/{self.name}",
                                     stop_seconds=self.parent.stop_seconds)
        prefix = self.name
        rt.thread(f"{prefix}-ledger", self._ledger)
        for i, q in enumerate(self._queues):
            rt.thread(f"{prefix}-capture-{i}", partial(self._capture, q))
        rt.thread(f"{prefix}-notify", self._notifier)
        rt.thread(f"{prefix}-seeds", self._seeder)
        rt.thread(prefix, self._supervise)

    def stop(self, deadline: float) -> None:
        """Stop watching; commit what was already found (it is pending in the database
        then, resumed by the next start); stop the threads by `deadline`."""
        self._stop.set()
        for w in self.watches:
            w.stop()
        if self._runtime is not None:
            self._runtime.stop_by(deadline)

    def _supervise(self) -> None:
        """Baseline and pending captures (retried while the database or the cluster is
        down), then the watches, then the heartbeat and the daily prune."""
        assert self._runtime is not None
        delay = RETRY_FIRST
        while not self._stop.is_set():
            try:
                now = self._measure_clock()
                baseline = self.store.ledger.baseline(
                    self.cluster.name, ["" if s is None else s for s in self.scopes])
                pending = self.store.ledger.pending(self.cluster.name)
                self.store.crashes.mark_started(self.cluster.name, now)
                self.failure = None
                break
            except PatrolError as exc:
                self.failure = str(exc)
                log.error("cluster %s: recorder cannot start: %s; retrying in %.0f s",
                          self.cluster.name, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
        else:
            return
        self.detector.baseline = baseline
        if pending:
            log.info("cluster %s: resuming %d pending captures", self.cluster.name,
                     len(pending))
            with self._counting:
                self._outstanding += len(pending)
            self._dispatch([(p, _jobs.decode(p.job)) for p in pending])
        for watch in self.watches:
            if self._stop.is_set():
                return
            self._runtime.thread(f"{self.name}-watch-{watch.namespace or 'all'}", watch.run)
        while not self._stop.wait(self.heartbeat):
            self.housekeep()

    # ---- what others read --------------------------------------------------------------
    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(
                restarts=self.detector.restarts, captures=dict(self._tally.captures),
                api_requests=dict(self._tally.api_requests), pods=self.detector.pods(),
                pending=self._outstanding, relists=self.detector.relists,
                failure=self.failure,
                resource_version=min((self._progress.get(ns, 0) for ns in self.scopes),
                                     default=0))

    def watching(self) -> bool:
        """Every scope listed and watched now: counts can be read from the record."""
        return (not self._stop.is_set() and self.detector.listed_all()
                and all(not w.stopping.is_set() for w in self.watches))

    def watching_since(self) -> datetime | None:
        """Since when (API server clock) this run has followed every scope; None if not
        (yet). Restarts before it were counted on the first list, by restart counts."""
        return self._since if self.watching() else None

    def present(self, pods: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (namespace, pod uid) are pods the recorder follows now."""
        return self.detector.present(iter(pods))

    # ---- what a digest counts from (bot.answers.recorded_digest.RecorderCounts) -------
    def mark(self) -> str | None:
        """Where the record of changes stands now; None while not watching."""
        return self.detector.mark() if self.watching() else None

    def changed_since(self, mark: str) -> tuple[list[KnownPod], list[tuple[str, str]]] | None:
        """The pods with restarts whose counts changed after `mark` and the pods gone
        after it, or None: not watching now, or the mark is of another run or from before
        a relist (the changes between are not known)."""
        if not self.watching():
            return None
        found = self.detector.changed_since(mark)
        return found if found is not None and self.watching() else None

    def restarting(self, namespaces: Iterable[str]) -> list[KnownPod]:
        """Every followed pod of `namespaces` with a restart in its lifetime."""
        return self.detector.restarting(namespaces)

    def census(self) -> dict[str, tuple[int, int]]:
        """Per namespace, the pods followed now and their distinct controllers."""
        return self.detector.census()

    def known_owner(self, kind: str, namespace: str, name: str) -> wire.ObjectMeta | None:
        """A ReplicaSet's or Job's metadata as the captures last read it (no request)."""
        return self.capturer.known_owner(kind, namespace, name)

    # ---- detect → ledger -------------------------------------------------------------
    def _found(self, item: Found) -> None:
        """Runs on a watch thread: hand over, waiting while the ledger is full."""
        if isinstance(item, Job):
            RESTARTS.labels(self._metric).inc(item.restarts)
        with self._counting:
            self._outstanding += 1
        while True:
            try:
                self._inbox.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._stop.is_set():  # not committed: the next start counts it again
                    self._done(1)
                    return

    def _progressed(self, scope: str | None, resource_version: int) -> None:
        with self._counting:
            self._progress[scope] = max(self._progress.get(scope, 0), resource_version)
            if self._since is None and self.detector.listed_all():
                self._since = self.server_clock()
                pods = self.detector.pods()
                WATCHED_PODS.labels(self._metric).set(pods)
                log.info("cluster %s: recorder listed %d pods in %s; watching",
                         self.cluster.name, pods,
                         ", ".join(s or "all namespaces" for s in self.scopes))
                PENDING.labels(self._metric).set(self._outstanding)

    def _done(self, n: int) -> None:
        with self._counting:
            self._outstanding -= n
        PENDING.labels(self._metric).set(self._outstanding)

    def _ledger(self) -> None:
        """Commit what the detector found, in batches; dispatch the captures."""
        while True:
            items = self._take()
            if not items:
                if self._stop.is_set():
                    return
                self._retry_unstored()
                continue
            batch = LedgerBatch()
            jobs: dict[tuple[str, str, int], Job] = {}
            for item in items:
                if isinstance(item, Job):
                    batch.count(item.namespace, item.uid, item.container, item.restart_count)
                    batch.pending.append(Pending(item.uid, item.container,
                                                 item.restart_count, item.restarts,
                                                 _encode(item)))
                    jobs[(item.uid, item.container, item.restart_count)] = item
                elif isinstance(item, Count):
                    batch.count(item.namespace, item.uid, item.container, item.restart_count)
                elif isinstance(item, Gone):
                    batch.gone.add(item.uid)
                elif isinstance(item, Listed):
                    batch.scopes.add(item.scope)
            stored = self._retrying("record restarts", partial(self._commit, batch),
                                    final=True)
            if stored is None:  # stopped with the database down: the next list recounts
                self._done(len(items))
                return
            with self._counting:  # each stored pending capture stays outstanding
                self._outstanding += len(stored)
            self._done(len(items))
            self._dispatch([(p, jobs[(p.pod_uid, p.container, p.restart_count)])
                            for p in stored])
            WATCHED_PODS.labels(self._metric).set(self.detector.pods())
            self._retry_unstored()

    def _commit(self, batch: LedgerBatch) -> list[Pending]:
        return self.store.ledger.commit(self.cluster.name, batch, self.server_clock())

    def _take(self) -> list[Found]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        items = [first]
        while len(items) < BATCH:
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return items

    def _dispatch(self, captures: list[tuple[Pending, Job]]) -> None:
        """To the capture workers (a pod always on the same one); what does not fit is
        recorded from its termination alone."""
        for pending, job in captures:
            if self._stop.is_set():  # pending in the database: the next start resumes it
                self._done(1)
                continue
            if job.seed and pending.id is not None:  # the install's baseline: its own
                with self._lock:                      # worker, never dropped
                    self._seeds.setdefault(_group(job), []).append(pending.id)
                self._seeds_waiting.set()
                continue
            q = self._queues[hash(job.uid) % len(self._queues)]
            try:
                q.put_nowait((pending, job))
            except queue.Full:
                DROPPED_CAPTURES.labels(self._metric).inc()
                self._store_dropped(pending, job)
        QUEUE_DEPTH.labels(self._metric).set(sum(q.qsize() for q in self._queues))

    def _store_dropped(self, pending: Pending, job: Job) -> None:
        try:
            self._persist(Described(self.capturer.dropped(job), None), pending)
        except StoreError as exc:
            log.warning("cluster %s: could not store a dropped capture: %s; will retry",
                        self.cluster.name, exc)
            with self._lock:
                self._unstored.append((pending, job))

    def _retry_unstored(self) -> None:
        with self._lock:
            if not self._unstored or time.monotonic() < self._unstored_at:
                return
            self._unstored_at = time.monotonic() + RETRY_MAX / 2
            waiting, self._unstored = self._unstored, []
        for pending, job in waiting:
            if self._stop.is_set():
                self._done(1)
                continue
            self._store_dropped(pending, job)

    # ---- capture → persist → notify ---------------------------------------------------
    def _seeder(self) -> None:
        """Describe the install's seeds one at a time, in the order found: a big cluster's
        install does not hold up the live captures, and no seed is dropped (each is a
        pending capture until described)."""
        while not self._stop.is_set():
            with self._lock:
                first = next(iter(self._seeds), None)
                items = self._seeds.pop(first) if first is not None else []
                if not items:
                    self._seeds_waiting.clear()
            if not items:
                self._seeds_waiting.wait(0.5)
                continue
            self._describe_seeds(items)

    def _describe_seeds(self, ids: list[int]) -> None:
        """Read these seeds back from the ledger and describe them, in order; one stored
        meanwhile is done. Stopped with the database down: they stay pending (the next
        start resumes them)."""
        if not ids:
            return
        found = self._retrying("read the install's seeds",
                               partial(self.store.ledger.pending_of, self.cluster.name, ids))
        if found is None:
            self._done(len(ids))
            return
        if len(found) < len(ids):
            self._done(len(ids) - len(found))
        for pending in found:
            self._describe_and_persist(pending, _jobs.decode(pending.job))

    def _capture(self, q: queue.Queue[tuple[Pending, Job]]) -> None:
        while not self._stop.is_set():
            try:
                pending, job = q.get(timeout=0.5)
            except queue.Empty:
                continue
            with self._lock:  # its group's seed first: "new" is judged against the install
                seeds = self._seeds.pop(_group(job), [])
            self._describe_seeds(seeds)
            self._describe_and_persist(pending, job)
            QUEUE_DEPTH.labels(self._metric).set(sum(x.qsize() for x in self._queues))

    def _describe_and_persist(self, pending: Pending, job: Job) -> None:
        began = time.monotonic()
        try:
            described = self.capturer.describe(job)
        except Exception:  # one bad capture must not stop the worker, nor lose a count
            log.exception("cluster %s: capture of %s/%s [%s] failed", self.cluster.name,
                          job.namespace, job.pod, job.container)
            described = Described(self.capturer.plain(job, "failed"), None)
        stored = self._retrying("record a crash",
                                partial(self._persist, described, pending))
        if stored is not None:
            CAPTURE_SECONDS.labels(self._metric).observe(time.monotonic() - began)
        else:  # stopped with the database down: still pending, resumed next start
            self._done(1)

    def _persist(self, described: Described, pending: Pending) -> bool:
        """Store the crash row (completing its pending capture), count it, and hand a
        new fingerprint to the notifier. Raises StoreError."""
        record = described.record
        stored = self.store.crashes.record(record, described.log, pending_id=pending.id)
        with self._lock:
            tally = self._tally.captures
            tally[record.capture] = tally.get(record.capture, 0) + 1
        CAPTURES.labels(self._metric, record.capture).inc()
        if stored is not None and stored.is_new and self.on_new_crash is not None:
            try:
                self._notify.put_nowait(stored)
                with self._counting:
                    self._outstanding += 1
            except queue.Full:
                log.error("cluster %s: alert queue full; not alerting on %s/%s",
                          self.cluster.name, stored.namespace, stored.workload_name)
        self._done(1)
        return True

    def _notifier(self) -> None:
        while not self._stop.is_set():
            try:
                crash = self._notify.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if self.on_new_crash is not None:
                    self.on_new_crash(crash)
            except Exception:  # Slack's failures are the alerter's to report
                log.exception("cluster %s: alerting on a new crash failed", self.cluster.name)
            finally:
                self._done(1)

    def _retrying(self, what: str, write: Callable[[], T], *, final: bool = False
                  ) -> T | None:
        """`write()` until it succeeds; a StoreError is retried with backoff (logged once
        per outage). None when the recorder stopped first (`final`: one last try)."""
        delay = RETRY_FIRST
        failing = False
        while True:
            try:
                result = write()
                if failing:
                    log.info("cluster %s: the recorder could %s again", self.cluster.name,
                             what)
                return result
            except StoreError as exc:
                STORE_RETRIES.labels(self._metric).inc()
                if not failing:
                    log.error("cluster %s: could not %s: %s; retrying with backoff",
                              self.cluster.name, what, exc)
                failing = True
                if self._stop.is_set() and not final:
                    return None
                if self._stop.wait(delay):
                    if not final:
                        return None
                    final = False  # the one last try after the stop
                delay = min(delay * 2, RETRY_MAX)

    def _api_request(self, kind: str) -> None:
        with self._lock:
            table = self._tally.api_requests
            table[kind] = table.get(kind, 0) + 1
        API_REQUESTS.labels(self._metric, kind).inc()

    # ---- housekeeping ------------------------------------------------------------------
    def housekeep(self) -> None:
        """Heartbeat; prune once a day."""
        try:
            now = self._measure_clock()
            pruned = self.store.crashes.mark_seen(self.cluster.name, now)
            if pruned is None or now - pruned >= PRUNE_EVERY:
                self.prune(now)
        except PatrolError as exc:
            log.error("cluster %s: recorder bookkeeping failed: %s", self.cluster.name, exc)
        QUEUE_DEPTH.labels(self._metric).set(sum(q.qsize() for q in self._queues))
        WATCHED_PODS.labels(self._metric).set(self.detector.pods())
        PENDING.labels(self._metric).set(self._outstanding)

    def prune(self, now: datetime | None = None) -> tuple[int, int]:
        """CRASH_RETENTION_DAYS and CRASH_RETENTION_PER_WORKLOAD, now; count rows of the
        last `keep_counts_for` stay (their evidence goes). Returns (removed, emptied)."""
        now = now or self.server_clock()
        removed, emptied = self.store.crashes.prune(
            self.cluster.name, now,
            older_than=now - timedelta(days=self.settings.store.crash_retention_days),
            per_workload=self.settings.store.crash_retention_per_workload,
            keep_counts_since=now - self.keep_counts_for)
        if removed or emptied:
            log.info("cluster %s: pruned %d recorded crashes; emptied the evidence of %d "
                     "kept for their counts", self.cluster.name, removed, emptied)
        return removed, emptied


def _group(job: Job) -> tuple[str, str, str, str]:
    """The seed group of a job (`seed_group`)."""
    return seed_group(job.namespace, job.owner, job.pod, job.container)
