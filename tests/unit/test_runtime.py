"""bot.runtime: one owner for threads, pools and services; reverse-order stop under one
deadline; abandoned tasks are told; nothing stuck holds the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from bot.runtime import Runtime, RuntimeStopped, Workers, WorkersFull

ROOT = Path(__file__).resolve().parents[2]


class Recorded:
    """A service that writes its start and stop into a shared list."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    def stop(self, deadline: float) -> None:
        self.log.append(f"stop {self.name}")


def test_services_stop_in_reverse_start_order() -> None:
    log: list[str] = []
    runtime = Runtime()
    for name in ("store", "lease", "http"):
        runtime.service(Recorded(name, log))
    runtime.on_stop(lambda: log.append("closed"), "close")
    runtime.stop()
    assert log == ["start store", "start lease", "start http",
                   "closed", "stop http", "stop lease", "stop store"]
    assert runtime.stopping.is_set() and runtime.stopped


def test_threads_are_named_daemons_and_see_stopping() -> None:
    runtime = Runtime()
    seen = threading.Event()

    def loop() -> None:
        runtime.stopping.wait()
        seen.set()

    thread = runtime.thread("clock", loop)
    assert thread.name == "rp-clock" and thread.daemon
    assert "rp-clock" in runtime.threads()
    runtime.stop()
    assert seen.is_set() and not thread.is_alive()


def test_a_stuck_thread_does_not_hold_the_stop() -> None:
    """The thread never ends: the stop returns at its deadline and leaves it (a daemon)."""
    runtime = Runtime(stop_seconds=0.2)
    never = threading.Event()
    thread = runtime.thread("stuck", never.wait)
    runtime.stop()
    assert runtime.stopped and thread.is_alive()
    never.set()


def test_one_deadline_for_all_services() -> None:
    """A service that overruns leaves the ones stopped after it the rest of the same
    deadline (not a fresh budget each)."""
    deadlines: list[float] = []

    class Slow:
        name = "slow"

        def start(self) -> None: ...

        def stop(self, deadline: float) -> None:
            deadlines.append(deadline)

    runtime = Runtime(stop_seconds=5)
    runtime.service(Slow())
    runtime.service(Slow())
    runtime.stop()
    assert len(deadlines) == 2 and deadlines[0] == deadlines[1]


def test_running_task_past_the_deadline_is_abandoned_and_told() -> None:
    runtime = Runtime(stop_seconds=0.5)
    pool = runtime.executor("work", 1, reserve=0.3)
    release = threading.Event()
    started = threading.Event()
    told: list[str] = []

    def stuck() -> None:
        started.set()
        release.wait()

    pool.submit(stuck, on_abandon=lambda: told.append("stuck"))
    queued = pool.submit(lambda: told.append("ran"), on_abandon=lambda: told.append("queued"))
    started.wait(10)
    runtime.stop()
    assert sorted(told) == ["queued", "stuck"]
    with pytest.raises(CancelledError):
        queued.result()
    release.set()


def test_finished_tasks_are_not_abandoned() -> None:
    runtime = Runtime()
    pool = runtime.executor("work", 2)
    told: list[str] = []
    futures = [pool.submit(lambda n=n: n * 2, on_abandon=lambda: told.append("no"))
               for n in range(5)]
    assert [f.result(10) for f in futures] == [0, 2, 4, 6, 8]
    runtime.stop()
    assert told == []


def test_task_that_finishes_within_its_grace_is_not_abandoned() -> None:
    runtime = Runtime(stop_seconds=30)
    pool = runtime.executor("work", 1)
    release, started = threading.Event(), threading.Event()
    told: list[str] = []

    def slow() -> str:
        started.set()
        release.wait()
        return "answered"

    future = pool.submit(slow, on_abandon=lambda: told.append("told"))
    started.wait(10)
    stopper = threading.Thread(target=runtime.stop)
    stopper.start()
    runtime.stopping.wait(10)
    release.set()  # finishes while the stop waits for it
    stopper.join(30)
    assert future.result(0) == "answered" and told == []


def test_pool_threads_are_named_daemons_started_on_demand() -> None:
    pool = Workers("slack-work", 3)
    assert not [t for t in threading.enumerate() if t.name.startswith("rp-slack-work")]
    names: set[str] = set()
    gate = threading.Barrier(3)

    def who() -> None:
        gate.wait(10)
        names.add(threading.current_thread().name)
        assert threading.current_thread().daemon

    for f in [pool.submit(who) for _ in range(3)]:
        f.result(10)
    assert names == {"rp-slack-work-0", "rp-slack-work-1", "rp-slack-work-2"}
    pool.stop(0)


def test_a_bounded_queue_refuses_work_when_full() -> None:
    pool = Workers("bounded", 1, queue=1)
    release, started = threading.Event(), threading.Event()
    pool.submit(lambda: (started.set(), release.wait()))
    started.wait(10)
    pool.submit(lambda: None)
    with pytest.raises(WorkersFull):
        pool.submit(lambda: None)
    release.set()
    pool.stop(float("inf"))


def test_nothing_new_once_stopped() -> None:
    runtime = Runtime()
    pool = runtime.executor("work", 1)
    runtime.stop()
    with pytest.raises(RuntimeStopped):
        runtime.thread("late", lambda: None)
    with pytest.raises(RuntimeStopped):
        runtime.service(Recorded("late", []))
    with pytest.raises(RuntimeStopped):
        pool.submit(lambda: None)


def test_a_child_stops_alone_or_with_its_parent() -> None:
    log: list[str] = []
    parent = Runtime()
    parent.service(Recorded("http", log))
    first = parent.child("leader-prod")
    first.service(Recorded("recorder-1", log))
    first.stop()  # leadership lost: only the child's work stops
    assert log[-1] == "stop recorder-1" and not parent.stopping.is_set()
    second = parent.child("leader-prod")
    second.service(Recorded("recorder-2", log))
    parent.stop()
    assert log[-2:] == ["stop recorder-2", "stop http"]
    assert second.stopped


def test_sigterm_sets_stopping_and_stop_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    runtime = Runtime()
    runtime.install_signals()
    os.kill(os.getpid(), signal.SIGTERM)
    assert runtime.wait(10)
    runtime.stop()
    assert signal.getsignal(signal.SIGTERM) == before


def _exits(program: str, within: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True, timeout=within, check=False)


def test_sigterm_received_by_another_thread_still_stops_the_waiting_main_thread() -> None:
    """The kernel may hand a process's SIGTERM to any thread. CPython then runs the
    handler only once the main thread runs bytecode again, and a main thread asleep in a
    lock wait never does: `serve` ignored SIGTERM for 30 s that way under load (its
    kernel state: SIGTERM caught, nothing pending, the main thread in a futex wait).
    `pthread_kill` puts the signal in a worker thread on purpose."""
    program = (
        "import signal, threading, time\n"
        "from bot.runtime import Runtime\n"
        "runtime = Runtime('t')\n"
        "runtime.install_signals()\n"
        "def poke():\n"
        "    time.sleep(0.3)\n"
        "    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)\n"
        "    time.sleep(60)\n"
        "threading.Thread(target=poke, daemon=True).start()\n"
        "woke = runtime.wait(10)  # before: asleep until the wait's own timeout\n"
        "runtime.stop()\n"
        "print('woke' if woke else 'slept through it')\n")
    done = _exits(program)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "woke"


def test_the_signal_handler_takes_no_lock() -> None:
    """A handler runs between two bytecodes of the main thread, wherever it is — inside
    `stopping.wait()`, holding that Event's lock, say. One that set the Event there would
    wait on that lock forever; this one only notes the signal."""
    program = (
        "import signal\n"
        "from bot.runtime import Runtime\n"
        "runtime = Runtime('t')\n"
        "runtime.install_signals()\n"
        "handler = signal.getsignal(signal.SIGTERM)\n"
        "with runtime.stopping._cond:  # as inside Event.wait(), before it sleeps\n"
        "    handler(signal.SIGTERM, None)\n"
        "assert runtime.wait(5)\n"
        "print('stopping' if runtime.stopping.is_set() else 'not stopping')\n")
    done = _exits(program, within=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopping"


def test_a_stuck_task_does_not_hold_the_process_at_exit() -> None:
    """The stdlib's ThreadPoolExecutor joins its workers at interpreter exit: with it, this
    process would never end. With the runtime's pool it exits at once, code 0."""
    program = (
        "import threading\n"
        "from bot.runtime import Runtime\n"
        "runtime = Runtime(stop_seconds=0.2)\n"
        "pool = runtime.executor('work', 1)\n"
        "started = threading.Event()\n"
        "pool.submit(lambda: (started.set(), threading.Event().wait()))\n"
        "started.wait(10)\n"
        "runtime.stop()\n"
        "print('exiting')\n")
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "exiting\n", done.stderr
