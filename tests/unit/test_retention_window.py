"""How long retention keeps compact crash rows (issue 14.2): never less than the longest
window a digest can count, nor than the drill-down chart's 14 days."""

from __future__ import annotations

from datetime import timedelta

from bot.schedule.daily import longest_gap
from bot.service import keep_counts_for
from bot.settings import Settings
from tests.support.settings import amend


def settings(cron: str, catchup: str = "6h") -> Settings:
    return amend(Settings(), PATROL_SCHEDULE=cron, DIGEST_CATCHUP=catchup)


def test_the_longest_gap_of_a_schedule() -> None:
    assert longest_gap(settings("0 9 * * *")) == timedelta(days=1)
    assert longest_gap(settings("0 9 * * 1-5")) == timedelta(days=3)  # Friday to Monday
    assert longest_gap(settings("0 9 1 * *")) == timedelta(days=31)
    assert longest_gap(settings("*/3 * * * * *")) == timedelta(seconds=3)  # bounded work


def test_counts_are_kept_for_the_longest_window_or_the_charts_14_days() -> None:
    assert keep_counts_for(settings("0 9 * * *")) == timedelta(days=14)
    assert keep_counts_for(settings("0 9 1 * *", catchup="2d")) == timedelta(days=34)
    assert keep_counts_for(settings("0 9 * * 1", catchup="12d")) == timedelta(days=20)
