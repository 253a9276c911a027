"""bot/store against SQLite and the machine's PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select

from bot.errors import StoreError
from bot.patrol.model import ContainerRecord
from bot.store import Store
from bot.store.migrations import MIGRATIONS, current_version, migrate
from bot.store.schema import container_rows
from bot.store.snapshots import PURPOSE_ADHOC, PURPOSE_DIGEST

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def rows(restarts: int, n: int = 3) -> list[ContainerRecord]:
    return [ContainerRecord("prod", f"uid-{i}", f"api-{i}", "app", restarts + i, "Deployment",
                            "api", last_exit_code=2, last_reason="Error",
                            finished_at=T0 - timedelta(hours=i)) for i in range(n)]


def test_migrations_are_versioned_and_idempotent(database_url: str) -> None:
    store = Store.open(database_url)
    assert current_version(store.engine) == MIGRATIONS[-1][0]
    assert migrate(store.engine) == MIGRATIONS[-1][0]
    tables = set(inspect(store.engine).get_table_names())
    assert {"schema_migrations", "snapshots", "container_rows"} <= tables
    store.close()


def test_snapshot_round_trip_keeps_times_aware(database_url: str) -> None:
    store = Store.open(database_url)
    info = store.record_snapshot("c1", T0, PURPOSE_DIGEST, ["prod"], rows(5))
    assert (info.pods, info.containers) == (3, 3)
    latest = store.latest_snapshot("c1")
    assert latest is not None and latest.taken_at == T0 and latest.namespaces == ("prod",)
    baseline = store.load_baseline(latest)
    record = baseline.containers[("prod", "uid-1", "app")]
    assert (record.restarts, record.pod_name, record.workload_name) == (6, "api-1", "api")
    assert baseline.taken_at == T0 and baseline.taken_at.tzinfo is not None
    with store.engine.connect() as conn:
        stored = conn.execute(select(container_rows.c.finished_at, container_rows.c.last_reason)
                              .where(container_rows.c.pod_uid == "uid-1")).one()
    assert stored.finished_at == T0 - timedelta(hours=1) and stored.finished_at.tzinfo
    assert stored.last_reason == "Error"
    assert store.latest_snapshot("other-cluster") is None
    store.close()


def test_a_failed_write_leaves_the_previous_baseline(database_url: str) -> None:
    store = Store.open(database_url)
    store.record_snapshot("c1", T0, PURPOSE_ADHOC, [], rows(5))
    duplicate = rows(9) + rows(9)[:1]  # same key twice: the insert fails mid-snapshot
    with pytest.raises(StoreError, match="could not record the snapshot"):
        store.record_snapshot("c1", T0 + timedelta(days=1), PURPOSE_ADHOC, [], duplicate)
    latest = store.latest_snapshot("c1")
    assert latest is not None and latest.taken_at == T0
    assert store.load_baseline(latest).containers[("prod", "uid-0", "app")].restarts == 5
    store.close()


def test_baseline_choices_digest_adhoc_and_since(database_url: str) -> None:
    store = Store.open(database_url)
    store.record_snapshot("c1", T0, PURPOSE_DIGEST, [], rows(1))
    store.record_snapshot("c1", T0 + timedelta(hours=6), PURPOSE_ADHOC, [], rows(2))
    store.record_snapshot("c1", T0 + timedelta(hours=12), PURPOSE_ADHOC, [], rows(3))
    latest = store.latest_snapshot("c1")
    digest = store.latest_snapshot("c1", purpose=PURPOSE_DIGEST)
    since = store.latest_snapshot("c1", at_or_before=T0 + timedelta(hours=7))
    assert latest is not None and latest.taken_at == T0 + timedelta(hours=12)
    assert digest is not None and digest.taken_at == T0
    assert since is not None and since.taken_at == T0 + timedelta(hours=6)
    store.close()


def test_baseline_can_be_restricted_to_namespaces(database_url: str) -> None:
    store = Store.open(database_url)
    mixed = [*rows(1), ContainerRecord("staging", "s-1", "web-1", "web", 4, "Deployment", "web")]
    info = store.record_snapshot("c1", T0, PURPOSE_ADHOC, [], mixed)
    assert set(k[0] for k in store.load_baseline(info, ["staging"]).containers) == {"staging"}
    store.close()


def test_prune_keeps_the_latest_digest(database_url: str) -> None:
    store = Store.open(database_url)
    store.record_snapshot("c1", T0, PURPOSE_DIGEST, [], rows(1))
    store.record_snapshot("c1", T0 + timedelta(hours=1), PURPOSE_ADHOC, [], rows(1))
    store.record_snapshot("c1", T0 + timedelta(days=40), PURPOSE_ADHOC, [], rows(1))
    assert store.prune("c1", keep_after=T0 + timedelta(days=30)) == 1
    assert store.latest_snapshot("c1", purpose=PURPOSE_DIGEST) is not None
    store.close()


def test_workload_history_sums_restarts_per_snapshot(database_url: str) -> None:
    store = Store.open(database_url)
    for day in range(3):
        store.record_snapshot("c1", T0 + timedelta(days=day), PURPOSE_DIGEST, [], rows(day * 10))
        store.record_snapshot("c1", T0 + timedelta(days=day, hours=5), PURPOSE_ADHOC, [],
                              rows(day * 10 + 4))
    history = store.workload_history("c1", "prod", "Deployment", "api", T0)
    assert [total for _, total in history] == [3, 33, 63]
    everything = store.workload_history("c1", "prod", "Deployment", "api", T0, purpose=None)
    assert [total for _, total in everything] == [3, 15, 33, 45, 63, 75]
    store.close()


def test_unusable_database_url_is_one_line(tmp_path: object) -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    assert "cannot open database" in str(err.value) and "secret" not in str(err.value)
