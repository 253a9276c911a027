"""Leader election on a Lease served by bot/sim (real HTTP, optimistic concurrency): one
leader among candidates, release on stop, step down when renewals fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.cluster.client import ClusterClient, connect
from bot.cluster.lease import LeaseElector
from tests.conftest import Sim

WAIT = 15  # seconds; every wait below ends as soon as its event happens


class Candidate:
    def __init__(self, sim: Sim, name: str) -> None:
        self.cluster: ClusterClient = connect(sim.settings())
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.elector = LeaseElector(self.cluster, "default", "patrol-test", name, 2,
                                    on_started=self.started.set, on_stopped=self.stopped.set)

    def close(self) -> None:
        self.elector.stop()
        self.cluster.close()


@pytest.fixture
def candidates(sim: Sim) -> Iterator[list[Candidate]]:
    made = [Candidate(sim, f"replica-{i}") for i in range(3)]
    yield made
    for c in made:
        c.close()


def holder(sim: Sim) -> str | None:
    lease = sim.world.get("leases", "default", "patrol-test")
    return None if lease is None else lease["spec"].get("holderIdentity")


def wait_for_leader(candidates: list[Candidate]) -> Candidate:
    done = threading.Event()
    for c in candidates:
        threading.Thread(target=lambda c=c: c.started.wait(WAIT) and done.set(),
                         daemon=True).start()
    assert done.wait(WAIT), "nobody became leader"
    return next(c for c in candidates if c.started.is_set())


def test_one_leader_then_release_hands_over_at_once(sim: Sim,
                                                    candidates: list[Candidate]) -> None:
    for c in candidates:
        c.elector.start()
    first = wait_for_leader(candidates)
    assert [c.elector.leading for c in candidates].count(True) == 1
    assert holder(sim) == first.elector.identity
    first.elector.stop()
    assert first.stopped.is_set() and holder(sim) != first.elector.identity
    rest = [c for c in candidates if c is not first]
    second = wait_for_leader(rest)
    assert [c.elector.leading for c in rest].count(True) == 1
    lease = sim.world.get("leases", "default", "patrol-test")
    assert lease is not None and lease["spec"]["holderIdentity"] == second.elector.identity
    assert lease["spec"]["leaseTransitions"] >= 1


def test_a_leader_that_cannot_renew_stops_its_jobs(sim: Sim,
                                                   candidates: list[Candidate]) -> None:
    only = candidates[0]
    only.elector.start()
    assert only.started.wait(WAIT)
    sim.server.forbidden_namespaces.add("default")  # renewals now answer 403
    assert only.stopped.wait(WAIT)
    assert not only.elector.leading
    sim.server.forbidden_namespaces.discard("default")
    only.started.clear()
    assert only.started.wait(WAIT)  # leads again once the lease can be renewed
