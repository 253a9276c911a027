"""A slot's deadline: one point on the monotonic clock and one cancel switch, shared by
everything that works for the slot (its attempts, its Slack calls, their retries). Work
under a deadline starts nothing once it passed or was cancelled — that is how an
abandoned or stopped slot can never post later."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Deadline:
    """`at` is a `time.monotonic()` value; `cancelled` ends it early (stop, abandon)."""

    at: float
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left (0 once passed or cancelled)."""
        if self.cancelled.is_set():
            return 0.0
        return max(self.at - time.monotonic(), 0.0)

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0.0

    def sooner(self, seconds: float) -> Deadline:
        """The same deadline `seconds` earlier, cancelled together with this one."""
        return Deadline(self.at - seconds, self.cancelled)

    def cancel(self) -> None:
        self.cancelled.set()

    def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less: until the deadline passes or it is cancelled."""
        self.cancelled.wait(min(seconds, self.remaining()))
