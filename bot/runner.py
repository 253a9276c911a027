"""Runs patrols and live investigations: cluster → store → patrol/diagnosis.

This is the orchestration layer the CLI, the scheduler and the Slack app share. It owns
the I/O sequencing (list, baseline, digest, snapshot, log fetches); the maths stays in
`bot.patrol` and `bot.diagnosis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from difflib import get_close_matches
from functools import partial

from bot.cluster.client import ClusterClient, Progress
from bot.cluster.evidence import ContainerTarget, Unreadable, read_evidence
from bot.cluster.observe import Resolved, observe_patrolled, observe_pods
from bot.diagnosis.engine import Diagnosis, EventNote, Evidence, diagnose
from bot.errors import ClusterError, ForbiddenError, NotFoundError, UsageError
from bot.patrol.deltas import VanishedPod, find_vanished
from bot.patrol.digest import Digest, DigestBuilder, PatrolOptions, WorkloadSummary
from bot.patrol.gc_pause import paused_gc
from bot.patrol.history import CrashRecord
from bot.patrol.model import (
    Baseline,
    ContainerKind,
    ContainerObservation,
    PodObservation,
    Termination,
    latest_termination,
)
from bot.render.environment import phrase
from bot.settings import Settings, namespaces_for
from bot.store import SnapshotInfo, Store
from bot.store.crash_history import CrashHistory
from bot.store.snapshots import PURPOSE_ADHOC, PURPOSE_DIGEST, PURPOSE_DIGEST_PENDING

WorkloadKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class PatrolRun:
    """A finished patrol: the digest, the snapshot recorded, diagnoses of top workloads,
    and what it could not read (a namespace, logs or events behind its diagnoses)."""

    digest: Digest
    snapshot: SnapshotInfo | None  # None for a read-only look (record=False)
    diagnoses: dict[WorkloadKey, Diagnosis] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerReport:
    """Live diagnosis of one container: decoded termination, log tail, events."""

    namespace: str
    pod: str
    pod_uid: str
    workload_kind: str
    workload_name: str
    container: ContainerObservation
    diagnosis: Diagnosis | None
    log_tail: str | None
    redactions: int
    events: tuple[EventNote, ...]
    note: str | None = None
    history: tuple[CrashRecord, ...] = ()  # recorded crashes, newest first
    recorded: bool = False  # the pod is gone: everything here comes from the recorder
    unreadable: tuple[Unreadable, ...] = ()  # the log and/or events, when not read
    observed_at: datetime | None = None  # the API server's clock when the pod was listed

    def not_read(self, what: str) -> Unreadable | None:
        """Why `what` ("pods/log" or "events") could not be read, if it could not."""
        return next((u for u in self.unreadable if u.what == what), None)


def _options(settings: Settings, namespaces: Sequence[str], cluster: str) -> PatrolOptions:
    chosen = tuple(namespaces) or namespaces_for(settings, cluster)
    return PatrolOptions(namespaces=frozenset(chosen), min_delta=settings.schedule.min_delta,
                         ignore=settings.schedule.ignore)


def bounded(cluster: ClusterClient, seconds: float, setting: str) -> ClusterClient:
    """`cluster` with a deadline, unless the caller already gave it one."""
    return cluster if cluster.deadline is not None else cluster.bounded(seconds, setting)


def observe(cluster: ClusterClient, namespaces: Sequence[str],
            progress: Progress | None = None) -> list[PodObservation]:
    """Observations of every pod (in `namespaces`, or all), rolled up to workloads."""
    if not namespaces:
        return cluster.relisted(lambda: observe_pods(cluster.pods(None, progress),
                                                     cluster.owners(None)))
    pods: list[PodObservation] = []
    for ns in namespaces:
        cluster.check_namespace(ns)
        pods.extend(cluster.relisted(partial(_observe_namespace, cluster, ns, progress)))
    return pods


def _observe_namespace(cluster: ClusterClient, namespace: str,
                       progress: Progress | None) -> list[PodObservation]:
    return observe_pods(cluster.pods(namespace, progress), cluster.owners(namespace))


def run_patrol(
    cluster: ClusterClient, store: Store, settings: Settings, *,
    namespaces: Sequence[str] = (), since: timedelta | None = None, digest_run: bool = False,
    progress: Progress | None = None, diagnose_top: int = 20, record: bool = True,
    confirm_later: bool = False,
) -> PatrolRun:
    """One patrol: pick the baseline, stream the pods into the digest and the snapshot
    (one transaction), then diagnose the top workloads' latest crashes.

    `record=False` is a read-only look (Slack's `/restarts`): nothing is written, so
    questions never move the baseline. A digest run's window starts at the last *posted*
    digest; `confirm_later=True` records its snapshot as pending, to become the next
    digest's baseline only when Slack confirms the post (a failed post keeps its window)."""
    options = _options(settings, namespaces, cluster.name)
    cluster = bounded(cluster, settings.limits.patrol_deadline, "PATROL_DEADLINE")
    chosen = sorted(options.namespaces)
    for ns in chosen:
        cluster.check_namespace(ns)
    start = cluster.server_now()
    if since is not None:
        info = store.latest_snapshot(cluster.name, at_or_before=start - since)
    elif digest_run:
        info = store.latest_snapshot(cluster.name, purpose=PURPOSE_DIGEST)
    else:
        info = store.latest_snapshot(cluster.name)
    notes: list[str] = []
    if since is not None and info is None:
        notes.append(phrase("no_old_snapshot", settings.templates_dir, since=since))
    builder = DigestBuilder(cluster.name, options, first_run=info is None)
    present: set[tuple[str, str]] = set()
    baselines = _NamespaceBaselines(store, info, present)
    purpose = PURPOSE_ADHOC
    if digest_run:
        purpose = PURPOSE_DIGEST_PENDING if confirm_later else PURPOSE_DIGEST
    writing = (store.snapshot_writer(cluster.name, start, purpose, chosen) if record
               else nullcontext(None))
    skipped: dict[str, Unreadable] = {}  # namespaces this service account may not list
    with paused_gc(), writing as writer:

        def read() -> datetime | None:
            """List every scope from scratch into the digest and the snapshot; run again
            by `relisted` when a list expires (410) mid-way. Returns the server's clock."""
            if writer is not None:
                writer.reset()
            builder.reset()
            present.clear()
            baselines.relist()
            latest: datetime | None = None
            scopes: list[str | None] = [*chosen] or [None]
            for scope in scopes:
                if scope in skipped:
                    continue
                added = 0
                try:
                    owners = cluster.owners(scope)
                    resolved: Resolved = {}
                    listing = cluster.pods(scope, progress)
                    for raw in listing:
                        pod = observe_patrolled(raw, owners, resolved)
                        builder.add(pod, baselines.get(pod.namespace))
                        present.add((pod.namespace, pod.uid))
                        if writer is not None:
                            writer.add_pod(pod)
                        added += 1
                except ForbiddenError as exc:
                    if scope is None or added:
                        raise
                    skipped[scope] = Unreadable(f"namespace {scope}", "forbidden", str(exc))
                    continue
                latest = listing.server_time or latest
            if chosen and len(skipped) == len(chosen):
                raise ClusterError(skipped[chosen[0]].detail)
            return latest

        now = cluster.relisted(read) or start
        if writer is not None:
            writer.close(taken_at=now)
        readable = options.namespaces - skipped.keys() if options.namespaces else None
        vanished = baselines.vanished(readable)
    history = (store.history.window(cluster.name, info.taken_at, now, present,
                                               chosen) if info is not None else None)
    with paused_gc():  # the digest is built while the patrol's objects are still alive
        digest = builder.finish(info.taken_at if info else None, now, vanished, history)
    diagnoses, unreadable = diagnose_workloads(cluster, settings, builder,
                                               digest.workloads[:diagnose_top])
    snapshot = writer.info if writer is not None else None
    if snapshot is not None and digest_run:
        store.prune(cluster.name, keep_after=now - timedelta(days=settings.store.retention_days))
    if snapshot is not None and diagnoses:
        store.record_diagnoses(snapshot.id, ((ns, kind, name, d.fingerprint, d.category,
                                              d.summary)
                                             for (ns, kind, name), d in diagnoses.items()))
    return PatrolRun(digest, snapshot, diagnoses, tuple(notes),
                     (*skipped.values(), *unreadable))


class _NamespaceBaselines:
    """The baseline, loaded one namespace at a time as pods stream in.

    Lists arrive in namespace order, so a few cached namespaces keep memory flat at any
    cluster size. When a namespace leaves the cache, its baseline pods not seen so far are
    kept as *candidates* for vanished; `vanished()` drops those seen later and adds the
    namespaces never seen at all. A namespace asked for again after it left the cache
    means the server interleaves namespaces: then the whole baseline is loaded once and
    used for the rest of the list, so loads stay bounded whatever the order.
    """

    KEEP = 4

    def __init__(self, store: Store, info: SnapshotInfo | None,
                 present: set[tuple[str, str]]) -> None:
        self.store = store
        self.info = info
        self.present = present
        self._cache: dict[str, Baseline] = {}
        self._loaded: set[str] = set()
        self._candidates: list[VanishedPod] = []
        self._whole: Baseline | None = None

    def get(self, namespace: str) -> Baseline | None:
        if self.info is None:
            return None
        if self._whole is not None:
            return self._whole
        baseline = self._cache.get(namespace)
        if baseline is None:
            if namespace in self._loaded:
                self._cache.clear()
                self._candidates = []
                self._whole = self.store.load_baseline(self.info)
                return self._whole
            if len(self._cache) >= self.KEEP:
                self._evict(next(iter(self._cache)))
            baseline = self._cache[namespace] = self.store.load_baseline(self.info, [namespace])
            self._loaded.add(namespace)
        return baseline

    def relist(self) -> None:
        """The list starts over (410): namespaces come round again in order, which is not
        the interleaving `get` watches for. Candidates stay (`vanished` filters them)."""
        for namespace in list(self._cache):
            self._evict(namespace)
        self._loaded.clear()

    def _evict(self, namespace: str) -> None:
        baseline = self._cache.pop(namespace)
        self._candidates.extend(find_vanished(self.present, baseline))

    def vanished(self, namespaces: frozenset[str] | None) -> list[VanishedPod]:
        """Baseline pods (within `namespaces`) absent from the finished list."""
        if self.info is None:
            return []
        if self._whole is not None:
            return find_vanished(self.present, self._whole, namespaces)
        for namespace in list(self._cache):
            self._evict(namespace)
        found = {(v.namespace, v.pod_uid): v for v in self._candidates
                 if (v.namespace, v.pod_uid) not in self.present}
        for ns in self.store.snapshot_namespaces(self.info):
            if ns not in self._loaded and (namespaces is None or ns in namespaces):
                baseline = self.store.load_baseline(self.info, [ns])
                found.update(((v.namespace, v.pod_uid), v)
                             for v in find_vanished(self.present, baseline))
        return sorted((v for v in found.values()
                       if namespaces is None or v.namespace in namespaces),
                      key=lambda v: (v.namespace, v.pod_name))


def diagnose_workloads(cluster: ClusterClient, settings: Settings, builder: DigestBuilder,
                       workloads: Sequence[WorkloadSummary]
                       ) -> tuple[dict[WorkloadKey, Diagnosis], list[Unreadable]]:
    """Diagnose the latest crash of each given workload from its previous log and events.

    Also returns what could not be read for those diagnoses (e.g. pods/log forbidden),
    counted per kind of problem, so the digest can say its summaries lack it."""
    result: dict[WorkloadKey, Diagnosis] = {}
    missing: dict[tuple[str, str], Unreadable] = {}
    for w in workloads:
        key = (w.namespace, w.kind, w.name)
        found = latest_termination(((p, c) for p in builder.restarting_pods(key)
                                    for c in p.containers), lambda pc: pc[1].last_termination)
        if found is None:
            continue
        report = investigate_container(cluster, settings, found[0], found[1])
        if report.diagnosis is not None:
            result[key] = report.diagnosis
        for u in report.unreadable:
            seen = missing.get((u.what, u.why))
            missing[(u.what, u.why)] = u if seen is None else replace(seen,
                                                                      count=seen.count + 1)
    return result, list(missing.values())


def investigate_container(cluster: ClusterClient, settings: Settings, pod: PodObservation,
                          container: ContainerObservation,
                          observed_at: datetime | None = None) -> ContainerReport:
    """Fetch the previous log and the events of one container and diagnose its last exit.

    The two reads are independent: when one is forbidden or fails, the other is still made,
    the report names what was not read and why, and the diagnosis uses what was read."""
    note = None
    term = container.last_termination
    read = read_evidence(cluster, settings, ContainerTarget(
        pod.namespace, pod.name, pod.uid, container.name,
        exit_code=term.exit_code if term is not None else None,
        signal=term.signal if term is not None else None,
        reason=term.reason if term is not None else None,
        message=term.message if term is not None else None, image=container.image,
        memory_limit=container.memory_limit, has_liveness_probe=container.has_liveness_probe,
        disruption_reason=pod.disruption_reason))
    log, events = read.log, read.events
    diagnosis = read.diagnosis if term is not None else None
    if term is None and log is None and container.restarts == 0:
        note = "this container has not restarted"
    return ContainerReport(pod.namespace, pod.name, pod.uid, pod.workload.kind,
                           pod.workload.name, container, diagnosis, log, read.redactions, events,
                           note, unreadable=read.unreadable, observed_at=observed_at)


def resolve_target(pods: Sequence[PodObservation], target: str) -> list[PodObservation]:
    """Pods named by `target`: a pod name, a workload name, or a pod-name prefix (worst first).

    Raises NotFoundError with the closest names when nothing matches.
    """
    exact = [p for p in pods if p.name == target]
    if exact:
        return exact
    matched = [p for p in pods if p.workload.name == target] or [
        p for p in pods if p.name.startswith(target)]
    if matched:
        return sorted(matched, key=lambda p: (-max((c.restarts for c in p.containers),
                                                   default=0), p.name))
    names = sorted({p.name for p in pods} | {p.workload.name for p in pods})
    raise NotFoundError(f'no pod or workload "{target}" in namespace '
                        f'{pods[0].namespace if pods else "(empty)"}',
                        suggestions=tuple(get_close_matches(target, names, n=3, cutoff=0.4)))


HISTORY = 10  # recorded crashes shown per container


def investigate(cluster: ClusterClient, settings: Settings, namespace: str, target: str,
                container: str | None = None, max_pods: int = 3,
                store: Store | None = None) -> list[ContainerReport]:
    """Diagnosis of a pod/workload: one report per restarted container (worst pods), each
    with its recorded history when `store` is given. A pod or workload that no longer
    exists is answered from the recorder's records. Bounded by QUERY_DEADLINE."""
    cluster = bounded(cluster, settings.limits.query_deadline, "QUERY_DEADLINE")
    observed_at = cluster.server_now()
    crashes = store.history if store is not None else None
    pods = observe(cluster, [namespace])
    try:
        chosen = resolve_target(pods, target)[:max_pods]
    except NotFoundError as missing:
        recorded = crashes.find(cluster.name, namespace, target) if crashes else []
        if not recorded:
            if crashes is None:
                raise
            known = sorted({*(p.name for p in pods), *(p.workload.name for p in pods),
                            *crashes.names(cluster.name, namespace)})
            raise NotFoundError(str(missing), suggestions=tuple(
                get_close_matches(target, known, n=3, cutoff=0.4))) from None
        assert crashes is not None
        return _recorded_reports(crashes, settings, recorded, container, max_pods)
    by_workload = not any(p.name == target for p in chosen)
    reports: list[ContainerReport] = []
    for pod in chosen:
        containers = list(pod.containers)
        if container is not None:
            containers = [c for c in containers if c.name == container]
            if not containers:
                names = ", ".join(c.name for c in pod.containers)
                raise UsageError(f'pod {pod.name} has no container "{container}" '
                                 f"(it has: {names})")
        restarted = [c for c in containers if c.restarts > 0 or c.last_termination]
        for c in restarted or containers[:1]:
            report = investigate_container(cluster, settings, pod, c, observed_at)
            if crashes is not None:
                history = crashes.history(
                    cluster.name, namespace, container=c.name, limit=HISTORY,
                    **({"workload": (pod.workload.kind, pod.workload.name)} if by_workload
                       else {"pod_uids": [pod.uid]}))
                report = replace(report, history=tuple(history))
            reports.append(report)
    return reports


def _recorded_reports(crashes: CrashHistory, settings: Settings, recorded: list[CrashRecord],
                      container: str | None, max_pods: int) -> list[ContainerReport]:
    """Reports for pods that are gone, rebuilt from their newest recorded crash (its log
    tail is diagnosed again, so the hints are today's)."""
    if container is not None:
        recorded = [r for r in recorded if r.container == container]
        if not recorded:
            raise UsageError(f'no crash of a container "{container}" is recorded there')
    pods: list[str] = []
    for r in recorded:
        if r.pod_uid not in pods:
            pods.append(r.pod_uid)
    reports: list[ContainerReport] = []
    for r in recorded:
        if r.pod_uid not in pods[:max_pods] or r.id is None:
            continue
        stored = crashes.log_of(r.cluster, r.id)
        log = stored[1] if stored else None
        events = tuple(EventNote(e.type, e.reason, e.message, e.count) for e in r.events)
        term = Termination(exit_code=r.exit_code if r.exit_code is not None else -1,
                           reason=r.reason, signal=r.signal, message=r.message,
                           started_at=r.started_at, finished_at=r.finished_at)
        observed = ContainerObservation(name=r.container, restarts=r.restart_count,
                                        kind=ContainerKind(r.container_kind),
                                        last_termination=term, image=r.image or "")
        diagnosis = diagnose(Evidence(exit_code=r.exit_code, signal=r.signal, reason=r.reason,
                                      message=r.message, log=log or "", events=events,
                                      image=r.image))
        history = crashes.history(r.cluster, r.namespace, pod_uids=[r.pod_uid],
                                  container=r.container, limit=HISTORY)
        reports.append(ContainerReport(
            r.namespace, r.pod_name, r.pod_uid, r.workload_kind, r.workload_name, observed,
            diagnosis, log, r.redactions, events, history=tuple(history), recorded=True))
    return reports
