"""Shared fixtures: the simulated cluster over real HTTP, settings, databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.sim.scenario import Simulation, build_world, load_scenario
from bot.sim.world import World
from tests.fakes.slack_api import FakeSlack
from tests.support.settings import amend
from tests.support.sim_faults import FaultySimServer

pytest_plugins = ["tests.support.throwaway_pg"]  # the `throwaway_pg` fixture

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PG_URL = os.environ.get("DATABASE_TEST_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Sim:
    """A running simulated cluster with a kubeconfig file for it."""

    def __init__(self, world: World, simulation: Simulation, server: FaultySimServer,
                 kubeconfig: Path) -> None:
        self.world = world
        self.simulation = simulation
        self.server = server
        self.kubeconfig = kubeconfig

    def settings(self, **env: object) -> Settings:
        """Settings for this cluster, amended by variable name (DATABASE_URL=…)."""
        return amend(load_settings({"KUBECONFIG": str(self.kubeconfig)}), **env)


def start_sim(tmp_path: Path, scenario: dict | None = None, token: str | None = None) -> Sim:
    world, simulation = build_world(scenario if scenario is not None else load_scenario())
    server = FaultySimServer(world, token=token).start()
    kubeconfig = tmp_path / f"kubeconfig-{uuid.uuid4().hex[:6]}"
    kubeconfig.write_text(server.kubeconfig())
    return Sim(world, simulation, server, kubeconfig)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A runtime owning what a test starts (alert waits, pools); stopped at teardown."""
    owner = Runtime("test")
    yield owner
    owner.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fresh fake Slack Web API per test; fails the test if a message broke Block Kit's
    limits."""
    fake = FakeSlack().start()
    yield fake
    fake.stop()
    assert not fake.violations


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    running = start_sim(tmp_path)
    yield running
    running.server.stop()


def _postgres_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres",
                             connect_timeout=3):
            return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite file, or a new schema in the machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    problem = _postgres_available()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required under CI: {problem}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 not available: {problem}")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
