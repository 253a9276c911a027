"""Store: records patrol snapshots and picks baselines.

A snapshot is lean: every pod goes into a packed per-namespace pod set (uid, name,
workload, container names) and only containers that restarted get a row, which is all the
delta rules need (docs/design.md, "Snapshots"). It is written in one transaction, so a
crash mid-patrol leaves the previous baseline intact. Baselines: the most recent earlier
snapshot (default), the previous *posted digest* snapshot (the daily digest's window must not
be shortened by ad-hoc patrols, nor lost when a post fails: a digest's snapshot is recorded
as pending and confirmed by `slots.DigestSlots.mark_posted`), or the latest snapshot at or
before a given time (`--since`).
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from sys import intern
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    Select,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.errors import StoreError
from bot.patrol.model import (
    Baseline,
    BaselinePod,
    ContainerRecord,
    PodObservation,
    QuietPod,
    WorkloadRef,
)
from bot.store.crash_history import CrashHistory
from bot.store.crashes import CrashStore
from bot.store.errors import store_error
from bot.store.ledger import RestartLedger
from bot.store.migrations import migrate
from bot.store.overview import Overview
from bot.store.podsets import PodSetBuilder, unpack, workloads_of
from bot.store.schema import (
    KIND_LISTED,
    KIND_RECORDED,
    PURPOSE_ADHOC,
    PURPOSE_DIGEST,
    PURPOSE_DIGEST_PENDING,
    container_rows,
    digest_slots,
    pod_sets,
    snapshot_gone,
    snapshots,
    workload_diagnoses,
)
from bot.store.silences import SilenceStore
from bot.store.slots import POSTED, DigestSlots
from bot.store.threads import ThreadStore

__all__ = ["KIND_LISTED", "KIND_RECORDED", "PURPOSE_ADHOC", "PURPOSE_DIGEST",
           "PURPOSE_DIGEST_PENDING", "PostedDigest", "PostedRow", "SnapshotInfo",
           "SnapshotWriter", "Store"]

_ROW_COLUMNS = ("snapshot_id", "namespace", "pod_uid", "container", "pod_name",
                "container_kind", "workload_kind", "workload_name", "restarts",
                "last_exit_code", "last_reason", "finished_at")
_SET_COLUMNS = ("snapshot_id", "namespace", "part", "pods", "data")
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
    kind: str = KIND_LISTED  # KIND_RECORDED: only what changed since `parent_id`
    parent_id: int | None = None
    recorder_mark: str | None = None  # the recorder's record of changes at its start


@dataclass(frozen=True, slots=True)
class PostedRow:
    """A row of a posted digest and its headline crash (`identity`: its fingerprint,
    else its category — what alert threads and silences key a crash by)."""

    namespace: str
    kind: str
    name: str
    fingerprint: str | None
    category: str

    @property
    def identity(self) -> str:
        return self.fingerprint or self.category


@dataclass(frozen=True, slots=True)
class PostedDigest:
    """A digest as posted: its cluster and rows with a headline."""

    cluster: str
    rows: tuple[PostedRow, ...]


def _snapshot_info(row: RowMapping) -> SnapshotInfo:
    return SnapshotInfo(row["id"], row["cluster"], row["taken_at"], row["purpose"],
                        tuple(n for n in row["namespaces"].split(",") if n),
                        row["pods"], row["containers"], row["kind"], row["parent_id"],
                        row["recorder_mark"])


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


_PART_PODS = 5000  # pods per pod_sets part: bounds the writer's memory per namespace

ContainerRow = tuple[str, str, int, "int | None", "str | None", "datetime | None"]
"""(container, container kind, restarts, last exit code, last reason, finished at)"""


class SnapshotWriter:
    """Writes a snapshot inside its open transaction: every pod into per-namespace packed
    pod sets, rows only for containers that restarted (both in chunks)."""

    def __init__(self, conn: Connection, snapshot_id: int, cluster: str, taken_at: datetime,
                 purpose: str, namespaces: tuple[str, ...], parent: SnapshotInfo | None = None,
                 recorder_mark: str | None = None) -> None:
        self._conn = conn
        self.id = snapshot_id
        self.taken_at = taken_at
        self._header = (cluster, purpose, namespaces)
        self._parent = parent
        self._mark = recorder_mark
        self._insert_rows = _insert_sql(conn, "container_rows", _ROW_COLUMNS)
        self._insert_set = _insert_sql(conn, "pod_sets", _SET_COLUMNS)
        self._start()

    def _start(self) -> None:
        self._chunk: list[tuple[Any, ...]] = []
        self._sets: dict[str, PodSetBuilder] = {}
        self._parts: dict[str, int] = {}
        self._namespace: str | None = None
        self._builder = PodSetBuilder()
        self._interleaved = False
        self._gone: list[tuple[int, str, str]] = []
        self.pods = 0
        self.containers = 0

    def add_pod(self, pod: PodObservation | QuietPod) -> None:
        """Record one pod (every container in its pod set; rows for the restarted ones)."""
        workload = (pod.workload.kind, pod.workload.name)
        if isinstance(pod, QuietPod):
            self._add(pod.namespace, pod.uid, pod.name, workload, pod.containers, ())
            return
        rows: list[ContainerRow] = []
        for c in pod.containers:
            term = c.last_termination
            if c.restarts > 0 or term is not None:
                rows.append((c.name, c.kind.value, c.restarts,
                             term.exit_code if term else None, term.reason if term else None,
                             term.finished_at if term else None))
        self._add(pod.namespace, pod.uid, pod.name, workload,
                  tuple(c.name for c in pod.containers), rows)

    def _add(self, namespace: str, uid: str, name: str, workload: tuple[str, str],
             containers: tuple[str, ...], rows: Sequence[ContainerRow]) -> None:
        if not containers:
            return  # no container statuses yet: nothing a delta could refer to
        if namespace != self._namespace:
            self._switch(namespace)
        builder = self._builder
        builder.add(uid, name, workload, containers)
        self.pods += 1
        self.containers += len(containers)
        if rows:
            for container, kind, restarts, exit_code, reason, finished in rows:
                self._chunk.append((
                    self.id, namespace, uid, container, name, kind, workload[0], workload[1],
                    restarts, exit_code, reason,
                    finished.astimezone(UTC).replace(tzinfo=None) if finished else None))
            if len(self._chunk) >= _CHUNK:
                self._flush_rows()
        if len(builder.uids) >= _PART_PODS:
            self._flush_set(namespace)
            self._builder = self._sets[namespace] = PodSetBuilder()

    def _switch(self, namespace: str) -> None:
        """Lists come in namespace order, so the previous namespace is complete: pack it
        now to keep memory flat. A namespace seen again means the server interleaves
        them; then sets stay open until full or closed (no part per pod)."""
        if self._namespace is not None and not self._interleaved:
            self._flush_set(self._namespace)
        self._interleaved = self._interleaved or namespace in self._parts
        self._namespace = namespace
        builder = self._sets.get(namespace)
        if builder is None:
            builder = self._sets[namespace] = PodSetBuilder()
        self._builder = builder

    def gone(self, namespace: str, uid: str) -> None:
        """A recorded snapshot: a pod of its parent's baseline that is gone now."""
        self._gone.append((self.id, namespace, uid))

    def _flush_rows(self) -> None:
        """executemany through the driver: SQLAlchemy's per-row parameter processing cost
        more than the database at 100k rows. Columns and UTC handling mirror schema.py."""
        if self._chunk:
            self._conn.exec_driver_sql(self._insert_rows, self._chunk)
            self._chunk = []

    def _flush_set(self, namespace: str) -> None:
        builder = self._sets.pop(namespace, None)
        if builder is None or not builder.uids:
            return
        part = self._parts.get(namespace, 0)
        self._parts[namespace] = part + 1
        self._conn.exec_driver_sql(self._insert_set, [(self.id, namespace, part, len(builder),
                                                       builder.pack())])

    def reset(self) -> None:
        """Drop everything written so far (the pod list restarted after a 410)."""
        self._conn.execute(delete(container_rows).where(container_rows.c.snapshot_id == self.id))
        self._conn.execute(delete(pod_sets).where(pod_sets.c.snapshot_id == self.id))
        self._start()

    def close(self, taken_at: datetime | None = None) -> None:
        """Flush and finalise the header (counts, and the time the listing ended)."""
        self._flush_rows()
        for namespace in list(self._sets):
            self._flush_set(namespace)
        if self._gone:
            self._conn.exec_driver_sql(_insert_sql(self._conn, "snapshot_gone", (
                "snapshot_id", "namespace", "pod_uid")), self._gone)
            self._gone = []
        if taken_at is not None:
            self.taken_at = taken_at
        self._conn.execute(snapshots.update().where(snapshots.c.id == self.id).values(
            pods=self.pods, containers=self.containers, taken_at=self.taken_at))

    @property
    def info(self) -> SnapshotInfo:
        cluster, purpose, namespaces = self._header
        parent = self._parent
        return SnapshotInfo(self.id, cluster, self.taken_at, purpose, namespaces, self.pods,
                            self.containers, KIND_LISTED if parent is None else KIND_RECORDED,
                            None if parent is None else parent.id, self._mark)


def _insert_sql(conn: Connection, table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" if conn.dialect.paramstyle == "qmark" else "%s" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


class Store:
    """The database facade (SQLite in WAL mode, or PostgreSQL): snapshots here, the
    recorder's crash rows in `crashes`, its restart counts and pending captures in
    `ledger`, reads of that history in `history`, digest slots in `slots`. Callers above
    bot.store go through it and never build table classes from the engine themselves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.crashes = CrashStore(engine)
        self.ledger = RestartLedger(engine)  # restart counts and pending captures
        self.history = CrashHistory(engine)
        self.threads = ThreadStore(engine)  # Slack alert threads (bot.store.threads)
        self.silences = SilenceStore(engine)  # silences of alerts (bot.store.silences)
        self.overview = Overview(engine)  # the App Home tab's reads (bot.store.overview)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and migrate; failures become a StoreError naming the database."""
        try:
            # a database that does not answer fails in seconds, not at the OS's TCP timeout
            engine = create_engine(url, pool_pre_ping=True, connect_args=(
                {"connect_timeout": 5} if url.startswith("postgresql")
                # SQLite has one writer: wait for it (the recorder's stages write at once)
                else {"timeout": 30} if url.startswith("sqlite") else {}))
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"DATABASE_URL {_safe_url(url)} is not usable: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            migrate(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise store_error(f"cannot open database {_safe_url(url)}", exc) from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def slots(self) -> DigestSlots:
        """The digest slot table (claims that make each digest post exactly once)."""
        return DigestSlots(self.engine)

    # ---- writes ---------------------------------------------------------------------
    @contextmanager
    def snapshot_writer(self, cluster: str, taken_at: datetime, purpose: str,
                        namespaces: Sequence[str], *, parent: SnapshotInfo | None = None,
                        recorder_mark: str | None = None) -> Iterator[SnapshotWriter]:
        """A snapshot written in one transaction while rows stream in; committed when the
        block ends normally, rolled back (previous baseline intact) when it raises.

        With `parent`, a *recorded* snapshot: only the pods that changed since `parent`
        (their pod sets and rows replace the parent's) and the pods gone since; a
        baseline read from it is its parent's with those changes (`load_baseline`).
        `recorder_mark`: where the flight recorder's record of changes stood before it."""
        try:
            with self.engine.begin() as conn:
                key = conn.execute(snapshots.insert().values(
                    cluster=cluster, taken_at=taken_at, purpose=purpose,
                    namespaces=",".join(sorted(namespaces)), pods=0, containers=0,
                    kind=KIND_LISTED if parent is None else KIND_RECORDED,
                    parent_id=None if parent is None else parent.id,
                    recorder_mark=recorder_mark)).inserted_primary_key
                if key is None:
                    raise StoreError("the database returned no id for the new snapshot")
                writer = SnapshotWriter(conn, int(key[0]), cluster, taken_at, purpose,
                                        tuple(sorted(namespaces)), parent, recorder_mark)
                yield writer
                writer.close()
        except SQLAlchemyError as exc:
            raise store_error("could not record the snapshot", exc) from None

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
                doomed = set(conn.execute(old).scalars().all())
                # a recorded snapshot stands on its parents: those of any kept one stay
                parents: dict[int, int] = {
                    sid: pid for sid, pid in conn.execute(select(
                        snapshots.c.id, snapshots.c.parent_id).where(
                        snapshots.c.cluster == cluster, snapshots.c.parent_id.isnot(None)))}
                stack = [sid for sid in parents if sid not in doomed]
                while stack:
                    parent = parents.get(stack.pop())
                    if parent is not None and parent in doomed:
                        doomed.discard(parent)
                        stack.append(parent)
                ids = sorted(doomed)
                if ids:
                    conn.execute(delete(container_rows).where(
                        container_rows.c.snapshot_id.in_(ids)))
                    conn.execute(delete(pod_sets).where(pod_sets.c.snapshot_id.in_(ids)))
                    conn.execute(delete(snapshot_gone).where(
                        snapshot_gone.c.snapshot_id.in_(ids)))
                    conn.execute(delete(snapshots).where(snapshots.c.id.in_(ids)))
                return len(ids)
        except SQLAlchemyError as exc:
            raise store_error("could not prune old snapshots", exc) from None

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
        return self._one_snapshot(query.order_by(snapshots.c.taken_at.desc(),
                                                 snapshots.c.id.desc()).limit(1))

    def _one_snapshot(self, query: Select[Any]) -> SnapshotInfo | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except SQLAlchemyError as exc:
            raise store_error("could not read snapshots", exc) from None
        return None if row is None else _snapshot_info(row)

    def digest_rows(self, channel: str, message_ts: str) -> PostedDigest | None:
        """The digest posted in `channel` as message `message_ts`, with the headline of
        each of its rows (what the digest's row buttons may act on), or None when no
        posted digest slot is that message."""
        d, w = digest_slots.c, workload_diagnoses.c
        try:
            with self.engine.connect() as conn:
                slot = conn.execute(select(d.cluster, d.snapshot_id).where(
                    d.channel == channel, d.message_ts == message_ts, d.state == POSTED,
                )).first()
                if slot is None or slot.snapshot_id is None:
                    return None
                rows = conn.execute(select(
                    w.namespace, w.workload_kind, w.workload_name, w.fingerprint, w.category,
                ).where(w.snapshot_id == slot.snapshot_id)).all()
        except SQLAlchemyError as exc:
            raise store_error("could not read the posted digest", exc) from None
        return PostedDigest(slot.cluster, tuple(
            PostedRow(r.namespace, r.workload_kind, r.workload_name, r.fingerprint,
                      r.category) for r in rows))

    def channel_digest(self, cluster: str, channel: str) -> SnapshotInfo | None:
        """The snapshot of `channel`'s latest posted digest slot of `cluster`, or None:
        where a team channel's next digest window starts (each channel its own)."""
        s, d = snapshots.c, digest_slots.c
        query = (select(snapshots).join(digest_slots, d.snapshot_id == s.id)
                 .where(d.cluster == cluster, d.channel == channel, d.state == POSTED,
                        s.purpose == PURPOSE_DIGEST)
                 .order_by(d.scheduled_at.desc(), s.id.desc()).limit(1))
        return self._one_snapshot(query)

    def _container_records(self, conn: Connection, info: SnapshotInfo,
                           namespaces: Sequence[str] | None) -> Iterator[ContainerRecord]:
        """A snapshot's container rows with the columns deltas and vanished pods need
        (the last-termination columns stay behind)."""
        c = container_rows.c
        query = select(c.namespace, c.pod_uid, c.container, c.pod_name, c.container_kind,
                       c.workload_kind, c.workload_name, c.restarts).where(
                           c.snapshot_id == info.id)
        if namespaces:
            query = query.where(c.namespace.in_(list(namespaces)))
        for ns, uid, name, pod, ckind, wkind, wname, restarts in conn.execution_options(
                yield_per=_CHUNK).execute(query):
            yield ContainerRecord(
                namespace=intern(ns), pod_uid=uid, pod_name=pod, container=intern(name),
                restarts=restarts, workload_kind=intern(wkind), workload_name=intern(wname),
                container_kind=intern(ckind))

    def _pods(self, conn: Connection, info: SnapshotInfo,
              namespaces: Sequence[str] | None,
              only: Container[tuple[str, str]] | None = None
              ) -> dict[tuple[str, str], BaselinePod]:
        """Every pod of a snapshot (or those `only` names), from its packed pod sets."""
        query = select(pod_sets.c.namespace, pod_sets.c.data).where(
            pod_sets.c.snapshot_id == info.id)
        if namespaces:
            query = query.where(pod_sets.c.namespace.in_(list(namespaces)))
        refs: dict[tuple[str, str], WorkloadRef] = {}
        pods: dict[tuple[str, str], BaselinePod] = {}
        for raw_ns, data in conn.execution_options(yield_per=16).execute(query):
            ns = intern(raw_ns)
            unpacked = unpack(data)
            workloads = [refs.get(w) or refs.setdefault(w, WorkloadRef(*w))
                         for w in unpacked.workloads]
            sets = unpacked.container_sets
            pods.update({(ns, uid): BaselinePod(name, workloads[w], sets[c])
                         for uid, name, w, c in zip(unpacked.uids, unpacked.names,
                                                    unpacked.pod_workload,
                                                    unpacked.pod_containers, strict=True)
                         if only is None or (ns, uid) in only})
        return pods

    def snapshot_namespaces(self, info: SnapshotInfo) -> list[str]:
        """The namespaces that had pods in a snapshot (or in its chain, when recorded)."""
        try:
            with self.engine.connect() as conn:
                ids = [step.id for step in self._chain(conn, info)]
                query = select(pod_sets.c.namespace).where(
                    pod_sets.c.snapshot_id.in_(ids)).distinct()
                return sorted(conn.execute(query).scalars())
        except SQLAlchemyError as exc:
            raise store_error("could not read the baseline snapshot", exc) from None

    def listed_root(self, info: SnapshotInfo) -> SnapshotInfo:
        """The listed snapshot a recorded one stands on (itself when it is listed)."""
        try:
            with self.engine.connect() as conn:
                return self._chain(conn, info)[0]
        except SQLAlchemyError as exc:
            raise store_error("could not read the baseline snapshot", exc) from None

    def _chain(self, conn: Connection, info: SnapshotInfo) -> list[SnapshotInfo]:
        """`info` and the snapshots it stands on, the listed one first."""
        chain = [info]
        while chain[-1].kind == KIND_RECORDED:
            row = conn.execute(select(snapshots).where(
                snapshots.c.id == chain[-1].parent_id)).mappings().first()
            if row is None:
                raise StoreError(f"snapshot {chain[-1].id} stands on snapshot "
                                 f"{chain[-1].parent_id}, which is gone")
            chain.append(_snapshot_info(row))
        return chain[::-1]

    def _gone_pods(self, conn: Connection, info: SnapshotInfo,
                   namespaces: Sequence[str] | None) -> list[tuple[str, str]]:
        g = snapshot_gone.c
        query = select(g.namespace, g.pod_uid).where(g.snapshot_id == info.id)
        if namespaces:
            query = query.where(g.namespace.in_(list(namespaces)))
        return [(ns, uid) for ns, uid in conn.execute(query)]

    def load_baseline(self, info: SnapshotInfo,
                      namespaces: Sequence[str] | None = None, *,
                      only: Collection[tuple[str, str]] | None = None) -> Baseline:
        """A snapshot's pods and container rows (restricted to `namespaces`, or to the
        (namespace, uid) pods `only` names). A recorded snapshot is read as the listed one
        it stands on with each later change applied in order (a changed pod's set and rows
        replace the earlier ones; gone pods go), and says that pods created since that list
        and absent had no restart (`born_after`)."""
        if only is not None:
            namespaces = sorted({ns for ns, _ in only})
            if not namespaces:
                return Baseline(taken_at=info.taken_at)
        try:
            with self.engine.connect() as conn:
                chain = self._chain(conn, info)
                root = chain[0]
                containers = {r.key: r for r in self._container_records(conn, root,
                                                                        namespaces)
                              if only is None or (r.namespace, r.pod_uid) in only}
                pods = self._pods(conn, root, namespaces, only)
                for step in chain[1:]:
                    changed = self._pods(conn, step, namespaces, only)
                    dropped = set(changed) | set(self._gone_pods(conn, step, namespaces))
                    if dropped:
                        containers = {k: r for k, r in containers.items()
                                      if (k[0], k[1]) not in dropped}
                        for key in dropped:
                            pods.pop(key, None)
                    pods.update(changed)
                    containers.update((r.key, r) for r in self._container_records(
                        conn, step, namespaces)
                        if only is None or (r.namespace, r.pod_uid) in only)
                return Baseline(taken_at=info.taken_at, containers=containers, pods=pods,
                                born_after=root.taken_at if len(chain) > 1 else None)
        except (SQLAlchemyError, ValueError) as exc:
            raise store_error("could not read the baseline snapshot", exc) from None

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
            raise store_error("could not record diagnoses", exc) from None

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
            raise store_error("could not read diagnosis history", exc) from None

    def workload_history(
        self, cluster: str, namespace: str, kind: str, name: str, since: datetime,
        purpose: str | None = PURPOSE_DIGEST, also: int | None = None,
    ) -> list[tuple[datetime, int]]:
        """(snapshot time, restartCount sum) of one workload per snapshot since `since`
        in which it had pods; posted digest snapshots only by default, so consecutive points
        are a day apart, plus snapshot `also` (the digest being posted, still pending).
        Snapshots where it had no restarted container count 0 (from pod_sets). A recorded
        snapshot holds only what changed: one without the workload repeats its last point."""
        c, s = container_rows.c, snapshots.c
        chosen = s.purpose == purpose if purpose else s.purpose.isnot(None)
        if also is not None:
            chosen = chosen | (s.id == also)
        taken = (select(s.id, s.taken_at, s.kind)
                 .where(s.cluster == cluster, s.taken_at >= since, chosen)
                 .order_by(s.taken_at, s.id))
        sums = (select(c.snapshot_id, func.sum(c.restarts))
                .join(snapshots, s.id == c.snapshot_id)
                .where(s.cluster == cluster, s.taken_at >= since, chosen,
                       c.namespace == namespace, c.workload_kind == kind,
                       c.workload_name == name)
                .group_by(c.snapshot_id))
        try:
            with self.engine.connect() as conn:
                points = list(conn.execute(taken))
                totals = {row[0]: int(row[1]) for row in conn.execute(sums)}
                quiet = [sid for sid, _, _ in points if sid not in totals]
                present = set(totals)
                if quiet:
                    sets = select(pod_sets.c.snapshot_id, pod_sets.c.data).where(
                        pod_sets.c.snapshot_id.in_(quiet), pod_sets.c.namespace == namespace)
                    present |= {sid for sid, data in conn.execute(sets)
                                if (kind, name) in workloads_of(data)}
        except (SQLAlchemyError, ValueError) as exc:
            raise store_error("could not read workload history", exc) from None
        result: list[tuple[datetime, int]] = []
        for sid, at, snapshot_kind in points:
            if sid in present:
                result.append((at, totals.get(sid, 0)))
            elif snapshot_kind == KIND_RECORDED and result:
                result.append((at, result[-1][1]))
        return result

