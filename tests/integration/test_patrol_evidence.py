"""A patrol's top-N live diagnoses read their evidence a few at a time (issue 18): more
than one read in flight, never more than `EVIDENCE_READERS`, every diagnosis the serial
reads gave, and no reader thread left once the patrol returns — with the CLI's runtime or
without one. Pods shaped like a real cluster's (bot.sim.generator), over real HTTP."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answers.patrol import EVIDENCE_READERS, PatrolPlan, PatrolRun, patrol
from bot.cluster.client import connect
from bot.runtime import Runtime
from bot.sim.generator import generate_realistic_world
from bot.store import Store
from tests.conftest import Sim
from tests.support.sim_faults import FaultySimServer
from tests.support.waiting import wait_until


@pytest.fixture
def realistic(tmp_path: Path) -> Iterator[Sim]:
    """300 realistic pods, a fifth restarting with a previous log: 30 crashing workloads."""
    world = generate_realistic_world(300, namespaces=3)
    server = FaultySimServer(world).start()
    kubeconfig = tmp_path / "kubeconfig-realistic"
    kubeconfig.write_text(server.kubeconfig())
    yield Sim(world, None, server, kubeconfig)  # type: ignore[arg-type]
    server.stop()


def run_patrol(sim: Sim, tmp_path: Path, runtime: Runtime | None) -> PatrolRun:
    settings = sim.settings()
    cluster = connect(settings, runtime=runtime)
    store = Store.open(f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:6]}.db")
    try:
        return patrol(cluster, store, settings, PatrolPlan.adhoc(diagnose_top=20))
    finally:
        store.close()
        cluster.close()


def readers() -> list[str]:
    return [t.name for t in threading.enumerate() if "evidence" in t.name]


@pytest.mark.parametrize("with_runtime", [True, False])
def test_top_workloads_are_diagnosed_a_few_reads_at_a_time(
        realistic: Sim, tmp_path: Path, with_runtime: bool) -> None:
    serial = run_patrol(realistic, tmp_path, None)  # the gate is open: reads pass at once
    assert len(serial.diagnoses) == 20
    api = realistic.server.api
    gate = threading.Event()
    realistic.server.log_gate = gate
    peak = 0
    done: list[PatrolRun] = []
    runtime = Runtime("test") if with_runtime else None
    worker = threading.Thread(target=lambda: done.append(run_patrol(realistic, tmp_path,
                                                                    runtime)))
    worker.start()
    try:
        wait_until(lambda: api.log_waiting >= EVIDENCE_READERS, "readers at the gate",
                   timeout=60)
        for _ in range(20):  # held at the gate: nobody else may start a read meanwhile
            peak = max(peak, api.log_waiting)
            gate.wait(0.02)
    finally:
        gate.set()
        worker.join(timeout=60)
    assert peak == EVIDENCE_READERS
    assert len(done) == 1
    run = done[0]
    assert {k: d.fingerprint for k, d in run.diagnoses.items()} == {
        k: d.fingerprint for k, d in serial.diagnoses.items()}
    assert list(run.diagnoses) == list(serial.diagnoses)  # in the digest's order
    assert readers() == []  # the pool stopped before the patrol returned
    if runtime is not None:
        assert "evidence" not in runtime.owned()
        runtime.stop()
