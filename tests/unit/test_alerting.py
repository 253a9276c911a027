"""The pure rules of alert threads and silences (bot/patrol/alerting.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.patrol.alerting import (
    AlertedWorkload,
    AlertThread,
    Silence,
    lifted_by_new,
    reply_due,
    silence_for,
    silence_length,
)
from bot.patrol.history import CrashRecord

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
ORDERS = AlertedWorkload("c", "shop", "Deployment", "orders")
CRASH = CrashRecord("c", "shop", "orders-x", "uid", "app", "container", "Deployment",
                    "orders", 3, category="go-panic", fingerprint="f00d")


def silence(identity: str | None, hours: float = 1, **kw: object) -> Silence:
    return replace(Silence(1, ORDERS, identity, "U1", T0, T0 + timedelta(hours=hours), "why"),
                   **kw)


def thread(**kw: object) -> AlertThread:
    base = AlertThread(1, ORDERS, "C1", "app", "f00d", "1.0", T0, 1, T0, 7, None, 1)
    return replace(base, **kw)


def test_a_silence_quiets_its_crash_or_its_whole_workload_until_it_ends() -> None:
    now = T0 + timedelta(minutes=30)
    assert silence_for([silence("f00d")], CRASH, now) is not None
    assert silence_for([silence(None)], CRASH, now) is not None
    assert silence_for([silence("beef")], CRASH, now) is None
    assert silence_for([silence("f00d")], CRASH, T0 + timedelta(hours=1)) is None  # ended
    assert silence_for([silence("f00d", lifted_at=now)], CRASH, now) is None
    other = replace(silence(None), workload=replace(ORDERS, name="billing"))
    assert silence_for([other], CRASH, now) is None
    longest = silence_for([silence("f00d"), silence(None, 24)], CRASH, now)
    assert longest is not None and longest.identity is None


def test_a_new_crash_is_not_quieted_by_a_workload_silence_it_lifts() -> None:
    new = replace(CRASH, is_new=True)
    now = T0 + timedelta(minutes=5)
    assert silence_for([silence(None)], new, now) is None
    assert lifted_by_new([silence(None), silence("f00d")], new, now) == [silence(None)]
    assert lifted_by_new([silence(None)], CRASH, now) == []  # a repeat lifts nothing


def test_the_first_repeat_replies_then_at_most_one_reply_an_hour() -> None:
    assert not reply_due(thread(), T0)  # nothing since the alert
    assert reply_due(thread(count=2), T0 + timedelta(minutes=1))
    replied = thread(count=3, replied_at=T0 + timedelta(minutes=1), replied_count=2)
    assert not reply_due(replied, T0 + timedelta(minutes=59))
    assert reply_due(replied, T0 + timedelta(minutes=61))


def test_silence_lengths_are_the_menu_choices() -> None:
    assert silence_length("24h") == timedelta(hours=24)
    with pytest.raises(ValueError, match="1h, 24h, 7d"):
        silence_length("2w")
