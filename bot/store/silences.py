"""Silences: who quieted which workload's crash (or the whole workload), when, until when
and why; lifted early by a person or by a new crash (bot.patrol.alerting has the rules).
A silence only stops posting: the crash is still recorded and counted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from bot.patrol.alerting import AlertedWorkload, Silence
from bot.store.errors import store_error
from bot.store.schema import crashes, silences

_S = silences.c


def _silence(row: Any) -> Silence:
    return Silence(
        id=row.id, workload=AlertedWorkload(row.cluster, row.namespace, row.workload_kind,
                                            row.workload_name),
        identity=row.identity, created_by=row.created_by, created_at=row.created_at,
        until=row.until, reason=row.reason, channel=row.channel, thread_ts=row.thread_ts,
        lifted_at=row.lifted_at, lifted_by=row.lifted_by, lift_reason=row.lift_reason)


class SilenceStore:
    """The `silences` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _read(self, query: Any, what: str = "could not read silences") -> list[Silence]:
        try:
            with self.engine.connect() as conn:
                return [_silence(r) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error(what, exc) from None

    def add(self, workload: AlertedWorkload, identity: str | None, *, by: str,
            now: datetime, until: datetime, reason: str, channel: str | None = None,
            thread_ts: str | None = None) -> Silence:
        """Store a silence of the workload's crash `identity` (None: the whole workload)."""
        try:
            with self.engine.begin() as conn:
                key = conn.execute(silences.insert().values(
                    cluster=workload.cluster, namespace=workload.namespace,
                    workload_kind=workload.kind, workload_name=workload.name,
                    identity=identity, created_by=by, created_at=now, until=until,
                    reason=reason, channel=channel, thread_ts=thread_ts)).inserted_primary_key
        except SQLAlchemyError as exc:
            raise store_error("could not store a silence", exc) from None
        assert key is not None
        found = self.get(int(key[0]))
        assert found is not None
        return found

    def get(self, silence_id: int) -> Silence | None:
        return next(iter(self._read(select(silences).where(_S.id == silence_id))), None)

    def lift(self, silence_id: int, *, by: str, now: datetime, reason: str) -> Silence | None:
        """End an active silence now; None when there is no such active silence."""
        try:
            with self.engine.begin() as conn:
                done = conn.execute(update(silences).where(
                    _S.id == silence_id, _S.lifted_at.is_(None), _S.until > now).values(
                    lifted_at=now, lifted_by=by, lift_reason=reason)).rowcount
        except SQLAlchemyError as exc:
            raise store_error("could not lift a silence", exc) from None
        return self.get(silence_id) if done else None

    def for_workload(self, workload: AlertedWorkload, now: datetime) -> list[Silence]:
        """The workload's active silences."""
        return self._read(select(silences).where(
            _S.cluster == workload.cluster, _S.namespace == workload.namespace,
            _S.workload_kind == workload.kind, _S.workload_name == workload.name,
            _S.lifted_at.is_(None), _S.until > now).order_by(_S.until.desc()))

    def overlapping(self, workload: AlertedWorkload, start: datetime,
                    end: datetime) -> list[Silence]:
        """The workload's silences (of a crash or of all of it, active, expired or lifted)
        that were in force at some moment of `(start, end]`, oldest first: what its
        crash-history chart draws (bot.answers.chart)."""
        return self._read(select(silences).where(
            _S.cluster == workload.cluster, _S.namespace == workload.namespace,
            _S.workload_kind == workload.kind, _S.workload_name == workload.name,
            _S.created_at <= end, func.coalesce(_S.lifted_at, _S.until) > start)
            .order_by(_S.created_at, _S.id))

    def active(self, now: datetime, clusters: Sequence[str] | None = None) -> list[Silence]:
        """Every active silence (of `clusters`, None = all), ending soonest first."""
        where = [_S.lifted_at.is_(None), _S.until > now]
        if clusters is not None:
            where.append(_S.cluster.in_(list(clusters)))
        return self._read(select(silences).where(and_(*where)).order_by(_S.until, _S.id))

    def recorded_workloads(self, namespace: str, name: str, kind: str | None = None,
                           cluster: str | None = None) -> list[AlertedWorkload]:
        """The recorded workloads called `name` in `namespace` (of `kind`, of `cluster`):
        what a silence set from the terminal can be about."""
        c = crashes.c
        query = select(c.cluster, c.workload_kind).distinct().where(
            c.namespace == namespace, c.workload_name == name)
        if kind is not None:
            query = query.where(c.workload_kind == kind)
        if cluster is not None:
            query = query.where(c.cluster == cluster)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(c.cluster, c.workload_kind)).all()
        except SQLAlchemyError as exc:
            raise store_error("could not read recorded crashes", exc) from None
        return [AlertedWorkload(row[0], namespace, row[1], name) for row in rows]
