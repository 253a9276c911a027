"""Reading one container's evidence (previous log, events) and diagnosing its last exit.

Shared by live investigations (`bot.answers`) and the flight recorder, so a recorded
summary is the one `why` would have given. The two reads are independent: when one is
forbidden or fails, the other is still made, what was not read is named (`Unreadable`),
and the diagnosis uses what was read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.cluster.client import ClusterClient
from bot.diagnosis.engine import Diagnosis, EventNote, Evidence, diagnose
from bot.diagnosis.redaction import redact
from bot.errors import ClusterError
from bot.patrol.model import Unreadable
from bot.settings import Settings

__all__ = ["ContainerEvidence", "ContainerTarget", "Unreadable", "read_evidence"]


@dataclass(frozen=True, slots=True)
class ContainerTarget:
    """One container's last termination and the spec facts its diagnosis weighs."""

    namespace: str
    pod: str
    pod_uid: str
    container: str
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    image: str | None = None
    memory_limit: str | None = None
    has_liveness_probe: bool | None = None
    disruption_reason: str | None = None
    container_kind: str | None = None  # ContainerKind's value; None: not said
    has_memory_limit: bool | None = None  # False: the spec was read and sets none


@dataclass(frozen=True, slots=True)
class ContainerEvidence:
    """What was read (redacted with REDACT_LOGS), what was not, and the diagnosis.

    `redactions` counts the log's; `message` is the termination message as shown."""

    log: str | None
    events: tuple[EventNote, ...]
    message: str | None
    redactions: int
    diagnosis: Diagnosis
    unreadable: tuple[Unreadable, ...] = ()


def read_evidence(cluster: ClusterClient, settings: Settings,
                  target: ContainerTarget) -> ContainerEvidence:
    """Fetch the previous log and the container's events (each independently), then
    diagnose. Events of the pod without a fieldPath count for every container."""
    unreadable: list[Unreadable] = []
    log: str | None = None
    events: tuple[EventNote, ...] = ()
    events_read = True
    try:
        log = cluster.previous_log(target.namespace, target.pod, target.container,
                                   tail_lines=settings.limits.log_tail_lines,
                                   limit_bytes=settings.limits.log_limit_bytes)
    except ClusterError as exc:
        unreadable.append(Unreadable.of("pods/log", exc))
    try:
        events = tuple(
            EventNote(e.type, e.reason, e.message, e.count or 1)
            for e in cluster.events_for(target.namespace, target.pod, target.pod_uid)
            if not e.involvedObject.fieldPath
            or e.involvedObject.fieldPath.endswith("{" + target.container + "}"))
    except ClusterError as exc:
        unreadable.append(Unreadable.of("events", exc))
        events_read = False
    redactions = 0
    message = target.message
    if settings.redact_logs:
        # Also the termination message (FallbackToLogsOnError copies the log's tail there)
        # and event messages (an exec probe's output).
        if log is not None:
            log, redactions = redact(log)
        message = redact(message)[0] if message else message
        events = tuple(replace(e, message=redact(e.message)[0]) for e in events)
    diagnosis = diagnose(Evidence(
        exit_code=target.exit_code, signal=target.signal, reason=target.reason,
        message=message, log=log or "", events=events, image=target.image,
        memory_limit=target.memory_limit, has_liveness_probe=target.has_liveness_probe,
        disruption_reason=target.disruption_reason, container_kind=target.container_kind,
        events_readable=events_read, has_memory_limit=target.has_memory_limit))
    return ContainerEvidence(log, events, message, redactions, diagnosis, tuple(unreadable))
