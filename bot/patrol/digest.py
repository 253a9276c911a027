"""Roll container deltas up into workloads and build the digest a patrol reports.

Workloads are sorted by restarts in the window (then by total); each carries flags an SRE
acts on: CrashLoopBackOff now, OOMKilled, no liveness/readiness probe, no memory limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase

from bot.diagnosis.exit_codes import decode_termination
from bot.patrol.deltas import (
    ContainerDelta,
    DeltaBasis,
    VanishedPod,
    compute_deltas,
)
from bot.patrol.model import (
    Baseline,
    ContainerKind,
    PodObservation,
    QuietPod,
    Termination,
    latest_termination,
)
from bot.patrol.routing import ChannelScope
from bot.patrol.story import (
    SOURCE_RECORD,
    SOURCE_SNAPSHOTS,
    ClusterDown,
    CrashStory,
    RecordedWindow,
    WorkloadKey,
    by_workload,
)

FLAG_CRASHLOOP = "CrashLoopBackOff"
FLAG_OOMKILLED = "OOMKilled"
FLAG_NO_PROBES = "no probes"
FLAG_NO_MEMORY_LIMIT = "no memory limit"


@dataclass(frozen=True, slots=True)
class PatrolOptions:
    """Filters of one patrol: namespaces (empty = all), minimum delta, ignore patterns.

    Ignore patterns are shell globs matched against `namespace/workload` and `workload`.
    """

    namespaces: frozenset[str] = frozenset()
    min_delta: int = 1
    ignore: tuple[str, ...] = ()
    scope: ChannelScope | None = None  # a team channel's digest: only what is routed to it

    def ignores(self, namespace: str, workload: str) -> bool:
        """True when a pattern matches `namespace/workload` or `workload`."""
        full = f"{namespace}/{workload}"
        return any(fnmatchcase(full, p) or fnmatchcase(workload, p) for p in self.ignore)

    def covers(self, namespace: str) -> bool:
        """True when the namespace is patrolled (and routed to the digest's channel)."""
        return ((not self.namespaces or namespace in self.namespaces)
                and (self.scope is None or self.scope.carries(namespace)))


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    """One container in the digest."""

    name: str
    kind: ContainerKind
    restarts: int | None
    total: int
    basis: DeltaBasis
    last_termination: Termination | None
    waiting_reason: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class PodSummary:
    """One pod in the digest, with its containers."""

    name: str
    uid: str
    containers: tuple[ContainerSummary, ...]


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    """One workload row of the digest. `restarts` is the delta; None on a first run.
    `total` is its pods' restartCount sum now (None: not read, the cluster was down).
    `stories` are its recorded crashes in the window, newest first: the first one is the
    row's headline (its latest crash), each one is told with its own tally."""

    namespace: str
    kind: str
    name: str
    restarts: int | None
    total: int | None
    last_termination: Termination | None
    category: str | None
    meaning: str | None
    flags: tuple[str, ...]
    pods: tuple[PodSummary, ...]
    unknown_pods: int = 0  # pods without a baseline: their delta is not counted
    oldest_pod: datetime | None = None  # creation time of its oldest restarting pod
    stories: tuple[CrashStory, ...] = ()  # recorded crashes in the window, newest first
    vanished_restarts: int = 0  # recorded restarts of pods gone by now (in `restarts`)

    @property
    def headline(self) -> CrashStory | None:
        """The story of its latest recorded crash (None: nothing recorded in the window)."""
        return self.stories[0] if self.stories else None


@dataclass(frozen=True, slots=True)
class Digest:
    """The answer of one patrol."""

    cluster: str
    window_from: datetime | None
    window_to: datetime
    workloads: tuple[WorkloadSummary, ...]
    vanished: tuple[VanishedPod, ...] = ()
    pods_scanned: int = 0
    workloads_scanned: int = 0
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    recorded: bool = False  # the flight recorder ran through the whole window
    dropped_captures: int = 0  # restarts counted but not described (capture queue full)
    source: str = SOURCE_SNAPSHOTS  # what `restarts` were counted from (story.SOURCE_*)
    unreachable: ClusterDown | None = None  # answered from the record alone

    @property
    def vanished_restarts(self) -> int:
        """Restarts of gone pods, known from the recorder (included in the deltas)."""
        return sum(w.vanished_restarts for w in self.workloads)

    @property
    def first_run(self) -> bool:
        """No baseline yet: totals are lifetime counts, deltas start next patrol."""
        return self.window_from is None

    @property
    def restarts_in_window(self) -> int:
        """Sum of the workloads' deltas (0 on a first run)."""
        return sum(w.restarts or 0 for w in self.workloads)


def _flags(deltas: Sequence[ContainerDelta]) -> tuple[str, ...]:
    flags: list[str] = []
    restarting = [d.container for d in deltas if d.container.restarts > 0]
    if any(d.container.waiting_reason == FLAG_CRASHLOOP for d in deltas):
        flags.append(FLAG_CRASHLOOP)
    if any(
        c.last_termination is not None and c.last_termination.reason == FLAG_OOMKILLED
        for c in restarting
    ):
        flags.append(FLAG_OOMKILLED)
    long_running = [c for c in restarting if c.kind in (ContainerKind.APP, ContainerKind.SIDECAR)]
    if any(not c.has_liveness_probe and not c.has_readiness_probe for c in long_running):
        flags.append(FLAG_NO_PROBES)
    if any(c.memory_limit is None for c in restarting):
        flags.append(FLAG_NO_MEMORY_LIMIT)
    return tuple(flags)


def _category(term: Termination | None) -> tuple[str | None, str | None]:
    if term is None:
        return None, None
    decoded = decode_termination(term.exit_code, term.reason, term.signal)
    return decoded.category, decoded.meaning


def _summarise_workload(key: tuple[str, str, str], deltas: list[ContainerDelta],
                        first_run: bool, total: int) -> WorkloadSummary:
    namespace, kind, name = key
    pods: dict[str, list[ContainerSummary]] = {}
    pod_names: dict[str, str] = {}
    for d in deltas:
        term = d.container.last_termination
        pod_names[d.pod.uid] = d.pod.name
        pods.setdefault(d.pod.uid, []).append(
            ContainerSummary(
                name=d.container.name,
                kind=d.container.kind,
                restarts=d.delta,
                total=d.container.restarts,
                basis=d.basis,
                last_termination=term,
                waiting_reason=d.container.waiting_reason,
                category=_category(term)[0],
            )
        )
    known = [d.delta for d in deltas if d.delta is not None]
    latest = latest_termination(deltas, lambda d: d.container.last_termination)
    last = latest.container.last_termination if latest else None
    category, meaning = _category(last)
    pod_rows = sorted(
        (PodSummary(pod_names[uid], uid, tuple(cs)) for uid, cs in pods.items()),
        key=lambda p: (-sum(c.restarts or 0 for c in p.containers),
                       -sum(c.total for c in p.containers), p.name),
    )
    created = [d.pod.created_at for d in deltas if d.pod.created_at is not None]
    return WorkloadSummary(
        oldest_pod=min(created) if created else None,
        namespace=namespace,
        kind=kind,
        name=name,
        restarts=None if first_run else sum(known),
        total=total,
        last_termination=last,
        category=category,
        meaning=meaning,
        flags=_flags(deltas),
        pods=tuple(pod_rows),
        unknown_pods=len({d.pod.uid for d in deltas if d.basis == DeltaBasis.NO_BASELINE}),
    )


@dataclass(slots=True)
class _Tally:
    """Running sums of one workload while pods stream in."""

    total: int = 0
    delta: int = 0
    deltas: list[ContainerDelta] = field(default_factory=list)  # restarting pods only
    pods: list[PodObservation] = field(default_factory=list)


class DigestBuilder:
    """Builds a digest from pods streamed one at a time, in memory proportional to the
    workloads and the *restarting* pods, not to the cluster: quiet pods are counted and
    dropped. Per-pod baselines let the caller load the baseline namespace by namespace.
    """

    def __init__(self, cluster: str, options: PatrolOptions | None = None, *,
                 first_run: bool) -> None:
        self.cluster = cluster
        self.options = options or PatrolOptions()
        self.first_run = first_run
        self.reset()

    def reset(self) -> None:
        """Forget everything added (the pod list restarted)."""
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self.pods_scanned = 0

    def add(self, pod: PodObservation | QuietPod, baseline: Baseline | None) -> None:
        """Count one pod against its namespace's baseline (None on a first run)."""
        if not self.options.covers(pod.namespace):
            return
        self.pods_scanned += 1
        key = (pod.namespace, pod.workload.kind, pod.workload.name)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        if isinstance(pod, QuietPod):
            return  # counted; it adds nothing to any total or delta
        restarting = False
        for c in pod.containers:
            tally.total += c.restarts
            restarting = restarting or c.restarts > 0
        if not restarting:
            return  # a pod without restarts adds nothing to any delta
        deltas = compute_deltas([pod], None if self.first_run else baseline)
        tally.delta += sum(d.delta or 0 for d in deltas)
        tally.deltas.extend(deltas)
        tally.pods.append(pod)

    def restarting_pods(self, key: tuple[str, str, str]) -> list[PodObservation]:
        """The pods with restarts of one workload (for diagnosing its latest crash)."""
        tally = self._tallies.get(key)
        return list(tally.pods) if tally else []

    def listed_deltas(self) -> dict[WorkloadKey, int]:
        """Each workload's restarts in the window counted from the pods listed (known
        deltas only; none on a first run)."""
        if self.first_run:
            return {}
        return {key: tally.delta for key, tally in self._tallies.items() if tally.delta}

    def summaries(self) -> dict[WorkloadKey, WorkloadSummary]:
        """Every workload seen so far with restarting pods, as a row (no filters): the live
        state a view from the record is enriched with."""
        return {key: _summarise_workload(key, tally.deltas, self.first_run, tally.total)
                for key, tally in self._tallies.items() if tally.deltas}

    def finish(self, window_from: datetime | None, now: datetime,
               vanished: Sequence[VanishedPod] = (),
               history: RecordedWindow | None = None) -> Digest:
        """Filter (minimum delta, ignore list), summarise and sort the workloads. With the
        recorder's `history` of the window, each workload carries its stories, and restarts
        of pods gone by now are added to its delta (they are in no listing)."""
        options = self.options
        recorded = history if history is not None and not self.first_run else RecordedWindow()
        stories = by_workload(recorded.stories)
        shown: list[WorkloadSummary] = []
        for key in {*self._tallies, *recorded.vanished}:
            tally = self._tallies.get(key) or _Tally()
            gone = recorded.vanished.get(key, (0, 0))[0]
            if not options.covers(key[0]) or options.ignores(key[0], key[2]):
                continue
            amount = tally.total if self.first_run else tally.delta + gone
            if amount < options.min_delta or not (tally.deltas or gone):
                continue
            summary = _summarise_workload(key, tally.deltas, self.first_run, tally.total)
            summary = replace(summary, stories=stories.get(key, ()), vanished_restarts=gone,
                              restarts=None if summary.restarts is None
                              else summary.restarts + gone)
            shown.append(summary)
        shown.sort(key=_by_restarts)
        return Digest(
            cluster=self.cluster,
            window_from=None if self.first_run else window_from,
            window_to=now,
            workloads=tuple(shown),
            vanished=tuple(v for v in vanished if options.covers(v.namespace)
                           and not options.ignores(v.namespace, v.workload.name)),
            pods_scanned=self.pods_scanned,
            workloads_scanned=len(self._tallies),
            namespaces=tuple(sorted(options.namespaces)),
            recorded=recorded.covered,
            dropped_captures=recorded.dropped,
        )


def _by_restarts(w: WorkloadSummary) -> tuple[int, int, str, str]:
    return (-(w.restarts or 0), -(w.total or 0), w.namespace, w.name)


def digest_from_record(cluster: str, window_from: datetime, window_to: datetime,
                       stories: Sequence[CrashStory], live: dict[WorkloadKey, WorkloadSummary]
                       | None, *, options: PatrolOptions | None = None,
                       pods_scanned: int = 0, workloads_scanned: int = 0,
                       unreachable: ClusterDown | None = None) -> Digest:
    """A digest counted from the record: each workload's restarts in the window are its
    stories' restarts, its headline is its latest story; `live` (the restarting pods now,
    from `DigestBuilder.summaries`) adds pods, totals and flags when the cluster answered
    (None: it did not)."""
    options = options or PatrolOptions()
    shown: list[WorkloadSummary] = []
    for key, told in by_workload(stories).items():
        namespace, kind, name = key
        if not options.covers(namespace) or options.ignores(namespace, name):
            continue
        restarts = sum(s.restarts for s in told)
        if restarts < options.min_delta:
            continue
        now = (live or {}).get(key)
        latest = told[0].latest
        category, meaning = _category(Termination(latest.exit_code, latest.reason,
                                                  latest.signal)
                                      if latest.exit_code is not None else None)
        shown.append(WorkloadSummary(
            namespace=namespace, kind=kind, name=name, restarts=restarts,
            total=now.total if now is not None else (0 if live is not None else None),
            last_termination=now.last_termination if now is not None else None,
            category=latest.category or category, meaning=meaning,
            flags=now.flags if now is not None else (), pods=now.pods if now else (),
            oldest_pod=now.oldest_pod if now is not None else None, stories=told))
    shown.sort(key=_by_restarts)
    return Digest(cluster=cluster, window_from=window_from, window_to=window_to,
                  workloads=tuple(shown), pods_scanned=pods_scanned,
                  workloads_scanned=workloads_scanned,
                  namespaces=tuple(sorted(options.namespaces)), recorded=True,
                  source=SOURCE_RECORD, unreachable=unreachable)

