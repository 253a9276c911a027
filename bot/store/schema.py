"""Current table definitions used by queries. Changes go through a new migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


PURPOSE_DIGEST = "digest"  # a posted digest's patrol: the next digest's baseline
PURPOSE_DIGEST_PENDING = "digest-pending"  # a digest's patrol whose post is not confirmed
PURPOSE_ADHOC = "adhoc"
KIND_LISTED = "listed"  # a snapshot of every pod listed
KIND_RECORDED = "recorded"  # only the pods that changed since its parent (the recorder's)

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)

snapshots = Table(
    "snapshots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster", String(253), nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("purpose", String(16), nullable=False),  # PURPOSE_* below
    Column("namespaces", String, nullable=False),  # comma list; "" = all namespaces
    Column("pods", Integer, nullable=False),
    Column("containers", Integer, nullable=False),
    # migration 11: a digest counted from the flight recorder writes only what changed
    Column("kind", String(16), nullable=False, server_default=KIND_LISTED),
    Column("parent_id", Integer),  # a recorded snapshot's baseline (its changes are on it)
    Column("recorder_mark", String(64)),  # the recorder's record of changes at its start
    Index("ix_snapshots_cluster_taken", "cluster", "taken_at"),
)

snapshot_gone = Table(  # migration 11: pods gone since a recorded snapshot's parent
    "snapshot_gone", metadata,
    Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
           primary_key=True),
    Column("namespace", String(253), primary_key=True),
    Column("pod_uid", String(64), primary_key=True),
    sqlite_with_rowid=False,
)

workload_diagnoses = Table(
    "workload_diagnoses", metadata,
    Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
           primary_key=True),
    Column("namespace", String(253), primary_key=True),
    Column("workload_kind", String(64), primary_key=True),
    Column("workload_name", String(253), primary_key=True),
    Column("fingerprint", String(32)),
    Column("category", String(64), nullable=False),
    Column("summary", String, nullable=False),
)

# Rows only for containers that restarted or have a last termination (migration 3);
# pod_sets proves the other containers existed with zero restarts.
container_rows = Table(
    "container_rows", metadata,
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

# Every pod of a snapshot, packed per namespace (bot/store/podsets.py); a namespace with
# many pods, or one that arrived out of order, takes several parts.
pod_sets = Table(
    "pod_sets", metadata,
    Column("snapshot_id", Integer, ForeignKey("snapshots.id", ondelete="CASCADE"),
           primary_key=True),
    Column("namespace", String(253), primary_key=True),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("pods", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# ---- the flight recorder (migration 4) ---------------------------------------------------
crashes = Table(
    "crashes", metadata,
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
    Column("log", LargeBinary),  # zlib-compressed, redacted previous-log tail
    Column("log_bytes", Integer, nullable=False),
    Column("redactions", Integer, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of {type, reason, message, count}
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

crash_fingerprints = Table(
    "crash_fingerprints", metadata,
    Column("cluster", String(253), primary_key=True),
    Column("namespace", String(253), primary_key=True),
    Column("workload_kind", String(64), primary_key=True),
    Column("workload_name", String(253), primary_key=True),
    Column("identity", String(64), primary_key=True),  # fingerprint, else category
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("first_crash_id", Integer),
    Column("at_install", Boolean, nullable=False, default=False),  # seeded on first list
)

recorder_state = Table(
    "recorder_state", metadata,
    Column("cluster", String(253), primary_key=True),
    Column("first_started_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("pruned_at", UTCDateTime),
)

container_counts = Table(  # the restart ledger: restartCount last seen per container
    "container_counts", metadata,
    Column("cluster", String(253), primary_key=True),
    Column("pod_uid", String(64), primary_key=True),
    Column("container", String(253), primary_key=True),
    Column("namespace", String(253), nullable=False),
    Column("restart_count", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_container_counts_namespace", "cluster", "namespace"),
)

recorder_scopes = Table(  # scopes listed at least once ("" = all namespaces)
    "recorder_scopes", metadata,
    Column("cluster", String(253), primary_key=True),
    Column("scope", String(253), primary_key=True),
    Column("first_listed_at", UTCDateTime, nullable=False),
)

pending_captures = Table(  # restarts detected and counted whose crash row is not stored yet
    "pending_captures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster", String(253), nullable=False),
    Column("pod_uid", String(64), nullable=False),
    Column("container", String(253), nullable=False),
    Column("restart_count", Integer, nullable=False),
    Column("restarts", Integer, nullable=False),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("job", LargeBinary, nullable=False),  # the detection, msgspec JSON
    UniqueConstraint("cluster", "pod_uid", "container", "restart_count",
                     name="uq_pending_captures_restart"),
)

digest_slots = Table(
    "digest_slots", metadata,
    Column("cluster", String(253), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("scheduled_at", UTCDateTime, primary_key=True),
    Column("state", String(16), nullable=False),  # claimed | posted | failed | superseded
    Column("claimed_by", String(253), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("first_claimed_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("snapshot_id", Integer),  # the digest's patrol (no FK: retention prunes it)
    Column("message_ts", String(32)),
    Column("posted_at", UTCDateTime),
    Column("error", String),
)

digest_schedules = Table(
    "digest_schedules", metadata,
    Column("cluster", String(253), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("since", UTCDateTime, nullable=False),
)

# ---- Slack alert threads and silences (migrations 9 and 10) ---------------------------
alert_threads = Table(
    "alert_threads", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster", String(253), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("workload_kind", String(64), nullable=False),
    Column("workload_name", String(253), nullable=False),
    Column("container", String(253), nullable=False),
    Column("identity", String(64), nullable=False),  # fingerprint, else category label
    Column("ts", String(32), nullable=False),  # the parent message
    Column("opened_at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),  # restarts since it opened
    Column("last_at", UTCDateTime, nullable=False),
    Column("last_crash_id", Integer, nullable=False),  # no FK: retention prunes crashes
    Column("replied_at", UTCDateTime),
    Column("replied_count", Integer, nullable=False),
    Column("acked_by", String(64)),
    Column("acked_at", UTCDateTime),
    UniqueConstraint("cluster", "channel", "namespace", "workload_kind", "workload_name",
                     "container", "identity", name="uq_alert_threads_crash"),
    Index("ix_alert_threads_workload", "cluster", "namespace", "workload_kind",
          "workload_name"),
)

silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster", String(253), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("workload_kind", String(64), nullable=False),
    Column("workload_name", String(253), nullable=False),
    Column("identity", String(64)),  # NULL: the whole workload
    Column("created_by", String(253), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("channel", String(64)),
    Column("thread_ts", String(32)),
    Column("lifted_at", UTCDateTime),
    Column("lifted_by", String(253)),
    Column("lift_reason", Text),
    Index("ix_silences_workload", "cluster", "namespace", "workload_kind", "workload_name"),
)
