"""A digest slot counted from the flight recorder (issue 18: "the digest costs what
changed"), instead of listing every pod.

When the recorder has followed the cluster since the baseline's slot began — same run, no
relist: the baseline's `recorder_mark` is of the recorder's current epoch — the slot reads
only the pods whose restartCount changed since (the recorder's index, by sequence, never
by clock) and every other pod with restarts of the same workloads (their rows must show
the same pods, totals and flags as a listed digest's), each with one GET, and counts them
against the baseline exactly as a listed digest does (`DigestBuilder`). Pods gone since
the mark are the vanished ones; the recorded crashes of the window tell the stories, as
for a listed digest. The snapshot it writes holds only those pods and the gone ones, on
top of its baseline (a *recorded* snapshot: `Store.load_baseline` reads it as the listed
snapshot it stands on with every later change applied).

A full list still runs — and reconciles with the record (`patrol.reconcile`) — when the
recorder cannot vouch for the window: not watching, restarted or relisted since the
baseline's slot began, a baseline without a mark (the first slot, or one listed without
the recorder), another set of namespaces, or a listed snapshot under the chain older than
`RECONCILE_EVERY`. It also runs when there are more pods to read than a list costs
(`read_cap`): a window in which a large share of the pods restarted.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.answers.reads import read_pool
from bot.cluster import wire
from bot.cluster.client import ClusterClient
from bot.cluster.observe import Resolved, observe_patrolled
from bot.patrol.deltas import find_vanished
from bot.patrol.digest import Digest, DigestBuilder, PatrolOptions
from bot.patrol.model import KnownPod, PodObservation, QuietPod
from bot.patrol.story import WorkloadKey
from bot.runtime import RuntimeStopped
from bot.store import SnapshotInfo, Store

log = logging.getLogger("restart_patrol.patrol")

RECONCILE_EVERY = timedelta(days=1)  # a full list at least this often
# A pod read by name costs about what LISTED_PER_READ pods of a list cost (bench_digest_slot
# at 100k realistic pods: a listing slot 4.2 s, 1,000 pods read four at a time 1.84 s), so
# a slot reads at most 1 in LISTED_PER_READ of the pods, and never fewer than MIN_READ_CAP:
# past that, listing every pod is the cheaper way to the same rows.
LISTED_PER_READ = 50
MIN_READ_CAP = 20
_ROLLED_UP = ("ReplicaSet", "Job")  # controllers whose own controller is the workload


@runtime_checkable
class RecorderCounts(Protocol):
    """What a digest counts from, of a recorder (bot.recording.service implements it)."""

    def mark(self) -> str | None:
        """Where its record of changes stands now; None while not watching."""
        ...

    def changed_since(self, mark: str) -> tuple[list[KnownPod], list[tuple[str, str]]] | None:
        """Pods with restarts whose counts changed after `mark`, and (namespace, uid) of
        pods gone after it; None when it cannot tell (not watching, another run, a relist
        since)."""
        ...

    def restarting(self, namespaces: Iterable[str]) -> list[KnownPod]:
        """Every pod it follows in `namespaces` with a restart in its lifetime."""
        ...

    def census(self) -> dict[str, tuple[int, int]]:
        """Per namespace, the pods it follows and their distinct controllers."""
        ...

    def known_owner(self, kind: str, namespace: str, name: str) -> wire.ObjectMeta | None:
        """A ReplicaSet's or Job's metadata if its captures read it lately (no request)."""
        ...


def recorder_mark(recorder: object) -> str | None:
    """The mark a listed digest's snapshot keeps, so the next slot can count from it."""
    return recorder.mark() if isinstance(recorder, RecorderCounts) else None


@dataclass(frozen=True, slots=True)
class Counted:
    """A digest counted from the record: the digest, the builder that holds its pods (the
    live diagnoses read from it) and the recorded snapshot written."""

    digest: Digest
    builder: DigestBuilder
    snapshot: SnapshotInfo
    pods_read: int


class _AllBut(Container[tuple[str, str]]):
    """Every pod except those gone: what is present now, to the record's window."""

    def __init__(self, gone: set[tuple[str, str]]) -> None:
        self.gone = gone

    def __contains__(self, item: object) -> bool:
        return item not in self.gone


def list_instead(store: Store, options: PatrolOptions, chosen: Sequence[str],
                 info: SnapshotInfo, start: datetime, recorder: object) -> str | None:
    """Why this slot must list every pod (None: it may count from the record)."""
    if not isinstance(recorder, RecorderCounts):
        return "no flight recorder"
    if info.recorder_mark is None:
        return "the baseline was listed without the recorder's mark"
    if tuple(info.namespaces) != tuple(chosen):
        return "the namespaces patrolled changed"
    if options.min_delta < 1:
        return "MIN_DELTA below 1 shows workloads without restarts in the window"
    if start - store.listed_root(info).taken_at >= RECONCILE_EVERY:
        return "the daily full list reconciles the counts"
    return None


def read_cap(pods: int) -> int:
    """How many pods a recorder-counted slot reads by name at most, of `pods` followed."""
    return max(MIN_READ_CAP, pods // LISTED_PER_READ)


def count_from_record(cluster: ClusterClient, store: Store, options: PatrolOptions,
                      chosen: Sequence[str], records: str, info: SnapshotInfo,
                      start: datetime, recorder: object) -> Counted | None:
    """Count the window since `info` from the recorder (module docstring) and record a
    recorded snapshot as `records`; None when a full list must run instead (logged)."""
    if recorder is None:  # a patrol run by hand: nothing to count from
        return None
    why = list_instead(store, options, chosen, info, start, recorder)
    counts = recorder if isinstance(recorder, RecorderCounts) else None
    mark = counts.mark() if counts is not None and why is None else None
    found = (counts.changed_since(info.recorder_mark)
             if counts is not None and mark is not None and info.recorder_mark is not None
             else None)
    if counts is None or mark is None or found is None:
        log.info("cluster %s: the digest lists every pod: %s", cluster.name, why or
                 "the recorder relisted or restarted since the baseline, or is not watching")
        return None
    changed, deleted = found
    gone = set(deleted)
    history = store.history.window(cluster.name, info.taken_at, start, _AllBut(gone), chosen)
    reader = _Reader(cluster, counts)
    wanted: set[WorkloadKey] = {(p.namespace, *reader.workload(p)) for p in changed}
    wanted.update((s.namespace, s.workload_kind, s.workload_name) for s in history.stories)
    wanted.update(history.vanished)
    if chosen:  # the namespaces patrolled (the recorder may follow more)
        wanted = {key for key in wanted if key[0] in chosen}
    covered = [tally for ns, tally in counts.census().items() if options.covers(ns)]
    candidates = reader.candidates(wanted, counts.restarting({ns for ns, _, _ in wanted}))
    cap = read_cap(sum(c[0] for c in covered))
    if len(candidates) > cap:
        log.info("cluster %s: the digest lists every pod: %d pods to read one by one cost "
                 "more than a list (at most %d)", cluster.name, len(candidates), cap)
        return None
    pods = reader.pods_of(wanted, candidates)
    builder = DigestBuilder(cluster.name, options, first_run=False)
    # the baseline of just these pods: the read pods and the gone ones
    baseline = store.load_baseline(info, only={(p.namespace, p.uid) for p in pods} | gone)
    for pod in pods:
        builder.add(pod, baseline)
    readable = frozenset(chosen) or None
    vanished = [v for v in find_vanished(_AllBut(gone), baseline, readable)
                if (v.namespace, v.pod_uid) in gone]
    digest = replace(builder.finish(info.taken_at, start, vanished, history),
                     pods_scanned=sum(c[0] for c in covered),
                     workloads_scanned=sum(c[1] for c in covered))
    with store.snapshot_writer(cluster.name, start, records, chosen, parent=info,
                               recorder_mark=mark) as writer:
        for pod in pods:
            writer.add_pod(pod)
        for v in vanished:
            writer.gone(v.namespace, v.pod_uid)
        writer.close(taken_at=start)
    log.info("cluster %s: the digest counted from the flight recorder: %d pods changed, "
             "%d gone, %d read for %d workloads", cluster.name, len(changed), len(gone),
             reader.reads, len(wanted))
    return Counted(digest, builder, writer.info, reader.reads)


class _Reader:
    """Reads what a recorder-counted slot needs from the API, a few objects at a time:
    the controllers of changed pods (their workloads, as a list would roll them up) and
    the pods themselves."""

    def __init__(self, cluster: ClusterClient, recorder: RecorderCounts) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.owners: dict[tuple[str, str, str], wire.ObjectMeta] = {}
        self._asked: set[tuple[str, str, str]] = set()
        self.resolved: Resolved = {}
        self.reads = 0

    def workload(self, pod: KnownPod) -> tuple[str, str]:
        """(kind, name) of the pod's workload, through its real owners."""
        if not pod.owner_kind:
            return ("Pod", pod.name)
        key = (pod.owner_kind, pod.namespace, pod.owner_name)
        if pod.owner_kind in _ROLLED_UP:
            if key not in self._asked:
                self._asked.add(key)
                meta = self.recorder.known_owner(*key)
                if meta is None:
                    self.reads += 1
                    meta = self.cluster.owner(*key)
                if meta is not None:
                    self.owners[key] = meta
            meta = self.owners.get(key)
            parent = _controller(meta) if meta is not None else None
            if parent is not None:
                return (parent.kind, parent.name)
        return (pod.owner_kind, pod.owner_name)

    def candidates(self, wanted: set[WorkloadKey], restarting: list[KnownPod]
                   ) -> list[KnownPod]:
        """The recorder's pods with restarts of the `wanted` workloads: what `pods_of`
        reads, in namespace order."""
        names = {(ns, name) for ns, _, name in wanted}
        chosen = [pod for pod in restarting if _may_belong(pod, names)
                  and (pod.namespace, *self.workload(pod)) in wanted]
        chosen.sort(key=lambda p: (p.namespace, p.name))
        return chosen

    def pods_of(self, wanted: set[WorkloadKey], chosen: list[KnownPod]
                ) -> list[PodObservation | QuietPod]:
        """The `chosen` pods (`candidates`) read now, one GET each, that still belong to
        the `wanted` workloads (a pod gone meanwhile is left out), in namespace order."""
        found: list[PodObservation | QuietPod] = []
        seen: set[str] = set()
        self.reads += len(chosen)
        for raw in self._read(chosen):
            if raw is None or raw.metadata.uid in seen:
                continue
            seen.add(raw.metadata.uid)
            seen_now = observe_patrolled(raw, self.owners, self.resolved)
            workload = seen_now.workload
            if (seen_now.namespace, workload.kind, workload.name) in wanted:
                found.append(seen_now)
        return found

    def _read(self, pods: list[KnownPod]) -> list[wire.Pod | None]:
        """Each pod by name, `READERS` at a time (the API's politeness), in order."""
        cluster = self.cluster
        if len(pods) <= 1:
            return [cluster.pod(p.namespace, p.name) for p in pods]
        try:
            with read_pool(cluster, "slot-reads", len(pods)) as pool:
                futures = [pool.submit(cluster.pod, p.namespace, p.name) for p in pods]
                return [f.result() for f in futures]
        except RuntimeStopped:  # shutting down: the slot's deadline ends these
            return [cluster.pod(p.namespace, p.name) for p in pods]


def _may_belong(pod: KnownPod, names: set[tuple[str, str]]) -> bool:
    """Whether the pod's controller could belong to one of the (namespace, workload name)s:
    it is named so, or it is a ReplicaSet or Job named after it (`<name>-<suffix>`, as
    Deployments and CronJobs name theirs). The owner read then decides."""
    if not pod.owner_kind:
        return (pod.namespace, pod.name) in names
    if (pod.namespace, pod.owner_name) in names:
        return True
    if pod.owner_kind not in _ROLLED_UP:
        return False
    head, _, _ = pod.owner_name.rpartition("-")
    while head:
        if (pod.namespace, head) in names:
            return True
        head, _, _ = head.rpartition("-")
    return False


def _controller(meta: wire.ObjectMeta) -> wire.OwnerReference | None:
    refs = meta.ownerReferences
    return next((r for r in refs if r.controller), refs[0] if refs else None)
