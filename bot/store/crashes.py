"""CrashStore: the flight recorder's memory — every recorded crash with its compressed log
tail and events, the fingerprints each workload has shown, and the recorder's heartbeat.

Exactly once: a crash row is unique per (cluster, pod uid, container, restartCount), and
inserts that collide are ignored, so two recorders (a leader hand-over) or a re-list never
store a restart twice. "New" is decided the same way: the first insert of a
(workload, fingerprint) pair wins.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.patrol.history import (
    BASELINE,
    CAPTURED,
    DROPPED,
    NO_LOG,
    RATE_LIMITED,
    CrashRecord,
    events_json,
)
from bot.store.crash_history import SUMMARY_COLUMNS, read_records
from bot.store.errors import store_error
from bot.store.schema import crash_fingerprints, crashes, pending_captures, recorder_state

_DESCRIBED = (CAPTURED, NO_LOG, RATE_LIMITED)  # captures whose diagnosis means something


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
    def record(self, crash: CrashRecord, log: str | None = None, *,
               pending_id: int | None = None) -> CrashRecord | None:
        """Store one crash (and its log tail, compressed); None if that restart is already
        recorded. The result carries the row id and whether its fingerprint is new for the
        workload (then `changed_at` is kept; otherwise it is dropped). `pending_id`: the
        ledger's pending capture this row completes, deleted in the same transaction.

        A BASELINE crash (crashing at install, `restarts` 0) registers its fingerprint as
        known at install: never "new", never alerted."""
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
                if pending_id is not None:
                    conn.execute(delete(pending_captures).where(
                        pending_captures.c.id == pending_id))
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
                if crash.capture == BASELINE:
                    self._seen(conn, crash, crash_id, moment, at_install=True)
                elif crash.capture != DROPPED:
                    is_new = self._seen(conn, crash, crash_id, moment)
                if is_new:
                    conn.execute(update(crashes).where(crashes.c.id == crash_id).values(
                        is_new=True, changed_at=crash.changed_at))
        except SQLAlchemyError as exc:
            raise store_error("could not record a crash", exc) from None
        return _with(crash, crash_id, is_new, bool(data), len(data))

    def _seen(self, conn: Any, crash: CrashRecord, crash_id: int,
              moment: datetime | None, *, at_install: bool = False) -> bool:
        """Register the crash's identity for its workload; True when it is the first."""
        f = crash_fingerprints.c
        key = {"cluster": crash.cluster, "namespace": crash.namespace,
               "workload_kind": crash.workload_kind, "workload_name": crash.workload_name,
               "identity": crash.identity}
        statement = self._insert(crash_fingerprints)
        values = {**key, "first_seen_at": moment, "last_seen_at": moment,
                  "first_crash_id": crash_id, "at_install": at_install}
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
              per_workload: int, keep_counts_since: datetime | None = None,
              ) -> tuple[int, int]:
        """Retention that never changes a count. Crashes finished before `older_than` go,
        and so do those beyond the newest `per_workload` of each workload — except that a
        crash after `keep_counts_since` (the start of the longest window a digest or
        `/restarts` may still count) keeps its compact row: only its evidence (log body,
        events, message) is emptied. Returns (rows removed, rows emptied)."""
        c = crashes.c
        when = func.coalesce(c.finished_at, c.recorded_at)
        keep = keep_counts_since if keep_counts_since is not None else now
        try:
            with self.engine.begin() as conn:
                removed = conn.execute(delete(crashes).where(
                    c.cluster == cluster, when < min(older_than, keep))).rowcount or 0
                rank = func.row_number().over(
                    partition_by=(c.namespace, c.workload_kind, c.workload_name),
                    order_by=(when.desc(), c.id.desc())).label("rank")
                ranked = select(c.id, rank).where(c.cluster == cluster).subquery()
                surplus = select(ranked.c.id).where(ranked.c.rank > per_workload)
                removed += conn.execute(delete(crashes).where(
                    c.id.in_(surplus), when < keep)).rowcount or 0
                emptied = conn.execute(update(crashes).where(
                    c.id.in_(surplus), (c.log.is_not(None)) | (c.events != "[]")
                ).values(log=None, log_bytes=0, events="[]", message=None)).rowcount or 0
                if older_than > keep:  # rows kept for their counts lose their evidence
                    emptied += conn.execute(update(crashes).where(
                        c.cluster == cluster, when < older_than,
                        (c.log.is_not(None)) | (c.events != "[]")
                    ).values(log=None, log_bytes=0, events="[]", message=None)).rowcount or 0
                conn.execute(update(recorder_state).where(
                    recorder_state.c.cluster == cluster).values(pruned_at=now))
                return removed, emptied
        except SQLAlchemyError as exc:
            raise store_error("could not prune recorded crashes", exc) from None

    # ---- reads for the recorder -----------------------------------------------------
    def last_described(self, cluster: str, pod_uid: str, container: str) -> CrashRecord | None:
        """The newest crash of this container whose diagnosis was made (or carried)."""
        c = crashes.c
        query = select(*SUMMARY_COLUMNS).where(
            c.cluster == cluster, c.pod_uid == pod_uid, c.container == container,
            c.capture.in_(_DESCRIBED)).order_by(c.restart_count.desc()).limit(1)
        return next(iter(read_records(self.engine, query)), None)

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


def _with(crash: CrashRecord, crash_id: int, is_new: bool, captured: bool,
          size: int) -> CrashRecord:
    return replace(crash, id=crash_id, is_new=is_new, log_captured=captured, log_bytes=size,
                   changed_at=crash.changed_at if is_new else None)
