"""Stage 3 of the recorder: describe a detected restart — its workload (through the real
owner, cached), its previous log, events and diagnosis — as a `CrashRecord`.

Bounded: a crash-looping container's log and events are fetched at most once per
RECORDER_LOG_INTERVAL_MINUTES unless its exit code or reason changed; the restarts in
between are counted and carry the last diagnosis. A read that fails on a transient error
(timeout, unreachable, 5xx) is tried again (EVIDENCE_ATTEMPTS, with backoff); a crash whose
evidence could not be read is still recorded ("failed"). A job that did not fit the
capture queue is recorded from its termination alone ("dropped"), with the workload from
the owner cache when it is there. Nothing here writes: the service persists.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.cluster import wire
from bot.cluster.client import ClusterClient
from bot.cluster.evidence import ContainerEvidence, ContainerTarget, read_evidence
from bot.cluster.observe import resolve_workload
from bot.diagnosis.engine import EventNote
from bot.diagnosis.exit_codes import decode_termination
from bot.diagnosis.redaction import redact
from bot.errors import ClusterError
from bot.patrol.history import (
    BASELINE,
    CAPTURED,
    DROPPED,
    FAILED,
    NO_LOG,
    RATE_LIMITED,
    CrashRecord,
    rollout_before,
)
from bot.patrol.model import WorkloadRef
from bot.patrol.timestamps import parse_api_time
from bot.recording.detect import Job
from bot.settings import Settings

log = logging.getLogger("restart_patrol.recorder")

MAX_EVENTS = 10
OWNER_CACHE = 20_000
OWNER_TTL = 3600.0  # seconds an owner look-up is trusted
FETCHED_MAX = 100_000  # containers whose last fetch is remembered (rate limit)
EVIDENCE_ATTEMPTS = 3
EVIDENCE_BACKOFF = 0.5  # seconds, doubled per attempt


@dataclass(frozen=True, slots=True)
class _Fetched:
    at: datetime
    exit_code: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Described:
    """A job turned into a record, with the log tail to keep (None: none read)."""

    record: CrashRecord
    log: str | None


class PriorDiagnosis:
    """Where a rate-limited restart finds the diagnosis it carries (the store)."""

    def __init__(self, last_described: Callable[[str, str, str], CrashRecord | None],
                 images_since: Callable[[str, str, str, str, datetime],
                                        list[tuple[datetime, str | None]]]) -> None:
        self.last_described = last_described
        self.images_since = images_since


class Capturer:
    """Turns jobs into records for one cluster; thread-safe (one per recorder)."""

    def __init__(self, cluster: ClusterClient, settings: Settings, prior: PriorDiagnosis,
                 *, count: Callable[[str], None], clock: Callable[[], datetime],
                 stopping: threading.Event) -> None:
        self.cluster = cluster
        self.settings = settings
        self.prior = prior
        self.count = count  # API requests by kind, for the stats and /metrics
        self.clock = clock  # the API server's clock, as last measured
        self.stopping = stopping
        self.interval = timedelta(minutes=settings.recorder.log_interval_minutes)
        self._owners: dict[tuple[str, str, str], tuple[wire.ObjectMeta | None, float]] = {}
        self._fetched: dict[tuple[str, str], _Fetched] = {}
        self._lock = threading.Lock()

    # ---- the workload ----------------------------------------------------------------
    def known_owner(self, kind: str, namespace: str, name: str) -> wire.ObjectMeta | None:
        """An owner's metadata from the cache, while it is trusted (no request)."""
        cached = self._cached((kind, namespace, name))
        return cached[0] if cached is not None else None

    def _cached(self, key: tuple[str, str, str]
                ) -> tuple[wire.ObjectMeta | None, float] | None:
        """The cache entry of an owner (its metadata, None if it was gone, and when it was
        read), while it is trusted (OWNER_TTL)."""
        cached = self._owners.get(key)
        if cached is None or time.monotonic() - cached[1] > OWNER_TTL:
            return None
        return cached

    def workload(self, job: Job, *, cached_only: bool = False
                 ) -> tuple[WorkloadRef, wire.ObjectMeta | None]:
        """Roll the pod up to its workload through its real owner (cached per owner).
        `cached_only`: no request (a dropped job); the owner reference stands in."""
        owner = job.owner
        meta = wire.ObjectMeta(job.pod, job.namespace, job.uid, job.created,
                               (owner,) if owner else ())
        owner_meta: wire.ObjectMeta | None = None
        if owner is not None and owner.kind in ("ReplicaSet", "Job"):
            key = (owner.kind, job.namespace, owner.name)
            cached = self._cached(key)
            if cached is None:
                if cached_only:
                    return WorkloadRef(owner.kind, owner.name), None
                self.count("owner")
                cached = (self.cluster.owner(*key), time.monotonic())
                with self._lock:
                    if len(self._owners) >= OWNER_CACHE:
                        self._owners.clear()
                    self._owners[key] = cached
            owner_meta = cached[0]
        owners = {(owner.kind, job.namespace, owner.name): owner_meta} if (
            owner is not None and owner_meta is not None) else {}
        return resolve_workload(meta, owners), owner_meta

    # ---- records ---------------------------------------------------------------------
    def plain(self, job: Job, capture: str, workload: WorkloadRef | None = None
              ) -> CrashRecord:
        """A record from the termination alone (no log, no events)."""
        term = job.term
        decoded = decode_termination(term.exitCode if term else None,
                                     term.reason if term else None,
                                     term.signal if term else None)
        if workload is None:
            workload = self.workload(job, cached_only=True)[0]
        owner = job.owner
        return CrashRecord(
            cluster=self.cluster.name, namespace=job.namespace, pod_name=job.pod,
            pod_uid=job.uid, container=job.container, container_kind=job.kind,
            workload_kind=workload.kind, workload_name=workload.name,
            restart_count=job.restart_count, restarts=job.restarts,
            exit_code=term.exitCode if term else None, signal=term.signal if term else None,
            reason=term.reason if term else None,
            message=self._clean(term.message) if term else None,
            started_at=parse_api_time(term.startedAt) if term else None,
            finished_at=parse_api_time(term.finishedAt) if term else None,
            recorded_at=self.clock(), node=job.node, image=job.image or None,
            category=decoded.category, summary=decoded.meaning, capture=capture,
            template_hash=job.template_hash,
            replica_set=owner.name if owner and owner.kind == "ReplicaSet" else None)

    def dropped(self, job: Job) -> CrashRecord:
        """A job that did not fit the capture queue: counted, not described."""
        return self.plain(job, BASELINE if job.seed else DROPPED)

    def describe(self, job: Job) -> Described:
        """The job's record: described (log, events, diagnosis) or, within the rate limit,
        carrying the last diagnosis of the same exit."""
        try:
            workload, owner_meta = self.workload(job)
        except ClusterError as exc:
            log.warning("cluster %s: cannot resolve the owner of %s/%s: %s",
                        self.cluster.name, job.namespace, job.pod, exc)
            workload, owner_meta = self.workload(job, cached_only=True)[0], None
        base = self.plain(job, BASELINE if job.seed else RATE_LIMITED, workload)
        if not job.seed and not self._due(job, base):
            prior = self.prior.last_described(self.cluster.name, job.uid, job.container)
            if prior is not None and (prior.exit_code, prior.reason) == (base.exit_code,
                                                                        base.reason):
                base = _carry(base, prior)
            return Described(base, None)
        read = self._evidence(job)
        for problem in read.unreadable:  # the capture says "failed"; the log says why
            log.warning("cluster %s: capture of %s/%s [%s]: %s not read: %s",
                        self.cluster.name, job.namespace, job.pod, job.container,
                        problem.what, problem.detail)
        text, diagnosis = read.log, read.diagnosis
        outcome = (BASELINE if job.seed else FAILED if read.unreadable
                   else NO_LOG if text is None else CAPTURED)
        # Kept: the warnings (the rest is routine: Pulled, Created, Started).
        events = tuple(e for e in read.events if e.type == "Warning")[-MAX_EVENTS:]
        changed_at = None
        if base.finished_at is not None and not job.seed:
            rs_created = (parse_api_time(owner_meta.creationTimestamp)
                          if owner_meta is not None and job.owner is not None
                          and job.owner.kind == "ReplicaSet" else None)
            earlier = self.prior.images_since(
                self.cluster.name, job.namespace, workload.kind, workload.name,
                base.finished_at - timedelta(hours=24))
            changed_at = rollout_before(base.finished_at, rs_created, earlier, job.image,
                                        parse_api_time(job.created))
        record = _described(base, outcome, diagnosis.category, diagnosis.fingerprint,
                            diagnosis.signature, diagnosis.summary, read.redactions,
                            events, changed_at)
        return Described(record, text)

    def _due(self, job: Job, base: CrashRecord) -> bool:
        """Fetch this restart's evidence? Yes, unless the same exit of the same container
        was fetched within RECORDER_LOG_INTERVAL_MINUTES."""
        key = (job.uid, job.container)
        finished = base.finished_at or base.recorded_at or self.clock()
        with self._lock:
            before = self._fetched.get(key)
            if before is not None and (before.exit_code, before.reason) == (
                    base.exit_code, base.reason) and finished - before.at < self.interval:
                return False
            if len(self._fetched) >= FETCHED_MAX:
                self._fetched.clear()
            self._fetched[key] = _Fetched(finished, base.exit_code, base.reason)
        return True

    def _evidence(self, job: Job) -> ContainerEvidence:
        term = job.term
        target = ContainerTarget(
            job.namespace, job.pod, job.uid, job.container,
            exit_code=term.exitCode if term else None, signal=term.signal if term else None,
            reason=term.reason if term else None, message=term.message if term else None,
            image=job.image, memory_limit=job.memory_limit,
            has_liveness_probe=job.has_liveness_probe,
            disruption_reason=job.disruption_reason)
        delay = EVIDENCE_BACKOFF
        for attempt in range(1, EVIDENCE_ATTEMPTS + 1):
            self.count("log")
            self.count("events")
            read = read_evidence(self.cluster, self.settings, target)
            if not any(u.transient for u in read.unreadable) or attempt == EVIDENCE_ATTEMPTS:
                return read
            if self.stopping.wait(delay):
                return read
            delay *= 2
        raise AssertionError("unreachable")

    def _clean(self, text: str | None) -> str | None:
        """Redacted (with REDACT_LOGS): termination messages can carry the log's tail
        (FallbackToLogsOnError) and event messages an exec probe's output."""
        if not text or not self.settings.redact_logs:
            return text
        return redact(text)[0]


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

