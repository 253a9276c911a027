"""Slot times from PATROL_SCHEDULE: crontab weekdays, seconds, the latest due slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import ConfigError
from bot.schedule.daily import digest_trigger, latest_fire, next_fire
from bot.settings import Settings, load_settings
from tests.support.settings import amend

MONDAY = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def trigger(schedule: str, timezone: str = "UTC"):
    return digest_trigger(amend(Settings(), PATROL_SCHEDULE=schedule,
                                  PATROL_TIMEZONE=timezone))


@pytest.mark.parametrize(("weekdays", "expected"), [
    ("1-5", [0, 1, 2, 3, 4]), ("0", [6]), ("7", [6]), ("0,6", [5, 6]), ("*/2", [1, 3, 5, 6]),
    ("mon-fri", [0, 1, 2, 3, 4]), ("5-7", [4, 5, 6]), ("*", [0, 1, 2, 3, 4, 5, 6]),
])
def test_crontab_weekdays_keep_their_meaning(weekdays: str, expected: list[int]) -> None:
    cron = trigger(f"0 9 * * {weekdays}")
    days, fire = set(), MONDAY
    for _ in range(14):
        fire = next_fire(cron, fire)
        days.add(fire.weekday())
    assert sorted(days) == expected


def test_six_fields_put_seconds_first() -> None:
    cron = trigger("*/20 * * * * *")
    assert next_fire(cron, MONDAY) == MONDAY + timedelta(seconds=20)


@pytest.mark.parametrize("bad", ["every morning", "0 9 * *", "0 9 * * 8", "1 2 3 4 5 6 7"])
def test_bad_schedules_are_one_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="PATROL_SCHEDULE"):
        trigger(bad)


def test_latest_fire_within_the_lookback() -> None:
    daily = trigger("30 8 * * *", "Australia/Brisbane")  # 22:30 UTC
    at = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
    assert latest_fire(daily, at, timedelta(hours=1)) == datetime(2026, 11, 2, 22, 30,
                                                                  tzinfo=UTC)
    assert latest_fire(daily, at, timedelta(minutes=20)) is None
    assert latest_fire(daily, at + timedelta(days=1), timedelta(days=3)) == datetime(
        2026, 11, 3, 22, 30, tzinfo=UTC)
    every_second = trigger("* * * * * *")
    assert latest_fire(every_second, MONDAY + timedelta(microseconds=5),
                       timedelta(hours=6)) == MONDAY


@pytest.mark.parametrize(("raw", "expected"), [
    ("", timedelta(hours=6)), ("0", timedelta(0)), ("90", timedelta(seconds=90)),
    ("30m", timedelta(minutes=30)), ("1d", timedelta(days=1))])
def test_digest_catchup_setting(raw: str, expected: timedelta) -> None:
    assert load_settings({"DIGEST_CATCHUP": raw}).schedule.catchup == expected


def test_a_bad_digest_catchup_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DIGEST_CATCHUP"):
        load_settings({"DIGEST_CATCHUP": "soon"})
