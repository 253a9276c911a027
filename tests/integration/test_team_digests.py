"""Team routing of the digest (DIGEST_CHANNELS): each team channel gets its own digest of
the namespaces it claims, PATROL_CHANNEL the catch-all of whatever no team claims, each
channel's window starting at its own previous digest; against bot/sim and the fake Slack
over HTTP, series built as the composition root builds them (bot.service)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.cluster.client import ClusterClient, connect
from bot.patrol.routing import ChannelScope, Routes
from bot.schedule.digest_job import DigestJob
from bot.service import digest_channels, digest_routes
from bot.slack.digests import EVENT_TYPE, SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_recorder import PANIC
from tests.support.settings import amend

PAY, SHOP, ALL = "CPAY", "CSHOP", "CALL"


def crashing(name: str, every: str) -> dict:
    return {"kind": "Deployment", "name": name, "replicas": 1, "age": "5d",
            "containers": [{"name": name, "image": f"{name}:1", "restarts": 3,
                            "crash": {"every": every, "first_after": "10m", "exit_code": 2,
                                      "log": PANIC}}]}


def teams_world() -> dict:
    """Three namespaces crashing at different rates: payments every hour, shop-web every
    30 min, batch every 2 h."""
    return {"cluster": "prod", "nodes": ["n1"], "namespaces": {
        "payments": {"workloads": [crashing("ledger", "1h")]},
        "shop-web": {"workloads": [crashing("cart", "30m")]},
        "batch": {"workloads": [crashing("nightly", "2h")]}}}


@pytest.fixture
def teams_sim(tmp_path: Path) -> Iterator[Sim]:
    sim = start_sim(tmp_path, teams_world())
    yield sim
    sim.server.stop()


class Teams:
    """The digest series of one cluster for DIGEST_CHANNELS CPAY and CSHOP plus the
    PATROL_CHANNEL catch-all, built like `bot.service.cluster_jobs` builds them."""

    def __init__(self, sim: Sim, slack: FakeSlack, tmp_path: Path) -> None:
        self.sim, self.slack = sim, slack
        self.settings = amend(
            sim.settings(), SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.base_url,
            PATROL_CHANNEL=ALL, DIGEST_CHANNELS=f"{PAY}=payments;{SHOP}=prod/shop-*",
            PATROL_SCHEDULE="0 */3 * * *", DATABASE_URL=f"sqlite:///{tmp_path}/teams.db")
        self.cluster: ClusterClient = connect(self.settings)
        self.store = Store.open(self.settings.store.database_url)
        services = Services(self.settings, self.cluster, self.store)
        routes = digest_routes(self.settings)
        self.jobs: dict[str, DigestJob] = {}
        for channel in digest_channels(routes, self.cluster.name):
            poster = SlackDigestPoster(
                services, channel, scope=ChannelScope(routes, channel, "prod").describe())
            self.jobs[channel] = DigestJob(self.cluster, self.store, self.settings, poster,
                                           owner="test", clock=self.now)

    def now(self) -> datetime:
        return self.sim.world.now

    def post(self, channel: str, slot: datetime) -> dict:
        """Run `channel`'s slot at `slot` and return the digest it posted there."""
        self.jobs[channel].run_slot(slot)
        posted = [m for m in self.slack.messages(channel)
                  if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
                  and m["metadata"]["event_payload"]["slot"] == slot.isoformat()]
        assert len(posted) == 1, f"{channel} slot {slot}: {len(posted)} posts"
        return posted[0]

    def close(self) -> None:
        self.store.close()
        self.cluster.close()


def rows(message: dict) -> dict[str, int]:
    """`namespace / workload` → the window's restarts, from the posted blocks."""
    found: dict[str, int] = {}
    for block in message["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        m = re.match(r"\*([\w-]+) / ([\w-]+)\* \(\w+\)  `\+(\d+)`", text)
        if m:
            found[f"{m[1]}/{m[2]}"] = int(m[3])
    return found


def window(message: dict) -> str:
    return next(e["text"] for b in message["blocks"] if b["type"] == "context"
                for e in b["elements"] if e["text"].startswith("Window"))


def test_each_team_channel_gets_its_own_namespaces_and_its_own_window(
        teams_sim: Sim, slack: FakeSlack, tmp_path: Path) -> None:
    teams = Teams(teams_sim, slack, tmp_path)
    try:
        assert sorted(teams.jobs) == sorted([PAY, SHOP, ALL])  # teams first, then catch-all
        first = teams.now().replace(minute=0, second=0, microsecond=0)
        for channel in teams.jobs:  # the baselines
            teams.post(channel, first)
        teams_sim.world.advance(timedelta(hours=3))
        second = first + timedelta(hours=3)
        pay = teams.post(PAY, second)
        assert rows(pay) == {"payments/ledger": 3}  # its namespace only, 3 h at 1/h
        assert "payments" in pay["blocks"][0]["text"]["text"]  # the title names its share

        teams_sim.world.advance(timedelta(hours=1))
        # CSHOP's window starts at its own previous digest (3 h before `second`), not at
        # CPAY's newer one: a shared baseline would make this row +2, or no row at all
        shop = teams.post(SHOP, second)
        assert rows(shop) == {"shop-web/cart": 8}  # every 30 min over 4 h
        catch_all = teams.post(ALL, second)
        assert rows(catch_all) == {"batch/nightly": 2}  # what no team claims
        assert "namespaces no team claims" in catch_all["blocks"][0]["text"]["text"]
        assert window(shop) != window(pay)

        for channel in teams.jobs:  # a second run of the same slot posts nothing
            teams.jobs[channel].run_slot(second)
            slots = [m["metadata"]["event_payload"]["slot"] for m in slack.messages(channel)
                     if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE]
            assert len(slots) == len(set(slots)) == 2
    finally:
        teams.close()


def test_a_team_whose_patterns_name_another_cluster_has_no_series_here() -> None:
    routes = Routes({"CEAST": ("east/*",), "CANY": ("payments",), "CWEST": ("west/pay-*",)},
                    "CALL")
    assert digest_channels(routes, "west") == ["CANY", "CWEST", "CALL"]
    assert digest_channels(routes, "east") == ["CEAST", "CANY", "CALL"]
    assert digest_channels(Routes({"CEAST": ("east/*",)}, None), "west") == []


def test_digest_channels_alone_start_the_digest_and_alerts(teams_sim: Sim) -> None:
    from bot.service import check_settings

    settings = amend(teams_sim.settings(), SLACK_BOT_TOKEN=TOKEN,
                     SLACK_SIGNING_SECRET="s", DIGEST_CHANNELS=f"{PAY}=payments",
                     ALERT_NEW_CRASHES="true", PATROL_SCHEDULE="not a schedule")
    with pytest.raises(Exception, match="PATROL_SCHEDULE"):  # the digest is on: checked
        check_settings(settings)
    check_settings(amend(settings, PATROL_SCHEDULE="0 9 * * *"))  # alerts need no catch-all


def test_a_team_channel_that_may_see_nothing_is_named_at_start() -> None:
    from bot.service import unheard_teams
    from bot.slack.access import Access

    routes = Routes({"CPAY": ("payments",), "CWEB": ("shop-*",), "COPS": ("*",)}, "CALL")
    rules = {"CPAY": ("payments",), "COPS": ("*",)}
    assert unheard_teams(routes, Access(rules)) == ["CWEB"]
    assert unheard_teams(routes, Access(None)) == []  # no rules: every channel sees all
