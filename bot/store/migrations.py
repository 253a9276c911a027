"""Versioned schema migrations. Each step is frozen once released: add a new step to
change the schema, never edit an old one. `migrate()` applies the missing steps in order,
each in its own transaction, and records them in `schema_migrations`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
)

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


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_snapshots),
    (2, _v2_diagnoses),
]


def current_version(engine: Engine) -> int:
    """Highest applied migration (0 for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return 0
        versions = conn.execute(select(schema_migrations.c.version)).scalars().all()
        return max(versions, default=0)


def migrate(engine: Engine) -> int:
    """Apply every missing migration; returns the resulting version."""
    with engine.begin() as conn:
        schema_migrations.create(conn, checkfirst=True)
    version = current_version(engine)
    for number, step in MIGRATIONS:
        if number <= version:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(schema_migrations.insert().values(
                version=number, applied_at=datetime.now(UTC)))
        version = number
    return version
