"""The crash-history chart's data (bot/patrol/timeline.py), from hand-made records: every
bucket, the window's edges, the stacking order, the folded tail, rollouts and silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from bot.patrol.history import CrashRecord
from bot.patrol.timeline import (
    Rollout,
    SilenceSpan,
    fleet_timeline,
    rollouts,
    short_signature,
    workload_timeline,
)

UNTIL = datetime(2026, 12, 3, 9, tzinfo=UTC)
START = UNTIL - timedelta(days=14)
HOURS = 14 * 24
GO = ("panic: runtime error: invalid memory address or nil pointer dereference",
      "main.(*Server).handle(...)")
_ids = count(1)


def crash(at: datetime, fingerprint: str | None = "go1", *, category: str = "go-panic",
          restarts: int = 1, signature: tuple[str, ...] = GO, workload: str = "orders",
          replica_set: str | None = "orders-7d9f", image: str | None = "orders:1.14.2",
          container: str = "app", changed_at: datetime | None = None,
          started_at: datetime | None = None, recorded_only: bool = False,
          cluster: str = "prod", namespace: str = "shop") -> CrashRecord:
    n = next(_ids)
    return CrashRecord(cluster, namespace, f"{workload}-{n}", f"uid-{n}", container,
                       "container", "Deployment", workload, restart_count=n,
                       restarts=restarts, finished_at=None if recorded_only else at,
                       recorded_at=at, category=category, fingerprint=fingerprint,
                       signature=signature, replica_set=replica_set, image=image,
                       changed_at=changed_at, started_at=started_at, id=n)


def hour(h: float) -> datetime:
    """A moment `h` hours after the window's start."""
    return START + timedelta(hours=h)


def expected(**buckets: int) -> tuple[int, ...]:
    """A full row of counts: zeros but for the buckets named `b<index>`."""
    row = [0] * HOURS
    for name, value in buckets.items():
        row[int(name[1:])] = value
    return tuple(row)


def test_every_hour_gets_its_restarts_and_a_record_counts_all_it_accounts_for() -> None:
    timeline = workload_timeline([
        crash(hour(0.5)), crash(hour(0.9), restarts=3), crash(hour(5.25)),
        crash(hour(HOURS - 0.5)), crash(hour(100.01), recorded_only=True)],
        until=UNTIL)
    (series,) = timeline.series
    assert series.counts == expected(b0=4, b5=1, b100=1, b335=1)
    assert timeline.total == 7
    assert len(series.counts) == HOURS == timeline.grid.count
    assert timeline.grid.start == START and timeline.grid.edges[-1] == UNTIL
    assert (timeline.cluster, timeline.namespace, timeline.kind, timeline.name) == (
        "prod", "shop", "Deployment", "orders")


def test_window_edges_are_open_at_the_start_and_closed_at_the_end() -> None:
    timeline = workload_timeline([
        crash(START),                                   # the window before's
        crash(START - timedelta(minutes=1)),
        crash(START + timedelta(microseconds=1)),       # first bucket
        crash(hour(1)),                                 # (start, start+1h]: still the first
        crash(hour(1) + timedelta(microseconds=1)),     # second bucket
        crash(UNTIL),                                   # now: the last bucket
        crash(UNTIL + timedelta(seconds=1)),            # after the server's now: not shown
    ], until=UNTIL)
    assert timeline.series[0].counts == expected(b0=2, b1=1, b335=1)


def test_other_window_lengths_and_a_window_ending_between_hours() -> None:
    until = UNTIL + timedelta(minutes=37)
    timeline = workload_timeline([crash(until), crash(until - timedelta(hours=47, minutes=59)),
                                  crash(until - timedelta(hours=48))], until=until, days=2)
    assert timeline.grid.count == 48 and timeline.grid.start == until - timedelta(days=2)
    assert timeline.series[0].counts == (1, *[0] * 46, 1)


def test_layers_are_stacked_most_restarts_first_and_labelled_by_category_and_signature(
        ) -> None:
    timeline = workload_timeline([
        crash(hour(1), "py1", category="dependency-unavailable",
              signature=("ConnectionRefusedError: [Errno 111] Connection refused",)),
        crash(hour(2), "go1"), crash(hour(3), "go1", restarts=2),
        crash(hour(4), None, category="oom-killed", signature=(), restarts=2),
        crash(hour(5), "aaa", category="python-exception", signature=("KeyError: 'x'",)),
        crash(hour(6), "zzz", category="python-exception", signature=("KeyError: 'y'",)),
    ], until=UNTIL)
    assert [(s.identity, s.category, s.signature, s.total) for s in timeline.series] == [
        ("go1", "go-panic", "panic: runtime error: invalid memory…", 3),
        ("OOMKilled", "oom-killed", "", 2),  # no fingerprint: grouped by its label
        ("aaa", "python-exception", "KeyError: 'x'", 1),  # ties: by identity
        ("py1", "dependency-unavailable", "ConnectionRefusedError: [Errno 111]…", 1),
        ("zzz", "python-exception", "KeyError: 'y'", 1),
    ]
    assert all(s.folded == 0 for s in timeline.series)


def test_the_long_tail_folds_into_one_layer_with_its_restarts_per_hour() -> None:
    records = [crash(hour(h), f"fp{n}", restarts=10 - n)
               for n in range(7) for h in (n + 0.5, 200.5)]
    timeline = workload_timeline(records, until=UNTIL, max_series=4)
    assert [s.identity for s in timeline.series] == ["fp0", "fp1", "fp2", None]
    other = timeline.series[-1]
    assert other.folded == 4 and other.category == "" and other.signature == ""
    # fp3..fp6 restart 7, 6, 5, 4 times at their own hour and all at hour 200
    assert other.counts == expected(b3=7, b4=6, b5=5, b6=4, b200=22)
    assert timeline.total == sum(r.restarts for r in records)
    exactly = workload_timeline(records[:8], until=UNTIL, max_series=4)
    assert [s.identity for s in exactly.series] == ["fp0", "fp1", "fp2", "fp3"]  # none hidden


def test_crashes_outside_the_window_make_no_layer() -> None:
    timeline = workload_timeline([crash(START, "old"), crash(hour(3), "go1")], until=UNTIL)
    assert [s.identity for s in timeline.series] == ["go1"]
    empty = workload_timeline([], until=UNTIL)
    assert empty.series == () and empty.total == 0 and empty.name is None


def test_short_signatures_cut_at_a_word_and_keep_long_tokens_readable() -> None:
    assert short_signature(GO) == "panic: runtime error: invalid memory…"
    assert short_signature(("Exception in thread main java.lang.IllegalStateException: x",)
                           ) == "Exception in thread main java.lang.Ille…"
    assert short_signature(("  KeyError:   'x'  ",)) == "KeyError: 'x'"
    assert short_signature(()) == ""
    assert len(short_signature(("x" * 100,))) == 40


def test_a_new_replica_set_is_a_rollout_at_its_first_crash_when_untimed() -> None:
    new_start = hour(50)
    found = workload_timeline([
        crash(hour(10), replica_set="orders-5c6b", image="orders:1.14.1"),
        crash(hour(20), replica_set="orders-5c6b", image="orders:1.14.1"),
        crash(hour(52), replica_set="orders-7d9f", started_at=new_start),
        crash(hour(53), replica_set="orders-5c6b", image="orders:1.14.1"),  # old pod, again
        crash(hour(54), replica_set="orders-7d9f"),
        crash(hour(90), replica_set="orders-aaaa"),  # no start known: its end
    ], until=UNTIL).rollouts
    assert found == (Rollout(new_start, "orders-7d9f", "orders:1.14.2"),
                     Rollout(hour(90), "orders-aaaa", "orders:1.14.2"))


def test_the_recorders_changed_at_times_a_rollout_even_of_the_first_version_seen() -> None:
    rolled = hour(30)
    found = rollouts([
        crash(hour(31), replica_set="orders-7d9f", changed_at=rolled),
        crash(hour(33), "other", replica_set="orders-7d9f", changed_at=hour(32)),
        crash(hour(40), replica_set="orders-8e0a", started_at=hour(39)),
        crash(hour(41), "third", replica_set="orders-8e0a", changed_at=hour(38)),
    ])
    # one rollout per version; a timed one wins over the estimate
    assert found == (Rollout(rolled, "orders-7d9f", "orders:1.14.2"),
                     Rollout(hour(38), "orders-8e0a", "orders:1.14.2"))


def test_without_replica_sets_a_new_image_of_a_container_is_a_rollout() -> None:
    found = rollouts([
        crash(hour(1), replica_set=None, image="db:15.1"),
        crash(hour(2), replica_set=None, image="sidecar:2", container="proxy"),  # its own
        crash(hour(3), replica_set=None, image="db:15.2"),
        crash(hour(4), replica_set=None, image="db:15.1"),  # an old pod: not a rollout
    ])
    assert found == (Rollout(hour(3), None, "db:15.2"),)


def test_rollouts_outside_the_window_are_left_out_but_set_what_is_known() -> None:
    timeline = workload_timeline([
        crash(START - timedelta(days=2), replica_set="orders-5c6b"),  # before the window
        crash(START - timedelta(hours=1), replica_set="orders-7d9f"),  # rolled out before
        crash(hour(5), replica_set="orders-7d9f"),
        crash(hour(6), replica_set="orders-8e0a", changed_at=START),  # at the open start
        crash(hour(9), replica_set="orders-9f1b"),
    ], until=UNTIL)
    assert [r.replica_set for r in timeline.rollouts] == ["orders-9f1b"]
    assert timeline.rollouts[0].at == hour(9)


def test_silences_in_the_window_are_kept_whole_and_others_dropped() -> None:
    lifted = SilenceSpan(hour(10), hour(12), "@alice")
    running = SilenceSpan(UNTIL - timedelta(hours=2), UNTIL + timedelta(days=1), "@bob")
    straddling = SilenceSpan(START - timedelta(days=1), START + timedelta(hours=1), "@carol")
    timeline = workload_timeline([crash(hour(11))], until=UNTIL, silences=[
        running, lifted, straddling,
        SilenceSpan(START - timedelta(days=2), START, "@gone"),         # ended at the start
        SilenceSpan(UNTIL + timedelta(hours=1), UNTIL + timedelta(hours=2), "@later"),
        SilenceSpan(hour(20), hour(20), "@empty"),
    ])
    assert timeline.silences == (straddling, lifted, running)


def test_bad_calls_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        workload_timeline([], until=UNTIL.replace(tzinfo=None))
    with pytest.raises(ValueError, match="one workload"):
        workload_timeline([crash(hour(1)), crash(hour(2), workload="billing")], until=UNTIL)
    with pytest.raises(ValueError, match="at least one"):
        workload_timeline([], until=UNTIL, days=0)
    with pytest.raises(ValueError, match="at least one"):
        fleet_timeline([], until=UNTIL, top=0)


def test_the_fleet_chart_ranks_workloads_by_restarts_per_day_and_folds_the_rest() -> None:
    day = timedelta(days=1)
    week_start = UNTIL - 7 * day
    records = [
        crash(UNTIL, workload="orders", restarts=5),                         # last day
        crash(UNTIL - day, workload="orders", restarts=2),                   # (−2d, −1d]
        crash(UNTIL - day + timedelta(seconds=1), workload="orders"),        # last day
        crash(week_start + timedelta(seconds=1), workload="billing", category="oom-killed",
              fingerprint=None, restarts=3),
        crash(week_start + timedelta(hours=30), workload="billing", restarts=2),
        crash(week_start, workload="billing", restarts=50),                  # before
        crash(UNTIL - timedelta(hours=1), workload="web", restarts=2),
        crash(UNTIL - timedelta(hours=1), workload="api", namespace="edge"),
        crash(UNTIL - timedelta(hours=1), workload="cron", cluster="staging"),
    ]
    fleet = fleet_timeline(records, until=UNTIL, top=3)
    assert fleet.grid.count == 7 and fleet.grid.step == day
    assert [(s.namespace, s.name, s.category, s.counts, s.folded) for s in fleet.series] == [
        ("shop", "orders", "go-panic", (0, 0, 0, 0, 0, 2, 6), 0),
        ("shop", "billing", "oom-killed", (3, 2, 0, 0, 0, 0, 0), 0),  # commonest category
        (None, None, "", (0, 0, 0, 0, 0, 0, 4), 3),  # web ×2, edge/api, staging's cron
    ]
    assert fleet.total == 17
    everyone = fleet_timeline(records, until=UNTIL, top=5)
    assert [(s.cluster, s.name) for s in everyone.series[2:]] == [
        ("prod", "web"), ("prod", "api"), ("staging", "cron")]
