"""The rules behind crash alerts in Slack, pure: a thread per crash, the reply cap, and
silences (who quieted what, until when; docs/design.md, "Working with alerts").

A *thread* is one crash of one container in one channel — (cluster, channel, namespace,
workload kind and name, container, identity), the identity being the fingerprint, else
the category label (as `CrashRecord.identity`). Its parent message counts the restarts
since it opened; the first repeat replies in it, later ones at most once per
`REPLY_EVERY`, with the count since the previous reply.

A *silence* quiets a workload's crash (its identity) or the whole workload (identity
None) until a time. Silenced crashes are still recorded and counted; they only do not
post. A new identity appearing in a silenced workload lifts a workload silence: what is
new must be seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.patrol.history import CrashRecord

REPLY_EVERY = timedelta(hours=1)  # at most one reply per thread per hour
SILENCE_CHOICES: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24),
                                         "7d": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class AlertedWorkload:
    """A workload of a cluster: what a silence and a thread are about."""

    cluster: str
    namespace: str
    kind: str
    name: str

    @classmethod
    def of(cls, crash: CrashRecord) -> AlertedWorkload:
        return cls(crash.cluster, crash.namespace, crash.workload_kind, crash.workload_name)


@dataclass(frozen=True, slots=True)
class AlertThread:
    """A stored alert thread (bot/store/threads.py)."""

    id: int
    workload: AlertedWorkload
    channel: str
    container: str
    identity: str
    ts: str  # the parent message's ts
    opened_at: datetime
    count: int  # restarts since the thread opened (the first crash included)
    last_at: datetime  # the newest crash's time
    last_crash_id: int
    replied_at: datetime | None  # the newest repeat reply
    replied_count: int  # `count` when it was posted (the next reply tells what came since)
    acked_by: str | None = None
    acked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """A stored silence: `identity` None silences the whole workload."""

    id: int
    workload: AlertedWorkload
    identity: str | None
    created_by: str  # a Slack user id (U…) or `cli:<login>`
    created_at: datetime
    until: datetime
    reason: str
    channel: str | None = None  # where it was set (its audit goes to `thread_ts` there)
    thread_ts: str | None = None
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.lifted_at is None and self.until > now

    def covers(self, crash: CrashRecord) -> bool:
        """Whether this silence is about the crash (regardless of time)."""
        return AlertedWorkload.of(crash) == self.workload and self.identity in (
            None, crash.identity)


def silence_for(silences: Iterable[Silence], crash: CrashRecord,
                now: datetime) -> Silence | None:
    """The active silence that quiets the crash (the longest), or None. A workload
    silence does not quiet a crash whose identity is new: `lifted_by_new` lifts it."""
    found = [s for s in silences if s.active(now) and s.covers(crash)
             and not (s.identity is None and crash.is_new)]
    return max(found, key=lambda s: s.until, default=None)


def lifted_by_new(silences: Iterable[Silence], crash: CrashRecord,
                  now: datetime) -> list[Silence]:
    """The active workload silences a crash with a new identity lifts (its alert goes out)."""
    if not crash.is_new:
        return []
    return [s for s in silences if s.active(now) and s.identity is None
            and s.workload == AlertedWorkload.of(crash)]


def reply_due(thread: AlertThread, now: datetime) -> bool:
    """Whether the thread gets a reply now: restarts came since the last reply, and that
    reply is at least REPLY_EVERY old (the first repeat replies at once)."""
    return thread.count > thread.replied_count and (
        thread.replied_at is None or now - thread.replied_at >= REPLY_EVERY)


def silence_length(choice: str) -> timedelta:
    """`1h`, `24h` or `7d` (the Silence menu's choices); ValueError otherwise."""
    try:
        return SILENCE_CHOICES[choice]
    except KeyError:
        raise ValueError(f"silence for {', '.join(SILENCE_CHOICES)}, not {choice!r}") from None
