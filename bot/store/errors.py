"""SQLAlchemy failures → `bot.errors`, in one place: a database that cannot be reached
(refused, dropped, timed out) is `StoreUnavailable` (transient: retry within a budget);
anything else the database refused is `StoreError` (permanent)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, TimeoutError

from bot.errors import StoreError, StoreUnavailable


def reason_of(exc: BaseException) -> str:
    """The first line of the driver's message (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).split("\n")[0]


def store_error(what: str, exc: BaseException) -> StoreError:
    """The one-line error for a failed database call that tried to do `what`."""
    message = f"{what}: {reason_of(exc)}"
    if isinstance(exc, DisconnectionError | TimeoutError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return StoreUnavailable(message)
    if isinstance(exc, DBAPIError) and type(exc).__name__ in ("OperationalError",
                                                              "InterfaceError"):
        # connection refused/lost, server shutting down, "database is locked" (SQLite
        # busy past its timeout): all go away by themselves
        return StoreUnavailable(message)
    return StoreError(message)
