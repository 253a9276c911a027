"""Reads of the recorded crash history for people: a pod's or workload's history, the
crashes of a window, recorded logs, names for suggestions. The recorder's own writes and
reads live in `bot.store.crashes`."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Container, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, and_, distinct, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from bot.diagnosis.engine import EventNote
from bot.patrol.history import DROPPED, CrashRecord
from bot.patrol.story import (
    CrashStory,
    KnownCrash,
    KnownKey,
    RecordedWindow,
    RecorderCoverage,
    StoryKey,
    StoryTally,
    WorkloadKey,
    tell_stories,
)
from bot.store.errors import store_error
from bot.store.schema import crash_fingerprints, crashes, recorder_state

SUMMARY_COLUMNS = (
    crashes.c.id, crashes.c.cluster, crashes.c.namespace, crashes.c.pod_name,
    crashes.c.pod_uid, crashes.c.container, crashes.c.container_kind,
    crashes.c.workload_kind, crashes.c.workload_name, crashes.c.restart_count,
    crashes.c.restarts, crashes.c.exit_code, crashes.c.signal, crashes.c.reason,
    crashes.c.message, crashes.c.started_at, crashes.c.finished_at, crashes.c.recorded_at,
    crashes.c.node, crashes.c.image, crashes.c.category, crashes.c.fingerprint,
    crashes.c.signature, crashes.c.summary, crashes.c.capture, crashes.c.log_bytes,
    crashes.c.redactions, crashes.c.events, crashes.c.replica_set, crashes.c.template_hash,
    crashes.c.changed_at, crashes.c.is_new,
)



def record_of(row: Any) -> CrashRecord:
    events = tuple(EventNote(e.get("type", ""), e.get("reason", ""), e.get("message", ""),
                                 int(e.get("count") or 1))
                   for e in orjson.loads(row.events or "[]"))
    return CrashRecord(
        cluster=row.cluster, namespace=row.namespace, pod_name=row.pod_name,
        pod_uid=row.pod_uid, container=row.container, container_kind=row.container_kind,
        workload_kind=row.workload_kind, workload_name=row.workload_name,
        restart_count=row.restart_count, restarts=row.restarts, exit_code=row.exit_code,
        signal=row.signal, reason=row.reason, message=row.message,
        started_at=row.started_at, finished_at=row.finished_at, recorded_at=row.recorded_at,
        node=row.node, image=row.image, category=row.category, fingerprint=row.fingerprint,
        signature=tuple(row.signature.split("\n")) if row.signature else (),
        summary=row.summary, capture=row.capture, log_captured=row.log_bytes > 0,
        log_bytes=row.log_bytes, redactions=row.redactions, events=events,
        replica_set=row.replica_set, template_hash=row.template_hash,
        changed_at=row.changed_at, is_new=bool(row.is_new), id=row.id)


def read_records(engine: Engine, query: Any) -> list[CrashRecord]:
    """Run a query selecting SUMMARY_COLUMNS; one CrashRecord per row."""
    try:
        with engine.connect() as conn:
            return [record_of(row) for row in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise store_error("could not read recorded crashes", exc) from None


class CrashHistory:
    """Recorded crashes as people ask about them (read-only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def history(self, cluster: str, namespace: str, *, pod_uids: Sequence[str] = (),
                pod_name: str | None = None, workload: tuple[str, str] | None = None,
                container: str | None = None, limit: int = 10,
                seeds: bool = False) -> list[CrashRecord]:
        """Recorded crashes, newest first, of some pods (by uid or name) or a workload.
        `seeds`: include what was crashing at install (BASELINE rows, 0 restarts)."""
        c = crashes.c
        where: list[ColumnElement[bool]] = [c.cluster == cluster, c.namespace == namespace]
        if not seeds:
            where.append(c.restarts > 0)
        chosen: list[ColumnElement[bool]] = []
        if pod_uids:
            chosen.append(c.pod_uid.in_(list(pod_uids)))
        if pod_name is not None:
            chosen.append(c.pod_name == pod_name)
        if workload is not None:
            chosen.append(and_(c.workload_kind == workload[0], c.workload_name == workload[1]))
        if chosen:
            where.append(or_(*chosen))
        if container is not None:
            where.append(c.container == container)
        query = (select(*SUMMARY_COLUMNS).where(*where)
                 .order_by(func.coalesce(c.finished_at, c.recorded_at).desc(), c.id.desc())
                 .limit(limit))
        return read_records(self.engine, query)

    def find(self, cluster: str, namespace: str, target: str) -> list[CrashRecord]:
        """The newest crash per container of pods named `target`, of the workload named
        `target`, or of pods whose name starts with it (for pods that no longer exist)."""
        c = crashes.c
        for condition in (c.pod_name == target, c.workload_name == target,
                          c.pod_name.startswith(target, autoescape=True)):
            newest = (select(func.max(c.id)).where(c.cluster == cluster, c.restarts > 0,
                                                   c.namespace == namespace, condition)
                      .group_by(c.pod_uid, c.container))
            found = read_records(self.engine, select(*SUMMARY_COLUMNS).where(c.id.in_(newest))
                                  .order_by(c.id.desc()))
            if found:
                return found
        return []

    def names(self, cluster: str, namespace: str) -> list[str]:
        """Pod and workload names with recorded crashes in a namespace (for suggestions)."""
        c = crashes.c
        try:
            with self.engine.connect() as conn:
                pods = conn.execute(select(c.pod_name).where(
                    c.cluster == cluster, c.namespace == namespace).distinct()).scalars()
                workloads = conn.execute(select(c.workload_name).where(
                    c.cluster == cluster, c.namespace == namespace).distinct()).scalars()
                return sorted(set(pods) | set(workloads))
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

    def log_of(self, cluster: str, crash_id: int) -> tuple[CrashRecord, str | None] | None:
        """A recorded crash and its log tail (decompressed), or None if unknown."""
        c = crashes.c
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(*SUMMARY_COLUMNS, c.log).where(
                    c.cluster == cluster, c.id == crash_id)).first()
        except SQLAlchemyError as exc:
            raise store_error("could not read a recorded log", exc) from None
        if row is None:
            return None
        text = zlib.decompress(row.log).decode("utf-8", errors="replace") if row.log else None
        return record_of(row), text

    def coverage(self, cluster: str) -> RecorderCoverage | None:
        """When the recorder first started for this cluster and when it last heard from it
        (None: it never ran)."""
        r = recorder_state.c
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(r.first_started_at, r.seen_at).where(
                    r.cluster == cluster)).first()
        except SQLAlchemyError as exc:
            raise store_error("could not read the recorder's state", exc) from None
        return RecorderCoverage(row[0], row[1]) if row is not None else None

    def last_recorded(self, cluster: str) -> datetime | None:
        """When the newest recorded crash of the cluster happened (None: none)."""
        try:
            with self.engine.connect() as conn:
                moment: datetime | None = conn.execute(
                    select(func.max(_when)).where(crashes.c.cluster == cluster)).scalar()
                return moment
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

    def stories(self, cluster: str, since: datetime | None, until: datetime | None, *,
                namespaces: Collection[str] = (), workload: tuple[str, str] | None = None,
                pod_uids: Collection[str] = (), container: str | None = None,
                with_logs: bool = False) -> list[CrashStory]:
        """The recorded crashes of a window — of some namespaces, a workload or some pods
        (and one container) — as stories, newest first (bot.patrol.story). Counted in the
        database, so a long window of a crash wave reads one row per story, not per crash.
        `with_logs` also finds each story's newest crash with a recorded log."""
        c = crashes.c
        where = _window(cluster, since, until)
        if namespaces:
            where.append(c.namespace.in_(list(namespaces)))
        if workload is not None:
            where += [c.workload_kind == workload[0], c.workload_name == workload[1]]
        if pod_uids:
            where.append(c.pod_uid.in_(list(pod_uids)))
        if container is not None:
            where.append(c.container == container)
        group = (c.namespace, c.workload_kind, c.workload_name, c.container, _identity)
        counted = select(*group, func.sum(c.restarts), func.count(), func.min(_when),
                         func.max(_when), func.count(distinct(c.pod_uid)),
                         func.max(c.changed_at)).where(*where).group_by(*group)
        try:
            with self.engine.connect() as conn:
                tallies = [(tuple(row[:5]), row[5:]) for row in conn.execute(counted)]
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None
        if not tallies:
            return []
        latest = self._newest_per_story(where)
        logged = self._newest_per_story([*where, c.log_bytes > 0]) if with_logs else {}
        known = self._known(cluster, {key[0] for key, _ in tallies})
        found: list[StoryTally] = []
        newest: dict[StoryKey, CrashRecord] = {}
        with_log: dict[StoryKey, CrashRecord] = {}
        for raw, (restarts, rows, first, last, pods, changed) in tallies:
            record = latest.get(raw)
            if record is None:
                continue
            key: StoryKey = (*raw[:4], record.identity)
            found.append(StoryTally(key, int(restarts or 0), int(rows), first, last,
                                    int(pods), changed))
            newest[key] = record
            if raw in logged:
                with_log[key] = logged[raw]
        return tell_stories(cluster, found, newest, known, since, with_log)

    def _newest_per_story(self, where: list[ColumnElement[bool]]) -> dict[
            tuple[str, ...], CrashRecord]:
        """The newest crash of each story matching `where`, by the story's raw group key."""
        c = crashes.c
        group = (c.namespace, c.workload_kind, c.workload_name, c.container, _identity)
        rank = func.row_number().over(partition_by=group,
                                      order_by=(_when.desc(), c.id.desc())).label("rank")
        ranked = select(c.id, rank).where(*where).subquery()
        query = select(*SUMMARY_COLUMNS).where(c.id.in_(
            select(ranked.c.id).where(ranked.c.rank == 1)))
        return {(r.namespace, r.workload_kind, r.workload_name, r.container,
                 r.fingerprint or r.category): r for r in read_records(self.engine, query)}

    def _known(self, cluster: str, namespaces: Collection[str]) -> dict[KnownKey, KnownCrash]:
        """The registry of crashes each workload has shown (first seen, at install)."""
        f = crash_fingerprints.c
        query = select(f.namespace, f.workload_kind, f.workload_name, f.identity,
                       f.first_seen_at, f.at_install).where(f.cluster == cluster,
                                                            f.namespace.in_(list(namespaces)))
        try:
            with self.engine.connect() as conn:
                return {(ns, kind, name, identity): KnownCrash(first, bool(at_install))
                        for ns, kind, name, identity, first, at_install in conn.execute(query)}
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

    def window(self, cluster: str, since: datetime, until: datetime,
               present: Container[tuple[str, str]],
               namespaces: Collection[str] = ()) -> RecordedWindow:
        """What the recorder saw in a patrol's window: the stories, per workload the
        restarts of pods absent from `present` ((namespace, uid) listed now), and the
        captures dropped. `covered`: the recorder ran through the whole window."""
        c = crashes.c
        where = _window(cluster, since, until)
        if namespaces:
            where.append(c.namespace.in_(list(namespaces)))
        per_pod = select(c.namespace, c.workload_kind, c.workload_name, c.pod_uid,
                         func.sum(c.restarts)).where(*where).group_by(
            c.namespace, c.workload_kind, c.workload_name, c.pod_uid)
        dropped = select(func.count()).where(*where, c.capture == DROPPED)
        try:
            with self.engine.connect() as conn:
                pods = list(conn.execute(per_pod))
                lost = int(conn.execute(dropped).scalar() or 0)
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None
        gone: dict[WorkloadKey, tuple[int, int]] = {}
        for ns, kind, name, uid, restarts in pods:
            if (ns, uid) in present:
                continue
            before = gone.get((ns, kind, name), (0, 0))
            gone[(ns, kind, name)] = (before[0] + int(restarts or 0), before[1] + 1)
        coverage = self.coverage(cluster)
        return RecordedWindow(
            stories=tuple(self.stories(cluster, since, until, namespaces=namespaces)),
            vanished=gone, dropped=lost,
            covered=coverage is not None and coverage.covers(since))

    def namespace_totals(self, cluster: str, since: datetime, until: datetime,
                         namespaces: Collection[str] = ()) -> list[tuple[str, str, int]]:
        """(namespace, workload name, restarts) recorded in a window, per workload."""
        c = crashes.c
        where = _window(cluster, since, until)
        if namespaces:
            where.append(c.namespace.in_(list(namespaces)))
        query = select(c.namespace, c.workload_name, func.sum(c.restarts)).where(
            *where).group_by(c.namespace, c.workload_kind, c.workload_name)
        try:
            with self.engine.connect() as conn:
                return [(ns, name, int(n or 0)) for ns, name, n in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None


_when = func.coalesce(crashes.c.finished_at, crashes.c.recorded_at)  # a crash's moment
_identity = func.coalesce(crashes.c.fingerprint, crashes.c.category)  # ~ CrashRecord.identity


def _window(cluster: str, since: datetime | None,
            until: datetime | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [crashes.c.cluster == cluster,
                                        crashes.c.restarts > 0]  # seeds count nothing
    if since is not None:
        where.append(_when > since)
    if until is not None:
        where.append(_when <= until)
    return where
