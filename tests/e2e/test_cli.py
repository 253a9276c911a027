"""The CLI as a process: demo, diagnose, patrol/why against `restart-patrol sim`, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.sim.scenario import load_scenario

CLI = [sys.executable, "-m", "bot"]


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "KUBE", "DATABASE_URL", "PATROL_"))}
    full_env.update(env or {})
    return subprocess.run([*CLI, *args], env=full_env, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def served_sim(tmp_path: Path) -> Iterator[dict[str, str]]:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen([*CLI, "sim", "--kubeconfig", str(kubeconfig), "--speed", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not kubeconfig.exists():
            proc.kill()
            pytest.fail(f"restart-patrol sim did not start: {proc.communicate()[1]}")
        yield {"KUBECONFIG": str(kubeconfig), "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=10)


def test_demo_shows_pod1s_delta_exit_2_and_the_go_panic() -> None:
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "First patrol: baseline set" in out
    day = out.split("━━ 3.")[1]
    pod1 = next(line for line in day.splitlines() if "pod1-deployment" in line)
    assert pod1.split()[3:6] == ["+3", "143", "2"]
    assert pod1.split()[7] == "47d"  # AGE: 46 days old at the start, one simulated day later
    assert "Go panic: runtime error: invalid memory address or nil pointer dereference" in day
    assert "Traceback" not in proc.stderr


def test_diagnose_the_qld2_pod1_log(tmp_path: Path) -> None:
    log = tmp_path / "pod1.log"
    log.write_text(load_scenario()["logs"]["go-nil-panic"])
    proc = run("diagnose", "--exit-code", "2", "--reason", "Error", "--log-file", str(log))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("Go panic: runtime error: invalid memory address or nil pointer "
                            "dereference")
    assert "│ panic: runtime error: invalid memory address or nil pointer dereference" in \
        proc.stdout


def test_diagnose_json_from_stdin_has_the_contract_keys() -> None:
    proc = run("diagnose", "--exit-code", "1", "--log-file", "-", "--json",
               stdin="Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                     "KeyError: 'region'\n")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"exit_code", "signal", "reason", "meaning", "category", "runtime", "signature",
            "summary", "hints"} <= set(data)
    assert data["category"] == "python-exception"
    assert data["signature"] == ["KeyError: 'region'"]


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("diagnose", "--exit-code", "two"), 2, "invalid int value"),
    (("diagnose", "--log-file", "/nonexistent/log"), 2, "cannot read log file"),
    (("diagnose",), 2, "nothing to diagnose"),
    (("patrol", "--since", "yesterday", "--print"), 2, "bad duration"),
    (("bogus",), 2, "invalid choice"),
])
def test_bad_input_is_one_clear_line_without_traceback(args: tuple[str, ...], code: int,
                                                       needle: str) -> None:
    proc = run(*args)
    assert proc.returncode == code
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_patrol_print_and_json_against_the_served_sim(served_sim: dict[str, str]) -> None:
    first = run("patrol", "--print", env=served_sim)
    assert first.returncode == 0, first.stderr
    assert "First patrol: baseline set" in first.stdout
    server = yaml.safe_load(Path(served_sim["KUBECONFIG"]).read_text())["clusters"][0][
        "cluster"]["server"]
    request = urllib.request.Request(f"{server}/sim/advance?seconds=86400", method="POST")
    urllib.request.urlopen(request, timeout=10).close()  # a simulated day: every ns restarts
    second = run("patrol", "--json", "-n", "qld2-production", env=served_sim)
    assert second.returncode == 0, second.stderr
    data = json.loads(second.stdout)
    assert set(data) >= {"cluster", "window", "first_run", "workloads"}
    assert set(data["window"]) == {"from", "to"}
    assert data["first_run"] is False
    assert {w["namespace"] for w in data["workloads"]} == {"qld2-production"}


def test_patrol_json_first_run_shape(served_sim: dict[str, str]) -> None:
    proc = run("patrol", "--json", env=served_sim)
    data = json.loads(proc.stdout)
    assert data["first_run"] is True and data["window"]["from"] is None
    pod1 = next(w for w in data["workloads"] if w["name"] == "pod1-deployment")
    assert pod1["restarts"] is None and pod1["total"] == 140
    assert pod1["last_exit_code"] == 2 and pod1["category"] == "go-panic"
    container = pod1["pods"][0]["containers"][0]
    assert set(container) >= {"name", "restarts", "total", "last_exit_code", "last_reason",
                              "category", "finished_at", "waiting_reason"}


def test_why_json_and_text(served_sim: dict[str, str]) -> None:
    proc = run("why", "qld2-production", "pod1-deployment", "--json", env=served_sim)
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)
    assert report["diagnosis"]["category"] == "go-panic"
    assert report["diagnosis"]["exit_code"] == 2
    text = run("why", "qld2-production", "pod1-deployment-56744f755c-hx2w7", env=served_sim)
    assert "Go panic: runtime error" in text.stdout and "previous log" in text.stdout


def test_unknown_namespace_and_pod_suggest_names(served_sim: dict[str, str]) -> None:
    proc = run("patrol", "--print", "-n", "qld2-prod", env=served_sim)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        'restart-patrol: namespace "qld2-prod" not found in cluster sim-qld2',
        "restart-patrol: did you mean qld2-production?"]
    pod = run("why", "qld2-production", "pod1-deploymnt", env=served_sim)
    assert pod.returncode == 1 and "did you mean pod1-deployment" in pod.stderr


def test_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        "    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n"
        "    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n")
    proc = run("patrol", "--print", env={"KUBECONFIG": str(kubeconfig),
                                         "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in proc.stderr


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    proc = run("diagnose", "--exit-code", "2", env={"PATROL_TIMEZONE": "Mars/Olympus"})
    assert proc.returncode == 2
    assert "PATROL_TIMEZONE='Mars/Olympus' is not an IANA time zone" in proc.stderr


def test_patrol_without_output_flag_explains_how_to_post() -> None:
    proc = run("patrol")
    assert proc.returncode == 2 and "--print" in proc.stderr


def test_demo_posts_to_slack_when_configured() -> None:
    from tests.fakes.slack_api import TOKEN, FakeSlack

    slack = FakeSlack().start()
    try:
        proc = run("demo", env={"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.base_url,
                                "PATROL_CHANNEL": "CDEMO"})
        assert proc.returncode == 0, proc.stderr
        assert "Posted the digest to Slack channel CDEMO" in proc.stdout
        (message,) = slack.messages("CDEMO")
        assert "pod1-deployment" in slack.text_of(message)
        assert not slack.violations
    finally:
        slack.stop()


@pytest.mark.parametrize(("env", "needle"), [
    ({}, "serve needs SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxb-x"}, "HTTP mode needs SLACK_SIGNING_SECRET"),
    ({"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "PATROL_CHANNEL": "C1",
      "PATROL_SCHEDULE": "at nine"}, "PATROL_SCHEDULE='at nine' is not a cron expression"),
    ({"CHANNEL_NAMESPACES": "C01"}, "CHANNEL_NAMESPACES entry 'C01' is not"),
])
def test_serve_misconfiguration_is_one_line(env: dict[str, str], needle: str) -> None:
    proc = run("serve", env=env, timeout=60)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_slack_unreachable_says_unreachable(served_sim: dict[str, str],
                                                       tmp_path: Path) -> None:
    """Slack's port closed: 'cannot reach Slack at …', not 'Slack rejected the bot token'."""
    proc = run("serve", env={**served_sim, "SLACK_BOT_TOKEN": "xoxb-x",
                             "SLACK_SIGNING_SECRET": "s", "PORT": "0",
                             "SLACK_API_URL": "http://127.0.0.1:9/api/",
                             "DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}, timeout=60)
    assert proc.returncode == 1
    assert "cannot reach Slack at http://127.0.0.1:9/api/" in proc.stderr
    assert "rejected" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_a_refused_token_says_so(served_sim: dict[str, str], tmp_path: Path) -> None:
    from tests.fakes.slack_api import FakeSlack

    slack = FakeSlack().start()
    try:
        proc = run("serve", env={**served_sim, "SLACK_BOT_TOKEN": "xoxb-wrong",
                                 "SLACK_SIGNING_SECRET": "s", "PORT": "0",
                                 "SLACK_API_URL": slack.base_url,
                                 "DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}, timeout=60)
    finally:
        slack.stop()
    assert proc.returncode == 1
    assert "Slack rejected the bot token" in proc.stderr and "invalid_auth" in proc.stderr
    assert "Traceback" not in proc.stderr
