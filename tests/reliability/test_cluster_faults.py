"""The cluster client under injected faults: retries, the 410 restart, giving up clearly.

Real HTTP all the way: client → FaultProxy → bot/sim. Timeouts and backoff are short so
each case costs at most a couple of seconds.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answers.patrol import PatrolPlan, patrol
from bot.cluster.client import connect
from bot.cluster.podwatch import PodWatch
from bot.errors import ClusterError, ClusterUnavailable, DeadlineExceeded, TransientError
from bot.render.digest_json import digest_to_json
from bot.settings import Settings
from bot.sim.generator import generate_world
from bot.sim.server import SimServer
from bot.store import Store
from tests.conftest import Sim
from tests.reliability.conftest import Held
from tests.reliability.proxy import Fault, FaultProxy
from tests.support.settings import amend

PODS_PAGE = r"^GET /api/v1/pods\?"


def through(proxy: FaultProxy, sim: Sim, tmp_path: Path, **changes: object) -> Settings:
    """Settings whose kubeconfig points at `proxy`, with short timeouts and backoff."""
    kubeconfig = tmp_path / f"kubeconfig-proxy-{uuid.uuid4().hex[:6]}"
    kubeconfig.write_text(sim.kubeconfig.read_text().replace(sim.server.url, proxy.url))
    fast: dict[str, object] = {"KUBE_READ_TIMEOUT": 1.0, "KUBE_RETRY_BACKOFF": 0.05,
                               "KUBE_RETRIES": 3}
    return amend(sim.settings(), KUBECONFIG=str(kubeconfig),
                   **(fast | changes))  # type: ignore[arg-type]


@pytest.fixture
def big_sim(tmp_path: Path) -> Iterator[Sim]:
    """20k generated pods (1,000 of them restarting) served by bot/sim, for this test
    alone (no test shares a simulated cluster, nor its clock, with another)."""
    world = generate_world(20_000)
    server = SimServer(world).start()
    kubeconfig = tmp_path / "kubeconfig-big"
    kubeconfig.write_text(server.kubeconfig())
    yield Sim(world, None, server, kubeconfig)  # type: ignore[arg-type]
    server.stop()


def patrol_json(settings: Settings, tmp_path: Path, page_size: int = 500) -> dict[str, object]:
    cluster = connect(settings)
    cluster.page_size = page_size
    store = Store.open(f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:6]}.db")
    try:
        run = patrol(cluster, store, settings, PatrolPlan.adhoc(diagnose_top=0))
        return digest_to_json(run.digest)
    finally:
        store.close()
        cluster.close()


def test_a_500_a_cut_body_and_a_reset_on_pages_of_a_20k_pod_list(big_sim: Sim, tmp_path: Path,
                                                                 held: Held) -> None:
    expected = patrol_json(big_sim.settings(), tmp_path)
    assert expected["pods_scanned"] == 20_000
    faults = (Fault("status", PODS_PAGE, nth=7, status=500),
              Fault("cut", PODS_PAGE, nth=20),
              Fault("reset", PODS_PAGE, nth=31))
    with FaultProxy(big_sim.server.url, *faults) as proxy:
        got = patrol_json(through(proxy, big_sim, tmp_path), tmp_path)
    assert [f.hits for f in faults] == [1, 1, 1]
    assert got["pods_scanned"] == 20_000
    assert got["workloads"] == expected["workloads"]
    assert got["restarts_in_window"] == expected["restarts_in_window"]
    held("one 500 on a page of a 20k-pod list", "page retried; patrol exact (20,000 pods)")
    held("a body cut mid-way on one page", "page retried; patrol exact")
    held("a connection reset on one page", "page retried; patrol exact")


def test_a_503_that_persists_fails_with_one_line_naming_the_call(sim: Sim, tmp_path: Path,
                                                                 held: Held) -> None:
    fault = Fault("status", PODS_PAGE, status=503, times=None,
                  message="etcdserver: leader changed")
    with FaultProxy(sim.server.url, fault) as proxy:
        settings = through(proxy, sim, tmp_path, KUBE_RETRIES=3)
        with pytest.raises(ClusterUnavailable) as err:
            patrol_json(settings, tmp_path)
    message = str(err.value)
    assert message.startswith("cluster sim-qld2: list pods in all namespaces: the API server "
                              "answered 503 (etcdserver: leader changed) 4 times over ")
    assert "\n" not in message
    assert fault.hits == 4  # one attempt + KUBE_RETRIES
    held("503 on every try", "4 attempts with backoff, then one line naming the call")


def test_429_with_retry_after_is_retried_after_the_time_asked(sim: Sim, tmp_path: Path,
                                                              held: Held) -> None:
    fault = Fault("status", PODS_PAGE, status=429, retry_after="1")
    with FaultProxy(sim.server.url, fault) as proxy:
        got = patrol_json(through(proxy, sim, tmp_path), tmp_path)
        arrivals = [at for at, line in proxy.requests if line.startswith("GET /api/v1/pods?")]
    assert fault.hits == 1 and got["pods_scanned"] == sim.world.count("pods")
    assert arrivals[1] - arrivals[0] >= 1.0  # the retry waited the Retry-After
    held("429 with Retry-After: 1", "retried after 1 s; patrol exact")


def test_a_410_on_a_continue_token_restarts_the_patrol_list_once(sim: Sim, tmp_path: Path,
                                                                 held: Held) -> None:
    expected = patrol_json(sim.settings(), tmp_path, page_size=10)
    fault = Fault("status", r"^GET /api/v1/pods\?.*continue=", nth=3, status=410,
                  message="The provided continue parameter is too old")
    with FaultProxy(sim.server.url, fault) as proxy:
        got = patrol_json(through(proxy, sim, tmp_path), tmp_path, page_size=10)
        firsts = [line for line in proxy.lines()
                  if line.startswith("GET /api/v1/pods?") and "continue=" not in line]
    assert fault.hits == 1
    assert len(firsts) == 2  # the list started over once
    assert got["workloads"] == expected["workloads"]
    assert got["pods_scanned"] == expected["pods_scanned"]
    held("410 Expired on a continue token mid-list", "list restarted once; no duplicate rows")


def test_a_hung_page_fails_within_the_patrol_deadline(sim: Sim, tmp_path: Path,
                                                      held: Held) -> None:
    fault = Fault("hang", PODS_PAGE, times=None)
    with FaultProxy(sim.server.url, fault) as proxy:
        settings = through(proxy, sim, tmp_path, KUBE_READ_TIMEOUT=0.5, KUBE_RETRIES=10,
                           PATROL_DEADLINE=1.5)
        with pytest.raises(DeadlineExceeded) as err:
            patrol_json(settings, tmp_path)
    message = str(err.value)
    assert message.startswith("cluster sim-qld2: list pods in all namespaces: gave up at the "
                              "1.5 s deadline (PATROL_DEADLINE); last attempt: the API server at ")
    assert "sent nothing for 0.5 s (KUBE_READ_TIMEOUT)" in message
    assert 2 <= fault.hits < 11
    held("a list page that never answers", "PATROL_DEADLINE ends the patrol; one line")


def test_tls_to_a_plain_http_server_is_one_line(sim: Sim, tmp_path: Path, held: Held) -> None:
    https = sim.server.url.replace("http://", "https://")
    kubeconfig = tmp_path / "kubeconfig-tls"
    kubeconfig.write_text(sim.kubeconfig.read_text().replace(sim.server.url, https))
    with pytest.raises(ClusterError) as err:
        patrol_json(amend(sim.settings(), KUBECONFIG=str(kubeconfig)), tmp_path)
    assert not isinstance(err.value, TransientError)  # retrying cannot fix a TLS mismatch
    message = str(err.value)
    assert message.startswith(f"cluster sim-qld2: get /version: cannot talk to the Kubernetes "
                              f"API at {https} (")
    assert "\n" not in message
    held("TLS handshake fails (plain HTTP behind an https:// URL)", "exit 1; one line")


def test_the_recorders_watch_connects_within_kube_connect_timeout(sim: Sim, held: Held) -> None:
    """A server whose accept queue is full drops the SYN: the watch's connect must give up
    after KUBE_CONNECT_TIMEOUT like every other API call, not after a fixed 10 s."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = []
        for _ in range(3):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            queued.append(s)
        kubeconfig = sim.kubeconfig.read_text().replace(sim.server.url,
                                                        f"http://127.0.0.1:{port}")
        sim.kubeconfig.write_text(kubeconfig)
        cluster = connect(sim.settings(KUBE_CONNECT_TIMEOUT=0.3))
        watch = PodWatch(cluster, None, handler=None, watch_seconds=30)  # type: ignore[arg-type]
        failed: list[BaseException] = []

        def open_watch() -> None:
            try:
                watch._watch("1")
            except BaseException as exc:
                failed.append(exc)

        opener = threading.Thread(target=open_watch, daemon=True)
        try:
            opener.start()
            opener.join(timeout=5)  # far above 0.3 s, well below the old fixed 10 s
            assert not opener.is_alive(), "the watch was still connecting after 5 s"
        finally:
            cluster.close()
            for s in queued:
                s.close()
    (error,) = failed
    assert isinstance(error, ClusterUnavailable) and "timed out" in str(error).lower()
    held("an API server that never completes the watch's TCP handshake",
         "the recorder's watch gives up after KUBE_CONNECT_TIMEOUT")
