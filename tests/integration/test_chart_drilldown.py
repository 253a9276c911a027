"""The crash-history chart where people see it: the Slack drill-down uploads the
workload's 14-day PNG into its thread (signed requests to the Bolt app, the fake Slack
Web API, a real store, the simulated cluster), and `why --chart FILE` writes the same
PNG. Each PNG is read back: it decodes, has the chart's size, and the data it carries
equal the timeline of the crashes (and silences) recorded in the store."""
# ruff: noqa: F811 (the rig fixture is imported, then requested by name)

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from bot.answers.chart import CLOCK_SKEW
from bot.patrol.alerting import AlertedWorkload
from bot.patrol.history import CAPTURED, CrashRecord
from bot.patrol.timeline import SilenceSpan, workload_timeline
from bot.render.chart import DATA_KEY, timeline_data
from bot.store import Store
from tests.conftest import Sim
from tests.integration.test_slack_app import OPS, files_of
from tests.integration.test_slack_controls import CLUSTER, Rig, rig  # noqa: F401 (fixture)

NS, WORKLOAD = "qld2-production", "pod1-deployment"
CHART_TITLE = "restarts per hour, last 14 days"


def crash_at(store: Store, at: datetime, n: int, *, fingerprint: str = "f00d",
             restarts: int = 1, workload: str = WORKLOAD, cluster: str = CLUSTER,
             replica_set: str = "pod1-deployment-7d9f") -> CrashRecord:
    stored = store.crashes.record(CrashRecord(
        cluster=cluster, namespace=NS, pod_name=f"{workload}-abc12",
        pod_uid=f"uid-{workload}", container="app", container_kind="container",
        workload_kind="Deployment", workload_name=workload, restart_count=n,
        restarts=restarts, exit_code=2, reason="Error", finished_at=at, recorded_at=at,
        category="go-panic", fingerprint=fingerprint, capture=CAPTURED,
        summary="Go panic: runtime error", replica_set=replica_set,
        signature=("panic: runtime error: invalid memory address",)), "log")
    assert stored is not None
    return stored


def read_png(png: bytes) -> tuple[tuple[int, int], dict[str, Any]]:
    image = Image.open(io.BytesIO(png))
    image.load()  # all of it decodes, not just the header
    assert image.format == "PNG"
    return image.size, json.loads(image.text[DATA_KEY])


def expected(store: Store, data: dict[str, Any], cluster: str = CLUSTER,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The chart data computed straight from the store, for the window the PNG states
    (its end is the API server's clock in whole seconds; a silence set since, by the
    bot's clock, is in force at it — within CLOCK_SKEW, as the product reads it)."""
    until = datetime.fromisoformat(data["to"].replace("Z", "+00:00"))
    records = store.history.history(cluster, NS, workload=("Deployment", WORKLOAD),
                                    limit=100_000)
    spans = [SilenceSpan(min(s.created_at, until), s.lifted_at or s.until,
                         (labels or {}).get(s.created_by, f"@{s.created_by}"))
             for s in store.silences.overlapping(
                 AlertedWorkload(cluster, NS, "Deployment", WORKLOAD),
                 until - timedelta(days=14), until + CLOCK_SKEW)]
    return timeline_data(workload_timeline(records, until=until, silences=spans))


def chart_uploads(rig: Rig, thread_ts: str) -> list[bytes]:
    done = [c for c in rig.slack.calls_to("files.completeUploadExternal")
            if c.args.get("thread_ts") == thread_ts]
    return [rig.slack.uploads[f["id"]] for call in done for f in files_of(call.args)
            if CHART_TITLE in f.get("title", "")]


def test_why_on_an_alert_uploads_the_workloads_chart_into_its_thread(rig: Rig) -> None:
    alert = rig.alert(n=5)  # a crash, now, and its alert
    (alerted,) = rig.store.history.history(CLUSTER, NS, pod_name=f"{WORKLOAD}-abc12")
    now = datetime.now(UTC)  # and the workload's earlier crashes, recorded since
    crash_at(rig.store, now - timedelta(days=20), 1, replica_set="pod1-deployment-5c6b")
    crash_at(rig.store, now - timedelta(days=6, hours=3), 2, restarts=3,
             replica_set="pod1-deployment-5c6b")
    crash_at(rig.store, now - timedelta(days=2), 3, fingerprint="beef")
    crash_at(rig.store, now - timedelta(hours=5), 4)
    crash_at(rig.store, now - timedelta(days=3), 1, workload="pod3-deployment")  # not it
    rig.silence("crash:24h", OPS, alert["ts"])
    (actions,) = [b for b in alert["blocks"] if b["type"] == "actions"]
    why = next(e for e in actions["elements"] if e["action_id"] == "why")
    rig.act({"action_id": "why", "type": "button", "value": why["value"]}, OPS, alert["ts"])

    (png,) = chart_uploads(rig, alert["ts"])
    size, data = read_png(png)
    assert size == (1200, 500)
    assert data == expected(rig.store, data)
    # ... and those are the recorded crashes: 3 + 1 of f00d, 1 of beef, and the alerted
    # one when it happened by the API server's "now" (its Date header counts whole seconds)
    assert (data["namespace"], data["name"]) == (NS, WORKLOAD)
    until = datetime.fromisoformat(data["to"].replace("Z", "+00:00"))
    late = 0 if alerted.finished_at and alerted.finished_at > until else 1
    assert {s["identity"]: s["total"] for s in data["series"]} == {"f00d": 4 + late,
                                                                   "beef": 1}
    assert len(data["series"][0]["counts"]) == 14 * 24
    assert [r["replica_set"] for r in data["rollouts"]] == ["pod1-deployment-7d9f"]
    (silence,) = data["silences"]
    assert silence["by"] == "@U123" and silence["label"].startswith("silenced by @U123 until")
    replies = rig.replies(OPS, alert["ts"])
    assert any("chart uploaded below" in r for r in replies)


def test_a_drilldown_with_no_recorded_crash_uploads_no_chart(rig: Rig) -> None:
    rig.bot.command(f"{NS} {WORKLOAD}")
    (parent,) = [m for m in rig.slack.messages(OPS) if not m.get("thread_ts")]
    replies = rig.replies(OPS, parent["ts"])
    assert replies, "the drill-down answered"
    assert chart_uploads(rig, parent["ts"]) == []
    assert not any("chart" in r for r in replies)


def test_a_command_drilldown_charts_the_recorded_workload(rig: Rig) -> None:
    now = datetime.now(UTC)
    for n in range(1, 8):
        crash_at(rig.store, now - timedelta(hours=7 * n), n)
    rig.bot.command(f"{NS} {WORKLOAD}")
    (parent,) = [m for m in rig.slack.messages(OPS) if not m.get("thread_ts")]
    (png,) = chart_uploads(rig, parent["ts"])
    size, data = read_png(png)
    assert size == (1200, 500) and data == expected(rig.store, data)
    assert sum(s["total"] for s in data["series"]) == 7


def test_why_chart_writes_the_same_png_from_the_terminal(sim: Sim, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/cli.db"
    store = Store.open(database)
    now = datetime.now(UTC)
    try:
        cluster = CLUSTER
        for n in range(1, 5):
            crash_at(store, now - timedelta(days=n, minutes=10), n, restarts=n,
                     cluster=cluster)
        store.silences.add(AlertedWorkload(cluster, NS, "Deployment", WORKLOAD), None,
                           by="cli:alice", now=now - timedelta(days=2), reason="deploy",
                           until=now - timedelta(days=1))
        out = tmp_path / "pod1.png"
        done = run_cli(sim, database, "why", NS, WORKLOAD, "--chart", str(out))
        assert done.returncode == 0, done.stderr
        size, data = read_png(out.read_bytes())
        assert size == (1200, 500)
        assert data == expected(store, data, cluster, labels={"cli:alice": "cli:alice"})
        assert sum(s["total"] for s in data["series"]) == 1 + 2 + 3 + 4
        assert [s["by"] for s in data["silences"]] == ["cli:alice"]
    finally:
        store.close()


def test_why_chart_to_a_bad_path_says_so_in_one_line(sim: Sim, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/cli.db"
    for bad, why in ((tmp_path / "missing" / "x.png", "no directory"),
                     (tmp_path, "it is a directory")):
        done = run_cli(sim, database, "why", NS, WORKLOAD, "--chart", str(bad))
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("restart-patrol: cannot write the chart to") and why in line
        assert "Traceback" not in done.stderr


def test_why_chart_without_recorded_crashes_writes_nothing(sim: Sim, tmp_path: Path) -> None:
    out = tmp_path / "none.png"
    done = run_cli(sim, f"sqlite:///{tmp_path}/empty.db", "why", NS, WORKLOAD,
                   "--chart", str(out))
    assert done.returncode == 0, done.stderr
    assert "no chart written: no recorded crash of" in done.stderr
    assert not out.exists()


def run_cli(sim: Sim, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "KUBE", "DATABASE_URL", "PATROL_"))}
    env |= {"KUBECONFIG": str(sim.kubeconfig), "DATABASE_URL": database}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
