"""Patrols end to end in-process: sim over HTTP → cluster → store → digest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.answers.investigation import Question, investigate
from bot.answers.patrol import PatrolPlan, patrol
from bot.cluster.client import connect
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.support.settings import amend


def run(sim: Sim, store: Store, plan: PatrolPlan | None = None):
    cluster = connect(sim.settings())
    try:
        return patrol(cluster, store, sim.settings(), plan or PatrolPlan.adhoc())
    finally:
        cluster.close()


def test_first_patrol_sets_the_baseline_and_the_next_shows_the_day(sim: Sim,
                                                                    tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    first = run(sim, store, PatrolPlan.digest())
    assert first.digest.first_run
    pod1 = next(w for w in first.digest.workloads if w.name == "pod1-deployment")
    assert (pod1.restarts, pod1.total) == (None, 140)
    sim.world.advance(timedelta(days=1))
    second = run(sim, store, PatrolPlan.digest())
    assert not second.digest.first_run
    assert second.digest.window_to - second.digest.window_from == timedelta(days=1)
    pod1 = next(w for w in second.digest.workloads if w.name == "pod1-deployment")
    assert (pod1.restarts, pod1.total) == (3, 143)
    assert pod1.last_termination is not None and pod1.last_termination.exit_code == 2
    diag = second.diagnoses[("qld2-production", "Deployment", "pod1-deployment")]
    assert diag.category == "go-panic"
    assert "invalid memory address or nil pointer dereference" in diag.summary
    store.close()


def test_adhoc_patrols_do_not_shorten_the_digest_window(sim: Sim, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    run(sim, store, PatrolPlan.digest())
    sim.world.advance(timedelta(hours=12))
    adhoc = run(sim, store)
    sim.world.advance(timedelta(hours=12))
    digest = run(sim, store, PatrolPlan.digest())
    assert digest.digest.window_to - digest.digest.window_from == timedelta(days=1)
    adhoc_pod1 = next(w for w in adhoc.digest.workloads if w.name == "pod1-deployment")
    day_pod1 = next(w for w in digest.digest.workloads if w.name == "pod1-deployment")
    assert day_pod1.restarts == 3 and adhoc_pod1.restarts is not None
    assert adhoc_pod1.restarts < day_pod1.restarts
    store.close()


def test_since_picks_the_snapshot_at_or_before(sim: Sim, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    run(sim, store)
    sim.world.advance(timedelta(hours=20))
    run(sim, store)
    sim.world.advance(timedelta(hours=4))
    day = run(sim, store, PatrolPlan.adhoc(since=timedelta(hours=24)))
    assert day.digest.window_to - day.digest.window_from == timedelta(hours=24)
    none_yet = run(sim, store, PatrolPlan.adhoc(since=timedelta(days=30)))
    assert none_yet.digest.first_run and none_yet.notes
    store.close()


def cart_scenario(**workload: object) -> dict:
    """One crashing Deployment `shop/cart`, with `workload` keys overriding the defaults."""
    return {"cluster": "shop", "nodes": ["n1"], "namespaces": {"shop": {"workloads": [{
        "kind": "Deployment", "name": "cart", "replicas": 1, "age": "5d",
        "containers": [{"name": "cart", "image": "cart:1", "restarts": 7,
                        "crash": {"every": "4h", "first_after": "1h", "exit_code": 1,
                                  "log": ["ValueError: boom"]}}], **workload}]}}}


def test_replaced_pods_count_their_whole_count(tmp_path: Path) -> None:
    running = start_sim(tmp_path, cart_scenario(replace_every="10h"))
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    first = run(running, store)
    uid_before = first.digest.workloads[0].pods[0].uid
    running.world.advance(timedelta(hours=12))
    second = run(running, store)
    (w,) = second.digest.workloads
    assert w.pods[0].uid != uid_before
    # Replaced at 10h, the new pod crashed 1h after its birth: all of its count is in the
    # window, and the old pod's 7 lifetime restarts are not.
    assert w.total == 1
    assert w.restarts == 1
    assert [v.pod_uid for v in second.digest.vanished] == [uid_before]
    running.server.stop()
    store.close()


def test_why_resolves_a_workload_to_its_worst_pod(sim: Sim) -> None:
    cluster = connect(sim.settings())
    reports = investigate(cluster, sim.settings(),
                          Question("qld2-production", "pod4-deployment")).answers
    assert reports[0].pod == "pod4-deployment-7d7b75974d-4zlj6"
    assert reports[0].diagnosis is not None and reports[0].diagnosis.category == "go-panic"
    assert reports[0].log_tail is not None and "panic:" in reports[0].log_tail
    cluster.close()


def test_vanished_pods_are_found_in_seen_and_in_emptied_namespaces(sim: Sim,
                                                                   tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    run(sim, store)
    gone = [key for key in sim.world.sorted_keys("pods")
            if key[0] == "batch" or key[1].startswith("pod2-")]
    for ns, name in gone:
        sim.world.delete("pods", ns, name)
    later = run(sim, store)
    assert sorted((v.namespace, v.pod_name) for v in later.digest.vanished) == sorted(gone)
    pod2 = next(v for v in later.digest.vanished if v.pod_name.startswith("pod2-"))
    assert pod2.restarts_at_baseline == 5 and pod2.workload.name == "pod2-deployment"
    store.close()


def test_a_rollout_moves_pods_to_a_new_replicaset_of_the_same_deployment(tmp_path: Path
                                                                         ) -> None:
    running = start_sim(tmp_path, cart_scenario(replicas=2, rollout_after="6h"))
    old_rs = {n for _, n in running.world.sorted_keys("replicasets")}
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    run(running, store)
    running.world.advance(timedelta(hours=12))
    later = run(running, store)
    new_rs = {n for _, n in running.world.sorted_keys("replicasets")} - old_rs
    assert len(new_rs) == 1
    (w,) = later.digest.workloads
    assert (w.kind, w.name) == ("Deployment", "cart")
    assert w.pods and all(p.name.startswith(next(iter(new_rs))) for p in w.pods)
    assert len(later.digest.vanished) == 2
    # The old pods' restarts before the rollout are not in the new pods' counts.
    assert w.restarts == w.total
    running.server.stop()
    store.close()


def test_a_410_in_a_later_namespace_keeps_every_namespace(sim: Sim, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    cluster = connect(sim.settings())
    cluster.page_size = 10
    calls = {"n": 0}

    def compact_in_the_second_namespace(_seen: int) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # payments (22 pods) is pages 1-3, so this is in qld2-production
            sim.world.compact()

    done = patrol(cluster, store, sim.settings(),
                  PatrolPlan.adhoc(["qld2-production", "payments"]),
                  progress=compact_in_the_second_namespace)
    assert calls["n"] > 5
    names = {(w.namespace, w.name) for w in done.digest.workloads}
    assert ("qld2-production", "pod1-deployment") in names
    assert ("payments", "ledger-api") in names
    expected = sim.world.count("pods", "qld2-production") + sim.world.count("pods", "payments")
    assert done.digest.pods_scanned == expected
    assert done.snapshot is not None and done.snapshot.pods == expected
    cluster.close()
    store.close()


def test_digests_prune_snapshots_older_than_the_retention(sim: Sim, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    settings = amend(sim.settings(), RETENTION_DAYS=10)
    cluster = connect(settings)
    first = patrol(cluster, store, settings, PatrolPlan.adhoc())
    sim.world.advance(timedelta(days=12))
    patrol(cluster, store, settings, PatrolPlan.digest())
    assert first.snapshot is not None
    with store.engine.connect() as conn:
        ids = {row[0] for row in conn.exec_driver_sql("SELECT id FROM snapshots")}
    assert first.snapshot.id not in ids and len(ids) == 1
    cluster.close()
    store.close()
