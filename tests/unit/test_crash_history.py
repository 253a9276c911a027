"""The pure rules over recorded crashes: tallies for the digest, rollout correlation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.patrol.history import CrashRecord, rollout_before, tally

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)


def crash(category: str, fingerprint: str | None, *, restarts: int = 1,
          hours_ago: float = 1, image: str = "orders:1.14.2") -> CrashRecord:
    return CrashRecord("c", "shop", "orders-1", "uid", "orders", "container", "Deployment",
                       "orders", restart_count=1, restarts=restarts, category=category,
                       fingerprint=fingerprint, image=image,
                       finished_at=NOW - timedelta(hours=hours_ago))


def test_tallies_count_restarts_per_crash_most_frequent_first() -> None:
    found = tally([crash("go-panic", "aaaaaa111111"), crash("oom-killed", None, restarts=2),
                   crash("go-panic", "aaaaaa111111", hours_ago=3),
                   crash("go-panic", "aaaaaa111111")], new_fingerprints={"OOMKilled"})
    assert [(t.label, t.count, t.new) for t in found] == [
        ("go-panic", 3, False), ("OOMKilled", 2, True)]
    assert found[0].first_seen == NOW - timedelta(hours=3)


def test_two_crashes_of_one_category_are_told_apart_by_fingerprint() -> None:
    found = tally([crash("go-panic", "aaaaaa111111"), crash("go-panic", "bbbbbb222222")],
                  set())
    assert sorted(t.label for t in found) == ["go-panic aaaaaa", "go-panic bbbbbb"]


def test_a_rollout_is_a_replicaset_created_within_a_day_before() -> None:
    created = NOW - timedelta(hours=2)
    assert rollout_before(NOW, created, [], "orders:1.14.2", None) == created
    assert rollout_before(NOW, NOW - timedelta(days=2), [], "orders:1.14.2", None) is None
    assert rollout_before(None, created, [], "orders:1.14.2", None) is None


def test_without_a_replicaset_another_image_in_the_day_marks_a_change() -> None:
    earlier = [(NOW - timedelta(hours=5), "orders:1.14.1")]
    pod_born = NOW - timedelta(hours=3)
    assert rollout_before(NOW, None, earlier, "orders:1.14.2", pod_born) == pod_born
    assert rollout_before(NOW, None, [(NOW - timedelta(hours=5), "orders:1.14.2")],
                          "orders:1.14.2", pod_born) is None
    assert rollout_before(NOW, None, [(NOW - timedelta(days=3), "orders:1.14.1")],
                          "orders:1.14.2", pod_born) is None
