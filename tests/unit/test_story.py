"""The one story model (bot.patrol.story): what is new, what is chronic, which crash a
container's headline tells, and a recorded diagnosis that keeps what was recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.diagnosis.engine import EventNote, Evidence, diagnose
from bot.patrol.history import CrashRecord
from bot.patrol.model import ContainerObservation, Termination
from bot.patrol.story import (
    KnownCrash,
    StoryTally,
    by_workload,
    latest_recorded,
    recorded_diagnosis,
    tell_stories,
)

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
DAY_AGO = NOW - timedelta(days=1)
PROBE = EventNote("Warning", "Unhealthy", "Liveness probe failed: HTTP probe failed with "
                  "statuscode: 500")


def crash(restart_count: int, hours_ago: float, *, category: str = "go-panic",
          fingerprint: str | None = "f00d", workload: str = "orders",
          container: str = "app") -> CrashRecord:
    at = NOW - timedelta(hours=hours_ago)
    return CrashRecord("c", "shop", f"{workload}-a", "uid-a", container, "container",
                       "Deployment", workload, restart_count=restart_count, exit_code=2,
                       reason="Error", category=category, fingerprint=fingerprint,
                       summary=f"{category} summary", finished_at=at, recorded_at=at)


def tally(latest: CrashRecord, restarts: int, first_hours_ago: float) -> StoryTally:
    key = ("shop", "Deployment", latest.workload_name, latest.container, latest.identity)
    return StoryTally(key, restarts, restarts, NOW - timedelta(hours=first_hours_ago),
                      latest.finished_at)


def test_new_means_first_seen_in_the_window_and_never_at_install() -> None:
    panic, oom = crash(9, 1), crash(4, 2, category="oom-killed", fingerprint=None)
    chronic = crash(3, 3, workload="billing")
    tallies = [tally(panic, 3, 5), tally(oom, 1, 2), tally(chronic, 2, 8)]
    known = {("shop", "Deployment", "orders", "f00d"): KnownCrash(NOW - timedelta(hours=5)),
             ("shop", "Deployment", "orders", "OOMKilled"): KnownCrash(
                 NOW - timedelta(hours=2), known_at_install=True),
             ("shop", "Deployment", "billing", "f00d"): KnownCrash(NOW - timedelta(days=3))}
    latest = {t.key: c for t, c in zip(tallies, (panic, oom, chronic), strict=True)}
    stories = tell_stories("c", tallies, latest, known, DAY_AGO)
    assert [(s.workload_name, s.label, s.restarts) for s in stories] == [
        ("orders", "go-panic", 3), ("orders", "OOMKilled", 1), ("billing", "go-panic", 2)]
    assert [(s.new, s.known_at_install, s.chronic) for s in stories] == [
        (True, False, False), (False, True, False), (False, False, True)]
    assert stories[2].seen_since == NOW - timedelta(days=3)
    grouped = by_workload(stories)
    assert [s.label for s in grouped[("shop", "Deployment", "orders")]] == [
        "go-panic", "OOMKilled"]


def test_a_story_without_its_latest_crash_is_not_told() -> None:
    lost = crash(2, 1)
    assert tell_stories("c", [tally(lost, 1, 1)], {}, {}, DAY_AGO) == []


def test_the_headline_is_the_newest_recorded_crash_unless_the_cluster_shows_a_newer_one(
        ) -> None:
    recorded = [crash(9, 1), crash(8, 2)]
    same = ContainerObservation("app", 9, last_termination=Termination(
        2, "Error", finished_at=NOW - timedelta(hours=1)))
    newer = ContainerObservation("app", 10, last_termination=Termination(
        2, "Error", finished_at=NOW - timedelta(minutes=5)))
    assert latest_recorded(same, recorded) is recorded[0]
    assert latest_recorded(newer, recorded) is None  # not recorded yet: told live
    assert latest_recorded(None, recorded) is recorded[0]  # the pod is gone
    assert latest_recorded(ContainerObservation("app", 9), recorded) is recorded[0]
    assert latest_recorded(same, []) is None


def test_a_recorded_diagnosis_keeps_the_record_and_drops_hints_that_would_argue() -> None:
    # recorded at crash time with its probe event: a probe kill
    evidence = Evidence(exit_code=137, reason="Error", events=(PROBE,), has_liveness_probe=True)
    at_crash = diagnose(evidence)
    assert at_crash.category == "probe-kill"
    probe = CrashRecord("c", "shop", "gw-a", "uid", "gw", "container", "Deployment", "gw",
                        restart_count=4, exit_code=137, reason="Error", category="probe-kill",
                        fingerprint=at_crash.fingerprint, signature=at_crash.signature,
                        summary=at_crash.summary, events=(PROBE,))
    again = recorded_diagnosis(probe, None)
    assert (again.category, again.summary, again.hints) == (
        "probe-kill", at_crash.summary, at_crash.hints)
    # a record whose evidence no longer says what it said (events lost): the record wins,
    # and no hint contradicts it
    bare = CrashRecord("c", "shop", "gw-a", "uid", "gw", "container", "Deployment", "gw",
                       restart_count=4, exit_code=137, reason="Error", category="probe-kill",
                       fingerprint=at_crash.fingerprint, summary=at_crash.summary)
    kept = recorded_diagnosis(bare, None)
    assert (kept.category, kept.summary, kept.fingerprint, kept.hints) == (
        "probe-kill", at_crash.summary, at_crash.fingerprint, ())
    assert "137" in kept.meaning
