"""The one model of a crash history that every view renders (docs/design.md, "One story
per crash").

A *story* is one crash of one container of one workload — (namespace, workload, container,
identity), the identity being the crash fingerprint (else its category) — within a
window: how many restarts it accounts for, when it happened first and last, and its
latest recorded crash, whose diagnosis (made from the log and events captured at crash
time) is the story's headline. A view lists stories; it never merges two identities into
one line, and it never headlines a row with a diagnosis other than the one its tally
counts, so an answer cannot contradict its own history.

"New" means never seen in this cluster's history before the window (per workload and
identity, from the recorder's registry); what the recorder found crashing when it was
installed is "already crashing at install", never new.

`ContainerStory` is one container as a question answers it (`why`, the drill-down): its
live state when the cluster answers, the headline (the latest crash: recorded when the
record has it, else live), and the container's stories. Pure: the store and the cluster
are read by `bot.answers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.diagnosis.categories import Category
from bot.diagnosis.engine import Diagnosis, EventNote, Evidence, diagnose
from bot.diagnosis.exit_codes import decode_termination
from bot.patrol.history import CrashRecord
from bot.patrol.model import ContainerKind, ContainerObservation, Unreadable

SOURCE_RECORD = "record"  # counted from the flight recorder's rows
SOURCE_SNAPSHOTS = "snapshots"  # counted from restartCount deltas between snapshots

StoryKey = tuple[str, str, str, str, str]
"""(namespace, workload kind, workload name, container, identity)"""
WorkloadKey = tuple[str, str, str]
"""(namespace, workload kind, workload name)"""
KnownKey = tuple[str, str, str, str]
"""(namespace, workload kind, workload name, identity): the recorder's registry key"""


@dataclass(frozen=True, slots=True)
class StoryTally:
    """The counts of one story in a window, as the store aggregates them."""

    key: StoryKey
    restarts: int  # restarts accounted for (a row may count several)
    crashes: int  # recorded rows
    first_at: datetime | None
    last_at: datetime | None
    pods: int = 1
    changed_at: datetime | None = None  # a rollout named when it was first seen


@dataclass(frozen=True, slots=True)
class KnownCrash:
    """When a workload's crash (identity) entered this cluster's history."""

    first_seen_at: datetime
    known_at_install: bool = False  # crashing already when the recorder was installed


@dataclass(frozen=True, slots=True)
class CrashStory:
    """One crash of one container of a workload within a window; see the module doc."""

    cluster: str
    namespace: str
    workload_kind: str
    workload_name: str
    container: str
    identity: str
    latest: CrashRecord  # the headline: its recorded diagnosis
    restarts: int
    crashes: int
    first_at: datetime | None
    last_at: datetime | None
    pods: int = 1
    new: bool = False  # first seen in this cluster's history within the window
    known_at_install: bool = False
    seen_since: datetime | None = None  # first seen ever (None: not in the registry)
    logged: CrashRecord | None = None  # its newest crash with a recorded log
    changed_at: datetime | None = None  # the rollout it followed, when first seen in it

    @property
    def workload(self) -> WorkloadKey:
        return (self.namespace, self.workload_kind, self.workload_name)

    @property
    def label(self) -> str:
        return self.latest.label

    @property
    def summary(self) -> str:
        return self.latest.summary

    @property
    def fingerprint(self) -> str | None:
        return self.latest.fingerprint

    @property
    def chronic(self) -> bool:
        """Seen before the window, since the recorder ran: an old crash, still happening."""
        return not self.new and not self.known_at_install and self.seen_since is not None


@dataclass(frozen=True, slots=True)
class RecorderCoverage:
    """When the recorder first started for a cluster, and when it last heard from it."""

    first_started_at: datetime
    seen_at: datetime

    def covers(self, since: datetime) -> bool:
        """It was recording when a window starting at `since` began."""
        return self.first_started_at <= since


@dataclass(frozen=True, slots=True)
class RecordedWindow:
    """What the recorder saw in a patrol's window: its stories, per workload the
    (restarts, pods) of pods gone by the end of it, and the captures dropped."""

    stories: tuple[CrashStory, ...] = ()
    vanished: Mapping[WorkloadKey, tuple[int, int]] = field(default_factory=dict)
    dropped: int = 0
    covered: bool = False  # the recorder ran through the whole window


def tell_stories(cluster: str, tallies: Iterable[StoryTally],
                 latest: Mapping[StoryKey, CrashRecord],
                 known: Mapping[KnownKey, KnownCrash], window_from: datetime | None,
                 logged: Mapping[StoryKey, CrashRecord] | None = None) -> list[CrashStory]:
    """Stories from the store's tallies and latest crashes, newest first. A story is new
    when its identity entered the registry after `window_from`, unless it was already
    crashing at install."""
    stories: list[CrashStory] = []
    for t in tallies:
        crash = latest.get(t.key)
        if crash is None:
            continue  # pruned between the two reads: nothing to tell
        ns, kind, name, container, identity = t.key
        entry = known.get((ns, kind, name, identity))
        at_install = entry is not None and entry.known_at_install
        new = (entry is not None and not at_install and window_from is not None
               and entry.first_seen_at > window_from)
        stories.append(CrashStory(
            cluster=cluster, namespace=ns, workload_kind=kind, workload_name=name,
            container=container, identity=identity, latest=crash, restarts=t.restarts,
            crashes=t.crashes, first_at=t.first_at, last_at=t.last_at, pods=t.pods, new=new,
            known_at_install=at_install,
            seen_since=entry.first_seen_at if entry is not None else None,
            logged=(logged or {}).get(t.key), changed_at=t.changed_at if new else None))
    stories.sort(key=_newest_first)
    return stories


def _newest_first(story: CrashStory) -> tuple[float, int]:
    moment = story.last_at or story.latest.finished_at or story.latest.recorded_at
    return (-(moment.timestamp() if moment else 0.0), -story.restarts)


def by_workload(stories: Iterable[CrashStory]) -> dict[WorkloadKey, tuple[CrashStory, ...]]:
    """Stories grouped per workload, each group newest first."""
    grouped: dict[WorkloadKey, list[CrashStory]] = {}
    for story in stories:
        grouped.setdefault(story.workload, []).append(story)
    return {key: tuple(sorted(found, key=_newest_first)) for key, found in grouped.items()}


# ---- one container, as a question answers it ---------------------------------------------
@dataclass(frozen=True, slots=True)
class ClusterDown:
    """The cluster did not answer: the view comes from the record alone. `last_seen` is
    when the recorder last heard from the cluster (None: never)."""

    cluster: str
    reason: str
    last_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class ContainerStory:
    """One container of one pod as `why` and the drill-down tell it.

    `live` is its state now (None: the pod is gone or the cluster is down, and everything
    comes from the record). The headline `diagnosis` is its latest crash: `headline` is
    that crash when the record has it (diagnosed from what was captured at crash time),
    None when the cluster shows a newer termination than the record (diagnosed live).
    `log_tail` is the headline crash's log. `events` are the live (recent) ones; the
    headline crash's recorded events are `recorded_events`. `stories` are the container's
    crashes in the window, one per identity (empty when another answer of the same
    workload already tells them); `history` the newest recorded crashes (`why --json`).
    """

    cluster: str
    namespace: str
    pod: str
    pod_uid: str
    workload_kind: str
    workload_name: str
    container: str
    container_kind: ContainerKind
    live: ContainerObservation | None
    diagnosis: Diagnosis | None
    headline: CrashRecord | None = None
    log_tail: str | None = None
    redactions: int = 0
    events: tuple[EventNote, ...] = ()
    stories: tuple[CrashStory, ...] = ()
    history: tuple[CrashRecord, ...] = ()
    note: str | None = None
    unreadable: tuple[Unreadable, ...] = ()
    observed_at: datetime | None = None
    workload_wide: bool = False  # `stories` and `history` are the workload's, all pods
    stories_above: bool = False  # told in an earlier answer of the same workload

    @property
    def recorded_only(self) -> bool:
        """Nothing live: the pod is gone (or its cluster did not answer)."""
        return self.live is None

    @property
    def restarts(self) -> int:
        """Its restartCount: live, else the one after its latest recorded crash."""
        if self.live is not None:
            return self.live.restarts
        return self.headline.restart_count if self.headline is not None else 0

    @property
    def waiting_reason(self) -> str | None:
        return self.live.waiting_reason if self.live is not None else None

    @property
    def recorded_events(self) -> tuple[EventNote, ...]:
        """The warnings recorded with the headline crash (kept after Kubernetes drops them)."""
        return self.headline.events if self.headline is not None else ()

    @property
    def fresh_events(self) -> tuple[EventNote, ...]:
        """Live events not already shown as the headline crash's recorded ones."""
        seen = {(e.type, e.reason, e.message) for e in self.recorded_events}
        return tuple(e for e in self.events if (e.type, e.reason, e.message) not in seen)

    def not_read(self, what: str) -> Unreadable | None:
        """Why `what` ("pods/log" or "events") could not be read, if it could not."""
        return next((u for u in self.unreadable if u.what == what), None)


@dataclass(frozen=True, slots=True)
class Investigation:
    """The answer: one `ContainerStory` per container asked about, the window its stories
    cover, and `unreachable` when the cluster did not answer (all from the record)."""

    cluster: str
    namespace: str
    target: str
    window_from: datetime
    window_to: datetime
    answers: tuple[ContainerStory, ...]
    unreachable: ClusterDown | None = None


def latest_recorded(live: ContainerObservation | None,
                    crashes: Sequence[CrashRecord]) -> CrashRecord | None:
    """The crash a container's headline tells, among its own recorded crashes (newest
    first): the newest, unless the cluster shows a termination the record does not have
    yet (a higher restartCount, or a later finish) — then None, and the live diagnosis
    is the headline."""
    if not crashes:
        return None
    newest = crashes[0]
    term = live.last_termination if live is not None else None
    if live is None or term is None or newest.restart_count >= live.restarts:
        return newest
    if newest.finished_at is not None and term.finished_at is not None:
        return newest if newest.finished_at >= term.finished_at else None
    return None


def recorded_diagnosis(crash: CrashRecord, log: str | None,
                       spec: ContainerObservation | None = None) -> Diagnosis:
    """The diagnosis of a recorded crash, as recorded: its category, summary, signature
    and fingerprint are the ones stored at crash time. The meaning and the hints come from
    diagnosing the recorded evidence again (log, events, termination, with today's spec
    facts when the container still exists) — kept only when that agrees with the record,
    so the hints never argue with the headline."""
    again = diagnose(Evidence(
        exit_code=crash.exit_code, signal=crash.signal, reason=crash.reason,
        message=crash.message, log=log or "", events=crash.events, image=crash.image,
        memory_limit=spec.memory_limit if spec is not None else None,
        has_liveness_probe=spec.has_liveness_probe if spec is not None else None,
        has_memory_limit=spec.memory_limit is not None if spec is not None else None,
        container_kind=crash.container_kind))
    if again.category == crash.category and again.fingerprint == crash.fingerprint:
        return replace(again, summary=crash.summary or again.summary)
    try:
        category = Category(crash.category)
    except ValueError:  # a category a newer version recorded
        category = again.category
    return replace(again, category=category,
                   meaning=decode_termination(crash.exit_code, crash.reason,
                                              crash.signal).meaning,
                   signature=crash.signature, summary=crash.summary or again.summary,
                   hints=(), fingerprint=crash.fingerprint)
