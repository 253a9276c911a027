"""High availability: real `restart-patrol serve` processes (HTTP mode) with leader
election on a Lease in bot/sim, one PostgreSQL database and the fake Slack; also with two
DIGEST_CHANNELS team channels, each getting exactly its own digest once per slot.

A digest slot every 3 seconds (six-field PATROL_SCHEDULE) and a 2-second lease keep it
short. Checked: exactly one digest per slot; `kill -9` of the leader → a
standby takes the lease once it expires and posts the next slots; the restarts that happen
around the take-over are each recorded once; SIGTERM of the new leader → exit 0 within
10 s with the lease released, so the last replica takes over at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.patrol.timestamps import parse_api_time
from bot.slack.digests import EVENT_TYPE
from bot.store import Store
from bot.store.slots import POSTED
from tests.conftest import Sim, start_sim
from tests.e2e.test_slack_served import free_port
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_recorder import shop
from tests.support.processes import diagnosable, stop

LEASE = 2  # seconds
CHANNEL = "CDIGEST"
WAIT = 40.0  # seconds; each wait ends as soon as its condition holds


def wait_until(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Replica:
    def __init__(self, env: dict[str, str], tmp: Path, name: str) -> None:
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                env=diagnosable(env | {"PORT": str(self.port)}),
                stdout=out, stderr=subprocess.STDOUT, text=True)

    def healthy(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                        timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def holds(self, identity: str | None) -> bool:
        return identity is not None and identity.rsplit("_", 2)[1] == str(self.proc.pid)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Sim]:
    sim = start_sim(tmp_path, shop(every="1h"))
    yield sim
    sim.server.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_replicas_one_digest_per_slot_takeover_and_release(
        cluster: Sim, database_url: str, tmp_path: Path) -> None:
    slack = FakeSlack().start()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "PATROL_", "LEASE", "LEADER"))} | {
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": slack.base_url, "KUBECONFIG": str(cluster.kubeconfig),
        "DATABASE_URL": database_url, "PATROL_CHANNEL": CHANNEL,
        "PATROL_SCHEDULE": "*/3 * * * * *", "LEADER_ELECTION": "true",
        "LEASE_DURATION": str(LEASE), "LEASE_NAMESPACE": "default"}
    store = Store.open(database_url)
    crashes = store.history
    replicas = [Replica(env, tmp_path, name) for name in "ab"]

    def lease() -> dict:
        return cluster.world.get("leases", "default", "restart-patrol") or {"spec": {}}

    def holder() -> str | None:
        return lease()["spec"].get("holderIdentity")

    def digests() -> list[str]:
        return [m["metadata"]["event_payload"]["slot"] for m in slack.messages(CHANNEL)
                if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE]

    def recorded() -> list[int]:
        return sorted(c.restart_count for c in crashes.history(
            "shop", "shop", workload=("Deployment", "orders"), limit=100))

    try:
        for r in replicas:
            wait_until(r.healthy, "healthz")
        leader = wait_until(lambda: next((r for r in replicas if r.holds(holder())), None),
                            "a leader")
        replicas.append(Replica(env, tmp_path, "c"))  # a second standby, for the SIGTERM
        standbys = [r for r in replicas if r is not leader]
        wait_until(lambda: len(digests()) >= 2, "two digests from the first leader")
        cluster.world.advance(timedelta(hours=2))  # restarts 8 and 9, seen by the leader
        wait_until(lambda: recorded() == [8, 9], "restarts recorded by the first leader")

        leader.proc.kill()  # kill -9: no release
        leader.proc.wait()
        killed_at = datetime.now(UTC)
        last_renew = parse_api_time(lease()["spec"]["renewTime"])
        cluster.world.advance(timedelta(hours=2))  # restarts 10 and 11, while nobody leads
        second = wait_until(lambda: next((r for r in standbys if r.holds(holder())), None),
                            "a standby to take the lease")
        taken = lease()["spec"]
        took = parse_api_time(taken["acquireTime"]) - last_renew
        print(f"take-over {took.total_seconds():.2f} s after the last renewal "
              f"(lease {LEASE} s)")
        # never before the lease expired; after it by one retry period (0.27 s) plus the
        # scheduling latency of a loaded 2-core CI machine
        assert timedelta(seconds=LEASE) <= took <= timedelta(seconds=LEASE + 3)
        assert taken["leaseTransitions"] >= 1
        wait_until(lambda: any(datetime.fromisoformat(s) > killed_at for s in digests()),
                   "a digest of a slot after the kill, from the new leader")
        wait_until(lambda: recorded()[-1:] == [11], "the new leader's recorder to catch up")
        rows = crashes.history("shop", "shop", workload=("Deployment", "orders"), limit=100)
        counts = recorded()
        assert len(counts) == len(set(counts)) and counts[:2] == [8, 9]
        assert sum(c.restarts for c in rows) == 4  # 8 to 11: none lost, none twice

        third = next(r for r in standbys if r is not second)
        wait_until(third.healthy, "the second standby")
        sent = time.monotonic()
        out = stop(second.proc, 10, log=second.log)
        assert second.proc.returncode == 0, out
        print(f"SIGTERM → exit 0 in {time.monotonic() - sent:.2f} s")
        assert not second.holds(holder())  # released on the way out
        wait_until(lambda: third.holds(holder()), "the last replica to take over",
                   timeout=LEASE)  # at once: no lease duration to wait out

        slots = digests()
        assert len(slots) == len(set(slots)), f"a slot was posted twice: {slots}"
        posted = [s for s in store.slots.history("shop", CHANNEL) if s.state == POSTED]
        assert sorted(s.message_ts for s in posted) == sorted(
            m["ts"] for m in slack.messages(CHANNEL)
            if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE)
    finally:
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        store.close()
        slack.stop()


def test_leader_election_with_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PATROL_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "serve"], capture_output=True, text=True, timeout=60,
        env=env | {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "secret",
                   "LEADER_ELECTION": "true", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "LEADER_ELECTION=true needs" in proc.stderr
    assert "PostgreSQL" in proc.stderr


def two_teams() -> dict:
    """`shop/orders` (every hour) and `pay/ledger` (every 40 min), one team each."""
    world = shop(every="1h")
    ledger = {"kind": "Deployment", "name": "ledger", "replicas": 1, "age": "5d",
              "containers": [{"name": "ledger", "image": "ledger:2", "restarts": 1,
                              "crash": {"every": "40m", "first_after": "20m",
                                        "exit_code": 1, "log": ["fatal: ledger locked"]}}]}
    world["namespaces"]["pay"] = {"workloads": [ledger]}
    return world


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_team_channels_each_get_their_digest_once_per_slot_across_a_kill(
        tmp_path: Path, database_url: str) -> None:
    sim = start_sim(tmp_path, two_teams())
    slack = FakeSlack().start()
    teams = {"CTEAMSHOP": "shop", "CTEAMPAY": "pay"}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "PATROL_", "LEASE", "LEADER", "DIGEST_"))} | {
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": slack.base_url, "KUBECONFIG": str(sim.kubeconfig),
        "DATABASE_URL": database_url,
        "DIGEST_CHANNELS": ";".join(f"{ch}={ns}" for ch, ns in teams.items()),
        "PATROL_SCHEDULE": "*/3 * * * * *", "LEADER_ELECTION": "true",
        "LEASE_DURATION": str(LEASE), "LEASE_NAMESPACE": "default"}
    replicas = [Replica(env, tmp_path, name) for name in "ab"]

    def holder() -> str | None:
        lease = sim.world.get("leases", "default", "restart-patrol") or {"spec": {}}
        return lease["spec"].get("holderIdentity")

    def digests(channel: str) -> list[dict]:
        return [m for m in slack.messages(channel)
                if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE]

    def slots(channel: str) -> list[str]:
        return [m["metadata"]["event_payload"]["slot"] for m in digests(channel)]

    try:
        for r in replicas:
            wait_until(r.healthy, "healthz")
        leader = wait_until(lambda: next((r for r in replicas if r.holds(holder())), None),
                            "a leader")
        wait_until(lambda: all(len(slots(ch)) >= 2 for ch in teams),
                   "two digests in each team channel")
        sim.world.advance(timedelta(hours=2))
        leader.proc.kill()  # kill -9 mid-series: no release
        leader.proc.wait()
        killed_at = datetime.now(UTC)
        standby = next(r for r in replicas if r is not leader)
        wait_until(lambda: standby.holds(holder()), "the standby to take the lease")
        wait_until(lambda: all(any(datetime.fromisoformat(s) > killed_at for s in slots(ch))
                               for ch in teams),
                   "a slot after the kill in each team channel, from the new leader")
        out = stop(standby.proc, 10, log=standby.log)
        assert standby.proc.returncode == 0, out

        store = Store.open(database_url)
        try:
            for channel, namespace in teams.items():
                posted = slots(channel)
                assert len(posted) == len(set(posted)), f"{channel}: a slot twice: {posted}"
                recorded = [s for s in store.slots.history("shop", channel)
                            if s.state == POSTED]
                assert sorted(s.message_ts for s in recorded) == sorted(
                    m["ts"] for m in digests(channel))  # every post recorded, once
                other = next(ns for ns in teams.values() if ns != namespace)
                for message in digests(channel):  # its namespace, never the other team's
                    shown = " ".join((b.get("text") or {}).get("text", "")
                                     for b in message["blocks"])
                    assert f"*{namespace} / " in shown or "All quiet" in shown, shown
                    assert f"*{other} / " not in shown, shown
            # no catch-all configured: nothing went anywhere but the two team channels
            assert {m["channel"] for m in slack.messages()} <= set(teams)
        finally:
            store.close()
    finally:
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        slack.stop()
        sim.server.stop()
