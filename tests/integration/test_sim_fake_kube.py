"""The in-memory KubeApi (tests/support/fake_kube.py) behaves like the HTTP path on what
the application layers rely on: lists (paged, 410 restarts), owners, logs, events, watch
events, lease compare-and-swap, and typed errors. Each case asks the same simulated world
through both: the official client over HTTP to bot/sim, and the fake in-process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest

from bot.cluster.api import KubeApi
from bot.cluster.client import ClusterClient, connect
from bot.cluster.podwatch import WatchedPodList
from bot.cluster.transport import Stream
from bot.errors import ClusterError, ForbiddenError, NotFoundError
from tests.conftest import Sim
from tests.support.fake_kube import fake_cluster


@pytest.fixture
def both(sim: Sim) -> Iterator[dict[str, ClusterClient]]:
    """The same world through HTTP and in memory (with the same faulty API, so refusals
    injected on the server apply to both)."""
    http = connect(sim.settings())
    memory = fake_cluster(sim.server.api, http.name)
    yield {"http": http, "memory": memory}
    http.close()
    memory.close()


def _same(results: dict[str, object]) -> object:
    http, memory = results["http"], results["memory"]
    assert memory == http
    return http


def test_lists_paged_and_whole_are_the_same(both: dict[str, ClusterClient]) -> None:
    pods = _same({k: [(p.metadata.uid, p.status) for p in c.pods(None)]
                  for k, c in both.items()})
    assert len(pods) > 50  # type: ignore[arg-type]
    for client in both.values():
        client.page_size = 7
    _same({k: [p.metadata.uid for p in c.pods("qld2-production")] for k, c in both.items()})
    _same({k: sorted(c.namespace_names()) for k, c in both.items()})
    pages = _same({k: [msgspec.json.encode(p) for p in c.list_pages(
        "list pods", "/api/v1/namespaces/payments/pods", WatchedPodList)]
        for k, c in both.items()})
    assert len(pages) > 1  # type: ignore[arg-type]


def test_a_list_that_expires_mid_way_restarts_once_on_both(
        sim: Sim, both: dict[str, ClusterClient]) -> None:
    def read(client: ClusterClient) -> list[str]:
        client.page_size = 10
        compacted = {"done": False}

        def compact_once(_seen: int) -> None:
            if not compacted["done"]:
                compacted["done"] = True
                sim.world.compact()

        return client.relisted(lambda: [p.metadata.uid for p in client.pods(
            None, progress=compact_once)])

    before = sim.server.statuses[410]
    uids = _same({k: read(c) for k, c in both.items()})
    assert sim.server.statuses[410] == before + 2  # one expiry each
    assert len(uids) == len(set(uids)) == sim.world.count("pods")  # type: ignore[arg-type]


def test_owners_logs_and_events_are_the_same(sim: Sim,
                                             both: dict[str, ClusterClient]) -> None:
    owners = _same({k: c.owners() for k, c in both.items()})
    assert any(kind == "ReplicaSet" for kind, _, _ in owners)  # type: ignore[attr-defined]
    rs = next(name for kind, ns, name in owners  # type: ignore[attr-defined]
              if kind == "ReplicaSet" and ns == "qld2-production")
    _same({k: c.owner("ReplicaSet", "qld2-production", rs) for k, c in both.items()})
    _same({k: c.owner("ReplicaSet", "qld2-production", "gone") for k, c in both.items()})
    pod = "pod1-deployment-56744f755c-hx2w7"
    log = _same({k: c.previous_log("qld2-production", pod, "pod1", tail_lines=40,
                                   limit_bytes=10_000) for k, c in both.items()})
    assert log is not None and "panic:" in str(log)
    tail = _same({k: c.previous_log("qld2-production", pod, "pod1", tail_lines=2,
                                    limit_bytes=10_000) for k, c in both.items()})
    assert str(tail).count("\n") == 2
    healthy = next(n for ns, n in sim.world.sorted_keys("pods") if ns == "monitoring")
    assert _same({k: c.previous_log("monitoring", healthy, "app", tail_lines=5,
                                    limit_bytes=1000) for k, c in both.items()}) is None
    agent = next(n for ns, n in sim.world.sorted_keys("pods")
                 if ns == "edge" and n.startswith("node-agent-"))
    events = _same({k: c.events_for("edge", agent) for k, c in both.items()})
    assert {e.reason for e in events} >= {"BackOff"}  # type: ignore[attr-defined]
    _same({k: c.server_now() for k, c in both.items()})


def test_errors_have_the_same_types(sim: Sim, both: dict[str, ClusterClient]) -> None:
    for client in both.values():
        with pytest.raises(NotFoundError) as missing:
            client.check_namespace("qld2-prod")
        assert "qld2-production" in missing.value.suggestions
    sim.server.forbidden_resources.add("pods/log")
    messages = {}
    for key, client in both.items():
        with pytest.raises(ForbiddenError) as refused:
            client.previous_log("qld2-production", "pod1-deployment-56744f755c-hx2w7",
                                "pod1", tail_lines=5, limit_bytes=1000)
        assert refused.value.resource == "pods/log"
        messages[key] = str(refused.value).replace(client.server, "SERVER")
    _same(messages)


def _frames(stream: Stream, count: int) -> list[bytes]:
    lines: list[bytes] = []
    buffer = b""
    for chunk in stream.chunks():
        buffer += chunk
        *done, buffer = buffer.split(b"\n")
        lines += [line for line in done if line.strip()]
        if len(lines) >= count:
            stream.shutdown()
    return lines


def test_watch_events_are_the_same(sim: Sim, both: dict[str, ClusterClient]) -> None:
    start = str(sim.world.resource_version)
    streams = {k: c.watch_pods(None, start, 30) for k, c in both.items()}
    sim.world.advance(timedelta(hours=3))  # crashes: MODIFIED pods
    changed = sum(1 for e in sim.world.events_since(int(start)) if e.resource == "pods")
    assert changed >= 5
    got: dict[str, list[tuple[str, str]]] = {}

    def read(key: str) -> None:
        frames = [msgspec.json.decode(f) for f in _frames(streams[key], changed)]
        got[key] = [(f["type"], f["object"]["metadata"]["resourceVersion"]) for f in frames]

    readers = [threading.Thread(target=read, args=(k,)) for k in streams]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    assert len(got["http"]) >= changed
    _same(got)  # type: ignore[arg-type]


def test_a_watch_from_a_compacted_version_is_410_on_both(
        sim: Sim, both: dict[str, ClusterClient]) -> None:
    sim.world.advance(timedelta(hours=1))
    sim.world.compact()
    for client in both.values():
        frames = _frames(client.watch_pods(None, "1", 30), 1)
        assert b'"code":410' in frames[0]


def test_lease_compare_and_swap_is_the_same(both: dict[str, ClusterClient]) -> None:
    def cas(client: KubeApi, name: str) -> list[str]:
        outcome = []
        assert client.read_lease("default", name) is None
        body = {"metadata": {"name": name, "namespace": "default"},
                "spec": {"holderIdentity": "a"}}
        created = client.write_lease(body, create=True)
        outcome.append(created["spec"]["holderIdentity"])
        with pytest.raises(ClusterError) as twice:
            client.write_lease(body, create=True)
        outcome.append(str(twice.value.status))
        stale = {**created, "spec": {"holderIdentity": "b"}}
        client.write_lease(stale, create=False)
        with pytest.raises(ClusterError) as lost:
            client.write_lease({**created, "spec": {"holderIdentity": "c"}}, create=False)
        outcome.append(str(lost.value.status))
        now = client.read_lease("default", name)
        assert now is not None
        outcome.append(now["spec"]["holderIdentity"])
        return outcome

    results = {k: cas(c, f"lease-{k}") for k, c in both.items()}
    assert _same(results) == ["a", "409", "409", "b"]
