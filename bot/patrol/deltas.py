"""Restart deltas of each container between a baseline snapshot and now.

The rules (ARCHITECTURE.md, "Domain facts"):
- identity is (namespace, pod uid, container); a replaced pod has a new uid;
- same uid and count ≥ previous → the difference;
- new uid born after the baseline → its whole count (it did all of it in the window);
- same uid and the count went down → a reset: take the new count;
- a pod that predates the baseline but is not in it (namespace newly patrolled, say) has
  no baseline: its delta is unknown, never its lifetime total;
- with no baseline at all (first run) there is no delta, only totals.
Pods in the baseline but gone now are reported as vanished, with what was last known.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from bot.patrol.model import (
    Baseline,
    ContainerObservation,
    ContainerRecord,
    PodObservation,
    WorkloadRef,
)


class DeltaBasis(StrEnum):
    """How a container's delta was derived; shown to users when it matters."""

    SAME_POD = "same-pod"
    NEW_POD = "new-pod"
    NEW_CONTAINER = "new-container"
    RESET = "reset"
    FIRST_RUN = "first-run"
    NO_BASELINE = "no-baseline"


@dataclass(frozen=True, slots=True)
class ContainerDelta:
    """One container's restarts in the window; `delta` is None when it cannot be known."""

    pod: PodObservation
    container: ContainerObservation
    delta: int | None
    basis: DeltaBasis


@dataclass(frozen=True, slots=True)
class VanishedPod:
    """A pod present in the baseline and gone now: its restarts after the baseline are unknown."""

    namespace: str
    pod_name: str
    pod_uid: str
    workload: WorkloadRef
    restarts_at_baseline: int


def delta_of(
    pod: PodObservation, container: ContainerObservation, baseline: Baseline | None
) -> tuple[int | None, DeltaBasis]:
    """Apply the delta rules to one container; returns (delta, basis)."""
    if baseline is None:
        return None, DeltaBasis.FIRST_RUN
    previous = baseline.containers.get((pod.namespace, pod.uid, container.name))
    if previous is not None:
        if container.restarts >= previous.restarts:
            return container.restarts - previous.restarts, DeltaBasis.SAME_POD
        return container.restarts, DeltaBasis.RESET
    if pod.created_at is not None and pod.created_at > baseline.taken_at:
        return container.restarts, DeltaBasis.NEW_POD
    if _pod_in_baseline(pod, baseline):
        return container.restarts, DeltaBasis.NEW_CONTAINER
    return None, DeltaBasis.NO_BASELINE


def _pod_in_baseline(pod: PodObservation, baseline: Baseline) -> bool:
    return any(
        (pod.namespace, pod.uid, other.name) in baseline.containers for other in pod.containers
    )


def compute_deltas(
    pods: Iterable[PodObservation], baseline: Baseline | None
) -> list[ContainerDelta]:
    """Every container of every pod with its delta since `baseline`."""
    return [
        ContainerDelta(pod, container, *delta_of(pod, container, baseline))
        for pod in pods
        for container in pod.containers
    ]


def find_vanished(
    present: Collection[tuple[str, str]],
    baseline: Iterable[ContainerRecord],
    namespaces: frozenset[str] | None = None,
) -> list[VanishedPod]:
    """Pods of the baseline records (within `namespaces`, if given) whose (namespace, uid)
    is not `present` now. The records may stream: only vanished pods are held."""
    gone: dict[tuple[str, str], VanishedPod] = {}
    for record in baseline:
        key = (record.namespace, record.pod_uid)
        if key in present or (namespaces is not None and record.namespace not in namespaces):
            continue
        known = gone.get(key)
        restarts = record.restarts + (known.restarts_at_baseline if known else 0)
        gone[key] = VanishedPod(
            namespace=record.namespace,
            pod_name=record.pod_name,
            pod_uid=record.pod_uid,
            workload=WorkloadRef(record.workload_kind, record.workload_name),
            restarts_at_baseline=restarts,
        )
    return sorted(gone.values(), key=lambda v: (v.namespace, v.pod_name))


def records_of(pods: Iterable[PodObservation]) -> Iterator[ContainerRecord]:
    """Container rows to store as the next baseline (lazily: 100k pods stream through)."""
    for pod in pods:
        for c in pod.containers:
            term = c.last_termination
            yield ContainerRecord(
                    namespace=pod.namespace,
                    pod_uid=pod.uid,
                    pod_name=pod.name,
                    container=c.name,
                    restarts=c.restarts,
                    workload_kind=pod.workload.kind,
                    workload_name=pod.workload.name,
                    container_kind=c.kind.value,
                    last_exit_code=term.exit_code if term else None,
                    last_reason=term.reason if term else None,
                    finished_at=term.finished_at if term else None,
                )
