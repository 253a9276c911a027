"""Store: records patrol snapshots and picks baselines.

A snapshot and all its container rows are written in one transaction, so a crash
mid-patrol leaves the previous baseline intact. Baselines: the most recent earlier
snapshot (default), the previous *digest* snapshot (the daily digest's window must not be
shortened by ad-hoc patrols), or the latest snapshot at or before a given time (`--since`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from sys import intern
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.errors import StoreError
from bot.patrol.model import Baseline, ContainerRecord
from bot.store.migrations import migrate
from bot.store.schema import container_rows, snapshots, workload_diagnoses

_ROW_COLUMNS = ("snapshot_id", "namespace", "pod_uid", "container", "pod_name",
                "container_kind", "workload_kind", "workload_name", "restarts",
                "last_exit_code", "last_reason", "finished_at")
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


class SnapshotWriter:
    """Appends container rows to a snapshot inside its open transaction, in chunks."""

    def __init__(self, conn: Connection, snapshot_id: int, cluster: str, taken_at: datetime,
                 purpose: str, namespaces: tuple[str, ...]) -> None:
        self._conn = conn
        self.id = snapshot_id
        self.taken_at = taken_at
        self._header = (cluster, purpose, namespaces)
        self._chunk: list[tuple[Any, ...]] = []
        self._last_pod: tuple[str, str] | None = None
        self.pods = 0
        self.containers = 0

    def add(self, records: Iterable[ContainerRecord]) -> None:
        """Queue rows; written every _CHUNK rows. Rows of one pod must come together."""
        for r in records:
            if (r.namespace, r.pod_uid) != self._last_pod:
                self.pods += 1
                self._last_pod = (r.namespace, r.pod_uid)
            finished = r.finished_at
            self._chunk.append((
                self.id, r.namespace, r.pod_uid, r.container, r.pod_name, r.container_kind,
                r.workload_kind, r.workload_name, r.restarts, r.last_exit_code, r.last_reason,
                finished.astimezone(UTC).replace(tzinfo=None) if finished else None))
            if len(self._chunk) >= _CHUNK:
                self._flush()

    def _flush(self) -> None:
        """executemany through the driver: SQLAlchemy's per-row parameter processing cost
        more than the database at 100k rows. Columns and UTC handling mirror schema.py."""
        if self._chunk:
            self._conn.exec_driver_sql(self._insert_sql(), self._chunk)
            self.containers += len(self._chunk)
            self._chunk = []

    def _insert_sql(self) -> str:
        style = self._conn.dialect.paramstyle
        marks = ", ".join("?" if style == "qmark" else "%s" for _ in _ROW_COLUMNS)
        return f"INSERT INTO container_rows ({', '.join(_ROW_COLUMNS)}) VALUES ({marks})"

    def reset(self) -> None:
        """Drop every row written so far (the pod list restarted after a 410)."""
        self._chunk = []
        self._conn.execute(delete(container_rows).where(container_rows.c.snapshot_id == self.id))
        self._last_pod = None
        self.pods = self.containers = 0

    def close(self, taken_at: datetime | None = None) -> None:
        """Flush and finalise the header (counts, and the time the listing ended)."""
        self._flush()
        if taken_at is not None:
            self.taken_at = taken_at
        self._conn.execute(snapshots.update().where(snapshots.c.id == self.id).values(
            pods=self.pods, containers=self.containers, taken_at=self.taken_at))

    @property
    def info(self) -> SnapshotInfo:
        cluster, purpose, namespaces = self._header
        return SnapshotInfo(self.id, cluster, self.taken_at, purpose, namespaces, self.pods,
                            self.containers)


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
    @contextmanager
    def snapshot_writer(self, cluster: str, taken_at: datetime, purpose: str,
                        namespaces: Sequence[str]) -> Iterator[SnapshotWriter]:
        """A snapshot written in one transaction while rows stream in; committed when the
        block ends normally, rolled back (previous baseline intact) when it raises."""
        try:
            with self.engine.begin() as conn:
                key = conn.execute(snapshots.insert().values(
                    cluster=cluster, taken_at=taken_at, purpose=purpose,
                    namespaces=",".join(sorted(namespaces)), pods=0,
                    containers=0)).inserted_primary_key
                if key is None:
                    raise StoreError("the database returned no id for the new snapshot")
                writer = SnapshotWriter(conn, int(key[0]), cluster, taken_at, purpose,
                                        tuple(sorted(namespaces)))
                yield writer
                writer.close()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record the snapshot: {_reason(exc)}") from None

    def record_snapshot(
        self, cluster: str, taken_at: datetime, purpose: str,
        namespaces: Sequence[str], records: Iterable[ContainerRecord],
    ) -> SnapshotInfo:
        """Write a snapshot and its rows atomically."""
        with self.snapshot_writer(cluster, taken_at, purpose, namespaces) as writer:
            writer.add(records)
        return writer.info

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

    def baseline_records(self, info: SnapshotInfo,
                         namespaces: Sequence[str] | None = None) -> Iterator[ContainerRecord]:
        """Stream a snapshot's rows (restricted to `namespaces` if given), with the columns
        deltas and vanished pods need (the last-termination columns stay behind)."""
        c = container_rows.c
        query = select(c.namespace, c.pod_uid, c.container, c.pod_name, c.container_kind,
                       c.workload_kind, c.workload_name, c.restarts).where(
                           c.snapshot_id == info.id)
        if namespaces:
            query = query.where(c.namespace.in_(list(namespaces)))
        try:
            with self.engine.connect() as conn:
                rows = conn.execution_options(yield_per=_CHUNK).execute(query)
                for ns, uid, name, pod, ckind, wkind, wname, restarts in rows:
                    yield ContainerRecord(
                        namespace=intern(ns), pod_uid=uid, pod_name=pod, container=intern(name),
                        restarts=restarts, workload_kind=intern(wkind),
                        workload_name=intern(wname), container_kind=intern(ckind))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the baseline snapshot: {_reason(exc)}") from None

    def snapshot_namespaces(self, info: SnapshotInfo) -> list[str]:
        """The namespaces that have rows in a snapshot."""
        query = select(container_rows.c.namespace).where(
            container_rows.c.snapshot_id == info.id).distinct()
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).scalars())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the baseline snapshot: {_reason(exc)}") from None

    def load_baseline(self, info: SnapshotInfo,
                      namespaces: Sequence[str] | None = None) -> Baseline:
        """A snapshot's rows keyed by container identity (restricted to `namespaces`)."""
        return Baseline(taken_at=info.taken_at, containers={
            r.key: r for r in self.baseline_records(info, namespaces)})

    def record_diagnoses(self, snapshot_id: int,
                         items: Iterable[tuple[str, str, str, str | None, str, str]]) -> None:
        """Store (namespace, kind, name, fingerprint, category, summary) per workload."""
        rows = [{"snapshot_id": snapshot_id, "namespace": ns, "workload_kind": kind,
                 "workload_name": name, "fingerprint": fp, "category": category,
                 "summary": summary} for ns, kind, name, fp, category, summary in items]
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(workload_diagnoses.insert(), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record diagnoses: {_reason(exc)}") from None

    def fingerprint_history(self, cluster: str, namespace: str, kind: str, name: str, *,
                            exclude: int | None = None, limit: int = 14) -> list[str | None]:
        """Fingerprints of this workload's crash in earlier digests, newest first (None
        where a digest had no diagnosis for it)."""
        d = workload_diagnoses.c
        digests = (select(snapshots.c.id, snapshots.c.taken_at)
                   .where(snapshots.c.cluster == cluster, snapshots.c.purpose == PURPOSE_DIGEST,
                          snapshots.c.id != (exclude or -1))
                   .order_by(snapshots.c.taken_at.desc()).limit(limit).subquery())
        query = (select(digests.c.id, d.fingerprint)
                 .select_from(digests.outerjoin(workload_diagnoses, (d.snapshot_id == digests.c.id)
                                                & (d.namespace == namespace)
                                                & (d.workload_kind == kind)
                                                & (d.workload_name == name)))
                 .order_by(digests.c.taken_at.desc()))
        try:
            with self.engine.connect() as conn:
                return [row.fingerprint for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read diagnosis history: {_reason(exc)}") from None

    def workload_history(
        self, cluster: str, namespace: str, kind: str, name: str, since: datetime,
        purpose: str | None = PURPOSE_DIGEST,
    ) -> list[tuple[datetime, int]]:
        """(snapshot time, restartCount sum) of one workload per snapshot since `since`;
        digest snapshots only by default, so consecutive points are a day apart."""
        c = container_rows.c
        query = (
            select(snapshots.c.taken_at, func.sum(c.restarts))
            .join(snapshots, snapshots.c.id == c.snapshot_id)
            .where(snapshots.c.cluster == cluster, snapshots.c.taken_at >= since,
                   c.namespace == namespace, c.workload_kind == kind, c.workload_name == name,
                   snapshots.c.purpose == purpose if purpose else snapshots.c.purpose.isnot(None))
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
