"""Recorded crash history: what the flight recorder stores per restart, and the pure rules
that read it (fingerprint tallies for the digest, rollout correlation).

A `CrashRecord` is one observed termination. `restarts` is how many restarts it accounts
for: usually 1; more when the restart count jumped between two observations (the kubelet
shows only the last termination, so the earlier ones are counted, not described).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.diagnosis.engine import EventNote

CAPTURED = "captured"  # log and events fetched at once
RATE_LIMITED = "rate-limited"  # counted; diagnosis carried from the last capture
DROPPED = "dropped"  # counted; the capture queue was full
NO_LOG = "no-log"  # fetched, but the kubelet kept no previous log
FAILED = "failed"  # the fetch failed (the note says why)
BASELINE = "baseline"  # restarts seen when the recorder (re)started, not described

CHANGE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CrashRecord:
    """One recorded termination of one container (the log text is read separately)."""

    cluster: str
    namespace: str
    pod_name: str
    pod_uid: str
    container: str
    container_kind: str
    workload_kind: str
    workload_name: str
    restart_count: int  # the container's restartCount after this restart
    restarts: int = 1
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    recorded_at: datetime | None = None
    node: str | None = None
    image: str | None = None
    category: str = "unknown"
    fingerprint: str | None = None
    signature: tuple[str, ...] = ()
    summary: str = ""
    capture: str = CAPTURED
    log_captured: bool = False
    log_bytes: int = 0
    redactions: int = 0
    events: tuple[EventNote, ...] = ()  # its warnings at crash time
    replica_set: str | None = None
    template_hash: str | None = None
    changed_at: datetime | None = None  # rollout within 24 h before a first-seen crash
    is_new: bool = False  # first time this fingerprint was seen for the workload
    id: int | None = None

    @property
    def label(self) -> str:
        """What the digest calls this crash: its category (OOMKilled for oom-killed)."""
        return "OOMKilled" if self.category == "oom-killed" else self.category

    @property
    def identity(self) -> str:
        """The crash's identity within its workload: the fingerprint, else the label."""
        return self.fingerprint or self.label


@dataclass(frozen=True, slots=True)
class FingerprintTally:
    """One distinct crash of a workload within a window."""

    label: str
    fingerprint: str | None
    count: int
    new: bool  # never seen for this workload before the window
    summary: str = ""
    changed_at: datetime | None = None
    image: str | None = None
    first_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkloadHistory:
    """What the recorder saw of one workload in a digest's window."""

    tallies: tuple[FingerprintTally, ...] = ()
    vanished_restarts: int = 0  # restarts of pods gone by the end of the window
    vanished_pods: int = 0


@dataclass(frozen=True, slots=True)
class RecorderWindow:
    """The recorder's view of a digest window, keyed by (namespace, kind, name)."""

    workloads: dict[tuple[str, str, str], WorkloadHistory] = field(default_factory=dict)
    dropped: int = 0  # captures dropped (queue full) in the window
    covered: bool = False  # the recorder was running during the window


def tally(crashes: Iterable[CrashRecord], new_fingerprints: set[str]) -> tuple[
        FingerprintTally, ...]:
    """Distinct crashes with their restart counts, most frequent first. `new_fingerprints`
    are the identities first seen within the window."""
    counts: dict[str, int] = {}
    first: dict[str, CrashRecord] = {}
    for c in crashes:
        key = c.identity
        counts[key] = counts.get(key, 0) + c.restarts
        known = first.get(key)
        if known is None or (c.finished_at and known.finished_at
                             and c.finished_at < known.finished_at):
            first[key] = c
    labels: dict[str, int] = {}
    for key in counts:
        labels[first[key].label] = labels.get(first[key].label, 0) + 1
    result = [
        FingerprintTally(
            label=first[key].label + (f" {key[:6]}" if labels[first[key].label] > 1
                                      and first[key].fingerprint else ""),
            fingerprint=first[key].fingerprint, count=count, new=key in new_fingerprints,
            summary=first[key].summary, changed_at=first[key].changed_at,
            image=first[key].image, first_seen=first[key].finished_at)
        for key, count in counts.items()
    ]
    result.sort(key=lambda t: (-t.count, t.label))
    return tuple(result)


def rollout_before(crash_at: datetime | None, replica_set_created: datetime | None,
                   earlier_images: Iterable[tuple[datetime, str | None]], image: str | None,
                   pod_created: datetime | None) -> datetime | None:
    """When the workload changed within CHANGE_WINDOW before `crash_at`, else None.

    A ReplicaSet created in the window is a rollout (Deployments). Otherwise an earlier
    recorded crash of the workload in the window that ran another image means the pod
    template changed; the pod's creation is then the best time known for it."""
    if crash_at is None:
        return None
    since = crash_at - CHANGE_WINDOW
    if replica_set_created is not None and since <= replica_set_created <= crash_at:
        return replica_set_created
    if image and any(since <= at <= crash_at and other and other != image
                     for at, other in earlier_images):
        return pod_created if pod_created is not None and pod_created >= since else since
    return None


def events_json(events: Iterable[EventNote]) -> list[dict[str, object]]:
    """Events as JSON (`why --json`, the stored rows): the one place their keys are named."""
    return [{"type": e.type, "reason": e.reason, "message": e.message, "count": e.count}
            for e in events]
