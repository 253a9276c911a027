"""The runtime: one owner for every thread, pool, scheduler and server of a process.

Whatever runs in the background is started through a `Runtime` (or a `Workers` pool it
made), so one object knows all of it, names it (`rp-<name>`: the thread list of a process
is evidence) and stops it. `stop()` stops everything in reverse start order under one
deadline (`STOP_SECONDS` from the start of the stop), so SIGTERM ends the process within
10 s whatever is in flight; the Deployment's grace period is 20 s. The runtime installs
the process's only signal handler (`install_signals`).

Every thread is a daemon: a thread that will not finish (a request stuck on a slow
server) cannot hold the process at exit. That is why `Workers` is a small pool of its own
and not the stdlib's `ThreadPoolExecutor`: the stdlib joins its (non-daemon) workers at
interpreter exit, and offers no way to give up on a running task — a drill-down stuck in
a slow `pods/log` kept `serve` alive 58.5 s after SIGTERM. A `Workers` task that does not
finish by the deadline is abandoned, and its `on_abandon` callback runs (e.g. "restarting —
ask again in a minute" to the asker). `Workers` is a `concurrent.futures.Executor`, so
libraries that take one (Bolt's listener executor, APScheduler's pool executor) run on it.

Work whose life is shorter than the process (the leader-only jobs of one cluster) gets a
`child()` runtime: stopped on its own when leadership is lost, or with its parent.

Standard library only: every layer may import this module.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol, TypeVar

log = logging.getLogger("restart_patrol.runtime")

STOP_SECONDS = 8.0  # the whole shutdown; the process exits well within 10 s of SIGTERM
ABANDON_RESERVE = 2.0  # of a pool's stop: the time its on_abandon callbacks get
PREFIX = "rp-"
SIGNAL_POLL = 0.2  # seconds: the longest a caught signal waits for the main thread

T = TypeVar("T")


class RuntimeStopped(RuntimeError):
    """Work was handed to a runtime (or pool) that is stopping or stopped."""


class WorkersFull(RuntimeError):
    """A pool's queue is full (`queue=` bound); the caller decides what to say."""


class Service(Protocol):
    """Something the runtime starts now and stops at shutdown."""

    name: str

    def start(self) -> object:
        """Start and return once running (background work goes through the runtime);
        whatever it returns is ignored."""

    def stop(self, deadline: float) -> None:
        """Stop; must return by `deadline` (time.monotonic()), whatever is in flight."""


S = TypeVar("S", bound=Service)


def _left(deadline: float) -> float:
    """Seconds until `deadline`, for a bounded wait (0 when past; a day at most)."""
    return min(max(0.0, deadline - time.monotonic()), 86_400.0)


@dataclass(slots=True, eq=False)
class _Task:
    future: Future[Any]
    run: Callable[[], Any]
    on_abandon: Callable[[], None] | None
    thread: threading.Thread | None = None  # the worker running it


class Workers(Executor):
    """A bounded pool of daemon threads named `rp-<name>-<n>`, started as work arrives.

    `submit(fn, *args, on_abandon=None, **kwargs)` queues `fn(*args, **kwargs)` and returns
    its Future. `stop(deadline)`: no new tasks; queued tasks are cancelled and abandoned at
    once; running tasks get until `deadline - reserve`, then are abandoned (their threads
    keep running as daemons, holding nothing). Abandoning calls the task's `on_abandon`
    (each in its own thread, joined until the deadline). A task that finishes after being
    abandoned still finishes: its callback must say something true either way.
    """

    def __init__(self, name: str, workers: int, *, queue: int | None = None,
                 reserve: float = ABANDON_RESERVE) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.name = name
        self.size = workers
        self.bound = queue
        self.reserve = reserve
        self._queue: deque[_Task] = deque()
        self._running: set[_Task] = set()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False
        self._cond = threading.Condition()

    # ---- Executor -----------------------------------------------------------------
    def submit(self, fn: Callable[..., T], /, *args: Any,  # type: ignore[override]
               on_abandon: Callable[[], None] | None = None, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        task = _Task(future, lambda: fn(*args, **kwargs), on_abandon)
        with self._cond:
            if self._closed:
                raise RuntimeStopped(f"pool {self.name} is stopping")
            if self.bound is not None and len(self._queue) >= self.bound:
                raise WorkersFull(f"pool {self.name}: {len(self._queue)} tasks waiting")
            self._queue.append(task)
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{PREFIX}{self.name}-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            else:
                self._cond.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Executor's shutdown (for libraries that call it): a stop within the reserve."""
        self.stop(time.monotonic() + (self.reserve if wait else 0.0))

    # ---- the runtime's side ---------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def busy(self) -> int:
        """Tasks running or waiting now."""
        with self._cond:
            return len(self._running) + len(self._queue)

    def stop(self, deadline: float) -> None:
        with self._cond:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        abandoned = [t for t in queued if t.future.cancel()]
        finish_by = deadline - self.reserve
        with self._cond:
            while self._running and time.monotonic() < finish_by:
                self._cond.wait(min(_left(finish_by), 0.5))
            abandoned += list(self._running)
        if abandoned:
            log.warning("%s: %d task(s) abandoned at shutdown", self.name, len(abandoned))
            self._abandon(abandoned, deadline)
        stuck = {t.thread for t in abandoned}
        for thread in self._threads:
            if thread not in stuck:  # idle workers end at once; stuck ones are left
                thread.join(_left(deadline))

    def _abandon(self, tasks: list[_Task], deadline: float) -> None:
        callbacks = [t.on_abandon for t in tasks if t.on_abandon is not None]
        threads = [threading.Thread(target=_guarded(callback, f"{self.name}: on_abandon"),
                                    daemon=True, name=f"{PREFIX}{self.name}-abandon")
                   for callback in callbacks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(_left(deadline))

    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                while not self._queue and not self._closed:
                    self._cond.wait()
                self._idle -= 1
                if not self._queue:
                    return  # closed and nothing left
                task = self._queue.popleft()
                if not task.future.set_running_or_notify_cancel():
                    continue
                task.thread = threading.current_thread()
                self._running.add(task)
            try:
                task.future.set_result(task.run())
            except BaseException as exc:
                log.warning("%s: a task failed", self.name, exc_info=exc)
                task.future.set_exception(exc)
            finally:
                with self._cond:
                    self._running.discard(task)
                    self._cond.notify_all()


def _guarded(fn: Callable[[], None], what: str) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("%s failed", what)
    return run


@dataclass(frozen=True, slots=True)
class _Entry:
    """One thing the runtime stops: its name, how to stop it, and (for threads, pools
    and children) whether it is over — finished ones are forgotten, and ones still
    running after the deadline are named in the log."""

    name: str
    stop: Callable[[float], None]
    over: Callable[[], bool] | None = None


class Runtime:
    """Owns every thread, executor, scheduler and server of one process (or, as a
    `child()`, of one job within it)."""

    def __init__(self, name: str = "restart-patrol", *,
                 stop_seconds: float = STOP_SECONDS) -> None:
        self.name = name
        self.stop_seconds = stop_seconds
        self.stopping = threading.Event()  # set when shutdown begins (or is asked for)
        self._stopped = threading.Event()
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()
        self._closing = False  # stop() began: nothing new is registered
        self._previous: dict[int, Any] = {}
        self._signalled: int | None = None  # set by the signal handler, and nothing else
        self._child = False

    # ---- what the runtime owns ------------------------------------------------------
    def thread(self, name: str, target: Callable[[], None]) -> threading.Thread:
        """Start `target` now in a daemon thread `rp-<name>`; joined (bounded) at stop.
        The target ends by itself or when `stopping` is set: it must watch that event
        (or its owner's own stop signal)."""
        thread = threading.Thread(target=_guarded(target, f"thread {name}"), daemon=True,
                                  name=PREFIX + name)
        def join(deadline: float) -> None:
            if thread.ident is not None:  # a stop may come between _add and start()
                thread.join(_left(deadline))

        self._add(_Entry(name, join, lambda: thread.ident is not None
                         and not thread.is_alive()))
        thread.start()
        return thread

    def executor(self, name: str, workers: int, *, queue: int | None = None,
                 reserve: float = ABANDON_RESERVE) -> Workers:
        """A pool owned by the runtime (see `Workers`), stopped in its place in the order."""
        pool = Workers(name, workers, queue=queue, reserve=reserve)
        self._add(_Entry(name, pool.stop, lambda: pool.closed and not pool.busy()))
        return pool

    def service(self, svc: S) -> S:
        """`svc.start()` now; `svc.stop(deadline)` at shutdown. A service whose start
        fails is not registered (the exception propagates)."""
        with self._lock:
            if self._closing:
                raise RuntimeStopped(f"{self.name} is stopping; not starting {svc.name}")
        svc.start()
        try:
            self._add(_Entry(svc.name, svc.stop))
        except RuntimeStopped:  # the stop began while it started: stop it here
            svc.stop(time.monotonic() + self.stop_seconds)
            raise
        return svc

    def on_stop(self, fn: Callable[[], None], name: str = "on_stop") -> None:
        """Call `fn()` at shutdown, in its place in the order (closing a store, say)."""
        self._add(_Entry(name, lambda _deadline: fn()))

    def child(self, name: str) -> Runtime:
        """A runtime for work shorter-lived than this one: `child.stop()` stops it alone;
        stopping this runtime stops it too (within this runtime's deadline)."""
        kid = Runtime(f"{self.name}/{name}", stop_seconds=self.stop_seconds)
        kid._child = True
        self._add(_Entry(name, kid.stop_by, kid._stopped.is_set))
        return kid

    def _add(self, entry: _Entry) -> None:
        with self._lock:
            if self._closing:
                raise RuntimeStopped(f"{self.name} is stopping; not starting {entry.name}")
            self._entries = [e for e in self._entries if e.over is None or not e.over()]
            self._entries.append(entry)

    def owned(self) -> list[str]:
        """Names of what this runtime runs now, in start order (threads, pools, services,
        children)."""
        with self._lock:
            return [e.name for e in self._entries if e.over is None or not e.over()]

    def threads(self) -> list[str]:
        """Names of this process's live threads (the runtime's are `rp-…`)."""
        return sorted(t.name for t in threading.enumerate())

    # ---- signals and waiting ----------------------------------------------------------
    def install_signals(self) -> None:
        """SIGTERM and SIGINT begin the shutdown: whoever waits in `wait()` sees them,
        sets `stopping` and calls `stop()`. Main thread only (Python's rule for handlers).

        The handler only notes the signal. It runs in the main thread between two
        bytecodes, wherever that thread is, so it takes no lock: `Event.set()` there could
        wait forever on the lock of the very `Event.wait()` it interrupted, and logging
        on the handler lock of a record half written."""
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self._signalled = signum

        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, on_signal)

    def request_stop(self) -> None:
        """Ask for a shutdown (as a signal would) without doing it here."""
        self.stopping.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a shutdown is asked for — a signal, `request_stop()`, `stop()` —
        (True, and `stopping` is set) or `timeout` passes (False).

        The main thread waits in slices of `SIGNAL_POLL` seconds, never in one unbounded
        lock wait: CPython runs a Python signal handler only in the main thread and only
        when it runs bytecode, and when the kernel hands SIGTERM to another thread (it
        may pick any thread that does not block it) nothing wakes a main thread asleep in
        a lock — serve ignored SIGTERM for 30 s that way under load."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            signalled = self._signalled
            if signalled is not None and not self.stopping.is_set():
                log.info("signal %s: shutting down", signal.Signals(signalled).name)
                self.stopping.set()
            if self.stopping.is_set():
                return True
            left = SIGNAL_POLL if end is None else min(SIGNAL_POLL, end - time.monotonic())
            if left <= 0:
                return False
            self.stopping.wait(left)

    # ---- stopping ---------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything, last started first, within `stop_seconds` from now."""
        self.stop_by(time.monotonic() + self.stop_seconds)

    def stop_by(self, deadline: float) -> None:
        """Stop everything, last started first; return by `deadline` (monotonic). Safe to
        call twice or from several threads: later callers wait for the first."""
        self.stopping.set()
        with self._lock:
            first, self._closing = not self._closing, True
            entries, self._entries = self._entries, []
        if not first:
            self._stopped.wait(_left(deadline))
            return
        began = time.monotonic()
        if entries and not self._child:  # what ran when the stop began (evidence, debugging)
            log.info("%s stopping; threads: %s", self.name, ", ".join(self.threads()))
        try:
            for entry in reversed(entries):
                try:
                    entry.stop(deadline)
                except Exception:
                    log.exception("%s: stopping %s failed", self.name, entry.name)
            late = [e.name for e in entries if e.over is not None and not e.over()]
            if late:
                log.warning("%s: still running at the deadline, abandoned: %s", self.name,
                            ", ".join(sorted(late)))
            for signum, handler in self._previous.items():
                with contextlib.suppress(ValueError, TypeError):  # not the main thread
                    signal.signal(signum, handler)
            self._previous.clear()
            if entries:
                log.info("%s stopped in %.1f s", self.name, time.monotonic() - began)
        finally:
            self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
