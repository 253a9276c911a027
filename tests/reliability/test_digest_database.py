"""The digest while its database goes away (a throwaway PostgreSQL, stopped and started):
a slot retries within its budget, gives up by telling the channel once, never lets a
traceback escape, and never posts twice; `/readyz` follows the database."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.schedule.digest_job import Retry
from bot.store.slots import POSTED
from tests.conftest import Sim
from tests.fakes.slack_api import FakeSlack
from tests.integration.test_slots import CHANNEL, DAY0, Rig
from tests.reliability.conftest import Held
from tests.reliability.slack_served import served_bot
from tests.reliability.test_digest_faults import pod1_row, run_day
from tests.support.logs import watching
from tests.support.throwaway_pg import ThrowawayPostgres
from tests.support.waiting import wait_until

PATIENT = Retry(attempts=10_000, first=0.05, cap=0.2)  # the slot's deadline is the budget


def notices(slack: FakeSlack) -> list[str]:
    """Messages in the digest channel that are not digests (failure notices)."""
    return [slack.text_of(m) for m in slack.messages(CHANNEL) if not m.get("metadata")]


@pytest.fixture
def day_one(sim: Sim, slack: FakeSlack, throwaway_pg: ThrowawayPostgres) -> Iterator[Rig]:
    """The digest on the throwaway database: day 0 posted, a day of crashes later, day 1's
    slot due now."""
    rig = Rig(sim, slack, throwaway_pg.url)
    try:
        rig.schedule_began()
        run_day(rig, 0)
        rig.sim.world.advance(timedelta(days=1))
        rig.now = DAY0 + timedelta(days=1, seconds=1)
        yield rig
    finally:
        rig.close()


def test_a_database_outage_during_a_slot_is_retried_within_its_budget(
        day_one: Rig, slack: FakeSlack, throwaway_pg: ThrowawayPostgres, held: Held) -> None:
    held("database stopped as a digest slot begins, started again after its first attempt",
         "the slot retried within its budget and posted once; no traceback; no notice")
    job = day_one.job(owner="day-1", retry=PATIENT)
    with watching() as logs:
        throwaway_pg.stop()
        ticking = threading.Thread(target=job.tick, args=(day_one.workers,))
        ticking.start()
        failed = logs.wait_for(lambda r: "attempt 1:" in r.getMessage())
        throwaway_pg.start()
        ticking.join()
    assert "connection" in failed.getMessage()  # it was the database that failed
    assert logs.tracebacks() == []
    assert day_one.states() == {DAY0: POSTED, DAY0 + timedelta(days=1): POSTED}
    _first, last = day_one.digests()
    assert "`+3`" in pod1_row(last)
    assert notices(slack) == []


def test_a_database_down_for_the_whole_slot_is_told_once(
        day_one: Rig, slack: FakeSlack, throwaway_pg: ThrowawayPostgres, held: Held) -> None:
    held("database down for a whole digest slot (throwaway PostgreSQL)",
         "the channel told once, naming the cluster and the database; no traceback; the "
         "next digest covers both days")
    throwaway_pg.stop()
    with watching() as logs:
        day_one.job(owner="day-1", retry=Retry(attempts=3, first=0.01, cap=0.02)).tick(
            day_one.workers)
    assert logs.tracebacks() == []
    assert len([m for m in logs.messages() if "attempt" in m]) == 2  # then it gave up
    (told,) = notices(slack)
    assert "*sim-qld2*" in told and "2026-11-03 09:00 UTC" in told
    assert "could not read the digest schedule" in told and "connection" in told
    assert len(day_one.digests()) == 1
    throwaway_pg.start()
    day_one.sim.world.advance(timedelta(days=1))
    run_day(day_one, 2)
    _first, last = day_one.digests()
    assert "`+6`" in pod1_row(last) and "(2d)" in slack.text_of(last)
    assert day_one.states() == {DAY0: POSTED, DAY0 + timedelta(days=2): POSTED}
    assert len(notices(slack)) == 1


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        with err:
            return err.code


def store_retries(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    found = re.search(r'^restart_patrol_digest_retries_total\{cause="store"\} (\S+)$', text,
                      re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_serve_through_a_database_outage_posts_each_slot_once(
        tmp_path: Path, sim: Sim, slack: FakeSlack, throwaway_pg: ThrowawayPostgres,
        held: Held) -> None:
    held("database stopped under `serve` while a digest slot is due (every 10 s)",
         "/readyz 503 → 200; the slot retried until the database was back; each slot "
         "posted once; no traceback")
    with served_bot(tmp_path, sim, slack, PATROL_CHANNEL=CHANNEL,
                    PATROL_SCHEDULE="*/10 * * * * *", DATABASE_URL=throwaway_pg.url) as bot:
        assert http_status(f"{bot.url}/readyz") == 200
        throwaway_pg.stop()
        wait_until(lambda: http_status(f"{bot.url}/readyz") == 503, "/readyz to say 503")
        wait_until(lambda: store_retries(f"{bot.url}/metrics") >= 1,
                   "a digest attempt to fail on the database")
        throwaway_pg.start()
        wait_until(lambda: http_status(f"{bot.url}/readyz") == 200, "/readyz to say 200")
        slack.wait_for(lambda: slack.messages(CHANNEL))
    digests = [m for m in slack.messages(CHANNEL) if m.get("metadata")]
    slots = [m["metadata"]["event_payload"]["slot"] for m in digests]
    assert digests and len(slots) == len(set(slots))  # each slot posted once
    assert notices(slack) == []
