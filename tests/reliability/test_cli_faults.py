"""The CLI as a process under faults: bounded time, one line on stderr, the right exit code.

Each case failed before the client had timeouts/deadlines and before settings and
kubeconfigs were validated: a hung API server kept `patrol` waiting forever with nothing on
stderr, a garbage kubeconfig printed a 72-line traceback, `DATABASE_URL=not a url` exited 1.
The subprocess timeout is only a guard: the assertions are on exit code and message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cluster.client import connect
from bot.errors import ConfigError
from bot.settings import load_settings
from tests.conftest import Sim
from tests.reliability.conftest import Held
from tests.reliability.proxy import Fault, FaultProxy

CLI = [sys.executable, "-m", "bot"]
FAST = {"KUBE_READ_TIMEOUT": "500ms", "KUBE_RETRY_BACKOFF": "50ms", "KUBE_RETRIES": "10"}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SLACK_", "KUBE", "DATABASE_URL", "PATROL_", "CHANNEL_",
                                  "QUERY_"))}
    return subprocess.run([*CLI, *args], env=clean | env, capture_output=True, text=True,
                          timeout=90)


RETRY_NOTE = re.compile(r"^restart-patrol: (cluster [^:]+: )?(?P<what>[^:]+): (?P<why>.+), "
                        r"retry (?P<n>\d+) of (?P<of>\d+) in \d+\.\d s$")


def notes(proc: subprocess.CompletedProcess[str]) -> list[re.Match[str]]:
    """The retry notes said on stderr while the command waited."""
    return [m for line in proc.stderr.splitlines() if (m := RETRY_NOTE.match(line))]


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line on stderr (retry notes said while waiting aside)."""
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not RETRY_NOTE.match(line)]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def proxied_env(sim: Sim, proxy: FaultProxy, tmp_path: Path) -> dict[str, str]:
    kubeconfig = tmp_path / "kubeconfig-proxy"
    kubeconfig.write_text(sim.kubeconfig.read_text().replace(sim.server.url, proxy.url))
    return {"KUBECONFIG": str(kubeconfig), "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
            **FAST}


def test_patrol_with_a_hung_list_page_ends_at_its_deadline(sim: Sim, tmp_path: Path,
                                                           held: Held) -> None:
    fault = Fault("hang", r"^GET /api/v1/pods\?", times=None)
    with FaultProxy(sim.server.url, fault) as proxy:
        proc = run("patrol", "--print", env=proxied_env(sim, proxy, tmp_path)
                   | {"PATROL_DEADLINE": "2s"})
    assert proc.returncode == 1
    line = one_line(proc)
    assert line.startswith("restart-patrol: cluster sim-qld2: list pods in all namespaces: gave "
                           "up at the 2 s deadline (PATROL_DEADLINE); last attempt: the API "
                           "server at ")
    assert fault.hits >= 2
    held("patrol: a list page that never answers (CLI)",
         "exit 1 at PATROL_DEADLINE; one line on stderr")


@pytest.mark.parametrize("command", [("patrol", "--print"),
                                     ("why", "qld2-production", "pod1-deployment")])
def test_a_server_that_accepts_and_never_answers(command: tuple[str, ...], sim: Sim,
                                                 tmp_path: Path, held: Held) -> None:
    fault = Fault("hang", "", times=None)
    with FaultProxy(sim.server.url, fault) as proxy:
        proc = run(*command, env=proxied_env(sim, proxy, tmp_path)
                   | {"PATROL_DEADLINE": "2s", "QUERY_DEADLINE": "2s"})
    assert proc.returncode == 1
    setting = "PATROL_DEADLINE" if command[0] == "patrol" else "QUERY_DEADLINE"
    assert one_line(proc).startswith(
        f"restart-patrol: cluster sim-qld2: get /version: gave up at the 2 s deadline "
        f"({setting})")
    held(f"{command[0]}: a server that accepts and never answers",
         f"exit 1 at {setting}; one line")


def test_why_with_logs_forbidden_by_the_proxy_still_answers(sim: Sim, tmp_path: Path,
                                                            held: Held) -> None:
    fault = Fault("status", r"/log\?", status=403, times=None, message=(
        'pods "x" is forbidden: User "system:serviceaccount:ops:restart-patrol" cannot get '
        'resource "pods/log" in API group "" in the namespace "edge"'))
    with FaultProxy(sim.server.url, fault) as proxy:
        env = proxied_env(sim, proxy, tmp_path)
        text = run("why", "edge", "ingress-gateway", env=env)
        as_json = run("why", "edge", "ingress-gateway", "--json", env=env)
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    assert ("previous log: not read — pods/log is forbidden for this service account (403)"
            in text.stdout)
    assert "Liveness probe failed" in text.stdout
    report = json.loads(as_json.stdout)[0]
    assert report["diagnosis"]["category"] == "probe-kill"
    assert [(u["what"], u["why"]) for u in report["unreadable"]] == [("pods/log", "forbidden")]
    assert fault.hits >= 2
    held("403 on pods/log injected by the proxy (why, CLI)",
         "exit 0; events shown; probe-kill; says logs are forbidden")


GARBAGE = {
    "broken YAML": b"apiVersion: v1\nclusters: [\n  - name: c\n",
    "random bytes": bytes(range(256)) * 4,
    "a YAML scalar": b"just a string\n",
    "wrong shapes": b"apiVersion: v1\nclusters: 3\ncontexts: 4\ncurrent-context: x\n",
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_garbage_kubeconfig_is_a_config_error(kind: str, tmp_path: Path, held: Held) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(GARBAGE[kind])
    with pytest.raises(ConfigError) as err:
        connect(load_settings({"KUBECONFIG": str(kubeconfig)}))
    assert str(err.value).startswith(f"cannot load kubeconfig {kubeconfig}: ")
    assert "\n" not in str(err.value)
    held(f"kubeconfig: {kind}", "ConfigError: exit 2, one line, no traceback")


@pytest.mark.parametrize(("command", "kind"), [("patrol", "random bytes"),
                                               ("serve", "a YAML scalar")])
def test_a_garbage_kubeconfig_exits_2_with_one_line(command: str, kind: str,
                                                    tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(GARBAGE[kind])
    env = {"KUBECONFIG": str(kubeconfig), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    if command == "serve":
        env |= {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "secret",
                "PATROL_CHANNEL": "C1", "CHANNEL_NAMESPACES": "C1=*"}  # no start-up warnings
    proc = run(command, *(["--print"] if command == "patrol" else []), env=env)
    assert proc.returncode == 2
    assert one_line(proc).startswith(f"restart-patrol: cannot load kubeconfig {kubeconfig}: ")


@pytest.mark.parametrize(("env", "needle"), [
    ({"DATABASE_URL": "not a url"}, "DATABASE_URL='not a url' is not a database URL"),
    ({"DATABASE_URL": "postgres//admin:hunter2@db"}, "DATABASE_URL is not a database URL"),
    ({"CHANNEL_NAMESPACES": "C01=,"},
     "CHANNEL_NAMESPACES entry 'C01=,' gives channel C01 no namespace"),
    ({"KUBE_READ_TIMEOUT": "soon"}, "KUBE_READ_TIMEOUT='soon' is not a duration"),
    ({"PATROL_DEADLINE": "0s"}, "PATROL_DEADLINE=0s must be at least 0.1 s"),
    ({"KUBE_RETRIES": "-1"}, "KUBE_RETRIES=-1 must be at least 0"),
    ({"PATROL_TIMEZONE": "Mars/Olympus"}, "PATROL_TIMEZONE='Mars/Olympus' is not an IANA"),
])
def test_a_bad_setting_is_a_config_error(env: dict[str, str], needle: str,
                                         held: Held) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert "hunter2" not in str(err.value)  # a malformed URL may still hold a password
    name, value = next(iter(env.items()))
    held(f"{name}={value}" if "@" not in value else f"{name} malformed, with a password",
         "ConfigError: exit 2, one line" + (" (value not echoed)" if "@" in value else ""))


@pytest.mark.parametrize(("env", "needle"), [
    ({"DATABASE_URL": "not a url"}, "DATABASE_URL='not a url' is not a database URL"),
    ({"PATROL_SCHEDULE": "at nine", "SLACK_BOT_TOKEN": "xoxb-test",
      "SLACK_SIGNING_SECRET": "s", "PATROL_CHANNEL": "C1"},
     "PATROL_SCHEDULE='at nine' is not a cron expression"),
    ({"KUBECONFIG": "/nonexistent/kubeconfig"},
     "cannot read kubeconfig /nonexistent/kubeconfig: no such file"),
])
def test_a_bad_setting_exits_2_with_one_line(env: dict[str, str], needle: str,
                                             held: Held) -> None:
    command = ["serve"] if "PATROL_SCHEDULE" in env else ["patrol", "--print"]
    proc = run(*command, env=env)
    assert proc.returncode == 2
    assert needle in one_line(proc)
    name = next(iter(env))
    held(f"{name}={env[name]} ({command[0]})", "exit 2; one line")


def test_an_unknown_context_and_a_closed_port(sim: Sim, tmp_path: Path, held: Held) -> None:
    with pytest.raises(ConfigError, match="prod-eu"):
        connect(sim.settings(KUBE_CONTEXT="prod-eu"))
    closed = tmp_path / "closed"
    closed.write_text(sim.kubeconfig.read_text().replace(sim.server.url,
                                                         "http://127.0.0.1:9"))
    env = {"KUBECONFIG": str(closed), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    refused = run("patrol", "--print", env=env)
    assert refused.returncode == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9 (connection refused)" in (
        one_line(refused))
    held("KUBE_CONTEXT names no context", "ConfigError: exit 2, one line")
    held("API server port closed", "exit 1 at once (not retried); one line")


def test_the_cli_says_when_it_retries_a_call_that_got_no_answer(sim: Sim, tmp_path: Path,
                                                                held: Held) -> None:
    fault = Fault("hang", r"^GET /api/v1/pods\?", times=2)
    with FaultProxy(sim.server.url, fault) as proxy:
        proc = run("patrol", "--json", env=proxied_env(sim, proxy, tmp_path)
                   | {"KUBE_RETRIES": "4"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pods_scanned"] > 0
    assert fault.hits == 2
    said = [(m["what"], m["why"], m["n"], m["of"]) for m in notes(proc)]
    assert said == [("list pods in all namespaces", "no answer for 0.5 s (KUBE_READ_TIMEOUT)",
                     str(n), "4") for n in (1, 2)]
    assert all(line.startswith("restart-patrol: cluster sim-qld2: ")
               for line in proc.stderr.splitlines())
    held("patrol: the pod list answers nothing twice (CLI)",
         "'no answer for 0.5 s (KUBE_READ_TIMEOUT), retry 1 of 4', then 2 of 4, on stderr; "
         "the third attempt answers; exit 0")


def test_the_cli_says_why_a_call_is_retried_after_a_503(sim: Sim, tmp_path: Path) -> None:
    fault = Fault("status", r"^GET /api/v1/pods\?", status=503, message="etcd is slow")
    with FaultProxy(sim.server.url, fault) as proxy:
        proc = run("patrol", "--print", env=proxied_env(sim, proxy, tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [(m["why"], m["n"]) for m in notes(proc)] == [
        ("the API server answered 503 (etcd is slow)", "1")]


@pytest.mark.parametrize("command", [("patrol", "--json"),
                                     ("why", "qld2-production", "pod1-deployment")])
def test_timeout_caps_a_command_that_waits_on_a_silent_server(
        command: tuple[str, ...], sim: Sim, tmp_path: Path, held: Held) -> None:
    fault = Fault("hang", "", times=None)
    with FaultProxy(sim.server.url, fault) as proxy:
        proc = run(*command, "--timeout", "2", env=proxied_env(sim, proxy, tmp_path)
                   | {"PATROL_DEADLINE": "5m", "QUERY_DEADLINE": "5m"})
    assert proc.returncode == 1
    line = one_line(proc)
    # a patrol's cluster calls end at the --timeout deadline; anything else (why's calls,
    # or start-up on a busy machine) is interrupted a second later: both say --timeout
    assert line == "restart-patrol: gave up after 2 s (--timeout)" or (
        command[0] == "patrol" and line.startswith(
            "restart-patrol: cluster sim-qld2: get /version: gave up at the 2 s deadline "
            "(--timeout)")), line
    assert proc.stdout == ""
    held(f"{command[0]}: an API server that never answers, --timeout 2 (CLI)",
         "one line naming --timeout; exit 1")


def test_timeout_must_be_a_positive_duration(tmp_path: Path) -> None:
    proc = run("patrol", "--json", "--timeout", "0", env={"KUBECONFIG": str(tmp_path / "x")})
    assert proc.returncode == 2 and "must be more than 0 seconds" in proc.stderr
