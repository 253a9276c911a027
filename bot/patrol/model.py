"""What a patrol observes and what it concludes, as plain frozen dataclasses.

`bot.cluster` builds observations from API pages; `bot.store` persists container rows;
`bot.patrol.deltas`/`digest` compute the answer. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

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


@dataclass(frozen=True, slots=True)
class Baseline:
    """A previous snapshot: when it was taken and its container rows keyed by identity."""

    taken_at: datetime
    containers: dict[tuple[str, str, str], ContainerRecord] = field(default_factory=dict)
