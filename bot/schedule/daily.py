"""The digest schedule's times: PATROL_SCHEDULE (cron) in PATROL_TIMEZONE as a validated
trigger, and the fire times a slot is picked from (`latest_fire`, `next_fire`). The one
scheduler that runs it for every cluster and channel is `bot.schedule.scheduler`.

Cron fields: the usual five (minute hour day month weekday, 0 or 7 = Sunday as in crontab),
or six with seconds first (tests use `*/3 * * * * *`). APScheduler 3 numbers weekdays from
Monday = 0, so numeric weekdays are translated to names here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.errors import ConfigError
from bot.settings import Settings

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DAYS = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


def _weekdays(field: str) -> str:
    """Crontab weekday numbers (0-7, Sunday = 0 and 7) → APScheduler day names."""
    parts: list[str] = []
    for part in field.split(","):
        match = _NUMERIC_DAYS.match(part)
        if match is None or part == "*":
            parts.append(part)  # names, ranges of names, "*": same meaning in both
            continue
        start_text, end_text, step_text = match.groups()
        start = 0 if start_text == "*" else int(start_text)
        end = 6 if start_text == "*" else int(end_text or start_text)
        step = int(step_text or 1)
        if not 0 <= start <= end <= 7 or step < 1:
            raise ValueError(f"weekday {part!r} is out of range 0-7")
        if end_text is None and step_text is not None and start_text != "*":
            end = 6  # "1/2": every other day from Monday
        parts.extend(_DAYS[d] for d in range(start, end + 1, step))
    return ",".join(dict.fromkeys(parts))


def digest_trigger(settings: Settings) -> CronTrigger:
    """The cron trigger, validated: a bad PATROL_SCHEDULE is a ConfigError at start-up."""
    fields = settings.schedule.cron.split()
    try:
        if len(fields) not in (5, 6):
            raise ValueError(f"wrong number of fields: {len(fields)}, expected 5 "
                             "(or 6 with seconds first)")
        second = fields.pop(0) if len(fields) == 6 else "0"
        minute, hour, day, month, weekday = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=_weekdays(weekday),
                           timezone=ZoneInfo(settings.schedule.timezone))
    except ValueError as exc:
        raise ConfigError(f"PATROL_SCHEDULE={settings.schedule.cron!r} is not a cron "
                          f"expression: {exc}") from None


def latest_fire(trigger: CronTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    """The last fire time in (now - lookback, now], or None. CronTrigger only looks
    forward, so probe back with doubling steps, then walk forward to the last one."""
    earliest = now - lookback
    step = timedelta(seconds=1)
    while True:
        start = max(now - step, earliest)
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is not None and fire <= now:
            while True:
                following = trigger.get_next_fire_time(fire, fire)
                if following is None or following > now:
                    return fire
                fire = following
        if start <= earliest:
            return None
        step *= 2


def next_fire(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`."""
    fire: datetime | None = trigger.get_next_fire_time(after, after)
    return fire


def longest_gap(settings: Settings, *, over: timedelta = timedelta(days=35)) -> timedelta:
    """The longest time between two digests of PATROL_SCHEDULE (looked at over five
    weeks, or its first 2,000 fires): with DIGEST_CATCHUP, how far back a digest's window
    can reach."""
    trigger = digest_trigger(settings)
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo(settings.schedule.timezone))
    fire = next_fire(trigger, start)
    longest = timedelta(0)
    for _ in range(2_000):  # a schedule of every few seconds: its gaps are short anyway
        if fire is None or fire - start >= over:
            break
        following = next_fire(trigger, fire)
        if following is None:
            break
        longest = max(longest, following - fire)
        fire = following
    return longest or over
