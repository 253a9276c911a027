"""bot/store against SQLite and the machine's PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select

from bot.errors import StoreError
from bot.patrol.deltas import DeltaBasis, delta_of, find_vanished
from bot.patrol.model import (
    Baseline,
    ContainerKind,
    ContainerObservation,
    ContainerRecord,
    PodObservation,
    QuietPod,
    Termination,
    WorkloadRef,
)
from bot.store import SnapshotInfo, Store
from bot.store.migrations import MIGRATIONS, current_version, migrate
from bot.store.schema import container_rows, pod_sets, snapshots
from bot.store.snapshots import PURPOSE_ADHOC, PURPOSE_DIGEST

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def as_pods(records: list[ContainerRecord]) -> list[PodObservation | QuietPod]:
    """The pods a patrol would have observed for these container rows (one per pod uid,
    in order): a QuietPod when none of its containers restarted or terminated."""
    grouped: dict[tuple[str, str], list[ContainerRecord]] = {}
    for r in records:
        grouped.setdefault((r.namespace, r.pod_uid), []).append(r)
    pods: list[PodObservation | QuietPod] = []
    for (ns, uid), rs in grouped.items():
        first = rs[0]
        workload = WorkloadRef(first.workload_kind, first.workload_name)
        if all(r.restarts == 0 and r.last_exit_code is None for r in rs):
            pods.append(QuietPod(ns, first.pod_name, uid, workload,
                                 tuple(r.container for r in rs)))
            continue
        pods.append(PodObservation(ns, first.pod_name, uid, workload, T0 - timedelta(days=9),
                                   tuple(ContainerObservation(
                                       r.container, r.restarts, ContainerKind(r.container_kind),
                                       Termination(r.last_exit_code, r.last_reason,
                                                   finished_at=r.finished_at)
                                       if r.last_exit_code is not None else None)
                                         for r in rs)))
    return pods


def record(store: Store, cluster: str, taken_at: datetime, purpose: str,
           namespaces: list[str], records: list[ContainerRecord]) -> SnapshotInfo:
    """A snapshot written the way a patrol writes it: pod by pod (`add_pod`)."""
    with store.snapshot_writer(cluster, taken_at, purpose, namespaces) as writer:
        for pod in as_pods(records):
            writer.add_pod(pod)
    return writer.info


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
    info = record(store, "c1", T0, PURPOSE_DIGEST, ["prod"], rows(5))
    assert (info.pods, info.containers) == (3, 3)
    latest = store.latest_snapshot("c1")
    assert latest is not None and latest.taken_at == T0 and latest.namespaces == ("prod",)
    baseline = store.load_baseline(latest)
    row = baseline.containers[("prod", "uid-1", "app")]
    assert (row.restarts, row.pod_name, row.workload_name) == (6, "api-1", "api")
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
    record(store, "c1", T0, PURPOSE_ADHOC, [], rows(5))
    duplicate = rows(9) + rows(9)[:1]  # same key twice: the insert fails mid-snapshot
    with pytest.raises(StoreError, match="could not record the snapshot"):
        record(store, "c1", T0 + timedelta(days=1), PURPOSE_ADHOC, [], duplicate)
    latest = store.latest_snapshot("c1")
    assert latest is not None and latest.taken_at == T0
    assert store.load_baseline(latest).containers[("prod", "uid-0", "app")].restarts == 5
    store.close()


def test_baseline_choices_digest_adhoc_and_since(database_url: str) -> None:
    store = Store.open(database_url)
    record(store, "c1", T0, PURPOSE_DIGEST, [], rows(1))
    record(store, "c1", T0 + timedelta(hours=6), PURPOSE_ADHOC, [], rows(2))
    record(store, "c1", T0 + timedelta(hours=12), PURPOSE_ADHOC, [], rows(3))
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
    info = record(store, "c1", T0, PURPOSE_ADHOC, [], mixed)
    assert set(k[0] for k in store.load_baseline(info, ["staging"]).containers) == {"staging"}
    store.close()


def test_prune_keeps_the_latest_digest(database_url: str) -> None:
    store = Store.open(database_url)
    record(store, "c1", T0, PURPOSE_DIGEST, [], rows(1))
    record(store, "c1", T0 + timedelta(hours=1), PURPOSE_ADHOC, [], rows(1))
    record(store, "c1", T0 + timedelta(days=40), PURPOSE_ADHOC, [], rows(1))
    assert store.prune("c1", keep_after=T0 + timedelta(days=30)) == 1
    assert store.latest_snapshot("c1", purpose=PURPOSE_DIGEST) is not None
    store.close()


def test_workload_history_sums_restarts_per_snapshot(database_url: str) -> None:
    store = Store.open(database_url)
    for day in range(3):
        record(store, "c1", T0 + timedelta(days=day), PURPOSE_DIGEST, [], rows(day * 10))
        record(store, "c1", T0 + timedelta(days=day, hours=5), PURPOSE_ADHOC, [],
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


# ---- lean snapshots (migration 3) ---------------------------------------------------------
def mixed_pods() -> list[ContainerRecord]:
    """Old-shape rows (every container): quiet pods, a restarted sidecar next to a quiet app
    container, a container with a last termination but no restart, two namespaces."""
    quiet = [ContainerRecord("prod", f"0000000{i}-0000-4000-8000-000000000000", f"web-{i}",
                             "web", 0, "Deployment", "web") for i in range(3)]
    mixed = [ContainerRecord("prod", "u-mixed", "api-0", "app", 0, "Deployment", "api"),
             ContainerRecord("prod", "u-mixed", "api-0", "proxy", 4, "Deployment", "api",
                             container_kind="sidecar", last_exit_code=137,
                             last_reason="OOMKilled", finished_at=T0)]
    exited = [ContainerRecord("batch", "u-job", "job-1", "run", 0, "CronJob", "nightly",
                              last_exit_code=0, last_reason="Completed", finished_at=T0)]
    return [*quiet, *mixed, *exited]


def now_pods() -> list[PodObservation]:
    """Pods at the next patrol: web-0 quiet, web-1 restarted for the first time, web-2
    gone; the api pod's app container restarted; a brand-new pod and an unknown old one."""
    def obs(ns: str, name: str, uid: str, workload: str, *cs: tuple[str, int],
            created: datetime = T0 - timedelta(days=3)) -> PodObservation:
        return PodObservation(ns, name, uid, WorkloadRef("Deployment", workload), created,
                              tuple(ContainerObservation(c, r) for c, r in cs))
    return [
        obs("prod", "web-0", "00000000-0000-4000-8000-000000000000", "web", ("web", 0)),
        obs("prod", "web-1", "00000001-0000-4000-8000-000000000000", "web", ("web", 2)),
        obs("prod", "api-0", "u-mixed", "api", ("app", 3), ("proxy", 1), ("debug", 1)),
        obs("prod", "web-9", "u-new", "web", ("web", 5), created=T0 + timedelta(hours=1)),
        obs("prod", "old-1", "u-unknown", "old", ("old", 5)),
    ]


def answers(baseline: Baseline, pods: list[PodObservation]) -> tuple[object, ...]:
    deltas = [(p.uid, c.name, *delta_of(p, c, baseline)) for p in pods for c in p.containers]
    present = {(p.namespace, p.uid) for p in pods}
    return tuple(deltas), tuple(find_vanished(present, baseline))


def test_lean_snapshot_keeps_rows_only_for_restarted_containers(database_url: str) -> None:
    store = Store.open(database_url)
    records = mixed_pods()
    info = record(store, "c1", T0, PURPOSE_DIGEST, [], records)
    assert (info.pods, info.containers) == (5, 6)
    with store.engine.connect() as conn:
        kept = conn.execute(select(container_rows.c.pod_uid, container_rows.c.container)
                            .order_by(container_rows.c.pod_uid)).all()
    assert [tuple(r) for r in kept] == [("u-job", "run"), ("u-mixed", "proxy")]
    lean = store.load_baseline(info)
    full = Baseline(T0, {r.key: r for r in records})
    deltas, vanished = answers(lean, now_pods())
    assert (deltas, vanished) == answers(full, now_pods())
    # the cases the pod sets must prove: a first restart after zero, a container not in
    # the baseline of a known pod, a vanished pod that never restarted
    assert ("00000001-0000-4000-8000-000000000000", "web", 2, DeltaBasis.SAME_POD) in deltas
    assert ("u-mixed", "debug", 1, DeltaBasis.NEW_CONTAINER) in deltas
    assert ("u-unknown", "old", None, DeltaBasis.NO_BASELINE) in deltas
    assert [(v.pod_name, v.restarts_at_baseline, v.workload.name) for v in vanished] == [
        ("job-1", 0, "nightly"), ("web-2", 0, "web")]
    store.close()


def test_migration_3_converts_old_snapshots_with_the_same_answers(database_url: str) -> None:
    engine = create_engine(database_url)
    assert migrate(engine, up_to=2) == 2
    records = mixed_pods()

    def on(day: int, r: ContainerRecord) -> ContainerRecord:  # web-1 restarts 3× on day 1
        return replace(r, restarts=r.restarts + 3) if day and r.pod_name == "web-1" else r

    with engine.begin() as conn:
        for day in range(2):
            key = conn.execute(snapshots.insert().values(
                cluster="c1", taken_at=T0 + timedelta(days=day), purpose=PURPOSE_DIGEST,
                namespaces="", pods=5, containers=6)).inserted_primary_key
            assert key is not None
            conn.execute(container_rows.insert(), [
                {**{f: getattr(r, f) for f in ("namespace", "pod_uid", "container", "pod_name",
                                               "container_kind", "workload_kind",
                                               "workload_name", "last_exit_code",
                                               "last_reason", "finished_at")},
                 "snapshot_id": key[0], "restarts": on(day, r).restarts} for r in records])
    engine.dispose()
    store = Store.open(database_url)  # migrates to the latest version
    assert current_version(store.engine) == MIGRATIONS[-1][0]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(container_rows)).scalar() == 2 + 3
    info = store.latest_snapshot("c1")
    assert info is not None and info.taken_at == T0 + timedelta(days=1)
    old = Baseline(info.taken_at, {r.key: on(1, r) for r in records})
    assert answers(store.load_baseline(info), now_pods()) == answers(old, now_pods())
    assert store.workload_history("c1", "prod", "Deployment", "web", T0) == [
        (T0, 0), (T0 + timedelta(days=1), 3)]
    store.close()


def test_history_counts_zero_where_a_workload_had_no_restarted_container(
        database_url: str) -> None:
    store = Store.open(database_url)
    quiet = [replace(r, restarts=0, last_exit_code=None) for r in rows(0)]
    record(store, "c1", T0, PURPOSE_DIGEST, [], quiet)
    record(store, "c1", T0 + timedelta(days=1), PURPOSE_DIGEST, [], rows(2))
    record(store, "c1", T0 + timedelta(days=2), PURPOSE_DIGEST, [], [
        ContainerRecord("prod", "x", "other-1", "app", 0, "Deployment", "other")])
    assert store.workload_history("c1", "prod", "Deployment", "api", T0) == [
        (T0, 0), (T0 + timedelta(days=1), 9)]
    store.close()


# ---- the snapshot writer, pod by pod (the path every patrol takes) ---------------------
def quiet(ns: str, i: int, workload: str = "web") -> QuietPod:
    return QuietPod(ns, f"{workload}-{i}", f"{ns}-{workload}-{i}",
                    WorkloadRef("Deployment", workload), ("web",))


def parts(store: Store, info: SnapshotInfo) -> dict[str, list[int]]:
    with store.engine.connect() as conn:
        found: dict[str, list[int]] = {}
        for ns, pods in conn.execute(
                select(pod_sets.c.namespace, pod_sets.c.pods)
                .where(pod_sets.c.snapshot_id == info.id).order_by(pod_sets.c.part)):
            found.setdefault(ns, []).append(pods)
        return found


def test_add_pod_sets_every_pod_and_rows_only_for_restarted_or_terminated_containers(
        database_url: str) -> None:
    store = Store.open(database_url)
    exited = Termination(0, "Completed", finished_at=T0 - timedelta(hours=2))
    killed = Termination(137, "OOMKilled", finished_at=T0 - timedelta(hours=1))
    mixed = PodObservation("prod", "api-0", "u-api", WorkloadRef("Deployment", "api"), T0, (
        ContainerObservation("app", 0),
        ContainerObservation("proxy", 4, ContainerKind.SIDECAR, killed),
        ContainerObservation("init", 0, ContainerKind.INIT, exited)))
    pending = PodObservation("prod", "new-0", "u-new", WorkloadRef("Pod", "new-0"), T0, ())
    with store.snapshot_writer("c1", T0, PURPOSE_ADHOC, ["prod"]) as writer:
        for pod in (quiet("prod", 0), mixed, pending, quiet("prod", 1)):
            writer.add_pod(pod)
    info = writer.info
    assert (info.pods, info.containers) == (3, 5)  # the pod without statuses is left out
    with store.engine.connect() as conn:
        kept = conn.execute(select(container_rows.c.container, container_rows.c.restarts,
                                   container_rows.c.last_exit_code,
                                   container_rows.c.container_kind)
                            .order_by(container_rows.c.container)).all()
    assert [tuple(r) for r in kept] == [("init", 0, 0, "init"), ("proxy", 4, 137, "sidecar")]
    baseline = store.load_baseline(info)
    assert set(baseline.pods) == {("prod", "prod-web-0"), ("prod", "u-api"), ("prod", "prod-web-1")}
    assert baseline.previous_restarts("prod", "u-api", "app") == 0  # in the set, no row
    assert baseline.previous_restarts("prod", "u-api", "proxy") == 4
    assert baseline.previous_restarts("prod", "u-new", "app") is None
    store.close()


def test_add_pod_splits_big_and_interleaved_namespaces_into_parts(database_url: str) -> None:
    store = Store.open(database_url)
    with store.snapshot_writer("c1", T0, PURPOSE_ADHOC, []) as writer:
        for i in range(5001):  # one part holds 5,000 pods
            writer.add_pod(quiet("big", i))
        writer.add_pod(quiet("a", 0))
        writer.add_pod(quiet("b", 0))
        writer.add_pod(quiet("a", 1))  # a seen again: the server interleaves namespaces
        writer.add_pod(quiet("b", 1))
    info = writer.info
    assert parts(store, info) == {"big": [5000, 1], "a": [1, 1], "b": [1, 1]}
    baseline = store.load_baseline(info)
    assert len(baseline.pods) == 5005 and info.pods == 5005
    assert {uid for ns, uid in baseline.pods if ns == "a"} == {"a-web-0", "a-web-1"}
    store.close()


def test_reset_drops_what_the_writer_wrote_before_a_relist(database_url: str) -> None:
    store = Store.open(database_url)
    with store.snapshot_writer("c1", T0, PURPOSE_ADHOC, []) as writer:
        for pod in as_pods(rows(3)):
            writer.add_pod(pod)
        writer.reset()  # the list expired (410): everything is listed again
        for pod in as_pods(rows(5, n=2)):
            writer.add_pod(pod)
    info = writer.info
    assert (info.pods, info.containers) == (2, 2)
    baseline = store.load_baseline(info)
    assert sorted(r.restarts for r in baseline.containers.values()) == [5, 6]
    assert set(baseline.pods) == {("prod", "uid-0"), ("prod", "uid-1")}
    store.close()


def test_pending_captures_are_read_back_by_id_oldest_first(database_url: str) -> None:
    """The recorder keeps only the ids of the install's seeds and reads their jobs back:
    in id order, whatever order is asked, and a capture stored meanwhile is left out."""
    from bot.store.ledger import LedgerBatch, Pending

    store = Store.open(database_url)
    try:
        batch = LedgerBatch()
        for i in range(3):
            batch.pending.append(Pending(f"uid-{i}", "app", 5, 0, f"job {i}".encode()))
        stored = store.ledger.commit("c1", batch, datetime(2026, 12, 4, tzinfo=UTC))
        other = LedgerBatch()
        other.pending.append(Pending("uid-x", "app", 1, 0, b"other cluster's"))
        elsewhere = store.ledger.commit("c2", other, datetime(2026, 12, 4, tzinfo=UTC))
        ids = [p.id for p in stored]
        assert None not in ids
        wanted = [ids[2], ids[0], ids[1], *(p.id for p in elsewhere)]
        found = store.ledger.pending_of("c1", [i for i in wanted if i is not None])
        assert [(p.pod_uid, p.job, p.id) for p in found] == [
            (f"uid-{i}", f"job {i}".encode(), ids[i]) for i in range(3)]
        assert store.ledger.pending_of("c1", []) == []
    finally:
        store.close()
