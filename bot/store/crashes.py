"""CrashStore: the flight recorder's memory — every recorded crash with its compressed log
tail and events, the fingerprints each workload has shown, and the recorder's heartbeat.

Exactly once: a crash row is unique per (cluster, pod uid, container, restartCount), and
inserts that collide are ignored, so two recorders (a leader hand-over) or a re-list never
store a restart twice. "New" is decided the same way: the first insert of a
(workload, fingerprint) pair wins.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.diagnosis.engine import EventNote
from bot.patrol.history import (
    BASELINE,
    CAPTURED,
    DROPPED,
    NO_LOG,
    RATE_LIMITED,
    CrashRecord,
    RecorderWindow,
    WorkloadHistory,
    events_json,
    tally,
)
from bot.store.errors import store_error
from bot.store.schema import crash_fingerprints, crashes, recorder_state

_DESCRIBED = (CAPTURED, NO_LOG, RATE_LIMITED)  # captures whose diagnosis means something
_SUMMARY_COLUMNS = (
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



def _record(row: Any) -> CrashRecord:
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


class CrashStore:
    """Recorded crashes in the same database as the snapshots."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert(self, table: Any) -> Any:
        """An INSERT that ignores a unique-key collision (SQLite and PostgreSQL)."""
        name = self.engine.dialect.name
        if name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        if name == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        return None

    # ---- writes ---------------------------------------------------------------------
    def record(self, crash: CrashRecord, log: str | None = None) -> CrashRecord | None:
        """Store one crash (and its log tail, compressed); None if that restart is already
        recorded. The result carries the row id and whether its fingerprint is new for the
        workload (then `changed_at` is kept; otherwise it is dropped)."""
        data = log.encode("utf-8", errors="replace") if log else b""
        moment = crash.finished_at or crash.recorded_at
        assert crash.recorded_at is not None, "recorded_at is required"
        values = {
            "cluster": crash.cluster, "namespace": crash.namespace, "pod_name": crash.pod_name,
            "pod_uid": crash.pod_uid, "container": crash.container,
            "container_kind": crash.container_kind, "workload_kind": crash.workload_kind,
            "workload_name": crash.workload_name, "restart_count": crash.restart_count,
            "restarts": crash.restarts, "exit_code": crash.exit_code, "signal": crash.signal,
            "reason": crash.reason, "message": crash.message, "started_at": crash.started_at,
            "finished_at": crash.finished_at, "recorded_at": crash.recorded_at,
            "node": crash.node, "image": crash.image, "category": crash.category,
            "fingerprint": crash.fingerprint, "signature": "\n".join(crash.signature),
            "summary": crash.summary, "capture": crash.capture,
            "log": zlib.compress(data, 6) if data else None, "log_bytes": len(data),
            "redactions": crash.redactions,
            "events": orjson.dumps(events_json(crash.events)).decode(),
            "replica_set": crash.replica_set, "template_hash": crash.template_hash,
            "changed_at": None, "is_new": False,
        }
        try:
            with self.engine.begin() as conn:
                statement = self._insert(crashes)
                if statement is None:
                    try:
                        with conn.begin_nested():
                            key = conn.execute(crashes.insert().values(**values)
                                               ).inserted_primary_key
                    except IntegrityError:
                        return None
                    crash_id = int(key[0]) if key else None
                else:
                    crash_id = conn.execute(statement.values(**values).returning(
                        crashes.c.id)).scalar()
                if crash_id is None:
                    return None
                is_new = False
                if crash.capture not in (DROPPED, BASELINE):
                    is_new = self._seen(conn, crash, crash_id, moment)
                if is_new:
                    conn.execute(update(crashes).where(crashes.c.id == crash_id).values(
                        is_new=True, changed_at=crash.changed_at))
        except SQLAlchemyError as exc:
            raise store_error("could not record a crash", exc) from None
        return _with(crash, crash_id, is_new, bool(data), len(data))

    def _seen(self, conn: Any, crash: CrashRecord, crash_id: int,
              moment: datetime | None) -> bool:
        """Register the crash's identity for its workload; True when it is the first."""
        f = crash_fingerprints.c
        key = {"cluster": crash.cluster, "namespace": crash.namespace,
               "workload_kind": crash.workload_kind, "workload_name": crash.workload_name,
               "identity": crash.identity}
        statement = self._insert(crash_fingerprints)
        values = {**key, "first_seen_at": moment, "last_seen_at": moment,
                  "first_crash_id": crash_id}
        if statement is None:
            try:
                with conn.begin_nested():
                    conn.execute(crash_fingerprints.insert().values(**values))
                return True
            except IntegrityError:
                inserted = 0
        else:
            inserted = conn.execute(statement.values(**values)).rowcount
        if inserted:
            return True
        conn.execute(update(crash_fingerprints).where(
            *(getattr(f, k) == v for k, v in key.items()),
            f.last_seen_at < moment).values(last_seen_at=moment))
        return False

    def mark_started(self, cluster: str, now: datetime) -> datetime | None:
        """Note a recorder start; returns when the previous run was last seen alive."""
        try:
            with self.engine.begin() as conn:
                previous = conn.execute(select(recorder_state.c.seen_at).where(
                    recorder_state.c.cluster == cluster)).scalar()
                if previous is None:
                    conn.execute(recorder_state.insert().values(
                        cluster=cluster, first_started_at=now, started_at=now, seen_at=now))
                else:
                    conn.execute(update(recorder_state).where(
                        recorder_state.c.cluster == cluster).values(started_at=now,
                                                                     seen_at=now))
                return previous
        except SQLAlchemyError as exc:
            raise store_error("could not record the recorder's start", exc) from None

    def mark_seen(self, cluster: str, now: datetime) -> datetime | None:
        """Heartbeat; returns when crashes were last pruned (None: never)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(recorder_state).where(
                    recorder_state.c.cluster == cluster, recorder_state.c.seen_at < now
                ).values(seen_at=now))
                pruned: datetime | None = conn.execute(select(recorder_state.c.pruned_at).where(
                    recorder_state.c.cluster == cluster)).scalar()
                return pruned
        except SQLAlchemyError as exc:
            raise store_error("could not record the recorder's heartbeat", exc) from None

    def prune(self, cluster: str, now: datetime, *, older_than: datetime,
              per_workload: int) -> int:
        """Delete crashes finished before `older_than`, and beyond the newest
        `per_workload` of each workload; returns how many rows went."""
        c = crashes.c
        try:
            with self.engine.begin() as conn:
                removed = conn.execute(delete(crashes).where(
                    c.cluster == cluster, func.coalesce(c.finished_at, c.recorded_at)
                    < older_than)).rowcount or 0
                rank = func.row_number().over(
                    partition_by=(c.namespace, c.workload_kind, c.workload_name),
                    order_by=(func.coalesce(c.finished_at, c.recorded_at).desc(),
                              c.id.desc())).label("rank")
                ranked = select(c.id, rank).where(c.cluster == cluster).subquery()
                surplus = select(ranked.c.id).where(ranked.c.rank > per_workload)
                removed += conn.execute(delete(crashes).where(c.id.in_(surplus))).rowcount or 0
                conn.execute(update(recorder_state).where(
                    recorder_state.c.cluster == cluster).values(pruned_at=now))
                return removed
        except SQLAlchemyError as exc:
            raise store_error("could not prune recorded crashes", exc) from None

    # ---- reads for the recorder -----------------------------------------------------
    def watermarks(self, cluster: str, namespaces: Collection[str] = ()) -> dict[
            tuple[str, str], int]:
        """The highest restartCount recorded per (pod uid, container)."""
        c = crashes.c
        query = select(c.pod_uid, c.container, func.max(c.restart_count)).where(
            c.cluster == cluster).group_by(c.pod_uid, c.container)
        if namespaces:
            query = query.where(c.namespace.in_(list(namespaces)))
        try:
            with self.engine.connect() as conn:
                return {(uid, name): int(count) for uid, name, count in conn.execute(query)}
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

    def last_described(self, cluster: str, pod_uid: str, container: str) -> CrashRecord | None:
        """The newest crash of this container whose diagnosis was made (or carried)."""
        c = crashes.c
        query = select(*_SUMMARY_COLUMNS).where(
            c.cluster == cluster, c.pod_uid == pod_uid, c.container == container,
            c.capture.in_(_DESCRIBED)).order_by(c.restart_count.desc()).limit(1)
        return next(iter(self._records(query)), None)

    def images_since(self, cluster: str, namespace: str, kind: str, name: str,
                     since: datetime) -> list[tuple[datetime, str | None]]:
        """(finished, image) of the workload's crashes since `since`."""
        c = crashes.c
        query = select(c.finished_at, c.image).where(
            c.cluster == cluster, c.namespace == namespace, c.workload_kind == kind,
            c.workload_name == name, c.finished_at >= since)
        try:
            with self.engine.connect() as conn:
                return [(row[0], row[1]) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

    # ---- reads for people -----------------------------------------------------------
    def _records(self, query: Any) -> list[CrashRecord]:
        try:
            with self.engine.connect() as conn:
                return [_record(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

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
        query = (select(*_SUMMARY_COLUMNS).where(*where)
                 .order_by(func.coalesce(c.finished_at, c.recorded_at).desc(), c.id.desc())
                 .limit(limit))
        return self._records(query)

    def find(self, cluster: str, namespace: str, target: str) -> list[CrashRecord]:
        """The newest crash per container of pods named `target`, of the workload named
        `target`, or of pods whose name starts with it (for pods that no longer exist)."""
        c = crashes.c
        for condition in (c.pod_name == target, c.workload_name == target,
                          c.pod_name.startswith(target, autoescape=True)):
            newest = (select(func.max(c.id)).where(c.cluster == cluster,
                                                   c.namespace == namespace, condition)
                      .group_by(c.pod_uid, c.container))
            found = self._records(select(*_SUMMARY_COLUMNS).where(c.id.in_(newest))
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
                row = conn.execute(select(*_SUMMARY_COLUMNS, c.log).where(
                    c.cluster == cluster, c.id == crash_id)).first()
        except SQLAlchemyError as exc:
            raise store_error("could not read a recorded log", exc) from None
        if row is None:
            return None
        text = zlib.decompress(row.log).decode("utf-8", errors="replace") if row.log else None
        return _record(row), text

    def window(self, cluster: str, since: datetime, until: datetime,
               present: Collection[tuple[str, str]],
               namespaces: Collection[str] = ()) -> RecorderWindow:
        """What the recorder saw between two patrols: per workload the distinct crashes
        with counts and new marks, and the restarts of pods absent from `present`
        ((namespace, uid) listed now); plus captures dropped. Empty when it never ran."""
        c, f = crashes.c, crash_fingerprints.c
        moment = func.coalesce(c.finished_at, c.recorded_at)
        query = select(*_SUMMARY_COLUMNS).where(c.cluster == cluster, moment > since,
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
        for crash in self._records(query):
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


def _with(crash: CrashRecord, crash_id: int, is_new: bool, captured: bool,
          size: int) -> CrashRecord:
    return replace(crash, id=crash_id, is_new=is_new, log_captured=captured, log_bytes=size,
                   changed_at=crash.changed_at if is_new else None)
