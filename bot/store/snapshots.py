"""Store: records patrol snapshots and picks baselines.

A snapshot and all its container rows are written in one transaction, so a crash
mid-patrol leaves the previous baseline intact. Baselines: the most recent earlier
snapshot (default), the previous *digest* snapshot (the daily digest's window must not be
shortened by ad-hoc patrols), or the latest snapshot at or before a given time (`--since`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from sys import intern
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.errors import StoreError
from bot.patrol.model import Baseline, ContainerRecord
from bot.store.migrations import migrate
from bot.store.schema import container_rows, snapshots

PURPOSE_DIGEST = "digest"
PURPOSE_ADHOC = "adhoc"
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A stored snapshot's header."""

    id: int
    cluster: str
    taken_at: datetime
    purpose: str
    namespaces: tuple[str, ...]
    pods: int
    containers: int


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable DATABASE_URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Snapshots in SQLite (WAL) or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and migrate; failures become a StoreError naming the database."""
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"DATABASE_URL {_safe_url(url)} is not usable: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            migrate(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = str(exc.orig if hasattr(exc, "orig") and exc.orig else exc).split("\n")[0]
            raise StoreError(f"cannot open database {_safe_url(url)}: {reason}") from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # ---- writes ---------------------------------------------------------------------
    def record_snapshot(
        self, cluster: str, taken_at: datetime, purpose: str,
        namespaces: Sequence[str], records: Iterable[ContainerRecord],
    ) -> SnapshotInfo:
        """Write a snapshot and its rows atomically; rows stream in chunks of _CHUNK."""
        pods = containers = 0
        last_pod: tuple[str, str] | None = None
        try:
            with self.engine.begin() as conn:
                key = conn.execute(snapshots.insert().values(
                    cluster=cluster, taken_at=taken_at, purpose=purpose,
                    namespaces=",".join(sorted(namespaces)), pods=0,
                    containers=0)).inserted_primary_key
                if key is None:
                    raise StoreError("the database returned no id for the new snapshot")
                snapshot_id = key[0]
                chunk: list[dict[str, Any]] = []
                for r in records:
                    if (r.namespace, r.pod_uid) != last_pod:
                        pods += 1
                        last_pod = (r.namespace, r.pod_uid)
                    chunk.append({
                        "snapshot_id": snapshot_id, "namespace": r.namespace,
                        "pod_uid": r.pod_uid, "container": r.container,
                        "pod_name": r.pod_name, "container_kind": r.container_kind,
                        "workload_kind": r.workload_kind, "workload_name": r.workload_name,
                        "restarts": r.restarts, "last_exit_code": r.last_exit_code,
                        "last_reason": r.last_reason, "finished_at": r.finished_at})
                    if len(chunk) == _CHUNK:
                        conn.execute(container_rows.insert(), chunk)
                        containers += len(chunk)
                        chunk = []
                if chunk:
                    conn.execute(container_rows.insert(), chunk)
                    containers += len(chunk)
                conn.execute(snapshots.update().where(snapshots.c.id == snapshot_id).values(
                    pods=pods, containers=containers))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record the snapshot: {_reason(exc)}") from None
        return SnapshotInfo(int(snapshot_id), cluster, taken_at, purpose,
                            tuple(sorted(namespaces)), pods, containers)

    def prune(self, cluster: str, keep_after: datetime) -> int:
        """Delete snapshots older than `keep_after`, always keeping the latest digest one."""
        try:
            with self.engine.begin() as conn:
                latest_digest = conn.execute(
                    select(func.max(snapshots.c.id)).where(
                        snapshots.c.cluster == cluster, snapshots.c.purpose == PURPOSE_DIGEST)
                ).scalar()
                old = select(snapshots.c.id).where(
                    snapshots.c.cluster == cluster, snapshots.c.taken_at < keep_after,
                    snapshots.c.id != (latest_digest or -1))
                ids = conn.execute(old).scalars().all()
                if ids:
                    conn.execute(delete(container_rows).where(
                        container_rows.c.snapshot_id.in_(ids)))
                    conn.execute(delete(snapshots).where(snapshots.c.id.in_(ids)))
                return len(ids)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not prune old snapshots: {_reason(exc)}") from None

    # ---- reads ----------------------------------------------------------------------
    def latest_snapshot(
        self, cluster: str, *, purpose: str | None = None, at_or_before: datetime | None = None,
    ) -> SnapshotInfo | None:
        """The newest matching snapshot header, or None."""
        query = select(snapshots).where(snapshots.c.cluster == cluster)
        if purpose is not None:
            query = query.where(snapshots.c.purpose == purpose)
        if at_or_before is not None:
            query = query.where(snapshots.c.taken_at <= at_or_before)
        query = query.order_by(snapshots.c.taken_at.desc(), snapshots.c.id.desc()).limit(1)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read snapshots: {_reason(exc)}") from None
        if row is None:
            return None
        return SnapshotInfo(row["id"], row["cluster"], row["taken_at"], row["purpose"],
                            tuple(n for n in row["namespaces"].split(",") if n),
                            row["pods"], row["containers"])

    def load_baseline(self, info: SnapshotInfo,
                      namespaces: Sequence[str] | None = None) -> Baseline:
        """The container rows of a snapshot (restricted to `namespaces` if given), with the
        columns deltas and vanished pods need (the last-termination columns stay behind)."""
        c = container_rows.c
        query = select(c.namespace, c.pod_uid, c.container, c.pod_name, c.container_kind,
                       c.workload_kind, c.workload_name, c.restarts).where(
                           c.snapshot_id == info.id)
        if namespaces:
            query = query.where(c.namespace.in_(list(namespaces)))
        containers: dict[tuple[str, str, str], ContainerRecord] = {}
        try:
            with self.engine.connect() as conn:
                for ns, uid, name, pod, ckind, wkind, wname, restarts in conn.execute(query):
                    ns, name, wkind, wname = intern(ns), intern(name), intern(wkind), intern(wname)
                    containers[(ns, uid, name)] = ContainerRecord(
                        namespace=ns, pod_uid=uid, pod_name=pod, container=name,
                        restarts=restarts, workload_kind=wkind, workload_name=wname,
                        container_kind=intern(ckind))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the baseline snapshot: {_reason(exc)}") from None
        return Baseline(taken_at=info.taken_at, containers=containers)

    def workload_history(
        self, cluster: str, namespace: str, kind: str, name: str, since: datetime,
    ) -> list[tuple[datetime, int]]:
        """(snapshot time, restartCount sum) of one workload per snapshot since `since`."""
        c = container_rows.c
        query = (
            select(snapshots.c.taken_at, func.sum(c.restarts))
            .join(snapshots, snapshots.c.id == c.snapshot_id)
            .where(snapshots.c.cluster == cluster, snapshots.c.taken_at >= since,
                   c.namespace == namespace, c.workload_kind == kind, c.workload_name == name)
            .group_by(snapshots.c.id, snapshots.c.taken_at)
            .order_by(snapshots.c.taken_at)
        )
        try:
            with self.engine.connect() as conn:
                return [(row[0], int(row[1])) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read workload history: {_reason(exc)}") from None


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).split("\n")[0]
