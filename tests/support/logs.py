"""Watch what a logger says, from any thread: a test waits for the product's own log line
that proves a step happened (e.g. "attempt 1 failed") instead of sleeping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class LogWatch(logging.Handler):
    """Every record of one logger (and its children) while attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        with self._changed:
            return [r.getMessage() for r in self.records if r.levelno >= level]

    def tracebacks(self) -> list[str]:
        """Records logged with a traceback (exc_info), as 'logger: message'."""
        with self._changed:
            return [f"{r.name}: {r.getMessage()}" for r in self.records if r.exc_info]

    def wait_for(self, matches: Callable[[logging.LogRecord], bool],
                 timeout: float = 60) -> logging.LogRecord:
        """The first record that matches, waiting for it (fails with what was logged)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((r for r in self.records if matches(r)), None), timeout)
            if found is None:
                raise AssertionError(f"not logged within {timeout} s; logged: "
                                     f"{[r.getMessage() for r in self.records]}")
            return found


@contextmanager
def watching(name: str = "restart_patrol") -> Iterator[LogWatch]:
    """Attach a LogWatch to logger `name` for the block."""
    logger = logging.getLogger(name)
    watch = LogWatch()
    previous = logger.level
    logger.addHandler(watch)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(previous)
