"""Persistence: the only package that imports `sqlalchemy`. SQLite by default, PostgreSQL
via DATABASE_URL. `Store` is the API; `schema` holds the tables; `migrations` versions them.
"""

from bot.store.snapshots import SnapshotInfo, Store

__all__ = ["SnapshotInfo", "Store"]
