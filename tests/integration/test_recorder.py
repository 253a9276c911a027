"""The flight recorder against bot/sim over real HTTP: watch, re-list, captures, limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cluster.client import ClusterClient, connect
from bot.patrol.history import CAPTURED, DROPPED, RATE_LIMITED
from bot.store import Store
from bot.store.crashes import CrashStore
from tests.conftest import Sim, start_sim
from tests.support.recording import RunningRecorder
from tests.support.waiting import wait_until

PANIC = [
    "2026/11/29 10:00:00 INFO connecting to db password=hunter2 user=orders",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8a1f2c]",
    "",
    "goroutine 7 [running]:",
    "orders/internal/batch.(*Batcher).flush(0xc0003a2000)",
    "\t/src/internal/batch/batcher.go:142 +0x8c",
]


def shop(*, every: str = "1h", replicas: int = 1, backoff: bool = False,
         message: str | None = None, **workload: object) -> dict:
    """One crashing Deployment `shop/orders` (Go panics exiting 2)."""
    crash = {"every": every, "first_after": "30m", "exit_code": 2, "backoff": backoff,
             "log": PANIC, **({"message": message} if message else {})}
    return {"cluster": "shop", "nodes": ["n1"], "namespaces": {"shop": {"workloads": [{
        "kind": "Deployment", "name": "orders", "replicas": replicas, "age": "5d",
        "containers": [{"name": "orders", "image": "orders:1.14.2", "restarts": 7,
                        "crash": crash}], **workload}]}}}


@dataclass
class Rig:
    sim: Sim
    cluster: ClusterClient
    store: Store
    crashes: CrashStore
    recorder: RunningRecorder

    def settle(self) -> None:
        self.recorder.settle(self.sim.world.resource_version)

    def advance(self, **delta: float) -> None:
        self.sim.world.advance(timedelta(**delta))
        self.settle()

    def rows(self) -> list:
        return sorted(self.store.history.history("shop", "shop", workload=("Deployment", "orders"),
                                           limit=1000), key=lambda c: c.restart_count)


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator:
    """A running sim (scenario), store and started recorder (settings changes)."""
    built: list[Rig] = []

    def make(scenario: dict | None = None, keep: timedelta = timedelta(days=14),
             **changes: object) -> Rig:
        running = start_sim(tmp_path, scenario or shop())
        settings = running.settings(**changes)
        cluster = connect(settings)
        store = Store.open(f"sqlite:///{tmp_path}/r{len(built)}.db")
        crashes = store.crashes
        recorder = RunningRecorder(cluster, store, settings, keep_counts_for=keep)
        rig = Rig(running, cluster, store, crashes, recorder)
        built.append(rig)
        rig.settle()
        return rig

    yield make
    for rig in built:
        rig.recorder.stop()
        rig.cluster.close()
        rig.store.close()
        rig.sim.server.stop()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


def test_restarts_are_recorded_once_across_a_reconnect_and_a_410_relist(rig: Rig) -> None:
    assert rig.rows() == []  # the 7 restarts before the recorder started are the baseline
    rig.advance(hours=3)
    assert [c.restart_count for c in rig.rows()] == [8, 9, 10]
    rig.sim.world.drop_watches()  # connection lost: resume from the last resourceVersion
    rig.advance(hours=2)
    assert [c.restart_count for c in rig.rows()] == [8, 9, 10, 11, 12]
    watch = rig.recorder.service.watches[0]
    assert watch.relists_after_gone == 0
    with rig.sim.world.lock:  # restarts happen while no watch can see them, then 410
        rig.sim.world.drop_watches()
        rig.sim.world.advance(timedelta(hours=2))
        rig.sim.world.compact()
    rig.settle()
    assert watch.relists_after_gone >= 1
    rows = rig.rows()
    assert sum(c.restarts for c in rows) == 7
    assert rows[-1].restart_count == 14
    assert rig.recorder.stats().restarts == 7


def test_a_capture_keeps_the_redacted_log_the_events_and_the_diagnosis(make_rig) -> None:
    rig = make_rig(shop(message="dial db: password=hunter2 refused"))
    rig.advance(minutes=40)
    (crash,) = rig.rows()
    assert crash.capture == CAPTURED and crash.log_captured
    assert crash.exit_code == 2 and crash.reason == "Error"
    assert crash.category == "go-panic" and crash.fingerprint
    assert crash.signature[0].startswith("panic: runtime error")
    assert (crash.workload_kind, crash.workload_name) == ("Deployment", "orders")
    assert crash.node == "n1" and crash.image == "orders:1.14.2"
    assert crash.pod_name.startswith("orders-") and crash.container_kind == "container"
    stored = rig.store.history.log_of("shop", crash.id or 0)
    assert stored is not None
    _, text = stored
    assert text is not None and "panic: runtime error" in text
    assert "hunter2" not in text and "[REDACTED]" in text
    assert crash.redactions == 1
    assert crash.message == "dial db: password=[REDACTED] refused"


def test_a_crash_loop_is_counted_every_time_but_its_log_fetched_once(make_rig) -> None:
    rig = make_rig(shop(every="4m", backoff=True), RECORDER_LOG_INTERVAL_MINUTES=10)
    # the crash already looping at install was described once (its fingerprint is known)
    assert rig.recorder.stats().api_requests == {"owner": 1, "log": 1, "events": 1}
    rig.advance(minutes=31)  # first crash at 30m
    rig.advance(minutes=4)
    rig.advance(minutes=4)
    rows = rig.rows()
    assert [c.capture for c in rows] == [CAPTURED, RATE_LIMITED, RATE_LIMITED]
    assert rig.recorder.stats().api_requests == {"owner": 1, "log": 2, "events": 2}
    assert len({c.fingerprint for c in rows}) == 1 and rows[0].fingerprint
    assert [e.reason for e in rows[0].events] == ["BackOff"]
    rig.advance(minutes=8)  # 12 minutes after the first capture: fetched again
    assert rig.recorder.stats().api_requests["log"] == 3
    assert sum(c.restarts for c in rig.rows()) == rig.recorder.stats().restarts == 5


def test_a_full_capture_queue_drops_captures_but_counts_the_restarts(make_rig) -> None:
    rig = make_rig(shop(replicas=6), RECORDER_QUEUE=1, RECORDER_WORKERS=1)
    gate = threading.Event()
    rig.sim.server.log_gate = gate  # the worker's first log fetch waits here
    rig.sim.world.advance(timedelta(minutes=40))  # six pods crash in the same step
    wait_until(lambda: rig.recorder.stats().captures.get(DROPPED, 0) >= 4,
               "the captures that did not fit stored as dropped")
    gate.set()
    rig.settle()
    rows = rig.rows()
    assert len(rows) == 6 and sum(c.restarts for c in rows) == 6
    dropped = [c for c in rows if c.capture == DROPPED]
    assert 4 <= len(dropped) <= 5 and not any(c.log_captured for c in dropped)
    assert rig.recorder.stats().captures[DROPPED] == len(dropped)


def test_a_restarted_recorder_records_what_happened_while_it_was_down(rig: Rig) -> None:
    rig.advance(hours=1)
    rig.recorder.stop()
    rig.sim.world.advance(timedelta(hours=2))  # two restarts nobody watched
    again = RunningRecorder(rig.cluster, rig.store, rig.recorder.settings)
    try:
        again.settle(rig.sim.world.resource_version)
        rows = rig.rows()
        assert [(c.restart_count, c.restarts) for c in rows] == [(8, 1), (10, 2)]
        assert rows[-1].capture == CAPTURED  # the latest of the two is described
    finally:
        again.stop()


def test_two_recorders_at_once_store_each_restart_once(rig: Rig) -> None:
    twin = RunningRecorder(rig.cluster, rig.store, rig.recorder.settings)
    try:
        twin.settle(rig.sim.world.resource_version)
        rig.sim.world.advance(timedelta(hours=3))
        twin.settle(rig.sim.world.resource_version)
        rig.settle()
        assert [c.restart_count for c in rig.rows()] == [8, 9, 10]
        assert twin.stats().restarts == rig.recorder.stats().restarts == 3
    finally:
        twin.stop()


def test_the_recorder_prunes_by_count_and_age_once_a_day(make_rig) -> None:
    rig = make_rig(keep=timedelta(0), CRASH_RETENTION_PER_WORKLOAD=2, CRASH_RETENTION_DAYS=1)
    rig.advance(hours=4)
    assert len(rig.rows()) == 4
    rig.recorder.service.housekeep()  # never pruned before: prunes now
    assert [c.restart_count for c in rig.rows()] == [10, 11]
    rig.advance(hours=1)
    rig.recorder.service.housekeep()  # pruned within the day: nothing goes
    assert [c.restart_count for c in rig.rows()] == [10, 11, 12]
    rig.advance(hours=25)
    rig.recorder.service.housekeep()
    assert [c.restart_count for c in rig.rows()] == [36, 37]


def test_the_default_cluster_records_exactly_what_a_patrol_counts(make_rig) -> None:
    from bot.answers.patrol import PatrolPlan, patrol
    from bot.sim.scenario import load_scenario

    rig = make_rig(load_scenario())
    settings = rig.recorder.settings
    first = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest(diagnose_top=0))
    for _ in range(16):  # 8 simulated hours
        rig.advance(minutes=30)
    run = patrol(rig.cluster, rig.store, settings, PatrolPlan.digest(diagnose_top=0))
    window = rig.store.history.window(rig.cluster.name, first.digest.window_to,
                                run.digest.window_to, present=set())
    recorded: dict[tuple[str, str, str], int] = {}
    for story in window.stories:
        recorded[story.workload] = recorded.get(story.workload, 0) + story.restarts
    counted = {(w.namespace, w.kind, w.name): w.restarts for w in run.digest.workloads}
    assert recorded == counted and sum(recorded.values()) == rig.recorder.stats().restarts > 50
    rows = [c for ns in {k[0] for k in recorded}
            for c in rig.store.history.history(rig.cluster.name, ns, limit=1000)]
    kinds = {(c.workload_kind, c.workload_name, c.container, c.container_kind) for c in rows}
    assert ("CronJob", "nightly-report", "report", "container") in kinds
    assert ("Deployment", "thumbnailer", "cache-sidecar", "sidecar") in kinds
    # a StartError loop every 5 min, seen every 10 min: two restarts per row, no log to keep
    assert {(c.restarts, c.log_captured, c.category) for c in rows
            if c.workload_name == "node-agent"} == {(2, False, "exec-error")}


def test_the_installs_seeds_are_all_described_however_small_the_queue(make_rig) -> None:
    """Six workloads crashing at install with a capture queue of one: each gets its seed
    described (log and fingerprint, known at install) on the seeds' own worker — none is
    dropped to a bare exit code, so none of them can alert as new later."""
    workloads = [{"kind": "Deployment", "name": f"svc-{c}", "replicas": 2, "age": "5d",
                  "containers": [{"name": "app", "image": f"svc-{c}:1", "restarts": 3,
                                  "crash": {"every": "1h", "first_after": "30m",
                                            "exit_code": 2,
                                            "log": [f"panic: broken {c}", "",
                                                    "goroutine 1 [running]:",
                                                    f"main.{c}Handler()"]}}]}
                 for c in "abcdef"]
    rig = make_rig({"cluster": "shop", "nodes": ["n1"],
                    "namespaces": {"shop": {"workloads": workloads}}},
                   RECORDER_QUEUE=1, RECORDER_WORKERS=1)
    seeds = rig.store.history.history("shop", "shop", limit=100, seeds=True,
                                      pod_name=None, workload=None)
    assert len(seeds) == 6 and {s.restarts for s in seeds} == {0}
    assert all(s.capture == "baseline" and s.log_captured and s.fingerprint for s in seeds)
    assert rig.rows() == [] and rig.recorder.stats().captures == {"baseline": 6}


def test_the_recorder_lists_pods_in_small_pages(make_rig) -> None:
    """The recorder stays up beside its capture workers: it lists PAGE_SIZE (100) pods a
    page, not a patrol's 500 — every pod still followed, the pages chained by continue."""
    from bot.cluster import podwatch

    rig = make_rig(RECORDER_WORKERS=1)
    lists = [r for r in rig.sim.server.requests
             if r.startswith("GET /api/v1/pods?") and "watch=" not in r]
    assert lists and all(f"limit={podwatch.PAGE_SIZE}&" in r + "&" for r in lists)
    assert rig.recorder.service.detector.pods() == rig.sim.world.count("pods")
