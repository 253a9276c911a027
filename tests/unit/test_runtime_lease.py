"""Leader election logic on the in-memory KubeApi (tests/support/fake_kube.py): no HTTP,
the same Lease rules as over the wire (test_slots_lease.py covers bot/sim over HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.cluster.lease import LeaseElector
from bot.sim.api import SimApi
from bot.sim.world import World
from tests.support.fake_kube import fake_cluster

WAIT = 15.0


class Candidate:
    def __init__(self, api: SimApi, identity: str) -> None:
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.elector = LeaseElector(fake_cluster(api), "default", "rp", identity, 2,
                                    on_started=self.started.set, on_stopped=self.stopped.set)


@pytest.fixture
def world() -> World:
    return World(cluster_name="c")


@pytest.fixture
def candidates(world: World) -> Iterator[list[Candidate]]:
    api = SimApi(world)
    made = [Candidate(api, f"replica-{i}") for i in range(3)]
    yield made
    for c in made:
        c.elector.stop()


def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _holder(world: World) -> str | None:
    lease = world.get("leases", "default", "rp")
    return None if lease is None else lease["spec"].get("holderIdentity")


def test_one_leader_and_a_release_hands_over_at_once(world: World,
                                                     candidates: list[Candidate]) -> None:
    for c in candidates:
        c.elector.start()
    _until(lambda: any(c.started.is_set() for c in candidates), "a leader")
    leaders = [c for c in candidates if c.elector.leading]
    assert len(leaders) == 1 and _holder(world) == leaders[0].elector.identity
    leaders[0].elector.stop()
    assert leaders[0].stopped.is_set() and _holder(world) is None  # released
    rest = [c for c in candidates if c is not leaders[0]]
    _until(lambda: any(c.elector.leading for c in rest), "a successor")
    assert [c.elector.leading for c in rest].count(True) == 1


def test_a_leader_that_sees_another_holder_steps_down(world: World,
                                                      candidates: list[Candidate]) -> None:
    only = candidates[0]
    only.elector.start()
    _until(only.started.is_set, "leading")
    lease = world.get("leases", "default", "rp")
    assert lease is not None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    world.put("leases", {**lease, "spec": {**lease["spec"], "holderIdentity": "intruder",
                                           "renewTime": now}})
    _until(only.stopped.is_set, "stepping down")
    assert not only.elector.leading
