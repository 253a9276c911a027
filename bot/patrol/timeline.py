"""The data of the crash-history charts: a workload's restarts per hour over the last days,
stacked by fingerprint, with its rollouts and silences; and the fleet's top workloads per
day for the morning digest. Pure: bot/render/chart.py draws them.

Windows follow the recorder's convention (`CrashHistory.window`): a window is
`(until - days, until]` and each bucket `(edge, edge + step]`, so a crash exactly at the
window's start belongs to the window before and one exactly at `until` is in the last bar.
`until` is the caller's "now" from the API server's clock, never the host's: the chart
then agrees with the crashes' own timestamps whatever the host's clock says. A crash is
placed at `finished_at` (when it ended), else `recorded_at`, as everywhere else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from bot.patrol.history import CrashRecord

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SIGNATURE_WIDTH = 40  # characters of the signature a legend entry shows


@dataclass(frozen=True, slots=True)
class Grid:
    """The buckets of a chart: `count` steps of `step` ending at `until`."""

    until: datetime
    step: timedelta
    count: int

    @property
    def start(self) -> datetime:
        """The window's open start (a crash exactly here belongs to the window before)."""
        return self.until - self.step * self.count

    @property
    def edges(self) -> tuple[datetime, ...]:
        """The `count + 1` bucket edges, oldest first."""
        return tuple(self.start + self.step * i for i in range(self.count + 1))

    def covers(self, moment: datetime) -> bool:
        """Whether `moment` falls in the window `(start, until]`."""
        return self.start < moment <= self.until

    def index(self, moment: datetime) -> int | None:
        """The bucket `(edge, edge + step]` holding `moment`, or None outside the window."""
        if not self.covers(moment):
            return None
        return -(-(moment - self.start) // self.step) - 1  # ceiling division


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One stacked layer of a chart: restarts per bucket. The folded tail says how many
    layers it holds (`folded`); the others have 0."""

    counts: tuple[int, ...]
    folded: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def order(self) -> tuple[str, ...]:
        """How layers with as many restarts are ordered (for a stable picture)."""
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashSeries(Layer):
    """A workload chart's layer: the restarts of one crash. `identity` is the fingerprint
    (the category when the crash has none); None for the folded tail."""

    identity: str | None
    category: str
    signature: str  # the first signature line, shortened for a legend; "" if none

    @property
    def order(self) -> tuple[str, ...]:
        return (self.identity or "",)


@dataclass(frozen=True, slots=True)
class Rollout:
    """A change of the workload's pod template seen in its crashes: a ReplicaSet (or, for
    workloads without one, a container image) that no earlier crash ran. `at` is the
    recorder's `changed_at` when it knew the rollout's time, else the estimate from the
    first crash of the new version (its container's start, else its end)."""

    at: datetime
    replica_set: str | None
    image: str | None


@dataclass(frozen=True, slots=True)
class SilenceSpan:
    """A silence as the caller knows it: from `start` to `end` (the real end, also when
    lifted early or still running past the window), set by `label` (who, as the chart
    names them, e.g. "@alice")."""

    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """One workload's chart: `series` most restarts first (the tail folded last), the
    rollouts and silences that fall in the window, oldest first."""

    cluster: str | None
    namespace: str | None
    kind: str | None
    name: str | None
    grid: Grid
    series: tuple[CrashSeries, ...]
    rollouts: tuple[Rollout, ...]
    silences: tuple[SilenceSpan, ...]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSeries(Layer):
    """A fleet chart's layer: one workload's restarts and its commonest category; for the
    folded tail `name` is None."""

    cluster: str | None
    namespace: str | None
    kind: str | None
    name: str | None
    category: str

    @property
    def order(self) -> tuple[str, ...]:
        return (self.cluster or "", self.namespace or "", self.kind or "", self.name or "")


@dataclass(frozen=True, slots=True)
class FleetTimeline:
    """The digest's chart: the top workloads' restarts per day, most restarts first."""

    grid: Grid
    series: tuple[WorkloadSeries, ...]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)


L = TypeVar("L", bound=Layer)


def moment_of(crash: CrashRecord) -> datetime | None:
    """When a crash happened for the charts: its end, else when it was recorded."""
    return crash.finished_at or crash.recorded_at


def short_signature(lines: Sequence[str], width: int = SIGNATURE_WIDTH) -> str:
    """The first signature line in at most `width` characters, cut at a word with "…"
    (a legend entry must stay one readable line)."""
    text = " ".join(lines[0].split()) if lines else ""
    if len(text) <= width:
        return text
    cut = text[:width - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space >= width - 12 else cut).rstrip(" ,") + "…"


def workload_timeline(records: Iterable[CrashRecord], *, until: datetime, days: int = 14,
                      silences: Iterable[SilenceSpan] = (),
                      max_series: int = 6) -> Timeline:
    """Restarts of ONE workload per hour over the `days` before `until` (aware, the API
    server's clock), stacked by crash identity, at most `max_series` layers (the rest
    folded into one). Pass the workload's crashes from before the window too: a rollout is
    a version no earlier crash ran. Crashes of several workloads are a caller's bug
    (ValueError), like a naive `until` or `days < 1`."""
    crashes = list(records)
    grid = _grid(until, HOUR, days * 24, max_series)
    workloads = {(c.cluster, c.namespace, c.workload_kind, c.workload_name) for c in crashes}
    if len(workloads) > 1:
        raise ValueError(f"a workload timeline takes one workload's crashes, got {len(workloads)}")
    cluster, namespace, kind, name = workloads.pop() if workloads else (None,) * 4
    counts: dict[str, list[int]] = {}
    first: dict[str, CrashRecord] = {}
    for crash in crashes:
        moment = moment_of(crash)
        slot = None if moment is None else grid.index(moment)
        if moment is None or slot is None:
            continue
        counts.setdefault(crash.identity, [0] * grid.count)[slot] += crash.restarts
        if crash.identity not in first or moment < _when(first[crash.identity]):
            first[crash.identity] = crash
    layers = [CrashSeries(identity=key, category=first[key].category,
                          signature=short_signature(first[key].signature),
                          counts=tuple(row)) for key, row in counts.items()]
    kept, tail = _ranked(layers, max_series)
    if tail:
        kept.append(CrashSeries(identity=None, category="", signature="",
                                counts=_summed(tail, grid.count), folded=len(tail)))
    return Timeline(cluster=cluster, namespace=namespace, kind=kind, name=name, grid=grid,
                    series=tuple(kept),
                    rollouts=tuple(r for r in rollouts(crashes) if grid.covers(r.at)),
                    silences=tuple(sorted((s for s in silences if s.end > grid.start
                                           and s.start <= grid.until and s.end > s.start),
                                          key=lambda s: (s.start, s.end, s.label))))


def fleet_timeline(records: Iterable[CrashRecord], *, until: datetime, days: int = 7,
                   top: int = 8) -> FleetTimeline:
    """Restarts per day over the `days` before `until` of the `top` workloads with the most
    restarts (the rest folded into one layer), for the morning digest. Days are 24-hour
    steps ending at `until`, so every bar is a whole day."""
    grid = _grid(until, DAY, days, top)
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    categories: dict[tuple[str, str, str, str], Counter[str]] = {}
    for crash in records:
        moment = moment_of(crash)
        slot = None if moment is None else grid.index(moment)
        if moment is None or slot is None:
            continue
        key = (crash.cluster, crash.namespace, crash.workload_kind, crash.workload_name)
        counts.setdefault(key, [0] * grid.count)[slot] += crash.restarts
        categories.setdefault(key, Counter())[crash.category] += crash.restarts
    layers = [WorkloadSeries(cluster=key[0], namespace=key[1], kind=key[2], name=key[3],
                             category=_commonest(categories[key]), counts=tuple(row))
              for key, row in counts.items()]
    kept, tail = _ranked(layers, top)
    if tail:
        kept.append(WorkloadSeries(cluster=None, namespace=None, kind=None, name=None,
                                   category="", counts=_summed(tail, grid.count),
                                   folded=len(tail)))
    return FleetTimeline(grid=grid, series=tuple(kept))


def rollouts(records: Iterable[CrashRecord]) -> tuple[Rollout, ...]:
    """Every rollout the crashes show, oldest first: one per version (ReplicaSet, else a
    container's image) that no earlier crash ran, plus the rollouts the recorder timed
    (`changed_at`). The first version seen has no predecessor, so it is a rollout only
    when timed. Pods of the old and new version crashing in turn during a rolling update
    make one rollout, not one per switch; a rollback to a version seen before is marked
    only when the recorder timed it."""
    ordered = sorted((c for c in records if moment_of(c) is not None),
                     key=lambda c: (_when(c), c.id or 0))
    replica_sets: set[str] = set()
    images: dict[str, set[str]] = {}
    timed: dict[object, Rollout] = {}  # per version, the earliest `changed_at`
    guessed: dict[object, Rollout] = {}  # per version, from its first crash
    for crash in ordered:
        version: object = (("replica-set", crash.replica_set) if crash.replica_set
                           else ("image", crash.container, crash.image) if crash.image
                           else ("at", crash.changed_at))
        ran = images.setdefault(crash.container, set())
        new = bool(crash.replica_set and replica_sets and crash.replica_set not in replica_sets
                   if crash.replica_set else crash.image and ran and crash.image not in ran)
        if crash.replica_set:
            replica_sets.add(crash.replica_set)
        if crash.image:
            ran.add(crash.image)
        if crash.changed_at is not None:
            known = timed.get(version)
            if known is None or crash.changed_at < known.at:
                timed[version] = Rollout(crash.changed_at, crash.replica_set, crash.image)
        elif new:
            guessed[version] = Rollout(crash.started_at or _when(crash), crash.replica_set,
                                       crash.image)
    found: list[Rollout] = []
    for rollout in sorted({**guessed, **timed}.values(), key=lambda r: r.at):
        if not found or found[-1].at != rollout.at:  # one line per moment
            found.append(rollout)
    return tuple(found)


def _grid(until: datetime, step: timedelta, count: int, layers: int) -> Grid:
    if until.tzinfo is None:
        raise ValueError("`until` must be timezone-aware (the API server's time, UTC)")
    if count < 1 or layers < 1:
        raise ValueError("a chart needs at least one bucket and one layer")
    return Grid(until=until, step=step, count=count)


def _when(crash: CrashRecord) -> datetime:
    moment = moment_of(crash)
    assert moment is not None  # callers skip crashes without a time
    return moment


def _ranked(layers: list[L], most: int) -> tuple[list[L], list[L]]:
    """Layers most restarts first (ties by name, for a stable picture), split into the
    kept and the folded tail. Folding one layer would hide it for nothing, so up to
    `most` layers are all kept; beyond, `most - 1` are kept and the rest fold."""
    layers = sorted(layers, key=lambda s: (-s.total, s.order))
    if len(layers) <= most:
        return layers, []
    return layers[:most - 1], layers[most - 1:]


def _summed(layers: Sequence[Layer], count: int) -> tuple[int, ...]:
    return tuple(sum(s.counts[i] for s in layers) for i in range(count))


def _commonest(categories: Counter[str]) -> str:
    """The category with the most restarts (ties by name, for a stable label)."""
    return min(categories.items(), key=lambda item: (-item[1], item[0]))[0]
