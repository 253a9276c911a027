"""Alert threads: one Slack thread per crash and channel, stored so that repeats keep
replying in the same thread across restarts of the bot (bot.patrol.alerting has the
rules; bot.slack.alerts posts).

Opening is an INSERT on the thread's unique key, so two replicas alerting the same crash
cannot both own a thread: the loser is told the winner's thread. Counting a repeat is a
compare-and-set on `last_crash_id`, so a crash is counted once however often it is
offered (the recorder's callback and the follower's poll may both see it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.patrol.alerting import AlertedWorkload, AlertThread
from bot.patrol.history import CrashRecord
from bot.store.crash_history import SUMMARY_COLUMNS, read_records
from bot.store.errors import store_error
from bot.store.schema import alert_threads, crashes

_T = alert_threads.c


def _of_thread() -> ColumnElement[bool]:
    """A crash row is of the thread's crash: same workload and container, and its
    fingerprint is the thread's identity (else its category; OOMKilled's category)."""
    c = crashes.c
    return and_(c.cluster == _T.cluster, c.namespace == _T.namespace,
                c.workload_kind == _T.workload_kind, c.workload_name == _T.workload_name,
                c.container == _T.container,
                or_(c.fingerprint == _T.identity,
                    and_(c.fingerprint.is_(None),
                         or_(c.category == _T.identity,
                             and_(c.category == "oom-killed", _T.identity == "OOMKilled")))))


def _thread(row: Any) -> AlertThread:
    return AlertThread(
        id=row.id, workload=AlertedWorkload(row.cluster, row.namespace, row.workload_kind,
                                            row.workload_name),
        channel=row.channel, container=row.container, identity=row.identity, ts=row.ts,
        opened_at=row.opened_at, count=row.count, last_at=row.last_at,
        last_crash_id=row.last_crash_id, replied_at=row.replied_at,
        replied_count=row.replied_count, acked_by=row.acked_by, acked_at=row.acked_at)


def _key(crash: CrashRecord, channel: str) -> dict[str, str]:
    return {"cluster": crash.cluster, "channel": channel, "namespace": crash.namespace,
            "workload_kind": crash.workload_kind, "workload_name": crash.workload_name,
            "container": crash.container, "identity": crash.identity}


class ThreadStore:
    """The `alert_threads` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _one(self, where: Any) -> AlertThread | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(alert_threads).where(where)).first()
        except SQLAlchemyError as exc:
            raise store_error("could not read alert threads", exc) from None
        return None if row is None else _thread(row)

    def find(self, crash: CrashRecord, channel: str) -> AlertThread | None:
        """The thread of this crash's (workload, container, identity) in `channel`."""
        return self._one(and_(*(getattr(_T, k) == v for k, v in _key(crash, channel).items())))

    def get(self, thread_id: int) -> AlertThread | None:
        return self._one(_T.id == thread_id)

    def at(self, channel: str, ts: str) -> AlertThread | None:
        """The thread whose parent is message `ts` of `channel` (what a click is on)."""
        return self._one(and_(_T.channel == channel, _T.ts == ts))

    def open(self, crash: CrashRecord, channel: str, ts: str, now: datetime) -> AlertThread:
        """Store the thread whose parent `ts` was just posted for `crash`; when another
        replica stored one first, that one is returned (and `ts` is not stored)."""
        assert crash.id is not None, "a stored crash"
        values = {**_key(crash, channel), "ts": ts, "opened_at": now,
                  "count": crash.restarts, "last_at": crash.finished_at or now,
                  "last_crash_id": crash.id, "replied_at": None,
                  "replied_count": crash.restarts}
        try:
            with self.engine.begin() as conn:
                conn.execute(alert_threads.insert().values(**values))
        except IntegrityError:
            pass
        except SQLAlchemyError as exc:
            raise store_error("could not store an alert thread", exc) from None
        found = self.find(crash, channel)
        assert found is not None
        return found

    def count(self, thread: AlertThread, last_at: datetime,
              last_crash_id: int) -> AlertThread | None:
        """Add the restarts of the thread's crashes after its `last_crash_id` up to
        `last_crash_id` (summed in the same statement, so two callers racing — the
        recorder's callback and the follower — never count a crash twice); None when they
        were counted already (`last_crash_id` is not past the thread's)."""
        c = crashes.c
        added = (select(func.coalesce(func.sum(c.restarts), 0))
                 .where(_of_thread(), c.id > _T.last_crash_id, c.id <= last_crash_id)
                 .scalar_subquery())
        try:
            with self.engine.begin() as conn:
                done = conn.execute(update(alert_threads).where(
                    _T.id == thread.id, _T.last_crash_id < last_crash_id).values(
                    count=_T.count + added, last_crash_id=last_crash_id,
                    last_at=func.coalesce(last_at, _T.last_at))).rowcount
        except SQLAlchemyError as exc:
            raise store_error("could not count a repeat in its alert thread", exc) from None
        return self.get(thread.id) if done else None

    def replied(self, thread: AlertThread, now: datetime) -> bool:
        """Note a repeat reply covering the thread's count; False when another replica
        replied since `thread` was read (then this one does not post)."""
        try:
            with self.engine.begin() as conn:
                return bool(conn.execute(update(alert_threads).where(
                    _T.id == thread.id, _T.replied_count == thread.replied_count).values(
                    replied_at=now, replied_count=thread.count)).rowcount)
        except SQLAlchemyError as exc:
            raise store_error("could not note an alert thread's reply", exc) from None

    def acknowledge(self, thread_id: int, user: str, now: datetime) -> AlertThread | None:
        """`user` is on it (the latest acknowledgement wins); None for no such thread."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(alert_threads).where(_T.id == thread_id).values(
                    acked_by=user, acked_at=now))
        except SQLAlchemyError as exc:
            raise store_error("could not acknowledge an alert", exc) from None
        return self.get(thread_id)

    def in_workload(self, cluster: str, namespace: str, kind: str, name: str
                    ) -> list[AlertThread]:
        """Every thread of a workload (in every channel), newest first."""
        where = and_(_T.cluster == cluster, _T.namespace == namespace,
                     _T.workload_kind == kind, _T.workload_name == name)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(alert_threads).where(where)
                                    .order_by(_T.last_at.desc(), _T.id.desc())).all()
        except SQLAlchemyError as exc:
            raise store_error("could not read alert threads", exc) from None
        return [_thread(r) for r in rows]

    def recent(self, since: datetime, channels: Sequence[str] | None = None
               ) -> list[AlertThread]:
        """Threads whose latest crash is at or after `since` (in `channels`, None = all),
        newest first."""
        query = select(alert_threads).where(_T.last_at >= since)
        if channels is not None:
            query = query.where(_T.channel.in_(list(channels)))
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(_T.last_at.desc(), _T.id.desc())).all()
        except SQLAlchemyError as exc:
            raise store_error("could not read alert threads", exc) from None
        return [_thread(r) for r in rows]

    def pending(self, cluster: str, since: datetime) -> list[tuple[AlertThread, int,
                                                                  CrashRecord]]:
        """Threads of `cluster` with crashes since `since` recorded after their
        `last_crash_id`: (thread, restarts not yet counted, the newest such crash). A
        thread quiet for weeks still gets its crash's next repeat. One query for the
        tallies, one per thread for its newest crash."""
        c = crashes.c
        same = and_(_of_thread(), c.id > _T.last_crash_id)
        query = (select(_T.id, func.sum(c.restarts), func.max(c.id))
                 .select_from(alert_threads.join(crashes, same))
                 .where(_T.cluster == cluster,
                        func.coalesce(c.finished_at, c.recorded_at) >= since)
                 .group_by(_T.id))
        try:
            with self.engine.connect() as conn:
                tallies = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise store_error("could not read repeats of alerted crashes", exc) from None
        found = []
        for thread_id, restarts, newest in tallies:
            thread = self.get(int(thread_id))
            crash = self.crash(cluster, int(newest))
            if thread is not None and crash is not None:
                found.append((thread, int(restarts), crash))
        return found

    def due(self, cluster: str, since: datetime) -> list[AlertThread]:
        """Threads of `cluster` active since `since` with restarts not yet replied."""
        query = select(alert_threads).where(_T.cluster == cluster, _T.last_at >= since,
                                            _T.count > _T.replied_count)
        try:
            with self.engine.connect() as conn:
                return [_thread(r) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read alert threads", exc) from None

    def crash(self, cluster: str, crash_id: int) -> CrashRecord | None:
        """One recorded crash by id (None once pruned): what a parent is re-rendered from."""
        query = select(*SUMMARY_COLUMNS).where(crashes.c.cluster == cluster,
                                               crashes.c.id == crash_id)
        return next(iter(read_records(self.engine, query)), None)
