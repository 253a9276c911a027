"""`restart-patrol serve` runs the flight recorder: against bot/sim with its clock moving,
every restart is recorded once, a new crash is alerted once, /metrics counts them, and
after the pod and its events are gone the Slack drill-down still answers from the record."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.store import Store
from tests.conftest import start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.integration.test_recorder import shop
from tests.integration.test_recorder_cli import wait_for
from tests.support.processes import diagnosable, stop

SECRET = "recorder-signing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_crash_alerts(slack: FakeSlack) -> list[dict]:
    """The alerts in PATROL_CHANNEL (a digest may be caught up there too, by the hour)."""
    return [m for m in slack.messages("CALERT") if "New crash in" in slack.text_of(m)]


def captures_counted(port: int) -> float:
    """Captures the recorder finished (stored, and alerted on when new) per /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        lines = resp.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith("restart_patrol_recorder_captures_total{"))


def slash(port: int, text: str, response_url: str) -> int:
    body = urlencode({"team_id": "T1", "channel_id": "COPS", "user_id": "U1",
                      "command": "/restarts", "text": text, "trigger_id": "1.2.3",
                      "response_url": response_url, "api_app_id": "A1"})
    ts = str(int(time.time()))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events", data=body.encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Slack-Request-Timestamp": ts,
                 "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
                     timestamp=ts, body=body)})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.status)


def test_serve_records_alerts_and_answers_for_a_gone_pod(tmp_path: Path) -> None:
    scenario = shop()  # never restarted before install: its first crash is new
    scenario["namespaces"]["shop"]["workloads"][0]["containers"][0]["restarts"] = 0
    sim = start_sim(tmp_path, scenario)
    slack = FakeSlack().start()
    port = free_port()
    url = f"sqlite:///{tmp_path}/serve.db"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "PATROL_", "KUBE", "DATABASE_URL", "ALERT_"))}
    env.update({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.base_url, "PORT": str(port),
                "KUBECONFIG": str(sim.kubeconfig), "DATABASE_URL": url,
                "PATROL_CHANNEL": "CALERT", "ALERT_NEW_CRASHES": "true"})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=diagnosable(env),
                            text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    store = Store.open(url)
    crashes = store.history
    try:
        wait_for(lambda: proc.poll() is not None
                 or any("watch=true" in r for r in list(sim.server.requests)),
                 "serve's recorder to watch", timeout=60)
        assert proc.poll() is None
        for _ in range(3):
            sim.world.advance(timedelta(hours=1))
        wait_for(lambda: len(crashes.history("shop", "shop", limit=50)) == 3,
                 "three recorded crashes")
        rows = crashes.history("shop", "shop", limit=50)
        assert sorted(c.restart_count for c in rows) == [1, 2, 3]
        assert all(c.log_captured for c in rows)
        wait_for(lambda: captures_counted(port) >= 3, "three finished captures")
        wait_for(lambda: new_crash_alerts(slack), "the new crash's alert")
        alerts = new_crash_alerts(slack)
        assert len(alerts) == 1 and "New crash in shop / orders" in slack.text_of(alerts[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        assert 'restart_patrol_recorder_restarts_total{cluster="shop"} 3.0' in metrics

        pod = rows[0].pod_name
        sim.world.delete("pods", "shop", pod)
        sim.simulation.workloads[0].pods.clear()
        for ns, name in list(sim.world.sorted_keys("events")):
            sim.world.delete("events", ns, name)
        assert slash(port, f"shop {pod}", slack.response_url("gone")) == 200
        reply = slack.wait_for(lambda: next(
            (m for m in slack.messages("COPS") if m.get("thread_ts")
             and "Crashes in the last" in str(m.get("blocks"))), None))
        text = str(reply["blocks"])
        assert "go-panic" in text and "no longer exists" in text
        assert len(new_crash_alerts(slack)) == 1  # three restarts, one new crash
    finally:
        out = stop(proc, 20)
        store.close()
        slack.stop()
        sim.server.stop()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert not slack.violations
