"""Versioned schema migrations. Each step is frozen once released: add a new step to
change the schema, never edit an old one. `migrate()` applies the missing steps in order,
each in its own transaction, and records them in `schema_migrations`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import groupby

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from bot.store.podsets import PodSetBuilder
from bot.store.schema import UTCDateTime, schema_migrations


def _v1_snapshots(conn: Connection) -> None:
    """Snapshots and their per-container rows."""
    md = MetaData()
    Table(
        "snapshots", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("cluster", String(253), nullable=False),
        Column("taken_at", UTCDateTime, nullable=False),
        Column("purpose", String(16), nullable=False),
        Column("namespaces", String, nullable=False),
        Column("pods", Integer, nullable=False),
        Column("containers", Integer, nullable=False),
        Index("ix_snapshots_cluster_taken", "cluster", "taken_at"),
    )
    Table(
        "container_rows", md,
        Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
               primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("pod_uid", String(64), primary_key=True),
        Column("container", String(253), primary_key=True),
        Column("pod_name", String(253), nullable=False),
        Column("container_kind", String(16), nullable=False),
        Column("workload_kind", String(64), nullable=False),
        Column("workload_name", String(253), nullable=False),
        Column("restarts", Integer, nullable=False),
        Column("last_exit_code", Integer),
        Column("last_reason", String(128)),
        Column("finished_at", UTCDateTime),
    )
    md.create_all(conn)


def _v2_diagnoses(conn: Connection) -> None:
    """The diagnosis of each shown workload's latest crash, per snapshot (for "same crash
    as yesterday ×N")."""
    md = MetaData()
    Table("snapshots", md, Column("id", Integer, primary_key=True))  # FK target, exists
    diagnoses = Table(
        "workload_diagnoses", md,
        Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
               primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("workload_kind", String(64), primary_key=True),
        Column("workload_name", String(253), primary_key=True),
        Column("fingerprint", String(32)),
        Column("category", String(64), nullable=False),
        Column("summary", String, nullable=False),
    )
    md.create_all(conn, tables=[diagnoses])


_V3_PART_PODS = 5000


def _v3_lean_snapshots(conn: Connection) -> None:
    """Lean snapshots: every pod packed per namespace into `pod_sets`; `container_rows`
    keeps only containers that restarted or have a last termination. Existing snapshots
    are converted one (snapshot, namespace) at a time, so memory stays flat."""
    md = MetaData()
    Table("snapshots", md, Column("id", Integer, primary_key=True))  # FK target, exists
    sets = Table(
        "pod_sets", md,
        Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
               primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("part", Integer, primary_key=True, autoincrement=False),
        Column("pods", Integer, nullable=False),
        Column("data", LargeBinary, nullable=False),
    )
    md.create_all(conn, tables=[sets])
    rows = Table("container_rows", MetaData(), autoload_with=conn)
    c = rows.c
    scopes = conn.execute(select(c.snapshot_id, c.namespace).distinct()
                          .order_by(c.snapshot_id, c.namespace)).all()
    for snapshot_id, namespace in scopes:
        pods = conn.execute(
            select(c.pod_uid, c.pod_name, c.workload_kind, c.workload_name, c.container)
            .where(c.snapshot_id == snapshot_id, c.namespace == namespace)
            .order_by(c.pod_uid, c.container)).all()
        builder, part = PodSetBuilder(), 0
        for uid, group in groupby(pods, key=lambda row: row[0]):
            containers = list(group)
            _, name, kind, workload, _ = containers[0]
            builder.add(uid, name, (kind, workload), tuple(row[4] for row in containers))
            if len(builder.uids) >= _V3_PART_PODS:
                conn.execute(sets.insert().values(snapshot_id=snapshot_id, namespace=namespace,
                                                  part=part, pods=len(builder),
                                                  data=builder.pack()))
                builder, part = PodSetBuilder(), part + 1
        if builder.uids:
            conn.execute(sets.insert().values(snapshot_id=snapshot_id, namespace=namespace,
                                              part=part, pods=len(builder), data=builder.pack()))
    # Keep only containers that restarted or have a last termination, in a table without
    # SQLite's rowid (its primary key is the row's identity: a third less space per row).
    lean = Table(
        "container_rows_v3", md,
        Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
               primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("pod_uid", String(64), primary_key=True),
        Column("container", String(253), primary_key=True),
        Column("pod_name", String(253), nullable=False),
        Column("container_kind", String(16), nullable=False),
        Column("workload_kind", String(64), nullable=False),
        Column("workload_name", String(253), nullable=False),
        Column("restarts", Integer, nullable=False),
        Column("last_exit_code", Integer),
        Column("last_reason", String(128)),
        Column("finished_at", UTCDateTime),
        sqlite_with_rowid=False,
    )
    md.create_all(conn, tables=[lean])
    columns = [col.name for col in lean.columns]
    conn.execute(lean.insert().from_select(columns, select(*(c[name] for name in columns))
                                           .where((c.restarts > 0)
                                                  | c.last_exit_code.isnot(None))))
    rows.drop(conn)
    conn.execute(text("ALTER TABLE container_rows_v3 RENAME TO container_rows"))


def _v4_crashes(conn: Connection) -> None:
    """The flight recorder: every recorded crash, the fingerprints each workload has
    shown, and the recorder's own bookkeeping (heartbeat, last prune)."""
    md = MetaData()
    Table(
        "crashes", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("cluster", String(253), nullable=False),
        Column("namespace", String(253), nullable=False),
        Column("pod_name", String(253), nullable=False),
        Column("pod_uid", String(64), nullable=False),
        Column("container", String(253), nullable=False),
        Column("container_kind", String(16), nullable=False),
        Column("workload_kind", String(64), nullable=False),
        Column("workload_name", String(253), nullable=False),
        Column("restart_count", Integer, nullable=False),
        Column("restarts", Integer, nullable=False),
        Column("exit_code", Integer),
        Column("signal", Integer),
        Column("reason", String(128)),
        Column("message", Text),
        Column("started_at", UTCDateTime),
        Column("finished_at", UTCDateTime),
        Column("recorded_at", UTCDateTime, nullable=False),
        Column("node", String(253)),
        Column("image", String(512)),
        Column("category", String(64), nullable=False),
        Column("fingerprint", String(32)),
        Column("signature", Text, nullable=False),
        Column("summary", Text, nullable=False),
        Column("capture", String(16), nullable=False),
        Column("log", LargeBinary),
        Column("log_bytes", Integer, nullable=False),
        Column("redactions", Integer, nullable=False),
        Column("events", Text, nullable=False),
        Column("replica_set", String(253)),
        Column("template_hash", String(64)),
        Column("changed_at", UTCDateTime),
        Column("is_new", Boolean, nullable=False),
        UniqueConstraint("cluster", "pod_uid", "container", "restart_count",
                         name="uq_crashes_restart"),
        Index("ix_crashes_workload", "cluster", "namespace", "workload_kind", "workload_name",
              "finished_at"),
        Index("ix_crashes_pod", "cluster", "namespace", "pod_name"),
        Index("ix_crashes_finished", "cluster", "finished_at"),
    )
    Table(
        "crash_fingerprints", md,
        Column("cluster", String(253), primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("workload_kind", String(64), primary_key=True),
        Column("workload_name", String(253), primary_key=True),
        Column("identity", String(64), primary_key=True),
        Column("first_seen_at", UTCDateTime, nullable=False),
        Column("last_seen_at", UTCDateTime, nullable=False),
        Column("first_crash_id", Integer),
    )
    Table(
        "recorder_state", md,
        Column("cluster", String(253), primary_key=True),
        Column("first_started_at", UTCDateTime, nullable=False),
        Column("started_at", UTCDateTime, nullable=False),
        Column("seen_at", UTCDateTime, nullable=False),
        Column("pruned_at", UTCDateTime),
    )
    md.create_all(conn)


def _v5_digest_slots(conn: Connection) -> None:
    """Digest slots claimed before posting (exactly once per cluster, channel and
    scheduled time), and when each channel's schedule began (missed slots are caught up
    only after it)."""
    md = MetaData()
    Table(
        "digest_slots", md,
        Column("cluster", String(253), primary_key=True),
        Column("channel", String(64), primary_key=True),
        Column("scheduled_at", UTCDateTime, primary_key=True),
        Column("state", String(16), nullable=False),
        Column("claimed_by", String(253), nullable=False),
        Column("claimed_at", UTCDateTime, nullable=False),
        Column("first_claimed_at", UTCDateTime, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("snapshot_id", Integer),
        Column("message_ts", String(32)),
        Column("posted_at", UTCDateTime),
        Column("error", String),
    )
    Table(
        "digest_schedules", md,
        Column("cluster", String(253), primary_key=True),
        Column("channel", String(64), primary_key=True),
        Column("since", UTCDateTime, nullable=False),
    )
    md.create_all(conn)


def _v9_alert_threads(conn: Connection) -> None:
    """A Slack thread per crash (cluster, channel, workload, container, identity): its
    parent message, the restarts counted since it opened, the last reply, who is on it."""
    md = MetaData()
    Table(
        "alert_threads", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("cluster", String(253), nullable=False),
        Column("channel", String(64), nullable=False),
        Column("namespace", String(253), nullable=False),
        Column("workload_kind", String(64), nullable=False),
        Column("workload_name", String(253), nullable=False),
        Column("container", String(253), nullable=False),
        Column("identity", String(64), nullable=False),
        Column("ts", String(32), nullable=False),
        Column("opened_at", UTCDateTime, nullable=False),
        Column("count", Integer, nullable=False),
        Column("last_at", UTCDateTime, nullable=False),
        Column("last_crash_id", Integer, nullable=False),
        Column("replied_at", UTCDateTime),
        Column("replied_count", Integer, nullable=False),
        Column("acked_by", String(64)),
        Column("acked_at", UTCDateTime),
        UniqueConstraint("cluster", "channel", "namespace", "workload_kind", "workload_name",
                         "container", "identity", name="uq_alert_threads_crash"),
        Index("ix_alert_threads_workload", "cluster", "namespace", "workload_kind",
              "workload_name"),
    )
    md.create_all(conn)


def _v10_silences(conn: Connection) -> None:
    """Silences set from Slack or the CLI: who, when, until, why, where (for the audit),
    and who lifted one early and why."""
    md = MetaData()
    Table(
        "silences", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("cluster", String(253), nullable=False),
        Column("namespace", String(253), nullable=False),
        Column("workload_kind", String(64), nullable=False),
        Column("workload_name", String(253), nullable=False),
        Column("identity", String(64)),
        Column("created_by", String(253), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("until", UTCDateTime, nullable=False),
        Column("reason", Text, nullable=False),
        Column("channel", String(64)),
        Column("thread_ts", String(32)),
        Column("lifted_at", UTCDateTime),
        Column("lifted_by", String(253)),
        Column("lift_reason", Text),
        Index("ix_silences_workload", "cluster", "namespace", "workload_kind",
              "workload_name"),
    )
    md.create_all(conn)


def _v6_restart_ledger(conn: Connection) -> None:
    """The restart ledger: the restartCount last seen per (cluster, pod uid, container), the
    scopes the recorder has listed, restarts detected whose crash row is not stored yet
    (the durable capture queue), and which fingerprints were crashing at install.

    An upgraded database starts its ledger from the highest restartCount recorded per
    container, so restarts while the upgrade ran are counted for those containers."""
    md = MetaData()
    Table(
        "container_counts", md,
        Column("cluster", String(253), primary_key=True),
        Column("pod_uid", String(64), primary_key=True),
        Column("container", String(253), primary_key=True),
        Column("namespace", String(253), nullable=False),
        Column("restart_count", Integer, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Index("ix_container_counts_namespace", "cluster", "namespace"),
    )
    Table(
        "recorder_scopes", md,
        Column("cluster", String(253), primary_key=True),
        Column("scope", String(253), primary_key=True),
        Column("first_listed_at", UTCDateTime, nullable=False),
    )
    Table(
        "pending_captures", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("cluster", String(253), nullable=False),
        Column("pod_uid", String(64), nullable=False),
        Column("container", String(253), nullable=False),
        Column("restart_count", Integer, nullable=False),
        Column("restarts", Integer, nullable=False),
        Column("detected_at", UTCDateTime, nullable=False),
        Column("job", LargeBinary, nullable=False),
        UniqueConstraint("cluster", "pod_uid", "container", "restart_count",
                         name="uq_pending_captures_restart"),
    )
    md.create_all(conn)
    conn.execute(text("ALTER TABLE crash_fingerprints ADD COLUMN at_install BOOLEAN "
                      "NOT NULL DEFAULT FALSE"))
    conn.execute(text(
        "INSERT INTO container_counts (cluster, pod_uid, container, namespace, restart_count,"
        " updated_at) SELECT cluster, pod_uid, container, MIN(namespace), MAX(restart_count),"
        " MAX(recorded_at) FROM crashes GROUP BY cluster, pod_uid, container"))


def _v11_recorded_snapshots(conn: Connection) -> None:
    """Snapshots a digest counted from the flight recorder: `kind` ('listed': every pod,
    as before; 'recorded': only the pods that changed, on top of `parent_id`, the snapshot
    its window started at), `recorder_mark` (where the recorder's record of changes stood
    when the snapshot began) and, per recorded snapshot, the pods gone since its parent."""
    conn.execute(text("ALTER TABLE snapshots ADD COLUMN kind VARCHAR(16) NOT NULL "
                      "DEFAULT 'listed'"))
    conn.execute(text("ALTER TABLE snapshots ADD COLUMN parent_id INTEGER"))
    conn.execute(text("ALTER TABLE snapshots ADD COLUMN recorder_mark VARCHAR(64)"))
    md = MetaData()
    Table("snapshots", md, Column("id", Integer, primary_key=True))
    Table(
        "snapshot_gone", md,
        Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
               primary_key=True),
        Column("namespace", String(253), primary_key=True),
        Column("pod_uid", String(64), primary_key=True),
        sqlite_with_rowid=False,
    )
    md.tables["snapshot_gone"].create(conn)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_snapshots),
    (2, _v2_diagnoses),
    (3, _v3_lean_snapshots),
    (4, _v4_crashes),
    (5, _v5_digest_slots),
    (6, _v6_restart_ledger),
    (9, _v9_alert_threads),
    (10, _v10_silences),
    (11, _v11_recorded_snapshots),
]


def current_version(engine: Engine) -> int:
    """Highest applied migration (0 for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return 0
        versions = conn.execute(select(schema_migrations.c.version)).scalars().all()
        return max(versions, default=0)


def applied_versions(engine: Engine) -> set[int]:
    """Every migration recorded as applied."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return set()
        return set(conn.execute(select(schema_migrations.c.version)).scalars().all())


_MIGRATION_LOCK = 7_161_523  # any constant; the key of the advisory lock


def migrate(engine: Engine, up_to: int | None = None) -> int:
    """Apply every missing migration in order (up to version `up_to`, for tests that
    build an older database); returns the resulting version.

    Versions are handed out to parallel work, so one may land after a higher one was
    applied somewhere: each missing step runs, not only those above the highest."""
    with _migrating(engine):
        with engine.begin() as conn:
            schema_migrations.create(conn, checkfirst=True)
        applied = applied_versions(engine)
        for number, step in MIGRATIONS:
            if number in applied or (up_to is not None and number > up_to):
                continue
            with engine.begin() as conn:
                step(conn)
                conn.execute(schema_migrations.insert().values(
                    version=number, applied_at=datetime.now(UTC)))
            applied.add(number)
    return max(applied, default=0)


@contextmanager
def _migrating(engine: Engine) -> Iterator[None]:
    """One migrator at a time on PostgreSQL (replicas starting together on a fresh database
    would otherwise race to create the same tables); a session advisory lock."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
            conn.commit()
