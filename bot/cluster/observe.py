"""Turn decoded pods into the patrol's observations, rolled up to their workloads.

Roll-up reads the ReplicaSet's / Job's own ownerReferences (never guesses from names):
Pod → ReplicaSet → Deployment, Pod → Job → CronJob, StatefulSet/DaemonSet directly, bare
pods as themselves. Init containers with `restartPolicy: Always` are native sidecars.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping

from bot.cluster import wire
from bot.patrol.model import (
    ContainerKind,
    ContainerObservation,
    PodObservation,
    QuietPod,
    Termination,
    WorkloadRef,
)
from bot.patrol.timestamps import parse_api_time

Owners = Mapping[tuple[str, str, str], wire.ObjectMeta]
Resolved = dict[tuple[str, str, str], WorkloadRef]


def _controller(meta: wire.ObjectMeta) -> wire.OwnerReference | None:
    refs = meta.ownerReferences
    for ref in refs:  # a loop, not next(genexpr): this runs once per pod
        if ref.controller:
            return ref
    return refs[0] if refs else None


_intern = sys.intern  # namespaces, workloads, images, reasons repeat across 100k pods


def resolve_workload(meta: wire.ObjectMeta, owners: Owners,
                     resolved: Resolved | None = None) -> WorkloadRef:
    """The top-level workload of a pod, following real owner objects. `resolved` caches
    one WorkloadRef per owner, so 100k pods share a few thousand of them."""
    ref = _controller(meta)
    if ref is None:
        return WorkloadRef("Pod", meta.name)
    key = (ref.kind, meta.namespace, ref.name)
    if resolved is not None and key in resolved:
        return resolved[key]
    result = WorkloadRef(_intern(ref.kind), _intern(ref.name))
    if ref.kind in ("ReplicaSet", "Job"):
        owner = owners.get(key)
        parent = _controller(owner) if owner is not None else None
        if parent is not None:
            result = WorkloadRef(_intern(parent.kind), _intern(parent.name))
    if resolved is not None:
        resolved[key] = result
    return result


def termination_of(state: wire.ContainerState | None) -> Termination | None:
    term = state.terminated if state is not None else None
    if term is None:
        return None
    return Termination(
        exit_code=term.exitCode,
        reason=_intern(term.reason) if term.reason else None,
        signal=term.signal,
        message=term.message,
        started_at=parse_api_time(term.startedAt),
        finished_at=parse_api_time(term.finishedAt),
    )


def _observe(status: wire.ContainerStatus, spec: wire.ContainerSpec | None,
             kind: ContainerKind) -> ContainerObservation:
    waiting = status.state.waiting if status.state is not None else None
    limits = spec.resources.limits if spec and spec.resources else None
    return ContainerObservation(
        name=_intern(status.name),
        restarts=status.restartCount,
        kind=kind,
        last_termination=termination_of(status.lastState),
        waiting_reason=_intern(waiting.reason) if waiting and waiting.reason else None,
        image=_intern(status.image or (spec.image if spec else "")),
        has_liveness_probe=bool(spec and spec.livenessProbe is not None),
        has_readiness_probe=bool(spec and spec.readinessProbe is not None),
        memory_limit=_intern(limits.memory) if limits and limits.memory else None,
    )


def containers_of(spec: wire.PodSpec, status: wire.PodStatus) -> Iterator[
        tuple[wire.ContainerStatus, wire.ContainerSpec | None, ContainerKind]]:
    """Every container status of a pod with its spec and kind (init containers first;
    native sidecars are init containers with restartPolicy Always). The one place
    containers are classified: the patrol and the recorder both read it."""
    if status.initContainerStatuses:
        init_specs = {c.name: c for c in spec.initContainers}
        for s in status.initContainerStatuses:
            found = init_specs.get(s.name)
            yield s, found, (ContainerKind.SIDECAR if found and found.restartPolicy == "Always"
                             else ContainerKind.INIT)
    specs = {c.name: c for c in spec.containers}
    for s in status.containerStatuses:
        yield s, specs.get(s.name), ContainerKind.APP
    if status.ephemeralContainerStatuses:
        eph_specs = {c.name: c for c in spec.ephemeralContainers}
        for s in status.ephemeralContainerStatuses:
            yield s, eph_specs.get(s.name), ContainerKind.EPHEMERAL


def observe_pod(pod: wire.Pod, owners: Owners, resolved: Resolved | None = None
                ) -> PodObservation:
    """One PodObservation from a decoded pod."""
    containers = [_observe(s, spec, kind) for s, spec, kind in containers_of(pod.spec,
                                                                             pod.status)]
    disruption = next((c.reason for c in pod.status.conditions
                       if c.type == "DisruptionTarget" and c.status == "True"), None)
    return PodObservation(
        namespace=_intern(pod.metadata.namespace),
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        workload=resolve_workload(pod.metadata, owners, resolved),
        created_at=parse_api_time(pod.metadata.creationTimestamp),
        containers=tuple(containers),
        disruption_reason=disruption,
    )


def observe_patrolled(pod: wire.Pod, owners: Owners, resolved: Resolved
                      ) -> PodObservation | QuietPod:
    """A QuietPod when no container has restarted or has a last termination (most pods:
    only their names are needed), else the full observation."""
    status = pod.status
    names: list[str] = []
    for statuses in (status.initContainerStatuses, status.containerStatuses,
                     status.ephemeralContainerStatuses):
        for s in statuses:
            last = s.lastState
            if s.restartCount or (last is not None and last.terminated is not None):
                return observe_pod(pod, owners, resolved)
            names.append(_intern(s.name))
    meta = pod.metadata
    return QuietPod(_intern(meta.namespace), meta.name, meta.uid,
                    resolve_workload(meta, owners, resolved), tuple(names))


def observe_pods(pods: Iterable[wire.Pod], owners: Owners) -> list[PodObservation]:
    """Observations of a pod stream."""
    resolved: Resolved = {}
    return [observe_pod(pod, owners, resolved) for pod in pods]
