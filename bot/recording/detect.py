"""Stage 2 of the recorder: detect restarts by comparing restart counts (never clocks).

The `Detector` is the watches' `PodHandler`. It runs on the watch threads and does only
arithmetic in memory: per pod, its container names and restartCounts. A restart is an
increase of a container's restartCount over what was known — from memory, else from the
restart ledger (what the last run saw), else zero when the scope was listed before (the pod
was born, or first restarted, while the recorder was away), else — a scope never listed,
the first start — the install's baseline: nothing is counted, what is crashing now is
seeded as "known at install". Whatever it finds goes to the ledger stage's inbox; the
watch thread never reads the API again, writes the database or calls Slack, so no later
stage can stop a watch.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import msgspec

from bot.cluster import wire
from bot.cluster.observe import containers_of
from bot.cluster.podwatch import WatchedPod
from bot.patrol.model import KnownPod
from bot.store.ledger import ALL, Baseline

SHARED_TUPLES = 10_000  # distinct name/count tuples kept once and shared by many pods
_intern = sys.intern


class Job(msgspec.Struct, frozen=True, gc=False):
    """One restart (or, with `restarts` 0, one crash seen at install) to describe: the few
    pod fields a capture needs. Persisted as a pending capture, so it survives a restart."""

    namespace: str
    pod: str
    uid: str
    container: str
    kind: str  # ContainerKind value
    restart_count: int
    restarts: int  # restarts this job stands for (several when counted after downtime)
    term: wire.Terminated | None
    image: str
    node: str | None
    owner: wire.OwnerReference | None
    created: str | None
    template_hash: str | None
    memory_limit: str | None = None
    has_liveness_probe: bool = False
    disruption_reason: str | None = None
    missed: bool = False  # counted on a list, after the recorder was away

    @property
    def seed(self) -> bool:
        return self.restarts == 0


@dataclass(frozen=True, slots=True)
class Count:
    """A container's restartCount as now seen (only increases are ever sent)."""

    namespace: str
    uid: str
    container: str
    restart_count: int


@dataclass(frozen=True, slots=True)
class Gone:
    """A pod that no longer exists: its ledger rows go."""

    uid: str


@dataclass(frozen=True, slots=True)
class Listed:
    """A scope's list is complete (registered as listed once committed)."""

    scope: str


Found = Job | Count | Gone | Listed
# container names, their restartCounts, the namespace and the controller (kind, name)
_PodState = tuple[tuple[str, ...], tuple[int, ...], str, tuple[str, str]]
_BARE = ("", "")
SHARED_OWNERS = 100_000  # controllers (kind, name) kept once and shared by their pods
SHARED_QUIET = 100_000  # states of pods without restarts, kept once per controller
DELETIONS_KEPT = 200_000  # pods gone remembered for digests (then older marks expire)


class Detector:
    """The recorder's PodHandler (see the module docstring). `emit` hands what it finds to
    the ledger stage (it blocks while that stage is full, which slows the watch, never
    loses); `progressed` tells the service how far each scope has been delivered."""

    def __init__(self, scopes: tuple[str | None, ...], emit: Callable[[Found], None],
                 progressed: Callable[[str | None, int], None], *,
                 relisted: Callable[[], object] = lambda: None) -> None:
        self.scopes = scopes
        self._relisted = relisted
        self.emit = emit
        self._progressed = progressed
        self.baseline: Baseline | None = None  # set before the watches start
        self._pods: dict[str | None, dict[str, _PodState]] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._counts: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._listed: set[str | None] = set()
        self._seeded: set[tuple[str, str, str, str]] = set()
        self._owners: dict[tuple[str, str], tuple[str, str]] = {}
        # The pods of a controller that never restarted have one state: kept once (most
        # pods; the states of restarting pods change with every restart, so not these).
        self._quiet: dict[_PodState, _PodState] = {}
        self._lock = threading.Lock()
        self.restarts = 0  # every restart counted, described or not
        self.relists = 0
        # What a digest reads instead of listing every pod (`mark`, `changed_since`): the
        # pods with restarts, the order in which counts changed and pods went (a sequence
        # number, never a clock), all valid within one epoch: this run, no relist since.
        self._run = uuid.uuid4().hex[:12]
        self._index = threading.Lock()
        self._seq = 0
        self._restarting: dict[str, KnownPod] = {}
        self._changed: dict[str, int] = {}  # uid -> seq of its last count change
        self._deleted: list[tuple[int, str, str]] = []  # (seq, namespace, uid)
        self._deleted_floor = 0  # marks before it are too old (deletions forgotten)
        self._members: dict[tuple[str, str, str], int] = {}  # pods per controller
        self._namespace_pods: dict[str, int] = {}

    # ---- what the service reads ------------------------------------------------------
    def listed_all(self) -> bool:
        return len(self._listed) == len(self.scopes)

    def pods(self) -> int:
        return sum(len(p) for p in self._pods.values())

    def present(self, pods: Iterator[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (namespace, pod uid) pairs are pods it follows now."""
        everywhere = self.scopes == (None,)
        found: set[tuple[str, str]] = set()
        for ns, uid in pods:
            known = self._pods.get(None if everywhere else ns)
            if known is not None and uid in known:
                found.add((ns, uid))
        return found

    @property
    def epoch(self) -> str:
        """This run since its last relist: marks of another epoch mean nothing now."""
        return f"{self._run}.{self.relists}"

    def mark(self) -> str:
        """Where the record of changes stands now ("epoch:sequence")."""
        with self._index:
            return f"{self.epoch}:{self._seq}"

    def changed_since(self, mark: str) -> tuple[list[KnownPod], list[tuple[str, str]]] | None:
        """The pods with restarts whose counts changed after `mark`, and the (namespace,
        uid) of pods gone after it; None when the mark is of another epoch (another run,
        or a relist since) or older than the deletions remembered."""
        epoch, _, number = mark.rpartition(":")
        if epoch != self.epoch or not number.isdigit():
            return None
        seq = int(number)
        with self._index:
            if seq < self._deleted_floor:
                return None
            changed = [self._restarting[uid] for uid, at in self._changed.items()
                       if at > seq and uid in self._restarting]
            gone = [(ns, uid) for at, ns, uid in self._deleted if at > seq]
        if epoch != self.epoch:  # a relist began meanwhile
            return None
        return changed, gone

    def restarting(self, namespaces: Iterable[str]) -> list[KnownPod]:
        """Every pod it follows in `namespaces` with a restart in its lifetime."""
        wanted = set(namespaces)
        with self._index:
            return [p for p in self._restarting.values() if p.namespace in wanted]

    def census(self) -> dict[str, tuple[int, int]]:
        """Per namespace, the pods followed now and their distinct controllers (a bare
        pod is its own): kept as pods come and go, so reading it costs the controllers."""
        with self._index:
            members = list(self._members)
            pods = dict(self._namespace_pods)
        controllers: dict[str, int] = {}
        for namespace, _, _ in members:
            controllers[namespace] = controllers.get(namespace, 0) + 1
        return {ns: (n, controllers.get(ns, 0)) for ns, n in pods.items() if n}

    def _count(self, uid: str, state: _PodState, step: int) -> None:
        """Add (1) or take (-1) one pod to the census; under `_index`."""
        namespace, owner = state[2], state[3]
        key = (namespace, *owner) if owner[0] else (namespace, "", uid)
        left = self._members.get(key, 0) + step
        if left > 0:
            self._members[key] = left
        else:
            self._members.pop(key, None)
        self._namespace_pods[namespace] = self._namespace_pods.get(namespace, 0) + step

    def _forget(self, state: _PodState, uid: str) -> None:
        """A pod is gone: out of the index and the census, into the deletions (bounded)."""
        namespace = state[2]
        with self._index:
            self._count(uid, state, -1)
            self._seq += 1
            self._restarting.pop(uid, None)
            self._changed.pop(uid, None)
            self._deleted.append((self._seq, namespace, uid))
            if len(self._deleted) > DELETIONS_KEPT:
                cut = len(self._deleted) // 2
                self._deleted_floor = self._deleted[cut - 1][0]
                del self._deleted[:cut]

    # ---- PodHandler ------------------------------------------------------------------
    def listed(self, scope: str | None, pods: Iterator[WatchedPod]) -> None:
        known = self._pods.setdefault(scope, {})
        first = scope not in self._listed
        if not first:
            self.relists += 1
            self._relisted()
        # What the list does not show is gone: the pods known before it, less those seen
        # (a set of the keys already held; a set of every listed uid would keep a copy of
        # each, allocated among the pages' objects — a relist's worth of fragmentation).
        unseen = set(known)
        away = ({uid for uid, ns in self.baseline.namespaces.items()
                 if scope is None or ns == scope}
                if first and self.baseline is not None else set())
        for pod in pods:
            uid = pod.metadata.uid
            unseen.discard(uid)
            away.discard(uid)
            self._observe(pod, known, first=first)
        for uid in [u for u in known if u in unseen]:
            self._forget(known.pop(uid), uid)
            self.emit(Gone(uid))
        if away and self.baseline is not None:  # ledger rows of pods gone while away
            for uid in self.baseline.namespaces:
                if uid in away:
                    self.emit(Gone(uid))
        self.emit(Listed(ALL if scope is None else scope))
        with self._lock:
            self._listed.add(scope)
            if self.listed_all():
                self.baseline = None  # only first lists compare with the ledger
                self._seeded.clear()

    def changed(self, event: str, pod: WatchedPod) -> None:
        scope = pod.metadata.namespace if self.scopes != (None,) else None
        known = self._pods.setdefault(scope, {})
        self._observe(pod, known, first=False)
        if event == "DELETED":
            state = known.pop(pod.metadata.uid, None)
            if state is not None:
                self._forget(state, pod.metadata.uid)
            self.emit(Gone(pod.metadata.uid))

    def progressed(self, scope: str | None, resource_version: int) -> None:
        self._progressed(scope, resource_version)

    # ---- the comparison --------------------------------------------------------------
    def _before(self, pod: WatchedPod, name: str, count: int) -> tuple[int, bool]:
        """The count to compare with for a container not in memory, and whether the
        recorder was away (True: counted after downtime)."""
        baseline = self.baseline
        if baseline is None:
            return 0, False  # born since the first list: all of its restarts are news
        mark = baseline.counts.get((pod.metadata.uid, name))
        if mark is not None:
            return min(mark, count), True
        if baseline.listed(pod.metadata.namespace):
            return 0, True  # born, or first restarted, while the recorder was away
        return count, False  # never listed: the install's baseline

    def _observe(self, pod: WatchedPod, known: dict[str, _PodState], *, first: bool) -> None:
        meta = pod.metadata
        previous = known.get(meta.uid)
        old = dict(zip(previous[0], previous[1], strict=True)) if previous is not None else None
        names: list[str] = []
        counts: list[int] = []
        for status, spec, kind in containers_of(pod.spec, pod.status):
            count = status.restartCount
            names.append(status.name)
            counts.append(count)
            missed = False
            if old is not None:
                before = old.get(status.name, 0)
            elif first:
                before, missed = self._before(pod, status.name, count)
            else:
                before = 0
            if count > before:
                self.restarts += count - before
                self.emit(self._job(pod, status, spec, kind.value, count - before, missed))
            elif first and count > 0 and before == count and self.baseline is not None and (
                    (meta.uid, status.name) not in self.baseline.counts):
                self.emit(Count(_intern(meta.namespace), meta.uid, _intern(status.name),
                                count))  # the install's baseline, counted from here
                self._seed(pod, status, spec, kind.value)
        shared = tuple(names)
        if len(self._names) < SHARED_TUPLES:
            shared = self._names.setdefault(shared, shared)
        tally = tuple(counts)
        if len(self._counts) < SHARED_TUPLES:
            tally = self._counts.setdefault(tally, tally)
        ref = _controller(meta)
        owner = _BARE if ref is None else (ref.kind, ref.name)
        if len(self._owners) >= SHARED_OWNERS:  # churned controllers: start over
            self._owners.clear()
        owner = self._owners.setdefault(owner, owner)
        namespace = _intern(meta.namespace)
        if previous is not None and previous[0] == shared and previous[1] == tally and (
                previous[2] == namespace and previous[3] == owner):
            state = previous  # unchanged (most events, every pod of a relist): nothing new
        else:                 # is allocated among the decoded page's transient objects
            state = (shared, tally, namespace, owner)
            if not any(counts):
                if len(self._quiet) >= SHARED_QUIET:  # churned controllers: start over
                    self._quiet.clear()
                state = self._quiet.setdefault(state, state)
            known[meta.uid] = state
        if previous is None or previous[2] != namespace or previous[3] != owner:
            with self._index:
                if previous is not None:
                    self._count(meta.uid, previous, -1)
                self._count(meta.uid, state, 1)
        changed = (tally != previous[1] if previous is not None
                   else not first and any(counts))
        if changed or (any(counts) and meta.uid not in self._restarting):
            self._index_pod(meta.uid, meta.name, namespace, owner, tally, changed)

    def _index_pod(self, uid: str, name: str, namespace: str, owner: tuple[str, str],
                   counts: tuple[int, ...], changed: bool) -> None:
        with self._index:
            if any(counts):
                before = self._restarting.get(uid)
                if before is None or before[1] != name or before[3:] != owner:
                    self._restarting[uid] = KnownPod(namespace, name, uid, *owner)
            else:
                self._restarting.pop(uid, None)
            if changed:
                self._seq += 1
                self._changed[uid] = self._seq

    def _seed(self, pod: WatchedPod, status: wire.ContainerStatus,
              spec: wire.ContainerSpec | None, kind: str) -> None:
        """One crash per (namespace, owner, container) crashing at install is described,
        so its fingerprint is known before any alert could call it new."""
        term = status.lastState.terminated if status.lastState else None
        if term is None:
            return
        meta = pod.metadata
        key = seed_group(meta.namespace, _controller(meta), meta.name, status.name)
        if key in self._seeded:
            return
        self._seeded.add(key)
        self.emit(self._job(pod, status, spec, kind, 0, False))

    def _job(self, pod: WatchedPod, status: wire.ContainerStatus,
             spec: wire.ContainerSpec | None, kind: str, restarts: int, missed: bool) -> Job:
        meta = pod.metadata
        limits = spec.resources.limits if spec and spec.resources else None
        return Job(
            namespace=_intern(meta.namespace), pod=meta.name, uid=meta.uid,
            container=_intern(status.name), kind=kind, restart_count=status.restartCount,
            restarts=restarts, term=status.lastState.terminated if status.lastState else None,
            image=status.image or (spec.image if spec else ""), node=pod.spec.nodeName,
            owner=_controller(meta), created=meta.creationTimestamp,
            template_hash=meta.labels.pod_template_hash,
            memory_limit=limits.memory if limits and limits.memory else None,
            has_liveness_probe=bool(spec and spec.livenessProbe is not None),
            disruption_reason=next((x.reason for x in pod.status.conditions
                                    if x.type == "DisruptionTarget" and x.status == "True"),
                                   None),
            missed=missed)


def seed_group(namespace: str, owner: wire.OwnerReference | None, pod: str,
               container: str) -> tuple[str, str, str, str]:
    """The install seeds one crash per (namespace, owner, container): a crash's group
    (a bare pod is its own owner)."""
    return (namespace, owner.kind if owner else "Pod", owner.name if owner else pod,
            container)


def _controller(meta: object) -> wire.OwnerReference | None:
    refs: tuple[wire.OwnerReference, ...] = getattr(meta, "ownerReferences", ())
    return next((r for r in refs if r.controller), refs[0] if refs else None)
