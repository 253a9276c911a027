"""Digest slots: each scheduled digest (cluster, channel, scheduled time) is claimed here
before anything is posted, so that it is posted at most once.

The claim is an INSERT on the slot's primary key: when two replicas claim the same slot,
the database lets exactly one win. A claim left unfinished (the process died, or Slack
failed) is taken over with a compare-and-set on its attempt counter, so two takers cannot
both win either. Posting records the message ts and, in the same transaction, confirms the
digest's snapshot (it becomes the next digest's baseline) and supersedes earlier
unfinished slots (the posted digest covered their windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, RowMapping, and_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.store.errors import store_error
from bot.store.schema import (
    PURPOSE_DIGEST,
    PURPOSE_DIGEST_PENDING,
    digest_schedules,
    digest_slots,
    snapshots,
)

CLAIMED = "claimed"
POSTED = "posted"
FAILED = "failed"
SUPERSEDED = "superseded"
UNFINISHED = (CLAIMED, FAILED)


@dataclass(frozen=True, slots=True)
class SlotKey:
    """One scheduled digest: cluster, channel and the scheduled time (aware UTC)."""

    cluster: str
    channel: str
    scheduled_at: datetime


@dataclass(frozen=True, slots=True)
class Slot:
    """A slot's row."""

    key: SlotKey
    state: str
    claimed_by: str
    claimed_at: datetime
    first_claimed_at: datetime
    attempts: int
    snapshot_id: int | None
    message_ts: str | None
    posted_at: datetime | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED


def _where(key: SlotKey) -> ColumnElement[bool]:
    c = digest_slots.c
    return and_(c.cluster == key.cluster, c.channel == key.channel,
                c.scheduled_at == key.scheduled_at)


class DigestSlots:
    """The slot table of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def schedule_since(self, cluster: str, channel: str, now: datetime) -> datetime:
        """When this channel's digest schedule began (recorded now on first call): a slot
        before it was never due, so it is not caught up."""
        s = digest_schedules.c
        query = select(s.since).where(s.cluster == cluster, s.channel == channel)
        try:
            with self.engine.begin() as conn:
                since = conn.execute(query).scalar()
                if since is not None:
                    return since  # type: ignore[no-any-return]
            with self.engine.begin() as conn:
                conn.execute(digest_schedules.insert().values(
                    cluster=cluster, channel=channel, since=now))
            return now
        except IntegrityError:  # another replica recorded it first
            with self.engine.connect() as conn:
                return conn.execute(query).scalar_one()  # type: ignore[no-any-return]
        except SQLAlchemyError as exc:
            raise store_error("could not read the digest schedule", exc) from None

    def claim(self, key: SlotKey, owner: str, now: datetime) -> Slot | None:
        """Claim a new slot; None when it was already claimed (by anyone)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(digest_slots.insert().values(
                    cluster=key.cluster, channel=key.channel, scheduled_at=key.scheduled_at,
                    state=CLAIMED, claimed_by=owner, claimed_at=now, first_claimed_at=now,
                    attempts=1))
        except IntegrityError:
            return None
        except SQLAlchemyError as exc:
            raise store_error("could not claim the digest slot", exc) from None
        return Slot(key, CLAIMED, owner, now, now, 1, None, None, None, None)

    def get(self, key: SlotKey) -> Slot | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(digest_slots).where(_where(key))).mappings().first()
        except SQLAlchemyError as exc:
            raise store_error("could not read the digest slot", exc) from None
        return None if row is None else _slot(row)

    def take_over(self, slot: Slot, owner: str, now: datetime) -> Slot | None:
        """Take an unfinished claim over (compare-and-set on its attempt counter); None
        when it finished or someone else took it first."""
        c = digest_slots.c
        try:
            with self.engine.begin() as conn:
                done = conn.execute(digest_slots.update().where(
                    _where(slot.key), c.attempts == slot.attempts, c.state.in_(UNFINISHED),
                ).values(state=CLAIMED, claimed_by=owner, claimed_at=now,
                         attempts=slot.attempts + 1)).rowcount
        except SQLAlchemyError as exc:
            raise store_error("could not take the digest slot over", exc) from None
        return self.get(slot.key) if done == 1 else None

    def attach_snapshot(self, slot: Slot, snapshot_id: int) -> None:
        """Record the snapshot whose digest is about to be posted: from now on a post may
        exist, so whoever resumes this slot looks for it before posting again."""
        self._update(slot, "record the digest's snapshot", snapshot_id=snapshot_id)

    def mark_failed(self, slot: Slot, error: str) -> None:
        """Give up on this attempt; the slot stays unfinished (a restart within
        DIGEST_CATCHUP, or the next slot, covers its window)."""
        self._update(slot, "record the digest failure", state=FAILED, error=error[:2000])

    def mark_posted(self, slot: Slot, message_ts: str, now: datetime) -> None:
        """Slack confirmed the post: record it, confirm its snapshot as the next digest's
        baseline, supersede earlier unfinished slots of the channel. One transaction."""
        c = digest_slots.c
        key = slot.key
        try:
            with self.engine.begin() as conn:
                conn.execute(digest_slots.update().where(_where(key)).values(
                    state=POSTED, message_ts=message_ts, posted_at=now, error=None))
                snapshot_id = conn.execute(select(c.snapshot_id).where(_where(key))).scalar()
                if snapshot_id is not None:
                    conn.execute(snapshots.update().where(
                        snapshots.c.id == snapshot_id,
                        snapshots.c.purpose == PURPOSE_DIGEST_PENDING,
                    ).values(purpose=PURPOSE_DIGEST))
                conn.execute(digest_slots.update().where(and_(
                    c.cluster == key.cluster, c.channel == key.channel,
                    c.scheduled_at < key.scheduled_at, c.state.in_(UNFINISHED),
                )).values(state=SUPERSEDED))
        except SQLAlchemyError as exc:
            raise store_error("could not record the posted digest", exc) from None

    def unfinished(self, cluster: str, channel: str, after: datetime) -> list[Slot]:
        """Unfinished slots scheduled after `after`, oldest first."""
        c = digest_slots.c
        query = select(digest_slots).where(
            c.cluster == cluster, c.channel == channel, c.scheduled_at > after,
            c.state.in_(UNFINISHED)).order_by(c.scheduled_at)
        try:
            with self.engine.connect() as conn:
                return [_slot(row) for row in conn.execute(query).mappings()]
        except SQLAlchemyError as exc:
            raise store_error("could not read the digest slots", exc) from None

    def history(self, cluster: str, channel: str) -> list[Slot]:
        """Every slot of a channel, oldest first (for tests and operators)."""
        c = digest_slots.c
        query = select(digest_slots).where(c.cluster == cluster, c.channel == channel
                                           ).order_by(c.scheduled_at)
        try:
            with self.engine.connect() as conn:
                return [_slot(row) for row in conn.execute(query).mappings()]
        except SQLAlchemyError as exc:
            raise store_error("could not read the digest slots", exc) from None

    def _update(self, slot: Slot, what: str, **values: object) -> None:
        """Update this claim if it is still ours (same owner and attempt) and unfinished:
        a slot superseded or posted meanwhile stays as it is."""
        c = digest_slots.c
        try:
            with self.engine.begin() as conn:
                conn.execute(digest_slots.update().where(
                    _where(slot.key), c.claimed_by == slot.claimed_by,
                    c.attempts == slot.attempts, c.state.in_(UNFINISHED)).values(**values))
        except SQLAlchemyError as exc:
            raise store_error(f"could not {what}", exc) from None


def _slot(row: RowMapping) -> Slot:
    return Slot(SlotKey(row["cluster"], row["channel"], row["scheduled_at"]), row["state"],
                row["claimed_by"], row["claimed_at"], row["first_claimed_at"],
                row["attempts"], row["snapshot_id"], row["message_ts"], row["posted_at"],
                row["error"])

