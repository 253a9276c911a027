"""Lean snapshots give the answers full snapshots gave; interleaved lists stay cheap."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from bot.answers.patrol import PatrolPlan, observe, patrol
from bot.cluster.client import ClusterClient, connect
from bot.patrol.deltas import DeltaBasis, find_vanished, records_of
from bot.patrol.digest import Digest, DigestBuilder, PatrolOptions
from bot.patrol.model import Baseline, PodObservation
from bot.render.digest_json import digest_to_json
from bot.sim.scenario import load_scenario
from bot.store import SnapshotInfo, Store
from tests.conftest import Sim, start_sim


class CountingStore(Store):
    """A Store that remembers every baseline load (namespaces asked for; None = all)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.loads: list[tuple[str, ...] | None] = []

    def load_baseline(self, info: SnapshotInfo,
                      namespaces: Sequence[str] | None = None) -> Baseline:
        self.loads.append(tuple(namespaces) if namespaces else None)
        return super().load_baseline(info, namespaces)


def full_shape_digest(cluster: ClusterClient, pods: list[PodObservation],
                      previous: tuple[datetime, list[PodObservation]] | None,
                      now: datetime) -> Digest:
    """The digest against a baseline holding a row for every container (the shape
    snapshots had before migration 3), built in memory from the previous patrol's pods."""
    baseline = (Baseline(previous[0], {r.key: r for r in records_of(previous[1])})
                if previous else None)
    builder = DigestBuilder(cluster.name, PatrolOptions(), first_run=baseline is None)
    for pod in pods:
        builder.add(pod, baseline)
    present = {(p.namespace, p.uid) for p in pods}
    vanished = find_vanished(present, baseline) if baseline else []
    return builder.finish(previous[0] if previous else None, now, vanished)


def churn_scenario() -> dict:
    """The default scenario plus churn: pods replaced daily (quiet ones and crashing ones)
    and a quiet pod that starts crashing on its second day."""
    scenario = load_scenario()
    app = {"name": "app", "image": "churn:1"}
    crash = {"exit_code": 1, "log": ["RuntimeError: boom"]}
    scenario["namespaces"]["churn"] = {"workloads": [
        {"name": "quiet-rolling", "replicas": 2, "replace_every": "1d", "containers": [app]},
        {"name": "crash-rolling", "replicas": 2, "replace_every": "20h", "containers": [
            {**app, "crash": {**crash, "every": "5h", "first_after": "2h"}}]},
        {"name": "late", "replicas": 1, "containers": [
            {**app, "crash": {**crash, "every": "6h", "first_after": "30h"}}]},
    ]}
    return scenario


def test_lean_snapshots_give_the_same_digests_over_simulated_days(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, churn_scenario())
    store = Store.open(f"sqlite:///{tmp_path}/lean.db")
    cluster = connect(sim.settings())
    previous: tuple[datetime, list[PodObservation]] | None = None
    bases: set[DeltaBasis] = set()
    first_restarts = quiet_vanished = 0
    for _ in range(4):
        run = patrol(cluster, store, sim.settings(), PatrolPlan.digest(diagnose_top=0))
        pods = observe(cluster, [])
        expected = full_shape_digest(cluster, pods, previous, run.digest.window_to)
        assert digest_to_json(run.digest) == digest_to_json(expected)
        assert run.digest == expected
        for w in run.digest.workloads:
            for p in w.pods:
                for c in p.containers:
                    bases.add(c.basis)
                    first_restarts += (c.basis == DeltaBasis.SAME_POD and c.restarts is not None
                                       and 0 < c.restarts == c.total)
        quiet_vanished += sum(v.restarts_at_baseline == 0 for v in run.digest.vanished)
        assert run.snapshot is not None
        previous = (run.snapshot.taken_at, pods)
        sim.world.advance(timedelta(days=1))
    # the days covered what lean snapshots must prove from pod sets alone
    assert {DeltaBasis.FIRST_RUN, DeltaBasis.SAME_POD, DeltaBasis.NEW_POD} <= bases
    assert first_restarts > 0 and quiet_vanished > 0
    cluster.close()
    store.close()
    sim.server.stop()


def test_interleaved_namespaces_load_the_baseline_a_bounded_number_of_times(
        sim: Sim, tmp_path: Path) -> None:
    store = CountingStore.open(f"sqlite:///{tmp_path}/lean.db")
    assert isinstance(store, CountingStore)
    cluster = connect(sim.settings())
    patrol(cluster, store, sim.settings(), PatrolPlan.adhoc(diagnose_top=0))
    sim.world.advance(timedelta(days=1))
    in_order = patrol(cluster, store, sim.settings(), PatrolPlan.look(diagnose_top=0))
    namespaces = {p.namespace for p in observe(cluster, [])}
    assert len(store.loads) == len(namespaces) and None not in store.loads

    sim.server.interleave_namespaces = True
    pods = [p.namespace for p in observe(cluster, [])]
    switches = sum(a != b for a, b in pairwise(pods))
    assert switches > 5 * len(namespaces)  # the server really interleaves
    store.loads.clear()
    interleaved = patrol(cluster, store, sim.settings(), PatrolPlan.adhoc(diagnose_top=0))
    assert interleaved.digest == in_order.digest
    # each namespace at most once until the order breaks, then the whole baseline once
    assert None in store.loads and len(store.loads) <= len(namespaces) + 1

    # the snapshot written from the interleaved list is a complete baseline too
    sim.server.interleave_namespaces = False
    store.loads.clear()
    again = patrol(cluster, store, sim.settings(), PatrolPlan.look(diagnose_top=0))
    assert again.digest.vanished == () and again.digest.restarts_in_window == 0
    assert all(c.basis == DeltaBasis.SAME_POD for w in again.digest.workloads
               for p in w.pods for c in p.containers)
    cluster.close()
    store.close()


def test_a_410_relist_reloads_namespaces_in_order_not_the_whole_baseline(
        sim: Sim, tmp_path: Path) -> None:
    store = CountingStore.open(f"sqlite:///{tmp_path}/lean.db")
    assert isinstance(store, CountingStore)
    cluster = connect(sim.settings())
    patrol(cluster, store, sim.settings(), PatrolPlan.adhoc(diagnose_top=0))
    sim.world.advance(timedelta(days=1))
    calm = patrol(cluster, store, sim.settings(), PatrolPlan.look(diagnose_top=0))
    namespaces = len({p.namespace for p in observe(cluster, [])})
    cluster.page_size = 5  # ~20 pages: payments, the 5th namespace, starts at page ~11
    pages = {"n": 0}

    def compact_late(_seen: int) -> None:
        # Page 12 is read; the prefetcher is at most 3 pages ahead, so the 410 comes in
        # the 5th or 6th namespace, after the first ones have left the cache.
        pages["n"] += 1
        if pages["n"] == 12:
            sim.world.compact()

    store.loads.clear()
    relisted = patrol(cluster, store, sim.settings(), PatrolPlan.look(diagnose_top=0),
                      progress=compact_late)
    assert sim.server.statuses[410] == 1
    assert relisted.digest == calm.digest
    assert None not in store.loads and len(store.loads) <= 2 * namespaces
    cluster.close()
    store.close()
