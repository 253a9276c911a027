"""Reads of the recorded crash history for people: a pod's or workload's history, the
crashes of a window, recorded logs, names for suggestions. The recorder's own writes and
reads live in `bot.store.crashes`."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from bot.diagnosis.engine import EventNote
from bot.patrol.history import (
    DROPPED,
    CrashRecord,
    RecorderWindow,
    WorkloadHistory,
    tally,
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
                container: str | None = None, limit: int = 10) -> list[CrashRecord]:
        """Recorded crashes, newest first, of some pods (by uid or name) or a workload."""
        c = crashes.c
        where: list[ColumnElement[bool]] = [c.cluster == cluster, c.namespace == namespace]
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
            newest = (select(func.max(c.id)).where(c.cluster == cluster,
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

    def window(self, cluster: str, since: datetime, until: datetime,
               present: Collection[tuple[str, str]],
               namespaces: Collection[str] = ()) -> RecorderWindow:
        """What the recorder saw between two patrols: per workload the distinct crashes
        with counts and new marks, and the restarts of pods absent from `present`
        ((namespace, uid) listed now); plus captures dropped. Empty when it never ran."""
        c, f = crashes.c, crash_fingerprints.c
        moment = func.coalesce(c.finished_at, c.recorded_at)
        query = select(*SUMMARY_COLUMNS).where(c.cluster == cluster, moment > since,
                                                moment <= until)
        fresh = select(f.namespace, f.workload_kind, f.workload_name, f.identity).where(
            f.cluster == cluster, f.first_seen_at > since, f.first_seen_at <= until)
        if namespaces:
            query = query.where(c.namespace.in_(list(namespaces)))
            fresh = fresh.where(f.namespace.in_(list(namespaces)))
        try:
            with self.engine.connect() as conn:
                state = conn.execute(select(recorder_state.c.first_started_at).where(
                    recorder_state.c.cluster == cluster)).scalar()
                new = {(ns, kind, name, identity)
                       for ns, kind, name, identity in conn.execute(fresh)}
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None
        grouped: dict[tuple[str, str, str], list[CrashRecord]] = {}
        dropped = 0
        for crash in read_records(self.engine, query):
            grouped.setdefault((crash.namespace, crash.workload_kind, crash.workload_name),
                               []).append(crash)
            dropped += crash.capture == DROPPED
        workloads: dict[tuple[str, str, str], WorkloadHistory] = {}
        for key, found in grouped.items():
            gone = [x for x in found if (x.namespace, x.pod_uid) not in present]
            new_here = {identity for ns, kind, name, identity in new if (ns, kind, name) == key}
            workloads[key] = WorkloadHistory(
                tallies=tally(found, new_here),
                vanished_restarts=sum(x.restarts for x in gone),
                vanished_pods=len({x.pod_uid for x in gone}))
        return RecorderWindow(workloads=workloads, dropped=dropped,
                              covered=state is not None and state <= since)
