"""Recorded snapshots (migration 11): a digest counted from the flight recorder writes only
the pods that changed and the pods gone, on top of its baseline; read back, a baseline is
the listed snapshot with every later change applied — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import create_engine

from bot.patrol.deltas import DeltaBasis, delta_of, find_vanished
from bot.patrol.model import ContainerObservation, PodObservation, WorkloadRef
from bot.store import SnapshotInfo, Store
from bot.store.migrations import migrate
from bot.store.schema import KIND_LISTED, KIND_RECORDED, snapshots
from bot.store.snapshots import PURPOSE_ADHOC, PURPOSE_DIGEST
from tests.integration.test_store import T0

API = WorkloadRef("Deployment", "api")


def pod(name: str, restarts: int, *, created: timedelta = timedelta(days=-9)
        ) -> PodObservation:
    return PodObservation("prod", name, f"uid-{name}", API, T0 + created,
                          (ContainerObservation("app", restarts),))


def write(store: Store, at: timedelta, pods: list[PodObservation], *,
          parent: SnapshotInfo | None = None, gone: tuple[str, ...] = (),
          purpose: str = PURPOSE_DIGEST, mark: str | None = "run.0:0") -> SnapshotInfo:
    with store.snapshot_writer("c1", T0 + at, purpose, ["prod"], parent=parent,
                               recorder_mark=mark) as writer:
        for p in pods:
            writer.add_pod(p)
        for name in gone:
            writer.gone("prod", f"uid-{name}")
    return writer.info


def test_a_recorded_snapshot_is_read_as_its_listed_one_with_every_change_after(
        database_url: str) -> None:
    store = Store.open(database_url)
    listed = write(store, timedelta(0), [pod("a", 1), pod("b", 0), pod("c", 4)])
    # 2 h: a restarted twice, c is gone, d was born (at 1 h) and restarted
    first = write(store, timedelta(hours=2), [pod("a", 3), pod("d", 1, created=timedelta(
        hours=1))], parent=listed, gone=("c",), mark="run.0:17")
    # 4 h: d restarted again; e born at 3 h without restarts is in no snapshot
    second = write(store, timedelta(hours=4), [pod("d", 2, created=timedelta(hours=1))],
                   parent=first, mark="run.0:30")
    assert (listed.kind, first.kind, second.kind) == (KIND_LISTED, KIND_RECORDED,
                                                       KIND_RECORDED)
    latest = store.latest_snapshot("c1", purpose=PURPOSE_DIGEST)
    assert latest == second and latest.recorder_mark == "run.0:30"
    assert latest.parent_id == first.id and store.listed_root(latest) == listed
    baseline = store.load_baseline(second)
    assert baseline.taken_at == T0 + timedelta(hours=4)
    assert baseline.born_after == T0
    assert {uid: p.name for (_, uid), p in baseline.pods.items()} == {
        "uid-a": "a", "uid-b": "b", "uid-d": "d"}
    assert {k[1]: r.restarts for k, r in baseline.containers.items()} == {
        "uid-a": 3, "uid-d": 2}
    assert store.load_baseline(second, ["prod"]) == baseline
    assert store.load_baseline(second, ["other"]).pods == {}
    assert store.snapshot_namespaces(second) == ["prod"]
    now = [pod("a", 5), pod("b", 1), pod("d", 2, created=timedelta(hours=1)),
           pod("e", 2, created=timedelta(hours=3)), pod("f", 1, created=timedelta(hours=5))]
    answers = {p.name: delta_of(p, p.containers[0], baseline) for p in now}
    assert answers == {
        "a": (2, DeltaBasis.SAME_POD), "b": (1, DeltaBasis.SAME_POD),
        "d": (0, DeltaBasis.SAME_POD),
        "e": (2, DeltaBasis.SAME_POD),  # born between the list and the baseline: 0 then
        "f": (1, DeltaBasis.NEW_POD)}  # born after the baseline
    assert find_vanished({("prod", f"uid-{n}") for n in "ab"}, baseline)[0].pod_name == "d"
    # a pod older than the list and in no snapshot stays without a baseline
    older = pod("g", 1, created=timedelta(hours=-1))
    assert delta_of(older, older.containers[0], baseline) == (None, DeltaBasis.NO_BASELINE)
    store.close()


def test_prune_keeps_what_a_kept_recorded_snapshot_stands_on(database_url: str) -> None:
    store = Store.open(database_url)
    listed = write(store, timedelta(0), [pod("a", 1)])
    first = write(store, timedelta(days=10), [pod("a", 2)], parent=listed)
    write(store, timedelta(days=11), [pod("a", 2)], purpose=PURPOSE_ADHOC, mark=None)
    second = write(store, timedelta(days=40), [pod("a", 3)], parent=first)
    assert store.prune("c1", keep_after=T0 + timedelta(days=30)) == 1  # the ad-hoc one
    assert store.load_baseline(second).containers[("prod", "uid-a", "app")].restarts == 3
    assert store.listed_root(second) == listed
    store.close()


def test_workload_history_carries_a_workload_through_recorded_snapshots_without_it(
        database_url: str) -> None:
    store = Store.open(database_url)
    listed = write(store, timedelta(0), [pod("a", 1), pod("b", 2)])
    quiet = write(store, timedelta(days=1), [], parent=listed)  # api did not change
    write(store, timedelta(days=2), [pod("a", 4), pod("b", 2)], parent=quiet)
    history = store.workload_history("c1", "prod", "Deployment", "api", T0)
    assert [total for _, total in history] == [3, 3, 6]
    store.close()


def test_migration_11_reads_older_snapshots_as_listed(database_url: str) -> None:
    engine = create_engine(database_url)
    assert migrate(engine, up_to=10) == 10
    with engine.begin() as conn:
        conn.execute(snapshots.insert().values(
            cluster="c1", taken_at=T0, purpose=PURPOSE_DIGEST, namespaces="prod", pods=1,
            containers=1))
    engine.dispose()
    store = Store.open(database_url)
    info = store.latest_snapshot("c1")
    assert info is not None
    assert (info.kind, info.parent_id, info.recorder_mark) == (KIND_LISTED, None, None)
    assert store.listed_root(info) == info
    store.close()
