"""A patrol: count every container's restarts since a baseline snapshot, roll them up to
workloads, tell each workload's recorded crashes, and (as planned) record a snapshot.

What a patrol does is one value, `PatrolPlan`: its namespaces, where its window starts
(the previous patrol, the previous posted digest, or `--since`), whether and as what it
records its snapshot, and how many workloads without a recorded story get a live
diagnosis. The constructors name the plans that mean something: `look` (a question:
nothing written, so asking never moves a window), `adhoc` (`restart-patrol patrol`) and
`digest` (the daily digest; `confirmed_by_post`: its snapshot becomes the next
baseline only when Slack confirms the post).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import wait
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from bot.answers.outage import naming
from bot.answers.reads import READ_GRACE, READERS, read_pool
from bot.answers.recorded_digest import count_from_record, recorder_mark
from bot.cluster.client import ClusterClient, Listing, Progress
from bot.cluster.evidence import ContainerEvidence, ContainerTarget, read_evidence
from bot.cluster.observe import Resolved, observe_patrolled, observe_pods
from bot.diagnosis.engine import Diagnosis
from bot.errors import ClusterError, ForbiddenError, UsageError
from bot.patrol.deltas import VanishedPod, find_vanished
from bot.patrol.digest import Digest, DigestBuilder, PatrolOptions, WorkloadSummary
from bot.patrol.durations import format_window
from bot.patrol.model import (
    Baseline,
    ContainerObservation,
    PodObservation,
    Unreadable,
    latest_termination,
)
from bot.patrol.routing import ChannelScope, Routes
from bot.patrol.story import RecordedWindow, WorkloadKey, by_workload
from bot.render.environment import phrase
from bot.runtime import RuntimeStopped
from bot.settings import Settings, namespaces_for
from bot.store import SnapshotInfo, Store
from bot.store.snapshots import (
    PURPOSE_ADHOC,
    PURPOSE_DIGEST,
    PURPOSE_DIGEST_PENDING,
    SnapshotWriter,
)

log = logging.getLogger("restart_patrol.patrol")


class RecorderView(Protocol):
    """What a digest reads of the cluster's flight recorder (bot.recording.service
    implements it): whether it is watching every scope now, since when without a relist,
    and which pods it follows."""

    def watching(self) -> bool:
        """Every scope listed and its watch streaming now (no relist pending)."""
        ...

    def watching_since(self) -> datetime | None:
        """Since when (API server clock) it has watched continuously; None if not."""
        ...

    def present(self, pods: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (namespace, pod uid) it follows now."""
        ...


@dataclass(frozen=True, slots=True)
class PatrolPlan:
    """What one patrol does; build it with `look`, `adhoc` or `digest`.

    `records` is the purpose its snapshot is recorded as (None: nothing is written).
    The window starts at the latest snapshot at or before `since` ago when given, else at
    the previous posted digest for a digest, else at the previous patrol."""

    namespaces: tuple[str, ...] = ()
    since: timedelta | None = None
    records: str | None = PURPOSE_ADHOC
    diagnose_top: int = 20
    channel: str | None = None  # a digest's channel: with DIGEST_CHANNELS, its share only

    def __post_init__(self) -> None:
        if self.is_digest and self.since is not None:
            raise UsageError("a digest's window starts at the previous digest: --since "
                             "cannot move it")

    @classmethod
    def look(cls, namespaces: Sequence[str] = (), since: timedelta | None = None,
             diagnose_top: int = 15) -> PatrolPlan:
        """A question: read-only, so asking never moves a window."""
        return cls(tuple(namespaces), since, None, diagnose_top)

    @classmethod
    def adhoc(cls, namespaces: Sequence[str] = (), since: timedelta | None = None,
              diagnose_top: int = 20) -> PatrolPlan:
        """A patrol now (`restart-patrol patrol`): recorded, but never a digest's baseline."""
        return cls(tuple(namespaces), since, PURPOSE_ADHOC, diagnose_top)

    @classmethod
    def digest(cls, namespaces: Sequence[str] = (), *, confirmed_by_post: bool = False,
               diagnose_top: int = 20, channel: str | None = None) -> PatrolPlan:
        """The daily digest: the window since the previous posted digest. Its snapshot is
        the next digest's baseline at once, or (`confirmed_by_post`) once Slack confirmed
        the post (`DigestSlots.mark_posted`), so a failed post keeps its window. With
        DIGEST_CHANNELS, a `channel`'s digest carries only the namespaces routed to it
        and its window starts at that channel's previous posted digest."""
        purpose = PURPOSE_DIGEST_PENDING if confirmed_by_post else PURPOSE_DIGEST
        return cls(tuple(namespaces), None, purpose, diagnose_top, channel)

    @property
    def is_digest(self) -> bool:
        return self.records in (PURPOSE_DIGEST, PURPOSE_DIGEST_PENDING)


@dataclass(frozen=True, slots=True)
class PatrolRun:
    """A finished patrol: the digest, the snapshot recorded, live diagnoses of the top
    workloads the record tells nothing of, and what it could not read (a namespace, logs
    or events behind its diagnoses)."""

    digest: Digest
    snapshot: SnapshotInfo | None  # None for a look
    diagnoses: dict[WorkloadKey, Diagnosis] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()


def patrol_options(settings: Settings, namespaces: Sequence[str], cluster: str,
                   channel: str | None = None) -> PatrolOptions:
    """The plan's namespaces (else PATROL_NAMESPACES for this cluster) and the filters;
    for a digest `channel` when DIGEST_CHANNELS is set, the share routed to it."""
    chosen = tuple(namespaces) or namespaces_for(settings, cluster)
    return PatrolOptions(namespaces=frozenset(chosen), min_delta=settings.schedule.min_delta,
                         ignore=settings.schedule.ignore,
                         scope=channel_scope(settings, channel, cluster))


def channel_scope(settings: Settings, channel: str | None, cluster: str
                  ) -> ChannelScope | None:
    """What `channel`'s digest of `cluster` carries under DIGEST_CHANNELS (None: no team
    routing, the channel gets everything patrolled)."""
    teams = settings.slack.digest_channels
    if channel is None or not teams:
        return None
    return ChannelScope(Routes(teams, settings.slack.patrol_channel or None), channel,
                        cluster)


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


def _baseline(store: Store, cluster: str, plan: PatrolPlan, start: datetime,
              scoped: bool = False) -> SnapshotInfo | None:
    """The snapshot the window starts at. A team-routed digest (`scoped`) starts at its
    own channel's previous posted digest — each channel has its own window — else (its
    first) at the cluster's latest digest."""
    if plan.since is not None:
        return store.latest_snapshot(cluster, at_or_before=start - plan.since)
    if plan.is_digest:
        if plan.channel is not None and scoped:
            own = store.channel_digest(cluster, plan.channel)
            if own is not None:
                return own
        return store.latest_snapshot(cluster, purpose=PURPOSE_DIGEST)
    return store.latest_snapshot(cluster)


def patrol(cluster: ClusterClient, store: Store, settings: Settings, plan: PatrolPlan,
           progress: Progress | None = None, recorder: RecorderView | None = None
           ) -> PatrolRun:
    """Run `plan`: pick the baseline, stream the pods into the digest and (unless it is a
    look) the snapshot in one transaction, tell each workload's recorded crashes of the
    window, and diagnose live the top workloads the record has no story for. Bounded by
    PATROL_DEADLINE; failures name the cluster. With the cluster's `recorder` watching
    through the whole window, a digest reconciles: a workload whose listed restarts differ
    from the recorded ones is logged (the listed count is what is posted)."""
    with naming(cluster.name):
        return _patrol(bounded(cluster, settings.limits.patrol_deadline, "PATROL_DEADLINE"),
                       store, settings, plan, progress, recorder)


def _patrol(cluster: ClusterClient, store: Store, settings: Settings, plan: PatrolPlan,
            progress: Progress | None, recorder: RecorderView | None = None) -> PatrolRun:
    options = patrol_options(settings, plan.namespaces, cluster.name, plan.channel)
    chosen = sorted(options.namespaces)
    for ns in chosen:
        cluster.check_namespace(ns)
    start = cluster.server_now()
    info = _baseline(store, cluster.name, plan, start, scoped=options.scope is not None)
    notes: list[str] = []
    if plan.since is not None and info is None:
        notes.append(phrase("no_old_snapshot", settings.templates_dir,
                            since=format_window(plan.since)))
    if plan.is_digest and plan.records is not None and info is not None and (
            counted := count_from_record(cluster, store, options, chosen, plan.records, info,
                                         start, recorder)) is not None:
        return _told(cluster, store, settings, plan, counted.digest, counted.builder,
                     counted.snapshot, notes, [])
    builder = DigestBuilder(cluster.name, options, first_run=info is None)
    writing = (store.snapshot_writer(cluster.name, start, plan.records, chosen,
                                     recorder_mark=recorder_mark(recorder))
               if plan.records is not None else nullcontext(None))
    with writing as writer:
        listing = _PatrolListing(cluster, chosen, builder, _NamespaceBaselines(store, info),
                                 writer, progress)
        now = cluster.relisted(listing.read) or start
        if writer is not None:
            writer.close(taken_at=now)
        readable = options.namespaces - listing.skipped.keys() if options.namespaces else None
        vanished = listing.baselines.vanished(listing.present, readable)
    history = (store.history.window(cluster.name, info.taken_at, now, listing.present,
                                    chosen) if info is not None else None)
    digest = builder.finish(info.taken_at if info else None, now, vanished, history)
    if (plan.is_digest and info is not None and history is not None
            and watched_through(recorder, info.taken_at)):
        reconcile(cluster.name, builder.listed_deltas(), history)
    return _told(cluster, store, settings, plan, digest, builder,
                 writer.info if writer is not None else None, notes,
                 list(listing.skipped.values()))


def _told(cluster: ClusterClient, store: Store, settings: Settings, plan: PatrolPlan,
          digest: Digest, builder: DigestBuilder, snapshot: SnapshotInfo | None,
          notes: list[str], skipped: list[Unreadable]) -> PatrolRun:
    """The end of every patrol: live diagnoses of the top workloads the record tells
    nothing of, the digest's pruning, the headlines kept with the snapshot."""
    untold = [w for w in digest.workloads[:plan.diagnose_top] if not w.stories]
    diagnoses, unreadable = diagnose_workloads(cluster, settings, builder, untold)
    if snapshot is not None and plan.is_digest:
        store.prune(cluster.name, keep_after=digest.window_to - timedelta(
            days=settings.store.retention_days))
    if snapshot is not None:
        store.record_diagnoses(snapshot.id, _headlines(digest, diagnoses))
    return PatrolRun(digest, snapshot, diagnoses, tuple(notes), (*skipped, *unreadable))


def watched_through(recorder: RecorderView | None, since: datetime) -> bool:
    """The recorder is watching now and has since `since` without a relist."""
    if recorder is None or not recorder.watching():
        return False
    began = recorder.watching_since()
    return began is not None and began <= since


def reconcile(cluster: str, listed: dict[WorkloadKey, int], history: RecordedWindow
              ) -> list[tuple[WorkloadKey, int, int]]:
    """Compare each workload's listed restarts of the window (its pods listed now) with
    the recorded ones of the same pods (its stories' restarts less those of pods gone);
    each disagreement is logged with cluster, workload and both numbers, and returned as
    (workload, listed, recorded). The digest posts the listed count: it is what the
    cluster's restartCounts say."""
    recorded: dict[WorkloadKey, int] = {}
    for key, stories in by_workload(history.stories).items():
        gone = history.vanished.get(key, (0, 0))[0]
        recorded[key] = sum(s.restarts for s in stories) - gone
    found: list[tuple[WorkloadKey, int, int]] = []
    for key in sorted({*listed, *recorded}):
        mine, theirs = listed.get(key, 0), recorded.get(key, 0)
        if mine != theirs:
            found.append((key, mine, theirs))
            log.warning("cluster %s: workload %s/%s %s: the pod list counts %d restarts in "
                        "the window, the recorder %d; the digest posts %d", cluster,
                        key[0], key[1], key[2], mine, theirs, mine)
    return found


def _headlines(digest: Digest, diagnoses: dict[WorkloadKey, Diagnosis]
               ) -> list[tuple[str, str, str, str | None, str, str]]:
    """(namespace, kind, name, fingerprint, category, summary) of each row's headline,
    recorded with the snapshot (the "same crash ×N" streak of later digests)."""
    rows: list[tuple[str, str, str, str | None, str, str]] = []
    for w in digest.workloads:
        story = w.headline
        if story is not None:
            rows.append((w.namespace, w.kind, w.name, story.fingerprint, story.latest.category,
                         story.summary))
        elif (found := diagnoses.get((w.namespace, w.kind, w.name))) is not None:
            rows.append((w.namespace, w.kind, w.name, found.fingerprint, found.category,
                         found.summary))
    return rows


class PresentPods(Collection[tuple[str, str]]):
    """The (namespace, uid) of every pod listed so far, compactly: per namespace a set of
    16-byte uids (a UUID's text costs 85 bytes and a (namespace, uid) tuple 56 more; at
    100k pods the set of tuples was 18 MB). A uid that is not a UUID is kept as text."""

    __slots__ = ("_count", "_namespaces")

    def __init__(self) -> None:
        self._namespaces: dict[str, set[bytes | str]] = {}
        self._count = 0

    @staticmethod
    def _key(uid: str) -> bytes | str:
        try:
            return bytes.fromhex(uid.replace("-", "")) if len(uid) == 36 else uid
        except ValueError:
            return uid

    def add(self, namespace: str, uid: str) -> None:
        uids = self._namespaces.get(namespace)
        if uids is None:
            uids = self._namespaces[namespace] = set()
        before = len(uids)
        uids.add(self._key(uid))
        self._count += len(uids) - before

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        uids = self._namespaces.get(item[0])
        return uids is not None and isinstance(item[1], str) and self._key(item[1]) in uids

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for namespace, uids in self._namespaces.items():
            for key in uids:
                yield namespace, key if isinstance(key, str) else str(uuid.UUID(bytes=key))

    def __len__(self) -> int:
        return self._count


class _PatrolListing:
    """One pass over the patrol's scopes into the digest and the snapshot. `read` starts
    everything over (the list expired: `relisted` runs it again) and returns the server's
    clock at the end of the list; what it found stays on the object."""

    def __init__(self, cluster: ClusterClient, namespaces: Sequence[str],
                 builder: DigestBuilder, baselines: _NamespaceBaselines,
                 writer: SnapshotWriter | None, progress: Progress | None) -> None:
        self.cluster = cluster
        self.namespaces = list(namespaces)
        self.builder = builder
        self.baselines = baselines
        self.writer = writer
        self.progress = progress
        self.present = PresentPods()
        self.skipped: dict[str, Unreadable] = {}  # namespaces this account may not list

    def read(self) -> datetime | None:
        if self.writer is not None:
            self.writer.reset()
        self.builder.reset()
        self.present = PresentPods()
        self.baselines.relist()
        latest: datetime | None = None
        scopes: list[str | None] = [*self.namespaces] or [None]
        for scope in scopes:
            if scope in self.skipped:
                continue
            listing = self._scope(scope)
            if listing is not None:
                latest = listing.server_time or latest
        if self.namespaces and len(self.skipped) == len(self.namespaces):
            raise ClusterError(self.skipped[self.namespaces[0]].detail)
        return latest

    def _scope(self, scope: str | None) -> Listing | None:
        """List one namespace (None: all); None when this account may not list it."""
        added = 0
        try:
            owners = self.cluster.owners(scope)
            resolved: Resolved = {}
            listing = self.cluster.pods(scope, self.progress)
            present = self.present if self.baselines.info is not None else None
            for raw in listing:
                pod = observe_patrolled(raw, owners, resolved)
                self.builder.add(pod, self.baselines.get(pod.namespace, self.present))
                if present is not None:  # only a baseline asks what is present
                    present.add(pod.namespace, pod.uid)
                if self.writer is not None:
                    self.writer.add_pod(pod)
                added += 1
        except ForbiddenError as exc:
            if scope is None or added:
                raise
            self.skipped[scope] = Unreadable(f"namespace {scope}", "forbidden", str(exc))
            return None
        return listing


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

    def __init__(self, store: Store, info: SnapshotInfo | None) -> None:
        self.store = store
        self.info = info
        self._cache: dict[str, Baseline] = {}
        self._loaded: set[str] = set()
        self._candidates: list[VanishedPod] = []
        self._whole: Baseline | None = None

    def get(self, namespace: str, present: Collection[tuple[str, str]]) -> Baseline | None:
        """The baseline of `namespace`; `present` is what the list has shown so far."""
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
                self._evict(next(iter(self._cache)), present)
            baseline = self._cache[namespace] = self.store.load_baseline(self.info, [namespace])
            self._loaded.add(namespace)
        return baseline

    def relist(self) -> None:
        """The list starts over (410): namespaces come round again in order, which is not
        the interleaving `get` watches for. Candidates stay (`vanished` filters them)."""
        self._cache.clear()
        self._loaded.clear()

    def _evict(self, namespace: str, present: Collection[tuple[str, str]]) -> None:
        baseline = self._cache.pop(namespace)
        self._candidates.extend(find_vanished(present, baseline))

    def vanished(self, present: Collection[tuple[str, str]],
                 namespaces: frozenset[str] | None) -> list[VanishedPod]:
        """Baseline pods (within `namespaces`) absent from the finished list."""
        if self.info is None:
            return []
        if self._whole is not None:
            return find_vanished(present, self._whole, namespaces)
        for namespace in list(self._cache):
            self._evict(namespace, present)
        found = {(v.namespace, v.pod_uid): v for v in self._candidates
                 if (v.namespace, v.pod_uid) not in present}
        for ns in self.store.snapshot_namespaces(self.info):
            if ns not in self._loaded and (namespaces is None or ns in namespaces):
                baseline = self.store.load_baseline(self.info, [ns])
                found.update(((v.namespace, v.pod_uid), v)
                             for v in find_vanished(present, baseline))
        return sorted((v for v in found.values()
                       if namespaces is None or v.namespace in namespaces),
                      key=lambda v: (v.namespace, v.pod_name))


EVIDENCE_READERS = READERS  # diagnoses read at once (each a log, then events)


def diagnose_workloads(cluster: ClusterClient, settings: Settings, builder: DigestBuilder,
                       workloads: Sequence[WorkloadSummary]
                       ) -> tuple[dict[WorkloadKey, Diagnosis], list[Unreadable]]:
    """Diagnose live the latest crash of each given workload from its previous log and
    events (workloads the record tells nothing of). The reads run `EVIDENCE_READERS` at a
    time on a pool of the cluster's runtime (else a pool of their own), stopped before
    this returns, all within QUERY_DEADLINE (or the patrol's deadline when it is sooner).

    Also returns what could not be read for those diagnoses (e.g. pods/log forbidden),
    counted per kind of problem, so the digest can say its summaries lack it."""
    targets: list[tuple[WorkloadKey, PodObservation, ContainerObservation]] = []
    for w in workloads:
        key = (w.namespace, w.kind, w.name)
        found = latest_termination(((p, c) for p in builder.restarting_pods(key)
                                    for c in p.containers), lambda pc: pc[1].last_termination)
        if found is not None:
            targets.append((key, *found))
    reader = cluster
    query = settings.limits.query_deadline
    if cluster.deadline is None or cluster.deadline.remaining() > query:
        reader = cluster.bounded(query, "QUERY_DEADLINE")
    reads = read_all_live(reader, settings, [(pod, c) for _, pod, c in targets])
    result: dict[WorkloadKey, Diagnosis] = {}
    missing: dict[tuple[str, str], Unreadable] = {}
    for (key, _, _), read in zip(targets, reads, strict=True):
        if read is None:
            continue
        result[key] = read.diagnosis
        for u in read.unreadable:
            seen = missing.get((u.what, u.why))
            missing[(u.what, u.why)] = u if seen is None else replace(seen,
                                                                      count=seen.count + 1)
    return result, list(missing.values())


def read_all_live(cluster: ClusterClient, settings: Settings,
                  targets: Sequence[tuple[PodObservation, ContainerObservation]]
                  ) -> list[ContainerEvidence | None]:
    """`read_live` of each target, `EVIDENCE_READERS` at a time, in the targets' order.
    None for a read given up on (its pool stopped under it: the runtime is shutting down).
    The pool is the cluster's runtime's when it has one, else this call's own; either
    way it is stopped before this returns, so no reader thread outlives the call."""
    if len(targets) <= 1:
        return [read_live(cluster, settings, pod, c) for pod, c in targets]
    try:
        with read_pool(cluster, "evidence", len(targets)) as pool:
            futures = [pool.submit(read_live, cluster, settings, pod, c) for pod, c in targets]
            left = cluster.deadline.remaining() if cluster.deadline is not None else None
            wait(futures, timeout=None if left is None else max(left, 0.0) + READ_GRACE)
            return [f.result() if f.done() and not f.cancelled() else None for f in futures]
    except RuntimeStopped:
        return [None] * len(targets)




def read_live(cluster: ClusterClient, settings: Settings, pod: PodObservation,
              container: ContainerObservation) -> ContainerEvidence:
    """The previous log and events of one container, and the diagnosis of its last exit
    with its spec facts (memory limit, probes, disruption)."""
    term = container.last_termination
    return read_evidence(cluster, settings, ContainerTarget(
        pod.namespace, pod.name, pod.uid, container.name,
        exit_code=term.exit_code if term is not None else None,
        signal=term.signal if term is not None else None,
        reason=term.reason if term is not None else None,
        message=term.message if term is not None else None, image=container.image,
        memory_limit=container.memory_limit, has_liveness_probe=container.has_liveness_probe,
        disruption_reason=pod.disruption_reason, container_kind=container.kind.value,
        has_memory_limit=container.memory_limit is not None))
