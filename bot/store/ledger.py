"""The restart ledger: what the recorder counts from, kept so that nothing is lost when it
stops, the database blinks or clocks disagree.

- `container_counts`: the restartCount last seen per (cluster, pod uid, container), for
  containers that have restarted. A restart is an increase of it, whenever it is observed;
  counts only ever go up (two recorders, a late commit), and no clock decides anything.
- `recorder_scopes`: the scopes (a namespace, or "" for all) the recorder has listed at
  least once. A pod with no row in a listed scope was born, or first restarted, while the
  recorder was away: all of its restarts are counted. In a scope never listed, what is
  crashing now is the install's baseline, not news.
- `pending_captures`: restarts detected and counted whose crash row is not stored yet —
  the durable capture queue. A detection is committed here together with its count, then
  its evidence is fetched; the crash row's insert deletes it (`CrashStore.record`). A
  recorder that starts again resumes what is pending. The job itself is opaque bytes here
  (the recorder's own encoding).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, case, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from bot.store.errors import store_error
from bot.store.schema import container_counts, pending_captures, recorder_scopes

ALL = ""  # the scope "all namespaces"
_CHUNK = 500  # rows per statement (SQLite's variable limit, PostgreSQL's packet size)


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the ledger knew when the recorder started: listed scopes and counts."""

    scopes: frozenset[str]
    counts: dict[tuple[str, str], int]  # (pod uid, container) -> restartCount
    namespaces: dict[str, str]  # pod uid -> namespace, for the pods with counts

    def listed(self, namespace: str) -> bool:
        """Was this namespace watched before (so a pod unknown to the ledger is new)?"""
        return ALL in self.scopes or namespace in self.scopes


@dataclass(frozen=True, slots=True)
class Pending:
    """A detected restart to describe: its key, how many restarts it stands for, the job."""

    pod_uid: str
    container: str
    restart_count: int
    restarts: int
    job: bytes
    id: int | None = None


@dataclass(slots=True)
class LedgerBatch:
    """Everything the recorder saw since its last commit, committed in one transaction."""

    counts: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # pod uids that no longer exist
    scopes: set[str] = field(default_factory=set)  # scopes whose first list is complete

    def count(self, namespace: str, uid: str, container: str, restart_count: int) -> None:
        key = (uid, container)
        before = self.counts.get(key)
        if before is None or before[1] < restart_count:
            self.counts[key] = (namespace, restart_count)

    def __bool__(self) -> bool:
        return bool(self.counts or self.pending or self.gone or self.scopes)

    def __len__(self) -> int:
        return len(self.counts) + len(self.pending) + len(self.gone) + len(self.scopes)


class RestartLedger:
    """The ledger's tables (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _dialect(self) -> Any:
        return postgresql if self.engine.dialect.name == "postgresql" else sqlite

    def baseline(self, cluster: str, scopes: Collection[str]) -> Baseline:
        """The listed scopes and the counts of `scopes` (namespaces, or [ALL])."""
        c = container_counts.c
        query = select(c.pod_uid, c.container, c.restart_count, c.namespace).where(
            c.cluster == cluster)
        if ALL not in scopes:
            query = query.where(c.namespace.in_(list(scopes)))
        try:
            with self.engine.connect() as conn:
                listed = conn.execute(select(recorder_scopes.c.scope).where(
                    recorder_scopes.c.cluster == cluster)).scalars().all()
                counts: dict[tuple[str, str], int] = {}
                namespaces: dict[str, str] = {}
                for uid, name, n, ns in conn.execute(query):
                    counts[(uid, name)] = int(n)
                    namespaces[uid] = ns
        except SQLAlchemyError as exc:
            raise store_error("could not read the restart ledger", exc) from None
        return Baseline(frozenset(listed), counts, namespaces)

    def commit(self, cluster: str, batch: LedgerBatch, now: datetime) -> list[Pending]:
        """Store a batch in one transaction: counts (never lowered), new pending captures,
        forgotten pods, listed scopes. Returns the pending captures it stored, with their
        ids (a capture already pending or recorded by another recorder is not returned)."""
        dialect = self._dialect()
        c = container_counts.c
        stored: list[Pending] = []
        try:
            with self.engine.begin() as conn:
                rows = [{"cluster": cluster, "pod_uid": uid, "container": name,
                         "namespace": ns, "restart_count": n, "updated_at": now}
                        for (uid, name), (ns, n) in batch.counts.items()]
                for i in range(0, len(rows), _CHUNK):
                    insert = dialect.insert(container_counts)
                    higher = insert.excluded.restart_count > c.restart_count
                    conn.execute(insert.on_conflict_do_update(
                        index_elements=[c.cluster, c.pod_uid, c.container],
                        set_={"restart_count": case((higher, insert.excluded.restart_count),
                                                    else_=c.restart_count),
                              "updated_at": insert.excluded.updated_at}),
                        rows[i:i + _CHUNK])
                gone = sorted(batch.gone)
                for i in range(0, len(gone), _CHUNK):
                    conn.execute(delete(container_counts).where(
                        c.cluster == cluster, c.pod_uid.in_(gone[i:i + _CHUNK])))
                for p in batch.pending:
                    new_id = conn.execute(dialect.insert(pending_captures).values(
                        cluster=cluster, pod_uid=p.pod_uid, container=p.container,
                        restart_count=p.restart_count, restarts=p.restarts, detected_at=now,
                        job=p.job).on_conflict_do_nothing().returning(
                        pending_captures.c.id)).scalar()
                    if new_id is not None:
                        stored.append(Pending(p.pod_uid, p.container, p.restart_count,
                                              p.restarts, p.job, int(new_id)))
                for scope in sorted(batch.scopes):
                    conn.execute(dialect.insert(recorder_scopes).values(
                        cluster=cluster, scope=scope, first_listed_at=now
                    ).on_conflict_do_nothing())
        except SQLAlchemyError as exc:
            raise store_error("could not record restarts", exc) from None
        return stored

    def pending(self, cluster: str) -> list[Pending]:
        """Captures detected but not stored yet (oldest first): what to resume."""
        query = _select_pending().where(pending_captures.c.cluster == cluster).order_by(
            pending_captures.c.id)
        try:
            with self.engine.connect() as conn:
                return [_pending(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read pending captures", exc) from None

    def pending_of(self, cluster: str, ids: Sequence[int]) -> list[Pending]:
        """These pending captures (oldest first); one no longer pending (stored meanwhile)
        is left out. The recorder keeps only the ids of the captures that wait long (the
        install's seeds) and reads their jobs back when it describes them."""
        p = pending_captures.c
        found: list[Pending] = []
        try:
            with self.engine.connect() as conn:
                for i in range(0, len(ids), _CHUNK):
                    query = _select_pending().where(
                        p.cluster == cluster, p.id.in_(list(ids[i:i + _CHUNK])))
                    found += [_pending(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise store_error("could not read pending captures", exc) from None
        return sorted(found, key=lambda x: x.id or 0)

    def counts(self, cluster: str,
               keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The ledger's counts of these (pod uid, container) keys."""
        c = container_counts.c
        found: dict[tuple[str, str], int] = {}
        try:
            with self.engine.connect() as conn:
                for i in range(0, len(keys), _CHUNK):
                    query = select(c.pod_uid, c.container, c.restart_count).where(
                        c.cluster == cluster,
                        tuple_(c.pod_uid, c.container).in_(keys[i:i + _CHUNK]))
                    found.update({(uid, name): int(n) for uid, name, n in conn.execute(query)})
        except SQLAlchemyError as exc:
            raise store_error("could not read the restart ledger", exc) from None
        return found


def _select_pending() -> Select[Any]:
    """The columns of a pending capture, in `_pending`'s order."""
    p = pending_captures.c
    return select(p.id, p.pod_uid, p.container, p.restart_count, p.restarts, p.job)


def _pending(row: Sequence[Any]) -> Pending:
    """A `Pending` from a row of `_select_pending()`."""
    i, uid, name, n, r, job = row
    return Pending(uid, name, int(n), int(r), bytes(job), int(i))
