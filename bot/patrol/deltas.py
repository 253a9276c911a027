"""Restart deltas of each container between a baseline snapshot and now.

The rules (docs/design.md, "Counting restarts"):
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

from collections.abc import Container, Iterable, Iterator
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
    previous = baseline.previous_restarts(pod.namespace, pod.uid, container.name)
    if previous is not None:
        if container.restarts >= previous:
            return container.restarts - previous, DeltaBasis.SAME_POD
        return container.restarts, DeltaBasis.RESET
    if pod.created_at is not None and pod.created_at > baseline.taken_at:
        return container.restarts, DeltaBasis.NEW_POD
    if baseline.born_quiet(pod.created_at):  # in a list of the whole cluster: 0 then
        return container.restarts, DeltaBasis.SAME_POD
    if baseline.has_pod(pod.namespace, pod.uid, (c.name for c in pod.containers)):
        return container.restarts, DeltaBasis.NEW_CONTAINER
    return None, DeltaBasis.NO_BASELINE


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
    present: Container[tuple[str, str]],
    baseline: Baseline,
    namespaces: frozenset[str] | None = None,
) -> list[VanishedPod]:
    """Pods of the baseline (within `namespaces`, if given) whose (namespace, uid) is not
    `present` now, with their restartCount sum at the baseline."""
    gone: dict[tuple[str, str], VanishedPod] = {}
    for (namespace, uid), pod in baseline.pods.items():
        if (namespace, uid) in present or (namespaces is not None
                                           and namespace not in namespaces):
            continue
        gone[(namespace, uid)] = VanishedPod(namespace, pod.name, uid, pod.workload, 0)
    for record in baseline.containers.values():
        key = (record.namespace, record.pod_uid)
        if key in present or (namespaces is not None and record.namespace not in namespaces):
            continue
        known = gone.get(key)
        gone[key] = VanishedPod(
            namespace=record.namespace,
            pod_name=known.pod_name if known else record.pod_name,
            pod_uid=record.pod_uid,
            workload=known.workload if known else WorkloadRef(record.workload_kind,
                                                               record.workload_name),
            restarts_at_baseline=record.restarts + (known.restarts_at_baseline if known else 0),
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
