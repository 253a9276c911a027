"""msgspec structs for the few fields of API objects that restart-patrol reads.

Unknown fields are skipped by the decoder without being materialised, which is what makes
a 100k-pod list cheap (the generated client models cost ~70× more). `gc=False`: these
immutable structs form no reference cycles, and tracking 100k of them made the garbage
collector cost 7× the decoding itself. Sequences decode as tuples, not lists, for the same
reason: a tuple of untracked structs is untracked by the collector's first look, where
each list stayed tracked while its page was alive and set off full collections.
"""

from __future__ import annotations

import msgspec


class OwnerReference(msgspec.Struct, frozen=True, gc=False):
    kind: str
    name: str
    uid: str = ""
    controller: bool = False


class ObjectMeta(msgspec.Struct, frozen=True, gc=False):
    name: str
    namespace: str = ""
    uid: str = ""
    creationTimestamp: str | None = None
    ownerReferences: tuple[OwnerReference, ...] = ()


class ListMeta(msgspec.Struct, frozen=True, gc=False):
    resourceVersion: str = ""
    continue_: str | None = msgspec.field(default=None, name="continue")


class ListHead(msgspec.Struct, frozen=True, gc=False):
    """Only a list's metadata (the continue token); its items are skipped in C."""

    metadata: ListMeta = ListMeta()


class Terminated(msgspec.Struct, frozen=True, gc=False):
    exitCode: int = 0
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None


class Waiting(msgspec.Struct, frozen=True, gc=False):
    reason: str | None = None
    message: str | None = None


class ContainerState(msgspec.Struct, frozen=True, gc=False):
    waiting: Waiting | None = None
    terminated: Terminated | None = None


class ContainerStatus(msgspec.Struct, frozen=True, gc=False):
    name: str
    restartCount: int = 0
    image: str = ""
    state: ContainerState | None = None
    lastState: ContainerState | None = None


class ResourceList(msgspec.Struct, frozen=True, gc=False):
    memory: str | None = None


class Resources(msgspec.Struct, frozen=True, gc=False):
    limits: ResourceList | None = None


class Probe(msgspec.Struct, frozen=True, gc=False):
    """Only the presence of a probe matters; its fields are skipped."""


class ContainerSpec(msgspec.Struct, frozen=True, gc=False):
    name: str
    image: str = ""
    restartPolicy: str | None = None
    resources: Resources | None = None
    livenessProbe: Probe | None = None
    readinessProbe: Probe | None = None
    startupProbe: Probe | None = None


class PodSpec(msgspec.Struct, frozen=True, gc=False):
    containers: tuple[ContainerSpec, ...] = ()
    initContainers: tuple[ContainerSpec, ...] = ()
    ephemeralContainers: tuple[ContainerSpec, ...] = ()
    nodeName: str | None = None
    restartPolicy: str | None = None


class PodCondition(msgspec.Struct, frozen=True, gc=False):
    type: str
    status: str = ""
    reason: str | None = None


class PodStatus(msgspec.Struct, frozen=True, gc=False):
    phase: str | None = None
    conditions: tuple[PodCondition, ...] = ()
    containerStatuses: tuple[ContainerStatus, ...] = ()
    initContainerStatuses: tuple[ContainerStatus, ...] = ()
    ephemeralContainerStatuses: tuple[ContainerStatus, ...] = ()


class Pod(msgspec.Struct, frozen=True, gc=False):
    metadata: ObjectMeta
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


class PodList(msgspec.Struct, frozen=True, gc=False):
    metadata: ListMeta = ListMeta()
    items: tuple[Pod, ...] = ()


class OwnedObject(msgspec.Struct, frozen=True, gc=False):
    """A ReplicaSet or Job: only its identity and owners matter for roll-up."""

    metadata: ObjectMeta


class OwnedList(msgspec.Struct, frozen=True, gc=False):
    metadata: ListMeta = ListMeta()
    items: tuple[OwnedObject, ...] = ()


class InvolvedObject(msgspec.Struct, frozen=True, gc=False):
    kind: str = ""
    name: str = ""
    uid: str = ""
    fieldPath: str | None = None


class Event(msgspec.Struct, frozen=True, gc=False):
    metadata: ObjectMeta
    involvedObject: InvolvedObject = InvolvedObject()
    reason: str = ""
    message: str = ""
    type: str = ""
    count: int | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    eventTime: str | None = None


class EventList(msgspec.Struct, frozen=True, gc=False):
    metadata: ListMeta = ListMeta()
    items: tuple[Event, ...] = ()


class StatusBody(msgspec.Struct, frozen=True, gc=False):
    """A `kind: Status` error body."""

    message: str = ""
    reason: str = ""
    code: int = 0
    metadata: ListMeta = ListMeta()
