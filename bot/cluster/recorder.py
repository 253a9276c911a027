"""The flight recorder: watches pods and stores every container restart as it happens,
with the termination, the redacted previous-log tail and the pod's warning events, and
its diagnosis — so later questions have answers after kubelet and events have forgotten.

Restarts are found by comparing each container's restartCount, per (pod uid, container),
with what the recorder knew: a watch event, a re-list after 410 Gone, or the first list
after a start (against the counts already recorded) all go through the same comparison,
so nothing is counted twice and nothing in between is lost. The database refuses a second
row for the same (uid, container, restartCount), which makes a leader hand-over safe too.

Bounded: per-worker capture queues (a pod always lands on the same worker, so its captures
stay in order) with a total cap; a capture that does not fit is still counted, without log
or events ("dropped", in /metrics and the digest). A crash-looping container's log and
events are fetched at most once per RECORDER_LOG_INTERVAL_MINUTES unless its exit code or reason
changed; the restarts in between are counted and carry the last diagnosis. Per pod only
its container names and restart counts are kept in memory.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from bot.cluster import wire
from bot.cluster.client import ClusterClient
from bot.cluster.evidence import ContainerTarget, read_evidence
from bot.cluster.observe import resolve_workload
from bot.cluster.podwatch import PodWatch, WatchedPod
from bot.diagnosis.engine import EventNote
from bot.diagnosis.exit_codes import decode_termination
from bot.diagnosis.redaction import redact
from bot.errors import ClusterError, PatrolError
from bot.patrol.gc_pause import paused_gc
from bot.patrol.history import (
    CAPTURED,
    DROPPED,
    FAILED,
    NO_LOG,
    RATE_LIMITED,
    CrashRecord,
    rollout_before,
)
from bot.patrol.model import ContainerKind, WorkloadRef
from bot.patrol.timestamps import parse_api_time
from bot.settings import Settings, namespaces_for

log = logging.getLogger("restart_patrol.recorder")

HEARTBEAT = 30.0  # seconds between recorder_state heartbeats
PRUNE_EVERY = timedelta(days=1)
MAX_EVENTS = 10
OWNER_CACHE = 20_000
SHARED_TUPLES = 10_000  # distinct name/count tuples kept once and shared by many pods

RESTARTS = Counter("restart_patrol_recorder_restarts", "Container restarts recorded")
CAPTURES = Counter("restart_patrol_recorder_captures", "Crash captures by outcome", ["result"])
DROPPED_CAPTURES = Counter("restart_patrol_recorder_dropped_captures",
                           "Captures dropped because the capture queue was full")
API_REQUESTS = Counter("restart_patrol_recorder_api_requests",
                       "API requests made for captures", ["kind"])
RELISTS = Counter("restart_patrol_recorder_relists", "Pod lists after 410 Gone")
QUEUE_DEPTH = Gauge("restart_patrol_recorder_queue_depth", "Captures waiting")
WATCHED_PODS = Gauge("restart_patrol_recorder_watched_pods", "Pods the recorder follows")
CAPTURE_SECONDS = Histogram("restart_patrol_recorder_capture_seconds",
                            "From seeing a restart to its row stored",
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

NewCrash = Callable[[CrashRecord], None]
_intern = sys.intern


class CrashSink(Protocol):
    """Where the recorder keeps what it sees (bot.store.crashes.CrashStore)."""

    def record(self, crash: CrashRecord, log: str | None = None) -> CrashRecord | None: ...

    def watermarks(self, cluster: str, namespaces: Collection[str] = ()) -> dict[
        tuple[str, str], int]: ...

    def last_described(self, cluster: str, pod_uid: str,
                       container: str) -> CrashRecord | None: ...

    def images_since(self, cluster: str, namespace: str, kind: str, name: str,
                     since: datetime) -> list[tuple[datetime, str | None]]: ...

    def mark_started(self, cluster: str, now: datetime) -> datetime | None: ...

    def mark_seen(self, cluster: str, now: datetime) -> datetime | None: ...

    def prune(self, cluster: str, now: datetime, *, older_than: datetime,
              per_workload: int) -> int: ...


@dataclass(frozen=True, slots=True)
class _Capture:
    """One restart to describe: the few pod fields a capture needs, nothing more."""

    namespace: str
    pod: str
    uid: str
    container: str
    kind: ContainerKind
    restart_count: int
    restarts: int
    term: wire.Terminated | None
    image: str
    node: str | None
    owner: wire.OwnerReference | None
    created: str | None
    template_hash: str | None
    fetch: bool
    seen: float  # monotonic time the restart was seen
    memory_limit: str | None = None
    has_liveness_probe: bool = False
    disruption_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Fetched:
    at: datetime
    exit_code: int | None
    reason: str | None


_PodState = tuple[tuple[str, ...], tuple[int, ...]]


def _statuses(pod: WatchedPod) -> Iterator[tuple[wire.ContainerStatus, ContainerKind]]:
    """Every container status with its kind (native sidecars are init containers with
    restartPolicy Always)."""
    for s in pod.status.containerStatuses:
        yield s, ContainerKind.APP
    if pod.status.initContainerStatuses:
        sidecars = {c.name for c in pod.spec.initContainers if c.restartPolicy == "Always"}
        for s in pod.status.initContainerStatuses:
            yield s, ContainerKind.SIDECAR if s.name in sidecars else ContainerKind.INIT
    for s in pod.status.ephemeralContainerStatuses:
        yield s, ContainerKind.EPHEMERAL


def _spec(pod: WatchedPod, status: wire.ContainerStatus) -> wire.ContainerSpec | None:
    specs = [*pod.spec.containers, *pod.spec.initContainers, *pod.spec.ephemeralContainers]
    return next((c for c in specs if c.name == status.name), None)


class Recorder:
    """Watches the patrolled namespaces and records every restart until `stop()`."""

    def __init__(self, cluster: ClusterClient, sink: CrashSink, settings: Settings, *,
                 on_new_crash: NewCrash | None = None, watch_seconds: int = 300,
                 heartbeat: float = HEARTBEAT) -> None:
        self.cluster = cluster
        self.sink = sink
        self.settings = settings
        self.on_new_crash = on_new_crash
        self.namespaces: tuple[str | None, ...] = namespaces_for(settings, cluster.name) or (
            None,)
        self.interval = timedelta(minutes=settings.recorder.log_interval_minutes)
        self.heartbeat = heartbeat
        self._stop = threading.Event()
        self._changed = threading.Condition()
        workers = max(1, settings.recorder.workers)
        per_worker = max(1, settings.recorder.queue // workers)
        self._queues: list[queue.Queue[_Capture | None]] = [
            queue.Queue(maxsize=per_worker) for _ in range(workers)]
        self._pods: dict[str | None, dict[str, _PodState]] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}  # shared by replicas
        self._counts: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._fetched: dict[tuple[str, str], _Fetched] = {}
        self._owners: dict[tuple[str, str, str], tuple[wire.ObjectMeta | None, float]] = {}
        self._progress: dict[str | None, int] = {}
        self._watermarks: dict[tuple[str, str], int] | None = None
        self._last_seen: datetime | None = None
        self._listed: set[str | None] = set()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self.watches = [PodWatch(cluster, ns, self, watch_seconds=watch_seconds)
                        for ns in self.namespaces]
        self.restarts = 0  # restarts seen (every one, captured or not)
        self.captures: dict[str, int] = {}
        self.api_requests: dict[str, int] = {}
        self.failure: str | None = None
        self._skew = timedelta(0)  # the API server's clock minus ours, as last measured

    def server_clock(self) -> datetime:
        """The API server's clock, estimated from the last measured skew (start-up and each
        heartbeat read the server's Date), without a request."""
        return datetime.now(UTC) + self._skew

    def _measure_clock(self) -> datetime:
        now = self.cluster.server_now()
        self._skew = now - datetime.now(UTC)
        return now

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads and return at once."""
        supervisor = threading.Thread(target=self._supervise, name="recorder", daemon=True)
        self._threads.append(supervisor)
        for i, q in enumerate(self._queues):
            worker = threading.Thread(target=self._work, args=(q,), name=f"recorder-capture-{i}",
                                      daemon=True)
            self._threads.append(worker)
            worker.start()
        supervisor.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop watching and join the threads (a capture in flight may finish after: its
        row is idempotent). Returns within `timeout`, so losing a lease stops it at once."""
        self._stop.set()
        for w in self.watches:
            w.stop()
        for q in self._queues:
            with contextlib.suppress(queue.Full):
                q.put_nowait(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._changed:
            self._changed.notify_all()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads) and not self._stop.is_set()

    def _supervise(self) -> None:
        """Bookkeeping, then one watch thread per scope, then the heartbeat/prune loop."""
        while not self._stop.is_set():
            try:
                now = self._measure_clock()
                self._watermarks = self.sink.watermarks(
                    self.cluster.name, namespaces_for(self.settings, self.cluster.name))
                self._last_seen = self.sink.mark_started(self.cluster.name, now)
                self.failure = None
                break
            except PatrolError as exc:
                self.failure = str(exc)
                log.error("recorder cannot start: %s; retrying", exc)
                self._stop.wait(5.0)
        for watch in self.watches:
            if self._stop.is_set():
                return
            t = threading.Thread(target=watch.run, daemon=True,
                                 name=f"recorder-watch-{watch.namespace or '*'}")
            self._threads.append(t)
            t.start()
        while not self._stop.wait(self.heartbeat):
            self.housekeep()

    def housekeep(self) -> None:
        """Heartbeat; prune once a day (age and per-workload count)."""
        try:
            now = self._measure_clock()
            pruned = self.sink.mark_seen(self.cluster.name, now)
            if pruned is None or now - pruned >= PRUNE_EVERY:
                self.prune(now)
        except PatrolError as exc:
            log.error("recorder bookkeeping failed: %s", exc)
        QUEUE_DEPTH.set(sum(q.qsize() for q in self._queues))
        WATCHED_PODS.set(sum(len(p) for p in self._pods.values()))

    def prune(self, now: datetime | None = None) -> int:
        """Apply CRASH_RETENTION_DAYS and CRASH_RETENTION_PER_WORKLOAD now."""
        now = now or self.server_clock()
        removed = self.sink.prune(
            self.cluster.name, now,
            older_than=now - timedelta(days=self.settings.store.crash_retention_days),
            per_workload=self.settings.store.crash_retention_per_workload)
        if removed:
            log.info("pruned %d recorded crashes", removed)
        return removed

    def wait_idle(self, resource_version: int, timeout: float = 10.0, *,
                  drained: bool = True) -> bool:
        """True once every scope has delivered `resource_version` and (with `drained`)
        every capture queued so far is stored — for tests and orderly hand-overs; False
        on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._idle(resource_version, drained):
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return self._idle(resource_version, drained)
                self._changed.wait(min(left, 0.2))
        return True

    def _idle(self, resource_version: int, drained: bool) -> bool:
        delivered = all(self._progress.get(ns, 0) >= resource_version
                        for ns in self.namespaces)
        return delivered and (not drained or (
            self._busy == 0 and all(q.unfinished_tasks == 0 for q in self._queues)))

    # ---- PodHandler -----------------------------------------------------------------
    def listed(self, scope: str | None, pods: Iterator[WatchedPod]) -> None:
        known = self._pods.setdefault(scope, {})
        first = scope not in self._listed
        if not first:
            RELISTS.inc()
        seen: set[str] = set()
        with paused_gc():
            for pod in pods:
                seen.add(pod.metadata.uid)
                self._observe(pod, known, "first" if first else "relist")
        for uid in [u for u in known if u not in seen]:
            self._forget(known, uid)
        self._listed.add(scope)
        if len(self._listed) == len(self.namespaces):
            self._watermarks = None  # only the first list of each scope needs them
        WATCHED_PODS.set(sum(len(p) for p in self._pods.values()))
        log.info("recorder listed %d pods in %s; watching", len(known),
                 scope or "all namespaces")

    def changed(self, event: str, pod: WatchedPod) -> None:
        scope = pod.metadata.namespace if self.namespaces != (None,) else None
        known = self._pods.setdefault(scope, {})
        self._observe(pod, known, "event")
        if event == "DELETED":
            self._forget(known, pod.metadata.uid)

    def progressed(self, scope: str | None, resource_version: int) -> None:
        with self._changed:
            self._progress[scope] = max(self._progress.get(scope, 0), resource_version)
            self._changed.notify_all()

    # ---- restart detection ----------------------------------------------------------
    def _forget(self, known: dict[str, _PodState], uid: str) -> None:
        state = known.pop(uid, None)
        if state is not None:
            for name in state[0]:
                self._fetched.pop((uid, name), None)

    def _baseline(self, pod: WatchedPod, status: wire.ContainerStatus) -> int:
        """What a container's count was when we last knew, for pods seen on a first list."""
        uid = pod.metadata.uid
        if self._watermarks is not None:
            mark = self._watermarks.get((uid, status.name))
            if mark is not None:
                return mark if status.restartCount >= mark else 0
        if self._last_seen is None:
            return status.restartCount  # never recorded before: today is the baseline
        created = parse_api_time(pod.metadata.creationTimestamp)
        if created is not None and created > self._last_seen:
            return 0  # born while no recorder ran: all of its restarts are unrecorded
        term = status.lastState.terminated if status.lastState else None
        finished = parse_api_time(term.finishedAt) if term else None
        if finished is not None and finished > self._last_seen and status.restartCount > 0:
            return status.restartCount - 1  # crashed while no recorder ran (at least once)
        return status.restartCount

    def _observe(self, pod: WatchedPod, known: dict[str, _PodState], mode: str) -> None:
        meta = pod.metadata
        previous = known.get(meta.uid)
        old = dict(zip(*previous, strict=True)) if previous is not None else None
        names: list[str] = []
        counts: list[int] = []
        for status, kind in _statuses(pod):
            names.append(status.name)
            counts.append(status.restartCount)
            if old is not None:
                before = old.get(status.name, 0)
            elif mode == "first":
                before = self._baseline(pod, status)
            else:
                before = 0  # a pod born since we last looked
            if status.restartCount > before:
                self._restarted(pod, status, kind, status.restartCount - before)
        shared = tuple(names)
        if len(self._names) < SHARED_TUPLES:
            shared = self._names.setdefault(shared, shared)
        tally = tuple(counts)
        if len(self._counts) < SHARED_TUPLES:
            tally = self._counts.setdefault(tally, tally)
        known[meta.uid] = (shared, tally)

    def _restarted(self, pod: WatchedPod, status: wire.ContainerStatus, kind: ContainerKind,
                   restarts: int) -> None:
        self.restarts += restarts
        RESTARTS.inc(restarts)
        meta = pod.metadata
        term = status.lastState.terminated if status.lastState else None
        finished = (parse_api_time(term.finishedAt) if term else None) or (
            self.server_clock())
        key = (meta.uid, status.name)
        before = self._fetched.get(key)
        exit_code = term.exitCode if term else None
        reason = term.reason if term else None
        fetch = (before is None or (before.exit_code, before.reason) != (exit_code, reason)
                 or finished - before.at >= self.interval)
        if fetch:
            self._fetched[key] = _Fetched(finished, exit_code, reason)
        controller = next((r for r in meta.ownerReferences if r.controller),
                          meta.ownerReferences[0] if meta.ownerReferences else None)
        spec = _spec(pod, status)
        limits = spec.resources.limits if spec and spec.resources else None
        capture = _Capture(
            namespace=_intern(meta.namespace), pod=meta.name, uid=meta.uid,
            container=_intern(status.name), kind=kind, restart_count=status.restartCount,
            restarts=restarts, term=term, image=status.image or (spec.image if spec else ""),
            node=pod.spec.nodeName, owner=controller, created=meta.creationTimestamp,
            template_hash=meta.labels.pod_template_hash, fetch=fetch, seen=time.monotonic(),
            memory_limit=limits.memory if limits and limits.memory else None,
            has_liveness_probe=bool(spec and spec.livenessProbe is not None),
            disruption_reason=next((x.reason for x in pod.status.conditions
                                    if x.type == "DisruptionTarget" and x.status == "True"),
                                   None))
        q = self._queues[hash(meta.uid) % len(self._queues)]
        try:
            q.put_nowait(capture)
        except queue.Full:
            if fetch:  # the next restart may fetch instead
                if before is None:
                    self._fetched.pop(key, None)
                else:
                    self._fetched[key] = before
            try:  # the owner is usually cached: a crash-looping workload was seen before
                workload = self._workload(capture)[0]
            except ClusterError:
                workload = None
            self._store(self._plain(capture, DROPPED, workload), None)
            DROPPED_CAPTURES.inc()
        QUEUE_DEPTH.set(sum(x.qsize() for x in self._queues))

    # ---- captures -------------------------------------------------------------------
    def _work(self, q: queue.Queue[_Capture | None]) -> None:
        while True:
            capture = q.get()
            if capture is None or self._stop.is_set():
                q.task_done()
                if capture is None:
                    return
                continue
            with self._changed:
                self._busy += 1
            try:
                self._capture(capture)
            except PatrolError as exc:
                CAPTURES.labels("error").inc()
                log.error("capture of %s/%s [%s] failed: %s", capture.namespace, capture.pod,
                          capture.container, exc)
            except Exception:  # a worker must outlive one bad capture, or the queue fills
                CAPTURES.labels("error").inc()
                log.exception("capture of %s/%s [%s] failed", capture.namespace, capture.pod,
                              capture.container)
            finally:
                q.task_done()
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

    def _count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def _workload(self, c: _Capture) -> tuple[WorkloadRef, wire.ObjectMeta | None]:
        """Roll the pod up to its workload through its real owner (cached per owner)."""
        meta = wire.ObjectMeta(c.pod, c.namespace, c.uid, c.created,
                               (c.owner,) if c.owner else ())
        owner_meta: wire.ObjectMeta | None = None
        if c.owner is not None and c.owner.kind in ("ReplicaSet", "Job"):
            key = (c.owner.kind, c.namespace, c.owner.name)
            cached = self._owners.get(key)
            if cached is None or time.monotonic() - cached[1] > 3600:
                if len(self._owners) >= OWNER_CACHE:
                    self._owners.clear()
                self._count(self.api_requests, "owner")
                API_REQUESTS.labels("owner").inc()
                cached = (self.cluster.owner(*key), time.monotonic())
                self._owners[key] = cached
            owner_meta = cached[0]
        owners = {(c.owner.kind, c.namespace, c.owner.name): owner_meta} if (
            c.owner is not None and owner_meta is not None) else {}
        return resolve_workload(meta, owners), owner_meta

    def _plain(self, c: _Capture, capture: str, workload: WorkloadRef | None = None,
               ) -> CrashRecord:
        """A record from the termination alone (no log, no events)."""
        term = c.term
        decoded = decode_termination(term.exitCode if term else None,
                                     term.reason if term else None, term.signal if term else None)
        if workload is None:
            workload = WorkloadRef(c.owner.kind, c.owner.name) if c.owner else WorkloadRef(
                "Pod", c.pod)
        return CrashRecord(
            cluster=self.cluster.name, namespace=c.namespace, pod_name=c.pod, pod_uid=c.uid,
            container=c.container, container_kind=c.kind.value, workload_kind=workload.kind,
            workload_name=workload.name, restart_count=c.restart_count, restarts=c.restarts,
            exit_code=term.exitCode if term else None, signal=term.signal if term else None,
            reason=term.reason if term else None,
            message=self._clean(term.message) if term else None,
            started_at=parse_api_time(term.startedAt) if term else None,
            finished_at=parse_api_time(term.finishedAt) if term else None,
            recorded_at=self.server_clock(), node=c.node,
            image=c.image or None, category=decoded.category, summary=decoded.meaning,
            capture=capture, template_hash=c.template_hash,
            replica_set=c.owner.name if c.owner and c.owner.kind == "ReplicaSet" else None)

    def _capture(self, c: _Capture) -> None:
        try:
            workload, owner_meta = self._workload(c)
        except ClusterError as exc:
            log.warning("cannot resolve the owner of %s/%s: %s", c.namespace, c.pod, exc)
            workload, owner_meta = (WorkloadRef(c.owner.kind, c.owner.name) if c.owner
                                    else WorkloadRef("Pod", c.pod)), None
        base = self._plain(c, RATE_LIMITED, workload)
        if not c.fetch:
            prior = self.sink.last_described(self.cluster.name, c.uid, c.container)
            if prior is not None and (prior.exit_code, prior.reason) == (base.exit_code,
                                                                        base.reason):
                base = _carry(base, prior)
            self._store(base, None, c.seen)
            return
        for kind in ("log", "events"):
            self._count(self.api_requests, kind)
            API_REQUESTS.labels(kind).inc()
        term = c.term
        read = read_evidence(self.cluster, self.settings, ContainerTarget(
            c.namespace, c.pod, c.uid, c.container,
            exit_code=term.exitCode if term else None, signal=term.signal if term else None,
            reason=term.reason if term else None, message=term.message if term else None,
            image=c.image, memory_limit=c.memory_limit,
            has_liveness_probe=c.has_liveness_probe, disruption_reason=c.disruption_reason))
        for problem in read.unreadable:  # the capture says "failed"; the log says why
            log.warning("capture of %s/%s [%s]: %s not read: %s", c.namespace, c.pod,
                        c.container, problem.what, problem.detail)
        text, diagnosis = read.log, read.diagnosis
        outcome = FAILED if read.unreadable else NO_LOG if text is None else CAPTURED
        # Kept: the warnings (the rest is routine: Pulled, Created, Started).
        events = tuple(e for e in read.events if e.type == "Warning")[-MAX_EVENTS:]
        changed_at = None
        if base.finished_at is not None:
            rs_created = (parse_api_time(owner_meta.creationTimestamp)
                          if owner_meta is not None and c.owner is not None
                          and c.owner.kind == "ReplicaSet" else None)
            earlier = self.sink.images_since(
                self.cluster.name, c.namespace, workload.kind, workload.name,
                base.finished_at - timedelta(hours=24))
            changed_at = rollout_before(base.finished_at, rs_created, earlier, c.image,
                                        parse_api_time(c.created))
        record = _described(base, outcome, diagnosis.category, diagnosis.fingerprint,
                            diagnosis.signature, diagnosis.summary, read.redactions,
                            events, changed_at)
        self._store(record, text, c.seen)

    def _clean(self, text: str | None) -> str | None:
        """Redacted (with REDACT_LOGS): termination messages can carry the log's tail
        (FallbackToLogsOnError) and event messages an exec probe's output."""
        if not text or not self.settings.redact_logs:
            return text
        return redact(text)[0]

    def _store(self, record: CrashRecord, text: str | None, seen: float | None = None) -> None:
        stored = self.sink.record(record, text)
        if seen is not None:
            CAPTURE_SECONDS.observe(time.monotonic() - seen)
        try:
            if stored is not None and stored.is_new and self.on_new_crash is not None:
                self.on_new_crash(stored)
        finally:  # counted once its alert went out: a counted capture is finished
            self._count(self.captures, record.capture)
            CAPTURES.labels(record.capture).inc()


def _carry(base: CrashRecord, prior: CrashRecord) -> CrashRecord:
    """A rate-limited restart like the last described one carries its diagnosis."""
    return replace(base, category=prior.category, fingerprint=prior.fingerprint,
                   signature=prior.signature, summary=prior.summary)


def _described(base: CrashRecord, capture: str, category: str, fingerprint: str | None,
               signature: tuple[str, ...], summary: str, redactions: int,
               events: tuple[EventNote, ...], changed_at: datetime | None) -> CrashRecord:
    return replace(base, capture=capture, category=category, fingerprint=fingerprint,
                   signature=signature, summary=summary, redactions=redactions, events=events,
                   changed_at=changed_at)
