"""The reliability suite's table: each test records what held under which fault.

Use the `held` fixture: `held("one 500 on a page of a 20k-pod list", "patrol retried;
right numbers")`. A row is kept with the test's outcome (held / FAILED) and printed in a
table at the end of the run. Under pytest-xdist each worker appends its rows to a file in
a directory the controller created (its path travels in the environment, which the workers
inherit), and the controller prints them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

ROWS_ENV = "RESTART_PATROL_RELIABILITY_ROWS"
_OWNER = "_reliability_rows_owner"

Held = Callable[[str, str], None]


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(ROWS_ENV):  # the controller (or a run without xdist)
        os.environ[ROWS_ENV] = tempfile.mkdtemp(prefix="reliability-rows-")
        setattr(config, _OWNER, True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_outcome] = report.outcome  # type: ignore[attr-defined]
    return report


_outcome = pytest.StashKey[str]()


@pytest.fixture
def held(request: pytest.FixtureRequest) -> Iterator[Held]:
    """Record a row `fault → what held`; written with the test's outcome when it ends."""
    rows: list[tuple[str, str]] = []
    yield lambda fault, what_held: rows.append((fault, what_held))
    outcome = request.node.stash.get(_outcome, "failed")
    directory = Path(os.environ[ROWS_ENV])
    with (directory / f"rows-{os.getpid()}.jsonl").open("ab") as out:
        for fault, what_held in rows:
            out.write(orjson.dumps({"test": request.node.nodeid, "fault": fault,
                                    "held": what_held, "outcome": outcome}) + b"\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    if not getattr(config, _OWNER, False):
        return
    directory = Path(os.environ[ROWS_ENV])
    rows = []
    for path in sorted(directory.glob("rows-*.jsonl")):
        rows.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line)
    shutil.rmtree(directory, ignore_errors=True)
    if not rows:
        return
    rows.sort(key=lambda r: r["test"])
    width = min(max(len(r["fault"]) for r in rows), 60)
    terminalreporter.section("reliability: fault → what held")
    for r in rows:
        mark = "" if r["outcome"] == "passed" else f"  [{r['outcome'].upper()}]"
        terminalreporter.write_line(f"{r['fault']:<{width}}  →  {r['held']}{mark}")
