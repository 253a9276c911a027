"""bot/cluster over real HTTP to bot/sim: roll-up, container kinds, 410 restarts, errors."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from bot.answers.patrol import observe
from bot.cluster.client import connect
from bot.cluster.observe import observe_pods
from bot.errors import (
    ClusterError,
    ClusterUnavailable,
    ConfigError,
    ForbiddenError,
    NotFoundError,
)
from bot.patrol.model import ContainerKind
from tests.conftest import Sim, start_sim
from tests.support.settings import amend

ROOT = Path(__file__).resolve().parents[2]


def test_workloads_roll_up_through_real_owner_objects(sim: Sim) -> None:
    cluster = connect(sim.settings())
    pods = observe(cluster, [])
    kinds = {(p.namespace, p.workload.kind, p.workload.name) for p in pods}
    assert ("qld2-production", "Deployment", "pod1-deployment") in kinds
    assert ("payments", "StatefulSet", "kafka-connect") in kinds
    assert ("edge", "DaemonSet", "node-agent") in kinds
    assert ("batch", "CronJob", "nightly-report") in kinds
    assert ("edge", "Pod", "debug-shell") in kinds
    cluster.close()


def test_rollup_does_not_guess_from_names(sim: Sim) -> None:
    """A pod whose ReplicaSet is unknown stays attributed to the ReplicaSet itself."""
    cluster = connect(sim.settings())
    pods = list(cluster.pods("qld2-production"))
    observed = observe_pods(pods, owners={})
    pod1 = next(p for p in observed if p.name.startswith("pod1-"))
    assert (pod1.workload.kind, pod1.workload.name) == ("ReplicaSet",
                                                        "pod1-deployment-56744f755c")
    cluster.close()


def test_container_kinds_are_labelled(sim: Sim) -> None:
    cluster = connect(sim.settings())
    pods = observe(cluster, ["batch", "edge"])
    thumb = next(p for p in pods if p.workload.name == "thumbnailer")
    kinds = {c.name: c.kind for c in thumb.containers}
    assert kinds == {"wait-for-cache": ContainerKind.INIT,
                     "cache-sidecar": ContainerKind.SIDECAR,
                     "thumbnailer": ContainerKind.APP}
    debug = next(p for p in pods if p.name == "debug-shell")
    assert ContainerKind.EPHEMERAL in {c.kind for c in debug.containers}
    pod1 = observe(cluster, ["qld2-production"])
    c = next(p for p in pod1 if p.name.startswith("pod1-")).containers[0]
    assert (c.restarts, c.has_liveness_probe, c.memory_limit) == (140, False, None)
    assert c.last_termination is not None and c.last_termination.exit_code == 2
    cluster.close()


def test_a_410_mid_list_restarts_the_list_once(sim: Sim) -> None:
    cluster = connect(sim.settings())
    cluster.page_size = 10
    pages = {"n": 0}

    def compact_once(_seen: int) -> None:
        pages["n"] += 1
        if pages["n"] == 1:
            sim.world.compact()

    pods = cluster.relisted(lambda: observe_pods(cluster.pods(None, progress=compact_once),
                                                 {}))
    assert sim.server.statuses[410] == 1  # the restart really followed a 410
    assert len(pods) == sim.world.count("pods")
    assert len({p.uid for p in pods}) == len(pods)
    first_pages = [r for r in sim.server.requests if r.startswith("GET /api/v1/pods?")
                   and "continue=" not in r]
    assert len(first_pages) == 2  # listed from the start twice
    cluster.close()


def test_a_second_410_fails_clearly(sim: Sim) -> None:
    cluster = connect(sim.settings())
    cluster.page_size = 10

    def compact_always(_seen: int) -> None:
        sim.world.compact()

    with pytest.raises(ClusterError, match="expired twice"):
        cluster.relisted(lambda: observe_pods(cluster.pods(None, progress=compact_always),
                                              {}))
    assert sim.server.statuses[410] == 2
    cluster.close()


def test_unknown_namespace_suggests_close_names(sim: Sim) -> None:
    cluster = connect(sim.settings())
    with pytest.raises(NotFoundError) as err:
        cluster.check_namespace("qld2-prod")
    assert 'namespace "qld2-prod" not found' in str(err.value)
    assert "qld2-production" in err.value.suggestions
    cluster.close()


def test_forbidden_namespace_names_rbac(sim: Sim) -> None:
    sim.server.forbidden_namespaces.add("payments")
    cluster = connect(sim.settings())
    with pytest.raises(ForbiddenError) as err:
        list(cluster.pods("payments"))
    assert "forbidden (403)" in str(err.value) and "RBAC" not in str(err.value).upper()[:0]
    assert "grant restart-patrol get/list/watch" in str(err.value)
    named = re.search(r"see (deploy/\S+\.yaml)", str(err.value))
    assert named and (ROOT / named.group(1)).is_file()  # the manifest it names exists
    cluster.close()


def test_rejected_credentials_are_explained(tmp_path: Path) -> None:
    running = start_sim(tmp_path, token="right-token")
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(running.kubeconfig.read_text().replace("right-token", "wrong-token"))
    cluster = connect(amend(running.settings(), KUBECONFIG=str(bad)))
    with pytest.raises(ClusterError, match="rejected our credentials"):
        list(cluster.pods("default"))
    cluster.close()
    good = connect(running.settings())
    assert list(good.pods("qld2-production"))
    good.close()
    running.server.stop()


def test_unreachable_api_server_is_one_clear_line(sim: Sim, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = tmp_path / "dead"
    dead.write_text(sim.kubeconfig.read_text().replace(sim.server.url,
                                                       f"http://127.0.0.1:{port}"))
    cluster = connect(amend(sim.settings(), KUBECONFIG=str(dead)))
    with pytest.raises(ClusterUnavailable) as err:
        list(cluster.pods(None))
    message = str(err.value)
    assert "cannot reach the Kubernetes API" in message and "connection refused" in message
    assert "\n" not in message
    cluster.close()


def test_missing_kubeconfig_is_a_config_error(tmp_path: Path, sim: Sim) -> None:
    with pytest.raises(ConfigError, match="kubeconfig"):
        connect(amend(sim.settings(), KUBECONFIG=str(tmp_path / "absent")))


def test_server_time_comes_with_the_answer_that_carried_it(sim: Sim) -> None:
    cluster = connect(sim.settings())
    listing = cluster.pods("qld2-production")
    assert listing.server_time is None
    list(listing)
    assert listing.server_time == sim.world.now
    assert cluster.server_now() == sim.world.now
    cluster.close()


def test_previous_log_and_events(sim: Sim) -> None:
    cluster = connect(sim.settings())
    pod = "pod1-deployment-56744f755c-hx2w7"
    log = cluster.previous_log("qld2-production", pod, "pod1", tail_lines=50,
                               limit_bytes=100_000)
    assert log is not None and "panic: runtime error" in log
    healthy = next(n for ns, n in sim.world.sorted_keys("pods") if ns == "monitoring")
    assert cluster.previous_log("monitoring", healthy, "app", tail_lines=5,
                                limit_bytes=1000) is None
    agent = next(n for ns, n in sim.world.sorted_keys("pods")
                 if ns == "edge" and n.startswith("node-agent-"))
    reasons = {e.reason for e in cluster.events_for("edge", agent)}
    assert "BackOff" in reasons
    cluster.close()
