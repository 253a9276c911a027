"""The throwaway PostgreSQL the outage tests rely on: it serves, it can be taken away (a
query fails as transient, `StoreUnavailable`), and it comes back with its data."""

from __future__ import annotations

import pytest

from bot.errors import StoreUnavailable
from bot.store import Store
from tests.support.throwaway_pg import ThrowawayPostgres


def test_a_stopped_database_is_transient_and_comes_back(throwaway_pg: ThrowawayPostgres
                                                        ) -> None:
    store = Store.open(throwaway_pg.url)
    try:
        assert store.latest_snapshot("c") is None
        throwaway_pg.stop()
        with pytest.raises(StoreUnavailable, match="could not read snapshots"):
            store.latest_snapshot("c")
        throwaway_pg.start()
        assert store.latest_snapshot("c") is None
    finally:
        store.close()
