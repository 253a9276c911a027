"""What a patrol observes and what it concludes, as plain frozen dataclasses.

`bot.cluster` builds observations from API pages; `bot.store` persists container rows;
`bot.patrol.deltas`/`digest` compute the answer. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple, TypeVar

from bot.errors import ClusterError, ForbiddenError, TransientError

T = TypeVar("T")


class ContainerKind(StrEnum):
    """Which list of the pod status a container comes from."""

    APP = "container"
    INIT = "init"
    SIDECAR = "sidecar"  # init container with restartPolicy: Always (native sidecar)
    EPHEMERAL = "ephemeral"


@dataclass(frozen=True, slots=True)
class Termination:
    """A container's last termination, as `lastState.terminated` reports it."""

    exit_code: int
    reason: str | None = None
    signal: int | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


_NEVER = datetime.min.replace(tzinfo=UTC)


def latest_termination(items: Iterable[T],
                       termination: Callable[[T], Termination | None]) -> T | None:
    """The item whose termination finished last; one whose termination has no finish time
    only when none has one (the first such). Items without a termination are skipped."""
    best: T | None = None
    best_key: tuple[bool, datetime] | None = None
    for item in items:
        t = termination(item)
        if t is None:
            continue
        key = (t.finished_at is not None, t.finished_at or _NEVER)
        if best_key is None or key > best_key:
            best, best_key = item, key
    return best


@dataclass(frozen=True, slots=True)
class ContainerObservation:
    """One container of one pod at patrol time."""

    name: str
    restarts: int
    kind: ContainerKind = ContainerKind.APP
    last_termination: Termination | None = None
    waiting_reason: str | None = None
    image: str = ""
    has_liveness_probe: bool = False
    has_readiness_probe: bool = False
    memory_limit: str | None = None


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """The top-level owner of a pod: Deployment, StatefulSet, DaemonSet, CronJob, Job, … or Pod."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class PodObservation:
    """One pod at patrol time, already resolved to its workload."""

    namespace: str
    name: str
    uid: str
    workload: WorkloadRef
    created_at: datetime | None
    containers: tuple[ContainerObservation, ...]
    disruption_reason: str | None = None  # DisruptionTarget condition reason, when present


class QuietPod(NamedTuple):
    """A pod none of whose containers has restarted or has a last termination: all a
    patrol needs of it (its containers' names, for the snapshot). Most pods of a cluster
    are quiet, and observing them in full was most of a 100k-pod patrol's cost (hence
    also a NamedTuple rather than a frozen dataclass, whose __init__ costs 4× more)."""

    namespace: str
    name: str
    uid: str
    workload: WorkloadRef
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """One container as stored in a snapshot: the baseline for the next patrol's deltas."""

    namespace: str
    pod_uid: str
    pod_name: str
    container: str
    restarts: int
    workload_kind: str
    workload_name: str
    container_kind: str = ContainerKind.APP.value
    last_exit_code: int | None = None
    last_reason: str | None = None
    finished_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """(namespace, pod uid, container): identity within one cluster."""
        return (self.namespace, self.pod_uid, self.container)


class BaselinePod(NamedTuple):
    """One pod of a snapshot, restarting or not: its name, workload and every container's
    name. Snapshots keep rows only for containers that restarted; a container listed here
    without a row had restartCount 0. (A NamedTuple: immutable like the dataclasses here,
    and built 4× faster, which counts at 100k per baseline.)"""

    name: str
    workload: WorkloadRef
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Baseline:
    """A previous snapshot: when it was taken, its container rows keyed by identity
    (`containers`) and its pods keyed by (namespace, uid) (`pods`).

    A lean snapshot's rows cover only containers with restarts (or a last termination),
    and `pods` proves that the others existed with zero restarts. A baseline built from
    rows alone (every container a row, `pods` empty) answers the same questions.
    """

    taken_at: datetime
    containers: dict[tuple[str, str, str], ContainerRecord] = field(default_factory=dict)
    pods: dict[tuple[str, str], BaselinePod] = field(default_factory=dict)
    # A baseline counted from the flight recorder (a listed snapshot and the changes the
    # recorder-counted digests after it wrote): a pod created after the list (`born_after`)
    # and absent had no restart at `taken_at` — it would be in a change otherwise.
    born_after: datetime | None = None

    def previous_restarts(self, namespace: str, uid: str, container: str) -> int | None:
        """The container's restartCount at the baseline; None if it was not there."""
        record = self.containers.get((namespace, uid, container))
        if record is not None:
            return record.restarts
        pod = self.pods.get((namespace, uid))
        return 0 if pod is not None and container in pod.containers else None

    def born_quiet(self, created_at: datetime | None) -> bool:
        """A pod absent from this baseline had restartCount 0 at it: created between the
        list it grew from and `taken_at` (only a recorder-counted baseline knows that)."""
        return (self.born_after is not None and created_at is not None
                and self.born_after < created_at <= self.taken_at)

    def has_pod(self, namespace: str, uid: str, containers: Iterable[str]) -> bool:
        """True when one of the pod's containers now (`containers`) was in the baseline."""
        pod = self.pods.get((namespace, uid))
        return any((namespace, uid, name) in self.containers
                   or (pod is not None and name in pod.containers) for name in containers)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Something a report or a patrol could not read, said instead of pretending "none".

    `what` is what was not read ("pods/log", "events", "namespace payments"), `why` is
    "forbidden" (RBAC, 403) or "failed" (anything else; `detail` is its one line), and
    `count` how many reads it affected. Templates word it.
    """

    what: str
    why: str
    detail: str
    count: int = 1
    transient: bool = field(default=False, compare=False)  # worth trying again

    @classmethod
    def of(cls, what: str, error: ClusterError) -> Unreadable:
        return cls(what, "forbidden" if isinstance(error, ForbiddenError) else "failed",
                   str(error), transient=isinstance(error, TransientError))

    def to_json(self) -> dict[str, object]:
        return {"what": self.what, "why": self.why, "detail": self.detail,
                "count": self.count}


class KnownPod(NamedTuple):
    """A pod the flight recorder follows with restarts: enough to read it again (one GET)
    and to find its workload (its controller: a ReplicaSet, a Job, a StatefulSet…; kind
    "" for a bare pod)."""

    namespace: str
    name: str
    uid: str
    owner_kind: str
    owner_name: str
