"""What the App Home tab shows across the record: the workloads crashing now and the
crash identities first seen lately. Read-only; callers filter by who may see what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.patrol.alerting import AlertedWorkload
from bot.store.errors import store_error
from bot.store.schema import crash_fingerprints, crashes


@dataclass(frozen=True, slots=True)
class Crashing:
    """A workload with recorded crashes since a time."""

    workload: AlertedWorkload
    restarts: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class FirstSeen:
    """A crash identity a workload showed for the first time."""

    workload: AlertedWorkload
    identity: str
    first_seen_at: datetime
    summary: str  # of its first crash ("" once that crash was pruned)


class Overview:
    """Fleet-wide reads of the record, newest first, at most `limit` each."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def crashing_since(self, since: datetime, limit: int = 200) -> list[Crashing]:
        c = crashes.c
        moment = func.coalesce(c.finished_at, c.recorded_at)
        query = (select(c.cluster, c.namespace, c.workload_kind, c.workload_name,
                        func.sum(c.restarts), func.max(moment))
                 .where(moment >= since)
                 .group_by(c.cluster, c.namespace, c.workload_kind, c.workload_name)
                 .order_by(func.max(moment).desc()).limit(limit))
        try:
            with self.engine.connect() as conn:
                return [Crashing(AlertedWorkload(r[0], r[1], r[2], r[3]), int(r[4]), r[5])
                        for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None

    def first_seen_since(self, since: datetime, limit: int = 200) -> list[FirstSeen]:
        f, c = crash_fingerprints.c, crashes.c
        query = (select(f.cluster, f.namespace, f.workload_kind, f.workload_name, f.identity,
                        f.first_seen_at, c.summary)
                 .select_from(crash_fingerprints.outerjoin(crashes, c.id == f.first_crash_id))
                 .where(f.first_seen_at >= since)
                 .order_by(f.first_seen_at.desc()).limit(limit))
        try:
            with self.engine.connect() as conn:
                return [FirstSeen(AlertedWorkload(r[0], r[1], r[2], r[3]), r[4], r[5],
                                  r[6] or "") for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read first-seen crashes", exc) from None
