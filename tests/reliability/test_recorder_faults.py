"""Nothing lost (issue 14.1–14.4): the recorder through SIGTERM with captures queued,
downtime, a clock that is off, a database outage, and retention inside an open window.
Each test is an observation that failed before the restart ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cluster.client import ClusterClient, connect
from bot.patrol.history import CAPTURED, CrashRecord
from bot.settings import Settings
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.integration.test_recorder import shop
from tests.reliability.conftest import Held
from tests.reliability.proxy import FaultProxy
from tests.support.recording import RunningRecorder
from tests.support.settings import amend
from tests.support.throwaway_pg import ThrowawayPostgres
from tests.support.waiting import wait_until


def fresh(**container: object) -> dict:
    """`shop/orders` whose container never restarted before the recorder was installed."""
    scenario = shop(**{k: v for k, v in container.items() if k == "replicas"})
    c = scenario["namespaces"]["shop"]["workloads"][0]["containers"][0]
    c["restarts"] = 0
    c.update({k: v for k, v in container.items() if k != "replicas"})
    return scenario


def orders(store: Store) -> list[CrashRecord]:
    return sorted(store.history.history("shop", "shop", workload=("Deployment", "orders"),
                                        limit=10_000), key=lambda c: (c.pod_uid,
                                                                      c.restart_count))


def restarts_of(store: Store) -> int:
    return sum(c.restarts for c in orders(store))


def test_sigterm_with_captures_queued_loses_none(tmp_path: Path, held: Held) -> None:
    """40 restarts detected while every log read hangs, then SIGTERM: the process exits
    at once and cleanly; the next start describes all 40 (before: 468 of 600 lost)."""
    sim = start_sim(tmp_path, fresh(replicas=40))
    url = f"sqlite:///{tmp_path}/rec.db"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "PATROL_", "KUBE", "DATABASE_URL", "ALERT_"))}
    env.update({"KUBECONFIG": str(sim.kubeconfig), "DATABASE_URL": url})
    store = Store.open(url)
    gate = threading.Event()
    sim.server.log_gate = gate  # every previous-log read waits: captures pile up
    try:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "record"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: any("watch=true" in r for r in list(sim.server.requests)),
                       "the recorder's watch")
            sim.world.advance(timedelta(minutes=40))  # all 40 pods crash once
            wait_until(lambda: len(store.ledger.pending("shop")) == 40,
                       "40 restarts committed as pending captures")
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=20)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, out
        assert "Traceback" not in out, out
        assert orders(store) == [] and len(store.ledger.pending("shop")) == 40
        gate.set()
        again = RunningRecorder(_client(sim), store, sim.settings(DATABASE_URL=url))
        try:
            again.settle(sim.world.resource_version, timeout=60)
        finally:
            again.stop()
        rows = orders(store)
        assert len(rows) == 40 and restarts_of(store) == 40
        assert {c.capture for c in rows} == {CAPTURED}
        assert store.ledger.pending("shop") == []
    finally:
        gate.set()
        store.close()
        sim.server.stop()
    held("SIGTERM with 40 captures queued (record)",
         "exit 0 at once; all 40 described after the next start")


def _client(sim: Sim, settings: Settings | None = None) -> ClusterClient:
    return connect(settings or sim.settings())


def test_restarts_while_not_watching_are_counted_in_full(tmp_path: Path, held: Held) -> None:
    """A container with no earlier crash that restarted 5 times while the recorder was
    down counts 5, as one "restarts while not watching" row with the latest evidence
    (before: it counted once)."""
    sim = start_sim(tmp_path, fresh())
    store = Store.open(f"sqlite:///{tmp_path}/r.db")
    cluster = _client(sim)
    try:
        first = RunningRecorder(cluster, store, sim.settings())
        first.settle(sim.world.resource_version)
        first.stop()
        sim.world.advance(timedelta(hours=5))  # 30m, 1h30 … 4h30: five restarts unseen
        again = RunningRecorder(cluster, store, sim.settings())
        try:
            again.settle(sim.world.resource_version)
        finally:
            again.stop()
        (row,) = orders(store)
        assert (row.restart_count, row.restarts) == (5, 5)
        assert row.capture == CAPTURED and row.log_captured and row.category == "go-panic"
    finally:
        cluster.close()
        store.close()
        sim.server.stop()
    held("25 min down, restarts meanwhile (record)",
         "every restart counted, from restart counts (5 of 5)")


def test_a_clock_that_is_off_decides_nothing(tmp_path: Path, held: Held) -> None:
    """The API server's clock 10 min behind, then 10 min ahead, across recorder restarts:
    no phantom restarts, none missed (before: 20 of 20 phantom; 20 of 20 missed)."""
    sim = start_sim(tmp_path, fresh(replicas=4))
    store = Store.open(f"sqlite:///{tmp_path}/r.db")
    with FaultProxy(sim.server.url) as proxy:
        kubeconfig = tmp_path / "kubeconfig-skewed"
        kubeconfig.write_text(sim.kubeconfig.read_text().replace(sim.server.url, proxy.url))
        settings = amend(sim.settings(), KUBECONFIG=str(kubeconfig))
        cluster = _client(sim, settings)
        try:
            expected = 0
            for shift in (timedelta(0), timedelta(minutes=-10), timedelta(minutes=10),
                          timedelta(minutes=-10)):
                proxy.date_shift = shift
                recorder = RunningRecorder(cluster, store, settings)
                try:
                    recorder.settle(sim.world.resource_version)
                    assert restarts_of(store) == expected, f"phantom restarts at {shift}"
                    sim.world.advance(timedelta(hours=1))  # one restart per pod, watched
                    expected += 4
                    recorder.settle(sim.world.resource_version)
                finally:
                    recorder.stop()
                sim.world.advance(timedelta(hours=1))  # and one while nobody watches
                expected += 4
            recorder = RunningRecorder(cluster, store, settings)
            try:
                recorder.settle(sim.world.resource_version)
            finally:
                recorder.stop()
            assert restarts_of(store) == expected == 32
            counts = {(c.pod_uid, c.restart_count) for c in orders(store)}
            assert len(counts) == len(orders(store))  # each restart once
        finally:
            cluster.close()
            store.close()
            sim.server.stop()
    held("API server clock 10 min behind / ahead across recorder restarts",
         "no phantom restarts, none missed (32 of 32)")


def test_a_database_outage_loses_no_capture(tmp_path: Path,
                                            throwaway_pg: ThrowawayPostgres,
                                            held: Held) -> None:
    """PostgreSQL stopped while pods crash: captures and counts are retried with backoff
    and all stored once it is back (before: 20 of 138 lost)."""
    sim = start_sim(tmp_path, fresh(replicas=10))
    store = Store.open(throwaway_pg.url)
    cluster = _client(sim)
    recorder = RunningRecorder(cluster, store, sim.settings())
    try:
        recorder.settle(sim.world.resource_version)
        throwaway_pg.stop()
        try:
            for _ in range(3):  # 30 restarts while the database is away
                sim.world.advance(timedelta(hours=1))
            wait_until(lambda: recorder.stats().restarts == 30, "30 restarts detected")
        finally:
            throwaway_pg.start()
        recorder.settle(sim.world.resource_version, timeout=60)
        assert restarts_of(store) == 30 and len(orders(store)) == 30
        assert store.ledger.pending("shop") == []
    finally:
        recorder.stop()
        cluster.close()
        store.close()
        sim.server.stop()
    held("PostgreSQL stopped while 30 restarts happen (recorder)",
         "retried with backoff; all 30 stored once it is back")


def crash(n: int, pod: int, at: datetime) -> CrashRecord:
    return CrashRecord(cluster="c", namespace="shop", pod_name=f"orders-{pod}",
                       pod_uid=f"uid-{pod}", container="app", container_kind="container",
                       workload_kind="Deployment", workload_name="orders", restart_count=n,
                       exit_code=2, finished_at=at, recorded_at=at, category="go-panic",
                       fingerprint="f00d", capture=CAPTURED)


def test_retention_never_changes_a_count(database_url: str, held: Held) -> None:
    """30 replicas × 7 crashes in an open window, then a rollout replaced them all; the
    daily prune with 20 rows per workload runs inside the window: the window still counts
    210 restarts of pods now gone (before: the prune left 20 of them to count)."""
    store = Store.open(database_url)
    try:
        start = datetime(2026, 12, 1, 9, tzinfo=UTC)
        for pod in range(30):
            for n in range(1, 8):
                store.crashes.record(crash(n, pod, start + timedelta(minutes=10 * n + pod)),
                                     "panic: runtime error\n" * 5)
        now = start + timedelta(hours=6)
        before = store.history.window("c", start, now, present=set())
        removed, emptied = store.crashes.prune(
            "c", now, older_than=now - timedelta(days=90), per_workload=20,
            keep_counts_since=now - timedelta(days=14))
        after = store.history.window("c", start, now, present=set())
        assert removed == 0 and emptied == 190
        assert after.vanished == before.vanished == {("shop", "Deployment", "orders"):
                                                     (210, 30)}
        assert [s.restarts for s in after.stories] == [s.restarts for s in before.stories]
        assert sum(s.restarts for s in after.stories) == 210
        rows = store.history.history("c", "shop", workload=("Deployment", "orders"),
                                     limit=1000)
        assert len(rows) == 210 and sum(r.log_captured for r in rows) == 20
        # beyond the longest window, rows go
        later = now + timedelta(days=20)
        removed, _ = store.crashes.prune("c", later, older_than=later - timedelta(days=90),
                                         per_workload=20,
                                         keep_counts_since=later - timedelta(days=14))
        assert removed == 190
    finally:
        store.close()
    held("retention of 20 per workload inside an open window (210 restarts)",
         "evidence pruned first; the window still counts 210")
