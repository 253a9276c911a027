"""One digest scheduler for every cluster and channel (bot/schedule/scheduler.py): one
APScheduler on the runtime's threads, one non-overlapping job per (cluster, channel)
series, added and removed with the cluster's leadership; against bot/sim and the fake
Slack over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cluster.client import ClusterClient, connect
from bot.errors import ConfigError
from bot.runtime import Runtime
from bot.schedule.digest_job import DigestJob
from bot.schedule.scheduler import DigestScheduler
from bot.slack.digests import EVENT_TYPE, SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.settings import amend

CLUSTERS = ("east", "west")
CHANNELS = ("CTEAMA", "CTEAMB")


class Fleet:
    """Two clusters (two names for the simulated one), one store, one runtime."""

    def __init__(self, sim: Sim, slack: FakeSlack, tmp_path: Path, schedule: str,
                 timezone: str = "UTC") -> None:
        self.settings = amend(sim.settings(), SLACK_BOT_TOKEN=TOKEN,
                              SLACK_API_URL=slack.base_url, PATROL_SCHEDULE=schedule,
                              PATROL_TIMEZONE=timezone,
                              DATABASE_URL=f"sqlite:///{tmp_path}/fleet.db")
        self.clusters: list[ClusterClient] = [
            connect(amend(self.settings, CLUSTER_NAME=name)) for name in CLUSTERS]
        self.store = Store.open(self.settings.store.database_url)
        self.runtime = Runtime("scheduler-test")

    def jobs(self, began: datetime) -> list[DigestJob]:
        """One job per (cluster, channel), as the composition root builds them."""
        made = []
        for cluster in self.clusters:
            services = Services(self.settings, cluster, self.store)
            for channel in CHANNELS:
                self.store.slots.schedule_since(cluster.name, channel, began)
                made.append(DigestJob(cluster, self.store, self.settings,
                                      SlackDigestPoster(services, channel),
                                      owner=f"test/{cluster.name}"))
        return made

    def close(self) -> None:
        self.runtime.stop()
        self.store.close()
        for cluster in self.clusters:
            cluster.close()


MakeFleet = Callable[..., Fleet]


@pytest.fixture
def make_fleet(sim: Sim, slack: FakeSlack, tmp_path: Path) -> Iterator[MakeFleet]:
    made: list[Fleet] = []

    def build(schedule: str, timezone: str = "UTC") -> Fleet:
        made.append(Fleet(sim, slack, tmp_path, schedule, timezone))
        return made[-1]

    yield build
    for fleet in made:
        fleet.close()


def test_one_scheduler_runs_one_non_overlapping_job_per_cluster_and_channel(
        make_fleet: MakeFleet) -> None:
    fleet = make_fleet("30 8 * * 1-5", "Australia/Brisbane")
    scheduler = fleet.runtime.service(DigestScheduler(fleet.settings, fleet.runtime,
                                                      series=4))
    jobs = fleet.jobs(datetime.now(UTC))
    series = [fleet.runtime.service(scheduler.series(job)) for job in jobs]
    scheduled = {job.id: job for job in scheduler.jobs()}
    assert sorted(scheduled) == ["east/CTEAMA", "east/CTEAMB", "west/CTEAMA", "west/CTEAMB"]
    for job in scheduled.values():
        assert job.max_instances == 1 and job.coalesce
        fire = job.trigger.get_next_fire_time(None, datetime(2026, 11, 7, tzinfo=UTC))
        assert (fire.hour, fire.minute, str(fire.tzinfo)) == (8, 30, "Australia/Brisbane")
        assert fire.weekday() == 0  # Saturday the 7th → Monday: weekdays only
    threads = fleet.runtime.threads()
    assert threads.count("rp-digest-scheduler") == 1
    assert not [t for t in threads if t.startswith("APScheduler")]  # no thread of its own
    series[0].stop(0)  # east stops leading: its series goes, the others stay
    assert sorted(j.id for j in scheduler.jobs()) == ["east/CTEAMB", "west/CTEAMA",
                                                      "west/CTEAMB"]
    assert jobs[0].stopping.is_set()


def test_a_bad_schedule_is_refused_before_anything_starts(sim: Sim) -> None:
    with Runtime("bad-schedule") as runtime, pytest.raises(ConfigError,
                                                           match="PATROL_SCHEDULE"):
        DigestScheduler(amend(sim.settings(), PATROL_SCHEDULE="every morning"), runtime)


def test_every_series_posts_its_own_slot_once(make_fleet: MakeFleet, slack: FakeSlack
                                              ) -> None:
    fleet = make_fleet("*/2 * * * * *")
    scheduler = fleet.runtime.service(DigestScheduler(fleet.settings, fleet.runtime,
                                                      series=4))
    for job in fleet.jobs(datetime.now(UTC) - timedelta(minutes=1)):
        fleet.runtime.service(scheduler.series(job))

    def posted() -> dict[tuple[str, str], list[str]]:
        by_series: dict[tuple[str, str], list[str]] = {}
        for message in slack.messages():
            marker = message.get("metadata") or {}
            if marker.get("event_type") == EVENT_TYPE:
                by_series.setdefault((marker["event_payload"]["cluster"],
                                      message["channel"]), []).append(
                    marker["event_payload"]["slot"])
        return by_series

    slack.wait_for(lambda: len(posted()) == 4)
    fleet.runtime.stop()
    everything = posted()
    assert sorted(everything) == [(c, ch) for c in CLUSTERS for ch in CHANNELS]
    for slots in everything.values():
        assert len(slots) == len(set(slots))  # each slot of a series once
