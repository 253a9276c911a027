"""The one digest scheduler of a process: one APScheduler for every cluster and channel.

`DigestScheduler` is a runtime service, started once by the composition root. Each digest
*series* — one (cluster, channel), a `DigestJob` — is one APScheduler job on it
(`max_instances=1`, coalesced: a series never overlaps itself), added while this replica
leads that cluster and removed when it stops leading it (`series(job)` is that lifetime as
a service of the cluster's leadership runtime). A series added runs once at once: the
catch-up of a missed or unfinished slot. Per-channel digests (issue 16, DIGEST_CHANNELS)
are more series on the same scheduler.

Threads, all the runtime's: the scheduler's loop (`rp-digest-scheduler`), the pool its
jobs fire on (`rp-digest-fire-<n>`: each waits for its slot, at most until the slot's
deadline) and the pool the slots work on (`rp-digest-slot-<n>`). APScheduler's own
BackgroundScheduler and thread pool are not used: they start threads of their own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from bot.runtime import Runtime, Workers
from bot.schedule.daily import digest_trigger
from bot.schedule.digest_job import DigestJob
from bot.settings import Settings

log = logging.getLogger("restart_patrol.schedule")
MISFIRE_GRACE = 600  # seconds: a fire this late still runs (the job picks its slot itself)


class _PoolOnWorkers(BasePoolExecutor):  # type: ignore[misc]
    """APScheduler's pool executor on a runtime `Workers` pool (a concurrent.futures
    Executor), instead of a thread pool of its own."""

    def __init__(self, pool: Workers) -> None:
        super().__init__(pool)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing: the runtime stops the pool, in its place in the stop order and within
        its deadline (the jobs were told to stop first)."""


class _SchedulerOnRuntime(BlockingScheduler):  # type: ignore[misc]
    """APScheduler's scheduler with its loop in a runtime thread: what BackgroundScheduler
    does (start the base scheduler, then run the main loop in a thread), with the
    runtime's thread instead of one of its own."""

    def __init__(self, runtime: Runtime, **options: Any) -> None:
        self._runtime = runtime
        super().__init__(**options)

    def start(self, paused: bool = False) -> None:
        self._event = threading.Event()
        BaseScheduler.start(self, paused=paused)
        self._runtime.thread("digest-scheduler", self._main_loop)


class DigestScheduler:
    """The process's one digest scheduler (a runtime `Service`); see the module
    docstring. `series` is how many series may run at once (clusters × channels): it
    sizes the two pools."""

    name = "digest-scheduler"

    def __init__(self, settings: Settings, runtime: Runtime, *, series: int = 4) -> None:
        self.settings = settings
        self.trigger = digest_trigger(settings)  # a bad PATROL_SCHEDULE fails here
        self.timezone = ZoneInfo(settings.schedule.timezone)
        self._runtime = runtime
        self._size = max(series, 1)
        self._scheduler: _SchedulerOnRuntime | None = None
        self._slots: Workers | None = None
        self._jobs: dict[str, DigestJob] = {}

    def start(self) -> None:
        fires = self._runtime.executor("digest-fire", self._size)
        # slots left behind at their deadline may still hold a thread for a while
        self._slots = self._runtime.executor("digest-slot", 2 * self._size)
        scheduler = _SchedulerOnRuntime(
            self._runtime, timezone=self.timezone,
            executors={"default": _PoolOnWorkers(fires)},
            job_defaults={"max_instances": 1, "coalesce": True,
                          "misfire_grace_time": MISFIRE_GRACE})
        scheduler.start()
        self._scheduler = scheduler
        log.info("digest scheduled: %s (%s)", self.settings.schedule.cron,
                 self.settings.schedule.timezone)

    def stop(self, deadline: float) -> None:
        """Stop every series (their running slots are cancelled) and the scheduler's
        loop; returns at once (the runtime joins the threads and pools after)."""
        for job in list(self._jobs.values()):
            job.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def add(self, job: DigestJob) -> None:
        """Schedule a series: one job, run at each fire and once now (catch-up)."""
        if self._scheduler is None:
            raise RuntimeError("the digest scheduler is not running")
        self._jobs[job.series] = job
        self._scheduler.add_job(job.tick, self.trigger, kwargs={"workers": self._slots},
                                id=job.series, name=job.series, replace_existing=True,
                                next_run_time=datetime.now(self.timezone))
        log.info("digest series %s scheduled", job.series)

    def remove(self, job: DigestJob) -> None:
        """Unschedule a series and stop it (a running slot is cancelled: it sends nothing
        more)."""
        job.stop()
        self._jobs.pop(job.series, None)
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job.series)
        log.info("digest series %s unscheduled", job.series)

    def jobs(self) -> list[Any]:
        """APScheduler's jobs (one per series), for operators and tests."""
        return [] if self._scheduler is None else list(self._scheduler.get_jobs())

    def series(self, job: DigestJob) -> DigestSeries:
        """`job`'s time on this scheduler as a service: add it to the runtime of the
        cluster's leadership (`runtime.service(scheduler.series(job))`)."""
        return DigestSeries(self, job)


class DigestSeries:
    """One series while its cluster is led here (a runtime `Service`): `start` schedules
    it (with a catch-up run at once), `stop` unschedules it and cancels its running slot."""

    def __init__(self, scheduler: DigestScheduler, job: DigestJob) -> None:
        self.scheduler = scheduler
        self.job = job
        self.name = f"digest-{job.series}"

    def start(self) -> None:
        self.scheduler.add(self.job)

    def stop(self, deadline: float) -> None:
        self.scheduler.remove(self.job)
