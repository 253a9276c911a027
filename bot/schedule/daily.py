"""The morning digest: one APScheduler cron job (PATROL_SCHEDULE in PATROL_TIMEZONE), never
overlapping (max_instances=1, coalesce), posting to PATROL_CHANNEL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.errors import ConfigError
from bot.settings import Settings

log = logging.getLogger("restart_patrol.schedule")
JOB_ID = "daily-digest"


def digest_trigger(settings: Settings) -> CronTrigger:
    """The cron trigger, validated: a bad PATROL_SCHEDULE is a ConfigError at start-up."""
    try:
        return CronTrigger.from_crontab(settings.patrol_schedule,
                                        timezone=ZoneInfo(settings.patrol_timezone))
    except ValueError as exc:
        raise ConfigError(f"PATROL_SCHEDULE={settings.patrol_schedule!r} is not a cron "
                          f"expression: {exc}") from None


def start_scheduler(settings: Settings, job: Callable[[], None]) -> BackgroundScheduler:
    """Start the scheduler with the single digest job."""
    scheduler = BackgroundScheduler(timezone=ZoneInfo(settings.patrol_timezone))
    scheduler.add_job(job, digest_trigger(settings), id=JOB_ID, max_instances=1,
                      coalesce=True, replace_existing=True, misfire_grace_time=3600)
    scheduler.start()
    log.info("daily digest scheduled: %s (%s)", settings.patrol_schedule,
             settings.patrol_timezone)
    return scheduler


class DigestSchedule:
    """The digest's scheduler as a leader-only job: `start()` schedules, `stop()` returns
    at once (a running digest finishes or is abandoned on its own; see the job)."""

    def __init__(self, settings: Settings, job: Callable[[], None]) -> None:
        self.settings = settings
        self.job = job
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        self._scheduler = start_scheduler(self.settings, self.job)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
