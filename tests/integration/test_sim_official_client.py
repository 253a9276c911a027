"""Fidelity of bot/sim, checked with the official kubernetes client (typed models too)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from tests.conftest import Sim

POD1 = "pod1-deployment-56744f755c-hx2w7"


@pytest.fixture
def api(sim: Sim) -> Iterator[k8s.ApiClient]:
    client = k8s_config.new_client_from_config(str(sim.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def core(api: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api)


def test_typed_pod_list_matches_the_problem_statement(core: k8s.CoreV1Api) -> None:
    pods = core.list_namespaced_pod("qld2-production").items
    by_name = {p.metadata.name: p for p in pods}
    pod1 = by_name[POD1]
    status = pod1.status.container_statuses[0]
    assert status.restart_count == 140
    assert status.last_state.terminated.exit_code == 2
    assert status.last_state.terminated.reason == "Error"
    assert pod1.spec.containers[0].liveness_probe is None
    assert pod1.spec.containers[0].resources.limits is None
    assert pod1.metadata.owner_references[0].kind == "ReplicaSet"
    restarts = sorted(p.status.container_statuses[0].restart_count
                      for n, p in by_name.items() if n.startswith("pod4-"))
    assert restarts == [19, 19, 24]


def test_list_items_carry_no_kind_but_single_gets_do(sim: Sim, core: k8s.CoreV1Api) -> None:
    raw = core.list_namespaced_pod("qld2-production", limit=1, _preload_content=False)
    import orjson

    body = orjson.loads(raw.data)
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert "kind" not in body["items"][0]
    single = orjson.loads(core.read_namespaced_pod(POD1, "qld2-production",
                                                   _preload_content=False).data)
    assert single["kind"] == "Pod"


def test_not_found_is_a_status_body(core: k8s.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("nope", "qld2-production")
    assert err.value.status == 404
    import orjson

    body = orjson.loads(err.value.body)
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'pods "nope" not found'


def test_previous_log_is_text_and_ends_in_the_go_panic(core: k8s.CoreV1Api) -> None:
    log = core.read_namespaced_pod_log(POD1, "qld2-production", previous=True)
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in log
    tail = core.read_namespaced_pod_log(POD1, "qld2-production", previous=True, tail_lines=2)
    assert tail.splitlines() == ["created by main.main in goroutine 1",
                                 "\t/src/cmd/server/main.go:58 +0x4d2"]
    limited = core.read_namespaced_pod_log(POD1, "qld2-production", previous=True,
                                           limit_bytes=10)
    assert len(limited.encode()) == 10


@pytest.mark.parametrize("value", ["true", "True", "1", "t"])
def test_go_style_booleans(sim: Sim, value: str) -> None:
    import urllib.request

    url = (f"{sim.server.url}/api/v1/namespaces/qld2-production/pods/{POD1}/log"
           f"?previous={value}")
    with urllib.request.urlopen(url) as resp:
        assert resp.headers["Content-Type"] == "text/plain"
        assert b"panic:" in resp.read()


def test_bad_boolean_is_400(sim: Sim) -> None:
    import urllib.error
    import urllib.request

    url = f"{sim.server.url}/api/v1/namespaces/qld2-production/pods/{POD1}/log?previous=yes"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    err.value.close()
    assert err.value.code == 400


def test_previous_log_of_a_never_restarted_container_is_400(core: k8s.CoreV1Api) -> None:
    healthy = next(p.metadata.name for p in core.list_namespaced_pod("monitoring").items)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log(healthy, "monitoring", previous=True)
    assert err.value.status == 400
    assert "previous terminated container" in err.value.body


def test_pagination_and_410_expired_with_a_fresh_token(sim: Sim, core: k8s.CoreV1Api) -> None:
    seen, token = [], None
    while True:
        page = core.list_pod_for_all_namespaces(limit=7, _continue=token)
        seen += [p.metadata.name for p in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert len(seen) == len(set(seen)) == sim.world.count("pods")
    first = core.list_pod_for_all_namespaces(limit=5)
    sim.world.compact()
    with pytest.raises(ApiException) as err:
        core.list_pod_for_all_namespaces(limit=5, _continue=first.metadata._continue)
    assert err.value.status == 410
    import orjson

    body = orjson.loads(err.value.body)
    assert body["reason"] == "Expired" and body["metadata"]["continue"]
    resumed = core.list_pod_for_all_namespaces(limit=5, _continue=body["metadata"]["continue"])
    assert resumed.items[0].metadata.name not in [p.metadata.name for p in first.items]


def test_selectors(core: k8s.CoreV1Api) -> None:
    pods = core.list_namespaced_pod("qld2-production", label_selector="app=pod4-deployment")
    assert len(pods.items) == 3
    pods = core.list_namespaced_pod("qld2-production",
                                    label_selector="app in (pod1-deployment,pod2-deployment)")
    assert len(pods.items) == 2
    one = core.list_namespaced_pod("qld2-production", field_selector=f"metadata.name={POD1}")
    assert [p.metadata.name for p in one.items] == [POD1]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("qld2-production", field_selector="spec.bogus=1")
    assert err.value.status == 400


def test_events_by_involved_object_and_expiry(sim: Sim, core: k8s.CoreV1Api) -> None:
    agent = next(p.metadata for p in core.list_namespaced_pod("edge").items
                 if p.metadata.name.startswith("node-agent-"))
    selector = (f"involvedObject.name={agent.name},involvedObject.namespace=edge,"
                f"involvedObject.uid={agent.uid}")
    reasons = {e.reason for e in core.list_namespaced_event("edge",
                                                            field_selector=selector).items}
    assert {"BackOff", "Failed"} <= reasons
    # a one-off event nothing refreshes (crash-looping pods refresh theirs)
    once = copy.deepcopy(sim.world.get("events", *sim.world.sorted_keys("events")[0]))
    once["metadata"]["name"] = "one-off.0001"
    sim.world.put("events", once)
    listed = core.list_namespaced_event(once["metadata"]["namespace"]).items
    assert "one-off.0001" in {e.metadata.name for e in listed}
    sim.world.advance(timedelta(hours=2))
    after = core.list_event_for_all_namespaces().items
    assert "one-off.0001" not in {e.metadata.name for e in after}
    assert after and all(sim.world.now - e.last_timestamp <= timedelta(hours=1) for e in after)


def test_crash_schedule_replaces_nothing_but_bumps_restarts(sim: Sim,
                                                            core: k8s.CoreV1Api) -> None:
    before = core.read_namespaced_pod(POD1, "qld2-production")
    sim.world.advance(timedelta(days=1))
    after = core.read_namespaced_pod(POD1, "qld2-production")
    assert after.metadata.uid == before.metadata.uid
    assert after.status.container_statuses[0].restart_count == 143
    assert (after.status.container_statuses[0].last_state.terminated.finished_at
            > before.status.container_statuses[0].last_state.terminated.finished_at)


def test_watch_streams_changes_and_reports_410_for_old_versions(sim: Sim,
                                                                core: k8s.CoreV1Api) -> None:
    listing = core.list_namespaced_pod("qld2-production")
    rv = listing.metadata.resource_version
    timer = threading.Timer(0.3, sim.world.advance, args=(timedelta(hours=3),))
    timer.start()
    w = k8s_watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_pod, "qld2-production", resource_version=rv,
                          timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if event["object"].metadata.name == POD1:
            w.stop()
    timer.join()
    assert ("MODIFIED", POD1) in seen
    sim.world.compact()
    import orjson

    raw = core.list_namespaced_pod("qld2-production", watch=True, resource_version=rv,
                                   timeout_seconds=2, _preload_content=False)
    lines = [orjson.loads(line) for line in raw.data.splitlines() if line.strip()]
    assert lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["code"] == 410 and lines[0]["object"]["reason"] == "Expired"


def test_leases_create_and_optimistic_replace(api: k8s.ApiClient) -> None:
    coord = k8s.CoordinationV1Api(api)
    body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name="restart-patrol"),
                       spec=k8s.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15))
    created = coord.create_namespaced_lease("default", body)
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease("default", body)
    assert err.value.status == 409
    created.spec.holder_identity = "b"
    replaced = coord.replace_namespaced_lease("restart-patrol", "default", created)
    assert replaced.spec.holder_identity == "b"
    created.spec.holder_identity = "c"  # stale resourceVersion
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("restart-patrol", "default", created)
    assert err.value.status == 409


def test_a_watch_that_falls_behind_what_is_kept_ends_with_410_not_a_gap(
        sim: Sim, core: k8s.CoreV1Api) -> None:
    """As a real API server's watch cache does: a watcher more than WATCH_HISTORY events
    behind gets 410 Expired (and relists), never a stream that silently skips events."""
    import orjson

    from bot.sim.world import WATCH_HISTORY

    rv = core.list_namespaced_pod("qld2-production").metadata.resource_version
    pod = copy.deepcopy(sim.world.get("pods", "qld2-production", POD1))

    def burst() -> None:  # more changes than are kept, while the stream cannot read
        with sim.world.lock:
            for i in range(WATCH_HISTORY + 1):
                pod["metadata"]["labels"] = {**pod["metadata"].get("labels", {}),
                                             "n": str(i)}
                sim.world.put("pods", copy.deepcopy(pod))

    timer = threading.Timer(0.3, burst)
    timer.start()
    raw = core.list_namespaced_pod("qld2-production", watch=True, resource_version=rv,
                                   timeout_seconds=5, _preload_content=False)
    lines = [orjson.loads(line) for line in raw.data.splitlines() if line.strip()]
    timer.join()
    assert [line["type"] for line in lines] == ["ERROR"]  # nothing of the burst, no gap
    assert lines[0]["object"]["code"] == 410
