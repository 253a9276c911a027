"""Digest slots counted from the flight recorder (issue 18, "the digest costs what
changed"), against bot/sim over real HTTP: the same rows as a listed digest of the same
cluster, slot after slot; no pod list while the recorder vouches for the window; a full
list (reconciling) after a relist and once a day."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.answers.patrol import PatrolPlan, PatrolRun, patrol
from bot.answers.recorded_digest import MIN_READ_CAP, read_cap
from bot.cluster.client import ClusterClient, connect
from bot.render.digest_json import digest_to_json
from bot.schedule.digest_job import DigestJob
from bot.settings import Settings
from bot.slack.digests import EVENT_TYPE, SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from bot.store.schema import KIND_LISTED, KIND_RECORDED, crashes
from bot.store.slots import POSTED
from bot.store.snapshots import PURPOSE_DIGEST
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_recorder import PANIC
from tests.integration.test_recorder_digest import ViewOnly
from tests.support.recording import RunningRecorder
from tests.support.settings import amend

OOM = {"every": "6h", "first_after": "4h", "exit_code": 137, "reason": "OOMKilled",
       "kind": "oom", "log": ["loading batch 1840233"]}


def busy_cluster() -> dict:
    """Rows of every shape a digest shows: a Deployment whose pods are replaced (vanished
    pods, new pods), one OOM-killed with probes and limits, one rolled out (two
    ReplicaSets), a StatefulSet without limits, a bare pod, pods with lifetime restarts
    that do not restart again, and quiet filler."""
    panic = {"every": "2h", "first_after": "30m", "exit_code": 2, "log": PANIC}
    return {"cluster": "shop", "nodes": ["n1", "n2"], "namespaces": {
        "shop": {"workloads": [
            {"kind": "Deployment", "name": "orders", "replicas": 3, "age": "5d",
             "replace_every": "5h",
             "containers": [{"name": "orders", "image": "orders:1.14.2", "memory": "256Mi",
                             "restarts": [4, 0, 2], "crash": panic}]},
            {"kind": "Deployment", "name": "billing", "replicas": 2, "age": "30d",
             "containers": [{"name": "billing", "image": "billing:3.2", "memory": "512Mi",
                             "liveness": "http:8080", "restarts": [0, 3], "crash": OOM}]},
            {"kind": "Deployment", "name": "web", "replicas": 2, "age": "9d",
             "rollout_after": "7h",
             "containers": [{"name": "web", "image": "web:2", "readiness": "http:80",
                             "crash": {"every": "3h", "first_after": "1h", "exit_code": 1,
                                       "log": ["Error: listen EADDRINUSE :::80"]}}]},
            {"kind": "StatefulSet", "name": "db", "replicas": 2, "age": "60d",
             "containers": [{"name": "db", "image": "postgres:16", "restarts": [1, 0],
                             "crash": {"every": "4h", "first_after": "2h", "exit_code": 1,
                                       "log": ["FATAL: could not open file"]}}]},
            {"kind": "Pod", "name": "debug", "age": "2d",
             "containers": [{"name": "shell", "image": "busybox", "restarts": 5,
                             "crash": {"every": "5h", "first_after": "3h",
                                       "exit_code": 127, "log": ["sh: foo: not found"]}}]},
            {"kind": "Deployment", "name": "cache", "replicas": 2, "age": "20d",
             "containers": [{"name": "cache", "image": "redis:7", "memory": "1Gi",
                             "restarts": [6, 0]}]},
        ], "healthy": {"deployments": 6, "replicas": 3}},
        "edge": {"healthy": {"deployments": 3, "replicas": 2, "prefix": "gw"}}}}


@dataclass
class Twin:
    """One side of the comparison: its own store, recorder and client on the same sim."""

    cluster: ClusterClient
    store: Store
    recorder: RunningRecorder


@dataclass
class Pair:
    sim: Sim
    settings: Settings
    counted: Twin  # digests counted from its recorder when it can vouch for the window
    listed: Twin  # digests that always list (its recorder only tells the stories)

    def settle(self) -> None:
        for twin in (self.counted, self.listed):
            twin.recorder.settle(self.sim.world.resource_version)

    def advance(self, hours: float) -> None:
        for _ in range(int(hours * 2)):  # half-hour steps: each crash captured in time
            self.sim.world.advance(timedelta(minutes=30))
            self.settle()

    def slot(self, twin: Twin, *, confirmed_by_post: bool = False, lists: bool = False
             ) -> PatrolRun:
        recorder = (twin.recorder.service if twin is self.counted and not lists
                    else ViewOnly(twin.recorder.service))
        return patrol(twin.cluster, twin.store, self.settings,
                      PatrolPlan.digest(confirmed_by_post=confirmed_by_post),
                      recorder=recorder)

    def pod_lists(self) -> list[str]:
        """Pod (and owner) lists served since the last `clear`: not the recorder's watch,
        not a read of one pod by name."""
        return [r for r in self.sim.server.requests
                if r.startswith("GET ") and "watch=" not in r
                and r.split("?")[0].rstrip("/").endswith(("/pods", "/replicasets", "/jobs"))]

    def clear(self) -> None:
        self.sim.server.api.requests.clear()


@pytest.fixture
def pair(tmp_path: Path, database_url: str) -> Iterator[Pair]:
    """The counted side on SQLite and on PostgreSQL; the listing side on SQLite."""
    with paired(tmp_path, database_url, busy_cluster()) as built:
        yield built


@contextmanager
def paired(tmp_path: Path, database_url: str, scenario: dict) -> Iterator[Pair]:
    sim = start_sim(tmp_path, scenario)
    settings = sim.settings()
    twins = []
    for url in (database_url, f"sqlite:///{tmp_path}/listed.db"):
        cluster = connect(settings)
        store = Store.open(url)
        twins.append(Twin(cluster, store, RunningRecorder(cluster, store, settings)))
    built = Pair(sim, settings, *twins)
    try:
        built.settle()
        yield built
    finally:
        for twin in twins:
            twin.recorder.stop()
            twin.cluster.close()
            twin.store.close()
        sim.server.stop()


def shown(run: PatrolRun) -> dict:
    """Everything a digest's views render (its JSON), less the one figure a recorded slot
    counts differently (workloads scanned: it counts controllers) and the record's ids."""
    data = digest_to_json(run.digest, run.diagnoses)
    data.pop("workloads_scanned")
    return json.loads(json.dumps(data, default=str), object_hook=lambda found: {
        k: v for k, v in found.items() if not k.endswith("_id")})


def rows_of(run: PatrolRun) -> list:
    """The digest's rows as values, each story as what it tells (its record's ids are
    its store's own)."""
    return [(replace(w, stories=()), [(s.identity, s.container, s.restarts, s.crashes,
                                       s.first_at, s.last_at, s.pods, s.new,
                                       s.known_at_install, s.summary) for s in w.stories])
            for w in run.digest.workloads]


def test_a_recorder_counted_digest_shows_what_a_listed_one_shows_slot_after_slot(
        pair: Pair) -> None:
    pair.advance(1)
    first = [pair.slot(pair.counted), pair.slot(pair.listed)]  # no baseline yet: lists
    assert [r.snapshot.kind for r in first if r.snapshot] == [KIND_LISTED, KIND_LISTED]
    kinds = []
    for hours in (3, 3, 4.5, 2, 6):  # replacements at 5h/10h, the rollout at 7h
        pair.advance(hours)
        pair.clear()
        # first a listing slot on the counted side's chain of recorded snapshots (pending:
        # not a baseline), as the daily reconciling list reads it
        reconciling = pair.slot(pair.counted, confirmed_by_post=True, lists=True)
        pair.clear()
        counted = pair.slot(pair.counted)
        assert pair.pod_lists() == []
        listed = pair.slot(pair.listed)
        assert shown(reconciling) == shown(listed)
        assert counted.snapshot is not None and listed.snapshot is not None
        kinds.append((counted.snapshot.kind, listed.snapshot.kind))
        assert shown(counted) == shown(listed)
        assert rows_of(counted) == rows_of(listed)
        assert counted.digest.vanished == listed.digest.vanished
        assert counted.digest.pods_scanned == listed.digest.pods_scanned
    assert kinds == [(KIND_RECORDED, KIND_LISTED)] * 5
    digest = counted.digest
    rows = {w.name: w for w in digest.workloads}
    assert digest.restarts_in_window > 0 and digest.vanished  # the test saw every shape
    assert {"orders", "billing", "web", "db", "debug"} <= set(rows)
    assert "cache" not in rows  # lifetime restarts only: nothing in the window
    assert "OOMKilled" in rows["billing"].flags
    assert "no memory limit" in rows["db"].flags
    assert any(w.vanished_restarts for w in digest.workloads)
    # a pending (not yet posted) slot counted from the record, then the listed one of the
    # same moment: both start at the last posted digest and agree
    pair.advance(2)
    pending = pair.slot(pair.counted, confirmed_by_post=True)
    again = pair.slot(pair.counted, confirmed_by_post=True)
    assert pending.snapshot is not None and pending.snapshot.kind == KIND_RECORDED
    assert shown(pending) == shown(again)
    assert shown(pending) == shown(pair.slot(pair.listed, confirmed_by_post=True))


def test_after_a_relist_the_next_slot_lists_and_reconciles_then_counts_again(
        pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    world, twin = pair.sim.world, pair.counted
    pair.advance(1)
    pair.slot(twin)
    pair.advance(3)
    pair.clear()
    run = pair.slot(twin)
    assert run.snapshot is not None and run.snapshot.kind == KIND_RECORDED
    assert pair.pod_lists() == []
    with world.lock:  # the watch breaks and its version expires: the recorder relists
        world.drop_watches()
        world.advance(timedelta(minutes=40))
        world.compact()
    pair.settle()
    assert twin.recorder.stats().relists >= 1
    pair.advance(3)
    with twin.store.engine.begin() as conn:  # the record misses db's restarts (at 6 h)
        conn.execute(sa.delete(crashes).where(crashes.c.workload_name == "db"))
    caplog.set_level(logging.WARNING, logger="restart_patrol.patrol")
    pair.clear()
    run = pair.slot(twin)
    assert run.snapshot is not None and run.snapshot.kind == KIND_LISTED
    assert any(r.endswith("/pods?limit=500") or "/pods?" in r for r in pair.pod_lists())
    rows = {w.name: w.restarts for w in run.digest.workloads}
    warnings = [r.getMessage() for r in caplog.records if "the pod list counts" in
                r.getMessage()]
    assert rows["db"] == 2  # its two pods
    assert warnings == ["cluster shop: workload shop/StatefulSet db: the pod list counts 2 "
                        "restarts in the window, the recorder 0; the digest posts 2"]
    pair.advance(2)
    pair.clear()
    run = pair.slot(twin)
    assert run.snapshot is not None and run.snapshot.kind == KIND_RECORDED
    assert pair.pod_lists() == []


def test_a_full_list_runs_at_least_once_a_day(pair: Pair) -> None:
    twin = pair.counted
    pair.advance(1)
    pair.slot(twin)
    kinds = []
    for _ in range(5):
        pair.advance(6)
        run = pair.slot(twin)
        assert run.snapshot is not None
        kinds.append(run.snapshot.kind)
    # slots at 7, 13, 19 h count from the record; at 25 h the listed one is 24 h old
    assert kinds == [KIND_RECORDED, KIND_RECORDED, KIND_RECORDED, KIND_LISTED, KIND_RECORDED]


def test_a_slot_with_more_pods_to_read_than_a_list_costs_lists_instead(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Reading pods one by one pays only while there are few of them: with more than
    1 in LISTED_PER_READ of the followed pods (at least MIN_READ_CAP) to read, the slot
    lists every pod, as cheap as it gets then, and shows the same rows."""
    scenario = busy_cluster()
    swarm = {"kind": "Deployment", "name": "swarm", "replicas": MIN_READ_CAP + 5, "age": "3d",
             "containers": [{"name": "worker", "image": "worker:1",
                             "crash": {"every": "2h", "first_after": "30m", "exit_code": 2,
                                       "log": PANIC}}]}
    scenario["namespaces"]["shop"]["workloads"].append(swarm)
    with paired(tmp_path, f"sqlite:///{tmp_path}/counted.db", scenario) as pair:
        assert read_cap(pair.counted.recorder.service.census()["shop"][0]) == MIN_READ_CAP
        pair.advance(1)
        pair.slot(pair.counted)
        pair.slot(pair.listed)
        pair.advance(3)
        caplog.set_level(logging.INFO, logger="restart_patrol.patrol")
        pair.clear()
        counted = pair.slot(pair.counted)
        assert counted.snapshot is not None and counted.snapshot.kind == KIND_LISTED
        assert any("/pods?" in r for r in pair.pod_lists())
        assert any(f"more than a list (at most {MIN_READ_CAP})" in r.getMessage()
                   for r in caplog.records)
        listed = pair.slot(pair.listed)
        assert shown(counted) == shown(listed)
        assert {w.name: w.restarts for w in counted.digest.workloads}["swarm"] >= \
            MIN_READ_CAP + 5


def test_without_the_recorder_running_every_slot_lists(pair: Pair) -> None:
    twin = pair.counted
    pair.advance(1)
    pair.slot(twin)
    pair.advance(3)
    twin.recorder.stop()  # not watching: it cannot vouch for the window
    pair.clear()
    run = pair.slot(twin)
    assert run.snapshot is not None and run.snapshot.kind == KIND_LISTED
    assert pair.pod_lists() != []


def test_the_digest_job_posts_slots_counted_from_its_recorder(
        pair: Pair, slack: FakeSlack) -> None:
    twin, settings = pair.counted, amend(pair.settings, SLACK_BOT_TOKEN=TOKEN,
                                         SLACK_API_URL=slack.base_url, PATROL_CHANNEL="CALL",
                                         PATROL_SCHEDULE="0 9 * * *")
    services = Services(settings, twin.cluster, twin.store)
    day0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    twin.store.slots.schedule_since(twin.cluster.name, "CALL", day0 - timedelta(days=1))
    now = [day0]

    def job() -> DigestJob:
        return DigestJob(twin.cluster, twin.store, settings,
                         SlackDigestPoster(services, "CALL"), owner="replica-a",
                         clock=lambda: now[0], recorder=twin.recorder.service)

    pair.advance(1)
    lists = []
    for day in range(3):
        now[0] = day0 + timedelta(days=day, seconds=5)
        pair.clear()
        job().run_slot(day0 + timedelta(days=day))
        lists.append(len(pair.pod_lists()))
        pair.advance(3)
    slots = twin.store.slots.history(twin.cluster.name, "CALL")
    assert [s.state for s in slots] == [POSTED] * 3
    assert lists[0] > 0 and lists[1:] == [0, 0]  # the first lists; then counted
    latest = twin.store.latest_snapshot(twin.cluster.name, purpose=PURPOSE_DIGEST)
    assert latest is not None and latest.kind == KIND_RECORDED
    assert latest.id == slots[-1].snapshot_id  # confirmed by Slack: the next baseline
    posted = [m for m in slack.messages("CALL")
              if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE]
    assert len(posted) == 3 and "orders" in json.dumps(posted[-1]["blocks"])
