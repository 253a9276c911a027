"""Why does this pod (or workload) keep restarting? — `why`, the Slack drill-down, the
Why? button and `@restart-patrol why`.

Two sources answer: the live cluster (the pods now, each container's state, previous log
and recent events) and the record (every crash with what was captured at crash time).
Each container's headline is its latest crash, told from the record when the record has
it, so the answer agrees with its own history after Kubernetes forgot the events; its
recorded crashes of the window are told as stories (bot.patrol.story). A pod or workload
that no longer exists is answered from the record; so is every question while its
cluster does not answer (`Investigation.unreachable` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from difflib import get_close_matches

from bot.answers.outage import cluster_down, last_known_moment, naming
from bot.answers.patrol import bounded, observe, read_live
from bot.cluster.client import ClusterClient
from bot.errors import ClusterUnavailable, NotFoundError, UsageError
from bot.patrol.history import CrashRecord
from bot.patrol.model import ContainerKind, ContainerObservation, PodObservation
from bot.patrol.story import (
    ClusterDown,
    ContainerStory,
    CrashStory,
    Investigation,
    latest_recorded,
    recorded_diagnosis,
)
from bot.settings import Settings
from bot.store import Store
from bot.store.crash_history import CrashHistory

DEFAULT_WINDOW = timedelta(hours=24)  # the window of every question (docs/design.md)
HISTORY = 10  # recorded crashes per container in `why --json`'s history


@dataclass(frozen=True, slots=True)
class Question:
    """A pod name, a workload name or a pod-name prefix in a namespace (worst pods first,
    at most `max_pods`), optionally one container; its stories span `since` back."""

    namespace: str
    target: str
    container: str | None = None
    max_pods: int = 3
    since: timedelta = DEFAULT_WINDOW


def investigate(cluster: ClusterClient, settings: Settings, question: Question,
                store: Store | None = None) -> Investigation:
    """Answer `question` (bounded by QUERY_DEADLINE) from the cluster, and from the record
    when `store` is given. Failures name the cluster; an unknown target is a NotFoundError
    with the closest live and recorded names."""
    with naming(cluster.name):
        return _Investigator(bounded(cluster, settings.limits.query_deadline,
                                     "QUERY_DEADLINE"), settings, store, question).answer()


class _Investigator:
    """One question's sources: the cluster, the record (None without a store)."""

    def __init__(self, cluster: ClusterClient, settings: Settings, store: Store | None,
                 question: Question) -> None:
        self.cluster = cluster
        self.settings = settings
        self.record: CrashHistory | None = store.history if store is not None else None
        self.store = store
        self.question = question

    def answer(self) -> Investigation:
        q = self.question
        try:
            now = self.cluster.server_now()
            pods = observe(self.cluster, [q.namespace])
        except ClusterUnavailable as failure:
            down = cluster_down(self.cluster.name, failure, self.store)
            if down is None:
                raise
            return self._from_record(last_known_moment(down), [], down)
        try:
            chosen = resolve_target(pods, q.target)[:q.max_pods]
        except NotFoundError:
            return self._from_record(now, pods, None)
        by_workload = not any(p.name == q.target for p in chosen)
        answers: list[ContainerStory] = []
        told: set[str] = set()
        for pod in chosen:
            for container in self._containers(pod):
                answer = self._live(pod, container, now, by_workload and container.name in told)
                told.add(container.name)
                answers.append(answer)
        return Investigation(self.cluster.name, q.namespace, q.target, now - q.since, now,
                             tuple(answers))

    def _containers(self, pod: PodObservation) -> list[ContainerObservation]:
        containers = list(pod.containers)
        wanted = self.question.container
        if wanted is not None:
            containers = [c for c in containers if c.name == wanted]
            if not containers:
                names = ", ".join(c.name for c in pod.containers)
                raise UsageError(f'pod {pod.name} has no container "{wanted}" '
                                 f"(it has: {names})")
        restarted = [c for c in containers if c.restarts > 0 or c.last_termination]
        return restarted or containers[:1]

    def _live(self, pod: PodObservation, container: ContainerObservation, now: datetime,
              stories_above: bool) -> ContainerStory:
        """One live container: its evidence read now, its headline from the record when
        the record has its latest crash."""
        read = read_live(self.cluster, self.settings, pod, container)
        term = container.last_termination
        answer = ContainerStory(
            cluster=self.cluster.name, namespace=pod.namespace, pod=pod.name,
            pod_uid=pod.uid, workload_kind=pod.workload.kind,
            workload_name=pod.workload.name, container=container.name,
            container_kind=container.kind, live=container,
            diagnosis=read.diagnosis if term is not None else None, log_tail=read.log,
            redactions=read.redactions, events=read.events,
            note="this container has not restarted" if (
                term is None and read.log is None and container.restarts == 0) else None,
            unreadable=read.unreadable, observed_at=now, stories_above=stories_above)
        if self.record is None:
            return answer
        scope = _Scope.of(pod.name != self.question.target, pod.workload.kind,
                          pod.workload.name, pod.uid, container.name)
        history = self._history(scope)
        own = [c for c in history if c.pod_uid == pod.uid] or self._history(
            _Scope(None, (pod.uid,), container.name), limit=1)
        answer = replace(answer, history=tuple(history), workload_wide=scope.workload_wide,
                         stories=() if stories_above else self._stories(scope, now))
        headline = latest_recorded(container, own)
        if headline is None:
            return answer
        log, redactions = self._log_of(headline)
        if log is None and headline.restart_count == container.restarts:
            log, redactions = read.log, read.redactions  # the live previous log is its log
        return replace(answer, headline=headline, log_tail=log, redactions=redactions,
                       diagnosis=recorded_diagnosis(headline, log, container))

    def _history(self, scope: _Scope, limit: int = HISTORY) -> list[CrashRecord]:
        assert self.record is not None
        return self.record.history(self.cluster.name, self.question.namespace,
                                   workload=scope.workload, pod_uids=scope.pod_uids,
                                   container=scope.container, limit=limit)

    def _stories(self, scope: _Scope, now: datetime) -> tuple[CrashStory, ...]:
        assert self.record is not None
        return tuple(self.record.stories(
            self.cluster.name, now - self.question.since, now,
            namespaces=[self.question.namespace], workload=scope.workload,
            pod_uids=scope.pod_uids, container=scope.container, with_logs=True))

    def _log_of(self, crash: CrashRecord) -> tuple[str | None, int]:
        if self.record is None or crash.id is None or not crash.log_captured:
            return None, 0
        found = self.record.log_of(crash.cluster, crash.id)
        return (found[1], crash.redactions) if found is not None else (None, 0)

    def _from_record(self, now: datetime, pods: Sequence[PodObservation],
                     down: ClusterDown | None) -> Investigation:
        """Pods that are gone (or a cluster that is down), from their newest recorded
        crashes; not in the record either → NotFoundError with the closest names."""
        q = self.question
        found = (self.record.find(self.cluster.name, q.namespace, q.target)
                 if self.record is not None else [])
        if not found:
            live = {*(p.name for p in pods), *(p.workload.name for p in pods)}
            known = sorted(live | set(self.record.names(self.cluster.name, q.namespace)
                                      if self.record is not None else ()))
            where = (f'namespace {q.namespace}' if pods or down is None
                     else f"the record of namespace {q.namespace}")
            raise NotFoundError(f'no pod or workload "{q.target}" in {where}', suggestions=tuple(
                get_close_matches(q.target, known, n=3, cutoff=0.4)))
        if q.container is not None:
            found = [r for r in found if r.container == q.container]
            if not found:
                raise UsageError(f'no crash of a container "{q.container}" is recorded there')
        pods_shown: list[str] = []
        for r in found:
            if r.pod_uid not in pods_shown:
                pods_shown.append(r.pod_uid)
        by_workload = not any(r.pod_name == q.target for r in found)
        answers: list[ContainerStory] = []
        told: set[str] = set()
        for r in found:
            if r.pod_uid not in pods_shown[:q.max_pods]:
                continue
            answers.append(self._recorded(r, now, by_workload, r.container in told))
            told.add(r.container)
        return Investigation(self.cluster.name, q.namespace, q.target, now - q.since, now,
                             tuple(answers), down)

    def _recorded(self, crash: CrashRecord, now: datetime, by_workload: bool,
                  stories_above: bool) -> ContainerStory:
        """A container known only from the record: its newest crash is the headline."""
        log, redactions = self._log_of(crash)
        scope = _Scope.of(by_workload, crash.workload_kind, crash.workload_name,
                          crash.pod_uid, crash.container)
        return ContainerStory(
            cluster=crash.cluster, namespace=crash.namespace, pod=crash.pod_name,
            pod_uid=crash.pod_uid, workload_kind=crash.workload_kind,
            workload_name=crash.workload_name, container=crash.container,
            container_kind=ContainerKind(crash.container_kind), live=None,
            diagnosis=recorded_diagnosis(crash, log), headline=crash, log_tail=log,
            redactions=redactions, history=tuple(self._history(scope)),
            stories=() if stories_above else self._stories(scope, now),
            workload_wide=scope.workload_wide, stories_above=stories_above)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Whose recorded crashes an answer tells: a workload's, or some pods' (one container)."""

    workload: tuple[str, str] | None
    pod_uids: tuple[str, ...]
    container: str

    @property
    def workload_wide(self) -> bool:
        return self.workload is not None

    @classmethod
    def of(cls, by_workload: bool, kind: str, name: str, uid: str, container: str) -> _Scope:
        """The workload's when the question named it, else the pod's own."""
        return cls((kind, name), (), container) if by_workload else cls(None, (uid,),
                                                                          container)


def resolve_target(pods: Sequence[PodObservation], target: str) -> list[PodObservation]:
    """Pods named by `target`: a pod name, a workload name, or a pod-name prefix (worst
    first). Raises NotFoundError with the closest names when nothing matches."""
    exact = [p for p in pods if p.name == target]
    if exact:
        return exact
    matched = [p for p in pods if p.workload.name == target] or [
        p for p in pods if p.name.startswith(target)]
    if matched:
        return sorted(matched, key=lambda p: (-max((c.restarts for c in p.containers),
                                                   default=0), p.name))
    names = sorted({p.name for p in pods} | {p.workload.name for p in pods})
    raise NotFoundError(f'no pod or workload "{target}" in namespace '
                        f'{pods[0].namespace if pods else "(empty)"}',
                        suggestions=tuple(get_close_matches(target, names, n=3, cutoff=0.4)))
