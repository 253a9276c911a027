"""What restarted in a window — `/restarts <ns>` and `/restarts` (docs/design.md,
"Windows").

The window is what the asker said (default: the last 24 h), never "since whatever patrol
ran last", and the answer names its source. It is counted from the record when the
recorder ran through it; else from snapshots when one is as old as the window (the
record still tells the crashes it saw); else from the record since the recorder started,
when it saw anything (the answer says where its window starts); else it is a first look
(lifetime totals, said so) — a lifetime total is shown only when nothing else is known.
When the cluster does not answer, the record answers alone (`Digest.unreachable`).
Nothing is written: asking never moves a window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.answers.investigation import DEFAULT_WINDOW
from bot.answers.outage import cluster_down, last_known_moment, naming
from bot.answers.patrol import PatrolPlan, PatrolRun, bounded, observe, patrol, patrol_options
from bot.cluster.client import ClusterClient
from bot.errors import ClusterUnavailable
from bot.patrol.digest import DigestBuilder, WorkloadSummary, digest_from_record
from bot.patrol.story import (
    SOURCE_RECORD,
    SOURCE_SNAPSHOTS,
    ClusterDown,
    RecorderCoverage,
    WorkloadKey,
)
from bot.render.environment import phrase
from bot.render.rows import NamespaceTotal, namespace_totals, totals_of
from bot.settings import Settings
from bot.store import Store


@dataclass(frozen=True, slots=True)
class NamespaceTotals:
    """Restarts per namespace in a window (the `/restarts` summary of one cluster)."""

    cluster: str
    window_from: datetime | None  # None: no snapshot yet, lifetime totals
    window_to: datetime
    source: str  # story.SOURCE_*
    totals: tuple[NamespaceTotal, ...]
    notes: tuple[str, ...] = ()
    unreachable: ClusterDown | None = None


@dataclass(frozen=True, slots=True)
class _Window:
    """Where a question's window starts and ends, and what the record knows of it."""

    start: datetime
    now: datetime
    coverage: RecorderCoverage | None
    down: ClusterDown | None

    def from_record(self, cluster: str, store: Store, namespaces: Sequence[str] = ()
                    ) -> bool:
        """Whether the record answers (see the module doc for the order)."""
        if self.coverage is None:
            return False
        if self.down is not None or self.coverage.covers(self.start):
            return True
        if store.latest_snapshot(cluster, at_or_before=self.start) is not None:
            return False
        return bool(store.history.namespace_totals(cluster, self.recorded_from, self.now,
                                                   namespaces))

    @property
    def recorded_from(self) -> datetime:
        """The window's start, or the recorder's first start if that is later."""
        assert self.coverage is not None
        return max(self.start, self.coverage.first_started_at)


def _window(cluster: ClusterClient, store: Store, since: timedelta) -> _Window:
    """The window ending now (the API server's clock; ours when it does not answer)."""
    coverage = store.history.coverage(cluster.name)
    try:
        now = cluster.server_now()
        down = None
    except ClusterUnavailable as failure:
        down = cluster_down(cluster.name, failure, store)
        if down is None:
            raise
        now = last_known_moment(down)
    return _Window(now - since, now, coverage, down)


def _notes(window: _Window, templates_dir: str | None) -> tuple[str, ...]:
    if window.coverage is not None and window.recorded_from > window.start:
        return (phrase("recorder_started", templates_dir,
                       started=window.coverage.first_started_at),)
    return ()


def restarts_in(cluster: ClusterClient, store: Store, settings: Settings,
                namespaces: Sequence[str], since: timedelta = DEFAULT_WINDOW,
                diagnose_top: int = 15) -> PatrolRun:
    """The workloads of `namespaces` that restarted in the last `since`, as a digest: from
    the record (enriched with the live pods when the cluster answers), else a look at
    snapshots. Failures name the cluster."""
    with naming(cluster.name):
        cluster = bounded(cluster, settings.limits.query_deadline, "QUERY_DEADLINE")
        window = _window(cluster, store, since)
        options = patrol_options(settings, namespaces, cluster.name)
        if not window.from_record(cluster.name, store, sorted(options.namespaces)):
            return patrol(cluster, store, settings, PatrolPlan.look(namespaces, since,
                                                                    diagnose_top))
        live, scanned, down = _live(cluster, store, sorted(options.namespaces), window.down)
        stories = store.history.stories(cluster.name, window.recorded_from, window.now,
                                        namespaces=sorted(options.namespaces))
        digest = digest_from_record(
            cluster.name, window.recorded_from, window.now, stories, live, options=options,
            pods_scanned=scanned, workloads_scanned=len(live or {}), unreachable=down)
        return PatrolRun(digest, None, notes=_notes(window, settings.templates_dir))


def _live(cluster: ClusterClient, store: Store, namespaces: Sequence[str],
          down: ClusterDown | None) -> tuple[dict[WorkloadKey, WorkloadSummary] | None, int,
                                             ClusterDown | None]:
    """The restarting workloads now, for the record's rows (pods, totals, flags); None
    when the cluster does not answer (and what to say instead)."""
    if down is not None:
        return None, 0, down
    try:
        pods = observe(cluster, namespaces)
    except ClusterUnavailable as failure:
        down = cluster_down(cluster.name, failure, store)
        if down is None:
            raise
        return None, 0, down
    builder = DigestBuilder(cluster.name, first_run=True)
    for pod in pods:
        builder.add(pod, None)
    return builder.summaries(), builder.pods_scanned, None


def restarts_by_namespace(cluster: ClusterClient, store: Store, settings: Settings,
                          allowed: Callable[[str], bool] | None,
                          since: timedelta = DEFAULT_WINDOW) -> NamespaceTotals | None:
    """Restarts per namespace in the last `since` (only namespaces `allowed`, or all):
    from the record, else a look at snapshots. None when none is allowed."""
    with naming(cluster.name):
        cluster = bounded(cluster, settings.limits.query_deadline, "QUERY_DEADLINE")
        window = _window(cluster, store, since)
        if window.from_record(cluster.name, store):
            rows = store.history.namespace_totals(cluster.name, window.recorded_from,
                                                  window.now)
            shown = [r for r in rows if allowed is None or allowed(r[0])]
            return NamespaceTotals(cluster.name, window.recorded_from, window.now,
                                   SOURCE_RECORD, tuple(totals_of(shown)),
                                   _notes(window, settings.templates_dir), window.down)
        namespaces: list[str] = []
        if allowed is not None:
            namespaces = [ns for ns in cluster.namespace_names() if allowed(ns)]
            if not namespaces:
                return None
        run = patrol(cluster, store, settings, PatrolPlan.look(namespaces, since,
                                                               diagnose_top=0))
        digest = run.digest
        return NamespaceTotals(cluster.name, digest.window_from, digest.window_to,
                               SOURCE_SNAPSHOTS, tuple(namespace_totals(digest)), run.notes)
