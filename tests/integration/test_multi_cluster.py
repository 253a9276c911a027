"""Several clusters from one bot (KUBE_CONTEXTS): two simulated clusters behind one
kubeconfig with two contexts, reached over real HTTP.

`east` runs the default scenario; `west` runs it with `payments` renamed `payments-west`,
so `qld2-production` exists in both (ambiguous without a cluster) and `payments-west` in
one only.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.cluster.fleet import Fleet, connect_fleet
from bot.errors import ConfigError, NotFoundError, UnknownClusterError, UsageError
from bot.runtime import Runtime
from bot.schedule.scheduler import DigestScheduler
from bot.service import ClusterJobs, Leadership, cluster_jobs
from bot.settings import Settings, load_settings
from bot.slack.access import Access
from bot.slack.app import build_app
from bot.slack.client import build_web_client
from bot.slack.posting import Services
from bot.slack.serving import SlackFrontend
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_slack_app import SECRET, Bot, InlineExecutor
from tests.support.settings import amend


def _west_scenario() -> dict:
    from bot.sim.scenario import load_scenario

    scenario = load_scenario()
    scenario["cluster"] = "west"
    scenario["namespaces"]["payments-west"] = scenario["namespaces"].pop("payments")
    return scenario


@dataclass
class Clusters:
    east: Sim
    west: Sim
    kubeconfig: Path

    def settings(self, tmp_path: Path, **env: str) -> Settings:
        return load_settings({"KUBECONFIG": str(self.kubeconfig), "KUBE_CONTEXTS": "east,west",
                              "DATABASE_URL": f"sqlite:///{tmp_path}/multi.db",
                              "KUBE_RETRIES": "0", **env})


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[Clusters]:
    east = start_sim(tmp_path)
    west = start_sim(tmp_path, _west_scenario())
    merged: dict = {"apiVersion": "v1", "kind": "Config", "current-context": "east",
                    "clusters": [], "contexts": [], "users": []}
    for name, sim in (("east", east), ("west", west)):
        one = yaml.safe_load(sim.server.kubeconfig(name))
        for key in ("clusters", "contexts", "users"):
            merged[key].extend(one[key])
    kubeconfig = tmp_path / "two-clusters.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(merged))
    try:
        yield Clusters(east, west, kubeconfig)
    finally:
        east.server.stop()
        west.server.stop()


# ---- settings -----------------------------------------------------------------------
@pytest.mark.parametrize(("env", "message"), [
    ({"KUBE_CONTEXTS": "a,a"}, "names a context twice"),
    ({"KUBE_CONTEXTS": "a,b", "CLUSTER_NAME": "prod"}, "unset CLUSTER_NAME"),
    ({"KUBE_CONTEXTS": "a/b"}, "contains '/'"),
    ({"KUBE_CONTEXTS": "a,b", "PATROL_NAMESPACES": "payments"}, "CLUSTER/NAMESPACE"),
    ({"KUBE_CONTEXTS": "a,b", "PATROL_NAMESPACES": "c/payments"},
     "no cluster 'c' in KUBE_CONTEXTS"),
    ({"PATROL_NAMESPACES": "a/b/c"}, "is not NAMESPACE, CLUSTER/NAMESPACE"),
    ({"CHANNEL_NAMESPACES": "C1=a/b/c"}, "CLUSTER/NAMESPACE"),
    ({"CHANNEL_NAMESPACES": "C1=x;C1=y"}, "names channel C1 twice"),
    ({"KUBE_CONTEXTS": "a,b", "CHANNEL_NAMESPACES": "C1=c/x"}, "no cluster 'c' in KUBE_CONTEXTS"),
])
def test_bad_multi_cluster_settings_are_one_clear_line(env: dict[str, str],
                                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("/", "/")):
        load_settings(env)


def test_access_entries_may_name_a_cluster() -> None:
    access = Access({"C1": ("east/payments", "west/*", "edge")})
    assert access.allows("C1", "payments", "east")
    assert not access.allows("C1", "payments", "nowhere")
    assert access.allows("C1", "anything", "west")
    assert access.allows("C1", "edge", "east") and access.allows("C1", "edge", "west")
    assert not access.allows("C1", "batch", "east")


# ---- locating a namespace -----------------------------------------------------------
def test_a_namespace_is_found_in_its_cluster_or_named_with_one(clusters: Clusters,
                                                              tmp_path: Path) -> None:
    fleet = connect_fleet(clusters.settings(tmp_path))
    try:
        assert fleet.names() == ["east", "west"]
        assert fleet.locate("payments-west").cluster.name == "west"
        assert fleet.locate("payments").cluster.name == "east"
        assert fleet.locate("west/qld2-production").cluster.name == "west"
        with pytest.raises(UsageError, match=r"several clusters.*east/qld2-production"):
            fleet.locate("qld2-production")
        with pytest.raises(UnknownClusterError, match="no cluster \"north\""):
            fleet.locate("north/payments")
        clusters.west.server.stop()
        fleet.close()  # new connections: the stopped server's kept-alive ones are gone
        fleet = connect_fleet(clusters.settings(tmp_path))
        # west is down: a namespace only east has is still found, and a miss says why
        assert fleet.locate("payments").cluster.name == "east"
        with pytest.raises(NotFoundError, match="could not ask west"):
            fleet.locate("payments-west")
    finally:
        fleet.close()


def test_two_contexts_with_one_cluster_name_are_refused(clusters: Clusters,
                                                        tmp_path: Path) -> None:
    fleet = connect_fleet(clusters.settings(tmp_path))
    try:
        with pytest.raises(ConfigError, match="same cluster 'east'"):
            Fleet([fleet.get("east"), fleet.get("east")])
    finally:
        fleet.close()


# ---- CLI ----------------------------------------------------------------------------
def _run_cli(args: list[str], settings_env: dict[str, str],
             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
             ) -> tuple[int, str, str]:
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_patrol_covers_every_cluster_and_survives_one_down(
        clusters: Clusters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = {"KUBECONFIG": str(clusters.kubeconfig), "KUBE_CONTEXTS": "east,west",
           "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", "KUBE_RETRIES": "0",
           "KUBE_CONNECT_TIMEOUT": "1s"}
    code, out, _ = _run_cli(["patrol", "--json"], env, monkeypatch, capsys)
    assert code == 0
    digests = json.loads(out)
    assert [d["cluster"] for d in digests] == ["east", "west"]
    namespaces = {d["cluster"]: {w["namespace"] for w in d["workloads"]} for d in digests}
    assert "payments-west" in namespaces["west"] and "payments-west" not in namespaces["east"]

    code, out, _ = _run_cli(["patrol", "--json", "--cluster", "west"], env, monkeypatch,
                            capsys)
    assert code == 0 and json.loads(out)["cluster"] == "west"  # one cluster: one object

    clusters.west.server.stop()
    code, out, err = _run_cli(["patrol", "--json"], env, monkeypatch, capsys)
    assert code == 1
    assert [d["cluster"] for d in json.loads(out)] == ["east"]
    assert "cluster west:" in err and "Traceback" not in err

    code, out, err = _run_cli(["why", "east/qld2-production", "pod1-deployment", "--json"],
                              env, monkeypatch, capsys)
    assert code == 0, err
    first = json.loads(out)[0]
    assert first["diagnosis"]["exit_code"] == 2
    assert first["exit_code"] == 2 and first["category"] == "go-panic"  # the contract's keys


# ---- Slack --------------------------------------------------------------------------
@pytest.fixture
def bot(clusters: Clusters, tmp_path: Path) -> Iterator[Bot]:
    slack = FakeSlack().start()
    settings = amend(clusters.settings(tmp_path), SLACK_BOT_TOKEN=TOKEN,
                       SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.base_url,
                       CHANNEL_NAMESPACES={"CEAST": ("east/*",), "CALL": ("*",)})
    fleet = connect_fleet(settings)
    store = Store.open(settings.store.database_url)
    app = build_app(Services(settings, fleet.primary, store, fleet),
                    build_web_client(settings), Access(settings.slack.channel_namespaces),
                    executor=InlineExecutor())
    try:
        yield Bot(app, slack, clusters.east)
    finally:
        store.close()
        fleet.close()
        slack.stop()
    assert not slack.violations


def test_slack_routes_cluster_namespace_and_checks_access_per_cluster(bot: Bot) -> None:
    bot.command("west/payments-west", channel="CALL")
    [table] = bot.top_level("CALL")
    assert "payments-west" in bot.text(table) and "west" in bot.text(table)

    bot.command("west/payments-west", channel="CEAST")
    refusal = bot.ephemeral()[-1]
    assert "west/payments-west" in json.dumps(refusal)
    assert bot.top_level("CEAST") == []

    bot.command("qld2-production", channel="CALL")
    assert "several clusters" in json.dumps(bot.ephemeral()[-1])

    bot.command("wset/payments-west", channel="CALL")  # a cluster name mistyped
    told = json.dumps(bot.ephemeral()[-1])
    assert 'no cluster \\"wset\\"' in told and "Did you mean `west`?" in told

    # a forged button naming the other cluster is refused, the real one answers
    bot.click(json.dumps({"cl": "west", "ns": "qld2-production", "kind": "Deployment",
                          "name": "pod1-deployment"}), "CEAST", "1700000000.000100")
    assert "west/qld2-production" in json.dumps(bot.ephemeral()[-1])
    bot.click(json.dumps({"cl": "east", "ns": "qld2-production", "kind": "Deployment",
                          "name": "pod1-deployment"}), "CEAST", "1700000000.000100")
    replies = [m for m in bot.slack.messages("CEAST") if m.get("thread_ts")]
    assert replies and "nil pointer" in bot.text(replies[0])


def test_summary_answers_for_every_cluster(bot: Bot) -> None:
    bot.command("", channel="CALL")
    texts = [bot.text(m) for m in bot.top_level("CALL")]
    assert len(texts) == 2 and "east" in texts[0] and "west" in texts[1]
    bot.command("", channel="CEAST")  # CEAST sees east only: west is not summarised
    assert len(bot.top_level("CEAST")) == 1 and "west" not in bot.text(
        bot.top_level("CEAST")[0])


def test_summary_says_which_cluster_is_down_and_answers_for_the_others(
        clusters: Clusters, bot: Bot) -> None:
    clusters.west.server.stop()  # before the bot ever connected to it
    bot.command("", channel="CALL")
    [east] = (bot.text(m) for m in bot.top_level("CALL"))
    assert "east" in east and "qld2-production" in east
    assert "west:" in json.dumps(bot.ephemeral()[-1])  # told to the asker, not the channel


def test_alerts_name_the_cluster_when_several_are_served(clusters: Clusters,
                                                         tmp_path: Path) -> None:
    from bot.patrol.history import CrashRecord
    from bot.slack.alerts import new_crash_message

    crash = CrashRecord(cluster="west", namespace="payments-west", pod_name="api-1",
                        pod_uid="u1", container="api", container_kind="container",
                        workload_kind="Deployment", workload_name="api", restart_count=3,
                        exit_code=2, category="go-panic")
    several = json.dumps(new_crash_message(crash, clusters.settings(tmp_path)))
    assert "west/payments-west" in several and "/restarts west/payments-west api-1" in several
    one = json.dumps(new_crash_message(crash, load_settings({})))
    assert "west/" not in one and "/restarts payments-west api-1" in one


@dataclass
class Leaders:
    """The leader-side wiring of `serve` for both clusters, on a runtime of its own."""

    settings: Settings
    runtime: Runtime
    fleet: Fleet
    scheduler: DigestScheduler
    jobs: ClusterJobs


@contextmanager
def leader_side(clusters: Clusters, tmp_path: Path, **env: str) -> Iterator[Leaders]:
    slack = FakeSlack().start()
    settings = amend(clusters.settings(tmp_path), SLACK_BOT_TOKEN=TOKEN,
                     SLACK_SIGNING_SECRET=SECRET, PATROL_CHANNEL="CALL",
                     SLACK_API_URL=slack.base_url, **env)
    runtime = Runtime(stop_seconds=5)
    fleet = connect_fleet(settings, runtime=runtime)
    store = Store.open(settings.store.database_url)
    try:
        services = Services(settings, fleet.primary, store, fleet)
        scheduler = runtime.service(DigestScheduler(settings, runtime, series=2))
        jobs = cluster_jobs(services, SlackFrontend(services, Access(None), runtime),
                            "replica-1", scheduler)
        yield Leaders(settings, runtime, fleet, scheduler, jobs)
    finally:
        runtime.stop()
        store.close()
        fleet.close()
        slack.stop()


def test_leader_runs_a_recorder_and_a_digest_per_cluster(clusters: Clusters,
                                                         tmp_path: Path) -> None:
    with leader_side(clusters, tmp_path) as side:
        started: dict[str, list[str]] = {}
        for cluster in side.fleet:
            child = side.runtime.child(f"leader-{cluster.name}")
            side.jobs(cluster, child)
            started[cluster.name] = child.owned()
        assert started == {name: [f"recorder-{name}", f"digest-{name}/CALL"]
                           for name in ("east", "west")}
        assert sorted(j.id for j in side.scheduler.jobs()) == ["east/CALL", "west/CALL"]


def test_leadership_per_cluster_a_down_cluster_stops_only_its_own_jobs(
        clusters: Clusters, tmp_path: Path) -> None:
    """LEADER_ELECTION with two clusters: one Lease per cluster, in that cluster. The
    primary cluster (east, first in KUBE_CONTEXTS) is down: west still leads itself and
    runs its recorder and digest (before: the one Lease lived in east, so nothing ran)."""
    clusters.east.server.stop()
    with leader_side(clusters, tmp_path, LEADER_ELECTION="true", LEASE_DURATION="2",
                     LEASE_NAMESPACE="default", KUBE_CONNECT_TIMEOUT="0.5") as side:
        runtime = side.runtime
        leaders = {c.name: runtime.service(Leadership(c, side.settings, runtime, side.jobs,
                                                      "replica-1"))
                   for c in side.fleet}
        deadline = time.monotonic() + 30
        while not leaders["west"].leading:
            assert time.monotonic() < deadline, "west never led"
            time.sleep(0.05)
        lease = clusters.west.world.get("leases", "default", "restart-patrol")
        assert lease is not None and lease["spec"]["holderIdentity"] == "replica-1"
        assert leaders["west"].running() == ["recorder-west", "digest-west/CALL"]
        assert [j.id for j in side.scheduler.jobs()] == ["west/CALL"]
        assert [n for n in runtime.owned() if n.startswith("leader-")] == ["leader-west"]
        assert not leaders["east"].leading and leaders["east"].running() == []
    released = clusters.west.world.get("leases", "default", "restart-patrol")
    assert released is not None and not released["spec"].get("holderIdentity")


def test_finding_a_namespace_is_bounded_by_query_deadline(clusters: Clusters,
                                                          tmp_path: Path) -> None:
    """west accepts connections and never answers: asking where a namespace lives gives
    up on west at QUERY_DEADLINE (before: no deadline, KUBE_READ_TIMEOUT × the retries)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        hung = f"http://127.0.0.1:{silent.getsockname()[1]}"
        kubeconfig = tmp_path / "west-hangs.kubeconfig"
        kubeconfig.write_text(clusters.kubeconfig.read_text().replace(
            clusters.west.server.url, hung))
        settings = amend(clusters.settings(tmp_path), KUBECONFIG=str(kubeconfig),
                         QUERY_DEADLINE="1s", KUBE_READ_TIMEOUT="30s", KUBE_RETRIES="4")
        fleet = connect_fleet(settings)
        try:
            assert fleet.locate("payments").cluster.name == "east"
            with pytest.raises(NotFoundError) as missing:
                fleet.locate("payments-west")
        finally:
            fleet.close()
    assert "could not ask west" in str(missing.value)
    assert "gave up at the 1 s deadline (QUERY_DEADLINE)" in str(missing.value)
