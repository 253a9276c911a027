"""Every rule of the delta maths and the digest roll-up, with hand-written cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.patrol.deltas import DeltaBasis, compute_deltas, delta_of, find_vanished, records_of
from bot.patrol.digest import (
    FLAG_CRASHLOOP,
    FLAG_NO_MEMORY_LIMIT,
    FLAG_NO_PROBES,
    FLAG_OOMKILLED,
    Digest,
    DigestBuilder,
    PatrolOptions,
)
from bot.patrol.model import (
    Baseline,
    ContainerKind,
    ContainerObservation,
    PodObservation,
    Termination,
    WorkloadRef,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
DEPLOY = WorkloadRef("Deployment", "api")


def container(name: str = "app", restarts: int = 0, **kw: object) -> ContainerObservation:
    defaults: dict[str, object] = {"has_liveness_probe": True, "memory_limit": "256Mi"}
    defaults.update(kw)
    return ContainerObservation(name=name, restarts=restarts, **defaults)  # type: ignore[arg-type]


def pod(name: str, uid: str, *containers: ContainerObservation, created: datetime = T0 -
        timedelta(days=30), workload: WorkloadRef = DEPLOY, ns: str = "prod") -> PodObservation:
    return PodObservation(ns, name, uid, workload, created, tuple(containers))


def build_digest(cluster: str, pods: list[PodObservation], baseline: Baseline | None,
                 now: datetime, options: PatrolOptions | None = None) -> Digest:
    """The digest of a list of pods against one baseline, as a patrol builds it."""
    builder = DigestBuilder(cluster, options, first_run=baseline is None)
    for p in pods:
        builder.add(p, baseline)
    present = {(p.namespace, p.uid) for p in pods}
    vanished = (find_vanished(present, baseline, builder.options.namespaces or None)
                if baseline else [])
    return builder.finish(baseline.taken_at if baseline else None, now, vanished)


def baseline_of(*pods: PodObservation, at: datetime = T0) -> Baseline:
    return Baseline(at, {r.key: r for r in records_of(pods)})


def test_same_pod_delta_is_the_difference() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=140)))
    now = pod("api-1", "u1", container(restarts=143))
    assert delta_of(now, now.containers[0], base) == (3, DeltaBasis.SAME_POD)


def test_unchanged_count_is_zero() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=5)))
    now = pod("api-1", "u1", container(restarts=5))
    assert delta_of(now, now.containers[0], base) == (0, DeltaBasis.SAME_POD)


def test_count_going_down_on_the_same_uid_is_a_reset() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=40)))
    now = pod("api-1", "u1", container(restarts=2))
    assert delta_of(now, now.containers[0], base) == (2, DeltaBasis.RESET)


def test_replaced_pod_born_after_the_baseline_counts_its_whole_count() -> None:
    base = baseline_of(pod("api-1", "old-uid", container(restarts=140)))
    new = pod("api-2", "new-uid", container(restarts=4), created=T0 + timedelta(hours=3))
    assert delta_of(new, new.containers[0], base) == (4, DeltaBasis.NEW_POD)


def test_pod_older_than_the_baseline_but_absent_from_it_has_no_baseline() -> None:
    base = baseline_of(pod("other", "u9", container(restarts=1)))
    unknown = pod("api-1", "u1", container(restarts=140), created=T0 - timedelta(days=46))
    assert delta_of(unknown, unknown.containers[0], base) == (None, DeltaBasis.NO_BASELINE)


def test_container_added_to_an_existing_pod_counts_whole() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=3)))
    now = pod("api-1", "u1", container(restarts=3),
              container("debugger", restarts=1, kind=ContainerKind.EPHEMERAL))
    deltas = {d.container.name: (d.delta, d.basis) for d in compute_deltas([now], base)}
    assert deltas == {"app": (0, DeltaBasis.SAME_POD),
                      "debugger": (1, DeltaBasis.NEW_CONTAINER)}


def test_first_run_has_no_delta_only_totals() -> None:
    now = pod("api-1", "u1", container(restarts=140))
    assert delta_of(now, now.containers[0], None) == (None, DeltaBasis.FIRST_RUN)
    digest = build_digest("c", [now], None, T1)
    assert digest.first_run
    assert digest.workloads[0].restarts is None
    assert digest.workloads[0].total == 140
    assert digest.restarts_in_window == 0


def test_vanished_pods_are_reported_with_what_was_known() -> None:
    gone = pod("api-old", "u-old", container(restarts=7), container("side", restarts=2))
    kept = pod("api-1", "u1", container(restarts=1))
    base = baseline_of(gone, kept)
    vanished = find_vanished({("prod", kept.uid)}, base)
    assert [(v.pod_name, v.restarts_at_baseline) for v in vanished] == [("api-old", 9)]
    assert build_digest("c", [kept], None, T1).vanished == ()
    assert [v.pod_name for v in build_digest("c", [kept], base, T1).vanished] == ["api-old"]


def test_vanished_pods_respect_the_namespace_filter() -> None:
    base = baseline_of(pod("a", "u1", container(restarts=1), ns="prod"),
                       pod("b", "u2", container(restarts=1), ns="staging"))
    assert [v.namespace for v in find_vanished(set(), base,
                                               frozenset({"prod"}))] == ["prod"]


def test_init_sidecar_and_ephemeral_containers_are_counted_and_labelled() -> None:
    base = baseline_of(pod("api-1", "u1",
                           container("wait", restarts=1, kind=ContainerKind.INIT),
                           container("proxy", restarts=2, kind=ContainerKind.SIDECAR),
                           container(restarts=0)))
    now = pod("api-1", "u1",
              container("wait", restarts=1, kind=ContainerKind.INIT),
              container("proxy", restarts=5, kind=ContainerKind.SIDECAR),
              container(restarts=1))
    digest = build_digest("c", [now], base, T1)
    (w,) = digest.workloads
    assert w.restarts == 4
    kinds = {c.name: (c.kind, c.restarts) for c in w.pods[0].containers}
    assert kinds == {"wait": (ContainerKind.INIT, 0), "proxy": (ContainerKind.SIDECAR, 3),
                     "app": (ContainerKind.APP, 1)}


def test_rollup_sums_pods_of_a_workload_and_sorts_by_delta_then_total() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=10)),
                       pod("api-2", "u2", container(restarts=0)),
                       pod("db-0", "u3", container(restarts=100),
                           workload=WorkloadRef("StatefulSet", "db")))
    now = [pod("api-1", "u1", container(restarts=11)),
           pod("api-2", "u2", container(restarts=1)),
           pod("db-0", "u3", container(restarts=103), workload=WorkloadRef("StatefulSet", "db"))]
    digest = build_digest("c", now, base, T1)
    assert [(w.name, w.restarts, w.total) for w in digest.workloads] == [
        ("db", 3, 103), ("api", 2, 12)]
    assert digest.window_from == T0 and digest.window_to == T1


def test_workloads_with_equal_delta_sort_by_total() -> None:
    base = baseline_of(pod("a-1", "u1", container(restarts=1), workload=WorkloadRef("Pod", "a")),
                       pod("b-1", "u2", container(restarts=50), workload=WorkloadRef("Pod", "b")))
    now = [pod("a-1", "u1", container(restarts=2), workload=WorkloadRef("Pod", "a")),
           pod("b-1", "u2", container(restarts=51), workload=WorkloadRef("Pod", "b"))]
    assert [w.name for w in build_digest("c", now, base, T1).workloads] == ["b", "a"]


def test_minimum_delta_threshold_hides_small_workloads() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=10)))
    now = [pod("api-1", "u1", container(restarts=11))]
    assert build_digest("c", now, base, T1, PatrolOptions(min_delta=2)).workloads == ()
    assert len(build_digest("c", now, base, T1, PatrolOptions(min_delta=1)).workloads) == 1


def test_quiet_workloads_are_not_listed() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=10)))
    digest = build_digest("c", [pod("api-1", "u1", container(restarts=10))], base, T1)
    assert digest.workloads == ()
    assert digest.workloads_scanned == 1


def test_ignore_patterns_match_namespace_slash_workload_and_workload() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=1)))
    now = [pod("api-1", "u1", container(restarts=5))]
    for pattern in ("prod/api", "api", "prod/*", "a*"):
        assert build_digest("c", now, base, T1, PatrolOptions(ignore=(pattern,))).workloads == ()
    assert build_digest("c", now, base, T1, PatrolOptions(ignore=("staging/*",))).workloads


def test_namespace_filter_excludes_other_namespaces() -> None:
    now = [pod("a", "u1", container(restarts=3), ns="prod"),
           pod("b", "u2", container(restarts=3), ns="staging")]
    digest = build_digest("c", now, None, T1, PatrolOptions(namespaces=frozenset({"prod"})))
    assert {w.namespace for w in digest.workloads} == {"prod"}
    assert digest.pods_scanned == 1


def test_unknown_baseline_pods_do_not_inflate_the_delta() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=10)))
    now = [pod("api-1", "u1", container(restarts=12)),
           pod("api-9", "u9", container(restarts=500), created=T0 - timedelta(days=9))]
    (w,) = build_digest("c", now, base, T1).workloads
    assert w.restarts == 2
    assert w.total == 512
    assert w.unknown_pods == 1


def test_flags_crashloop_oomkilled_probes_and_limits() -> None:
    oom = Termination(137, "OOMKilled", finished_at=T1)
    now = [pod("api-1", "u1", container(restarts=3, last_termination=oom,
                                        waiting_reason="CrashLoopBackOff",
                                        has_liveness_probe=False, memory_limit=None))]
    (w,) = build_digest("c", now, None, T1).workloads
    assert w.flags == (FLAG_CRASHLOOP, FLAG_OOMKILLED, FLAG_NO_PROBES, FLAG_NO_MEMORY_LIMIT)
    healthy = [pod("api-1", "u1", container(restarts=3, last_termination=Termination(2)))]
    (h,) = build_digest("c", healthy, None, T1).workloads
    assert h.flags == ()


def test_readiness_probe_alone_clears_the_no_probes_flag_but_init_containers_never_raise_it(
) -> None:
    now = [pod("api-1", "u1",
               container("wait", restarts=2, kind=ContainerKind.INIT, has_liveness_probe=False),
               container(restarts=1, has_liveness_probe=False, has_readiness_probe=True))]
    (w,) = build_digest("c", now, None, T1).workloads
    assert FLAG_NO_PROBES not in w.flags


def test_last_termination_is_the_most_recent_across_pods_and_is_decoded() -> None:
    early = Termination(137, "OOMKilled", finished_at=T0 + timedelta(hours=1))
    late = Termination(2, "Error", finished_at=T0 + timedelta(hours=5))
    now = [pod("api-1", "u1", container(restarts=1, last_termination=early)),
           pod("api-2", "u2", container(restarts=1, last_termination=late))]
    (w,) = build_digest("c", now, None, T1).workloads
    assert w.last_termination == late
    assert w.meaning is not None and "Go" in w.meaning


def test_pods_of_a_workload_are_listed_worst_first() -> None:
    base = baseline_of(pod("api-1", "u1", container(restarts=0)),
                       pod("api-2", "u2", container(restarts=0)))
    now = [pod("api-1", "u1", container(restarts=1)), pod("api-2", "u2", container(restarts=4))]
    (w,) = build_digest("c", now, base, T1).workloads
    assert [p.name for p in w.pods] == ["api-2", "api-1"]
