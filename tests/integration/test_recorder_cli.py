"""`restart-patrol record` as a process, and `why` answering from the record after the pod
and its events are gone (text, --json history, --log)."""
# ruff: noqa: F811 (the make_rig fixture is imported, then requested by name)

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.answers.investigation import Question, investigate
from bot.errors import NotFoundError
from bot.store import Store
from tests.conftest import start_sim
from tests.integration.test_recorder import Rig, make_rig, shop  # noqa: F401 (fixture)

CLI = [sys.executable, "-m", "bot"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "KUBE", "DATABASE_URL", "PATROL_", "ALERT_"))}
    env.update(extra)
    return env


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_record_runs_alone_until_sigterm_and_stores_every_restart(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, shop())
    url = f"sqlite:///{tmp_path}/rec.db"
    proc = subprocess.Popen([*CLI, "record"], env=cli_env(
        KUBECONFIG=str(sim.kubeconfig), DATABASE_URL=url), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    store = Store.open(url)
    try:
        # the recorder watches once its list is done: restarts from then on are its to see
        wait_for(lambda: any("watch=true" in r for r in list(sim.server.requests)),
                 "the recorder's watch")
        sim.world.advance(timedelta(hours=3))
        crashes = store.history
        wait_for(lambda: len(crashes.history("shop", "shop", pod_name=None,
                                             workload=("Deployment", "orders"))) == 3,
                 "three recorded crashes")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        rows = crashes.history("shop", "shop", workload=("Deployment", "orders"))
        assert sorted(c.restart_count for c in rows) == [8, 9, 10]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        store.close()
        sim.server.stop()


def test_why_answers_for_a_deleted_pod_from_the_record(make_rig) -> None:
    rig: Rig = make_rig()
    rig.advance(minutes=40)
    rig.advance(hours=1)
    (pod,) = [name for ns, name in rig.sim.world.sorted_keys("pods") if ns == "shop"]
    rig.sim.world.delete("pods", "shop", pod)
    rig.sim.simulation.workloads[0].pods.clear()  # gone for good: no more crashes either
    for ns, name in list(rig.sim.world.sorted_keys("events")):
        rig.sim.world.delete("events", ns, name)
    env = cli_env(KUBECONFIG=str(rig.sim.kubeconfig),
                  DATABASE_URL=str(rig.store.engine.url))
    text = subprocess.run([*CLI, "why", "shop", pod], env=env, capture_output=True,
                          text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "Go panic: runtime error: invalid memory address" in text.stdout
    assert "one line per crash" in text.stdout and "×2 between" in text.stdout
    assert "this pod no longer exists" in text.stdout
    assert "[REDACTED]" in text.stdout and "hunter2" not in text.stdout

    as_json = subprocess.run([*CLI, "why", "shop", "orders", "--json"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    (report,) = json.loads(as_json.stdout)
    assert report["pod"] == pod and report["recorded_only"] is True
    history = report["history"]
    assert [h["exit_code"] for h in history] == [2, 2]
    assert history[0]["finished_at"] > history[1]["finished_at"]
    first = history[-1]
    assert {"finished_at", "exit_code", "reason", "category", "fingerprint", "signature",
            "log_captured", "events"} <= set(first)
    assert first["category"] == "go-panic" and first["log_captured"] is True
    assert first["signature"][0].startswith("panic: runtime error")

    log = subprocess.run([*CLI, "why", "shop", pod, "--log", str(first["id"])], env=env,
                         capture_output=True, text=True, timeout=60)
    assert log.returncode == 0, log.stderr
    assert "panic: runtime error" in log.stdout and "hunter2" not in log.stdout
    with pytest.raises(NotFoundError) as missing:
        investigate(rig.cluster, rig.recorder.settings, Question("shop", "ordrs"), store=rig.store)
    assert "orders" in missing.value.suggestions  # names known only from the record too
