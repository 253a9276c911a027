"""A flight recorder running in a runtime of its own, as `serve` and `record` run it, for
tests that drive the simulated cluster and read what was recorded."""

from __future__ import annotations

from datetime import timedelta

from bot.cluster.client import ClusterClient
from bot.recording.service import NewCrash, RecorderService, RecorderStats
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store import Store
from tests.support.waiting import wait_until


def settled(service: RecorderService, resource_version: int, timeout: float = 20.0) -> None:
    """Wait until the recorder delivered `resource_version` and stored all it found."""
    def done() -> bool:
        stats = service.stats()
        return stats.resource_version >= resource_version and stats.pending == 0

    wait_until(done, f"the recorder to store everything up to version {resource_version}: "
               f"{service.stats()}", timeout)


class RunningRecorder:
    """`RecorderService` started in its own runtime; `settle()` waits for a sim version."""

    def __init__(self, cluster: ClusterClient, store: Store, settings: Settings, *,
                 on_new_crash: NewCrash | None = None, watch_seconds: int = 30,
                 keep_counts_for: timedelta = timedelta(days=14),
                 heartbeat: float = 30.0) -> None:
        self.settings = settings
        self.runtime = Runtime("test-recorder")
        self.service = self.runtime.service(RecorderService(
            cluster, store, settings, self.runtime, on_new_crash=on_new_crash,
            keep_counts_for=keep_counts_for, watch_seconds=watch_seconds,
            heartbeat=heartbeat))

    def settle(self, resource_version: int, timeout: float = 20.0) -> None:
        """Everything the sim published up to `resource_version` is recorded."""
        settled(self.service, resource_version, timeout)

    def stats(self) -> RecorderStats:
        return self.service.stats()

    def stop(self) -> None:
        self.runtime.stop()
