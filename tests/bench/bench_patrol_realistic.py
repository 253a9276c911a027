"""Patrol benchmark on pods shaped like a real cluster's (issue 18).

`bot.sim.generator.generate_realistic_world`: two containers (app + Envoy sidecar) with
probes, resources, env vars and ports, labels, annotations, `managedFields`, a ReplicaSet
owner; 20% of the pods restarting with a last termination, a previous log and a BackOff
event (the *quiet* variant: 1%). The simulator runs in its own process and serves every
list page from bytes rendered once (`cache_pages`), in key order. Measured, each in a
fresh process (so peak RSS is that process's own):

  floor   — every page of the lists a patrol reads (ReplicaSets, Jobs, pods; limit=500 +
            continue) over HTTP, bodies discarded; best of three;
  cli     — `python -m bot patrol --json` as an operator runs it (imports, list, roll-up,
            deltas, snapshot, the top-20 diagnoses with their previous logs and events,
            JSON), first run (no baseline), then with a baseline after a tenth of the pods
            restarted once more; wall and peak RSS from outside (wait4), database growth;
  serve   — (`--serve`) `restart-patrol serve` (HTTP mode, fake Slack, recorder on): the
            time until `/readyz` answers 200 and the peak RSS at that moment; with
            `--hour 12`, then an hour of a crash loop in simulated time (twelve rounds
            restarting every fifth pod once: the kubelet's 5-minute back-off cap), each
            round waited for until the recorder counted every restart and has nothing
            pending, and the RSS after it.

Goals at 100k pods: `patrol --json` ≤ 20× the floor and ≤ 150 MB peak RSS, first run and
with a baseline. `--profile` also runs one patrol in-process under cProfile and prints its
top functions.

    .venv/bin/python -m tests.bench.bench_patrol_realistic [--pods 100000] [--serve [--hour 12]]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.sim.world import World

VARIANTS = {"realistic": 0.2, "quiet": 0.01}
GOAL_RATIO = 20.0
GOAL_RSS_MB = 150.0


def crash_loop_round(world: World) -> int:
    """Five minutes of a crash loop: the clock moves 5 min (the kubelet's back-off cap)
    and every container that has restarted before restarts once more — its restartCount,
    last termination and start time change and the pod is written with a watch event, as
    the kubelet's status update would be. Returns how many containers restarted."""
    from bot.sim.world import format_time

    world.advance(timedelta(minutes=5))
    now = format_time(world.now)
    changed = []
    restarted = 0
    for _, pod, _ in list(world.items("pods")):
        statuses = pod["status"]["containerStatuses"]
        if not any(st["restartCount"] for st in statuses):
            continue
        updated = []
        for status in statuses:
            if status["restartCount"]:
                restarted += 1
                status = {**status, "restartCount": status["restartCount"] + 1,  # noqa: PLW2901
                          "state": {"running": {"startedAt": now}},
                          "lastState": {"terminated": {
                              **(status["lastState"].get("terminated")
                                 or {"exitCode": 1, "reason": "Error", "startedAt": now}),
                              "finishedAt": now}}}
            updated.append(status)
        changed.append({**pod, "metadata": dict(pod["metadata"]),
                        "status": {**pod["status"], "containerStatuses": updated}})
    for pod in changed:
        world.put("pods", pod)
    return restarted


def serve_sim(size: int, restarting: float, conn: Connection) -> None:
    from bot.sim.api import SimApi
    from bot.sim.generator import bump_realistic, generate_realistic_world
    from bot.sim.server import SimServer

    world = generate_realistic_world(size, restarting=restarting)
    server = SimServer(world, api=SimApi(world, cache_pages=True))
    server.start()
    conn.send(server.kubeconfig())
    while True:
        command = conn.recv()
        if command == "bump":
            conn.send(bump_realistic(world))
        elif command == "crash-loop":
            conn.send(crash_loop_round(world))
        else:
            server.stop()
            return


def fetch_lists(server: str) -> int:
    """Every page of the lists a patrol reads, bodies discarded; returns bytes received."""
    import urllib3

    http = urllib3.PoolManager()
    received = 0
    for path in ("/apis/apps/v1/replicasets", "/apis/batch/v1/jobs", "/api/v1/pods"):
        token = ""
        while True:
            fields = {"limit": "500", **({"continue": token} if token else {})}
            body = http.request("GET", server + path, fields=fields).data
            received += len(body)
            head = body[:400]
            i = head.find(b'"continue":"')
            token = head[i + 12:head.index(b'"', i + 12)].decode() if i >= 0 else ""
            if not token:
                break
    return received


def server_of(kubeconfig: str) -> str:
    import yaml

    url: str = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    return url


def floor_phase(kubeconfig: str) -> dict[str, float]:
    """In a fresh process: the raw fetch (imports before the clock)."""
    import resource

    server = server_of(kubeconfig)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    received = fetch_lists(server)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": time.perf_counter() - start, "mb_received": received / 1e6,
            "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def profile_phase(kubeconfig: str, database: str) -> None:
    """One CLI patrol in-process under cProfile; prints the top of the profile."""
    import cProfile
    import io
    import pstats

    from bot.cli import main as cli_main

    os.environ["KUBECONFIG"] = kubeconfig
    os.environ["DATABASE_URL"] = database
    profiler = cProfile.Profile()
    out = sys.stdout
    sys.stdout = io.StringIO()
    try:
        profiler.runcall(cli_main, ["patrol", "--json"])
    finally:
        sys.stdout = out
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def run_phase(phase: str, kubeconfig: str, database: str = "") -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_patrol_realistic",
                          "--phase", phase, "--kubeconfig", kubeconfig,
                          "--database", database], capture_output=True, text=True, check=True)
    if phase == "profile":
        sys.stderr.write(out.stderr)
        return {}
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def database_size(database: str) -> int:
    path = Path(database.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "KUBE", "DATABASE_URL", "PATROL_", "CHANNEL_",
                                "QUERY_", "RECORDER_"))}
    return env | extra


def run_cli(kubeconfig: str, database: str) -> dict[str, float]:
    """`python -m bot patrol --json` as an operator runs it: wall and peak RSS from outside
    (wait4: that process's own)."""
    env = clean_env(KUBECONFIG=kubeconfig, DATABASE_URL=database)
    size_before = database_size(database)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bot", "patrol", "--json"], env=env,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"patrol --json exited {proc.returncode}: "
                               f"{err.read().decode()}")
        digest = json.loads(out.read())
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime,
            "workloads": len(digest["workloads"]),
            "db_mb": (database_size(database) - size_before) / 1e6}


def _metric(port: int, name: str) -> float:
    """The sum of a metric's samples on serve's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def _vm(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith(field + ":")) / 1024


def run_serve(kubeconfig: str, database: str, sim: Connection | None = None,
              rounds: int = 0, source: str | None = None) -> dict[str, float]:
    """`restart-patrol serve` (HTTP mode, fake Slack, recorder on): seconds until /readyz
    answers 200 and until the recorder logged its initial list, and the process's peak
    RSS (VmHWM) when the list was done and 10 s later (watching). With `rounds`, then an
    hour of a crash loop in simulated time: `rounds` rounds (12 = one an hour at the
    kubelet's 5-minute back-off cap) each restarting every fifth pod once, waiting each
    time until the recorder counted them all and has nothing pending; RSS after.
    `source`: run the `bot` package of that source tree instead (an earlier commit,
    unpacked with `git archive`), against the same simulator — "before" in the same run."""
    import threading

    from tests.fakes.slack_api import TOKEN, FakeSlack

    slack = FakeSlack().start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = clean_env(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET="bench",
                    SLACK_API_URL=slack.base_url, PORT=str(port), KUBECONFIG=kubeconfig,
                    DATABASE_URL=database)
    start = time.perf_counter()
    if source is not None:
        env["PYTHONPATH"] = source
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=source)
    listed = threading.Event()
    listed_at: list[float] = []

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "recorder listed" in line and not listed.is_set():
                listed_at.append(time.perf_counter() - start)
                listed.set()

    threading.Thread(target=drain, daemon=True).start()
    ready = 0.0
    try:
        while not ready:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz",
                                            timeout=5) as resp:
                    if resp.status == 200:
                        ready = time.perf_counter() - start
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        if not listed.wait(600):
            raise RuntimeError("serve's recorder never listed")
        at_list = _vm_hwm(proc.pid)
        time.sleep(10)
        later = _vm_hwm(proc.pid)
        hour: dict[str, float] = {}
        if sim is not None and rounds:
            began = time.perf_counter()
            counted = _metric(port, "restart_patrol_recorder_restarts_total")
            events = 0
            for _ in range(rounds):
                sim.send("crash-loop")
                events += sim.recv()
                deadline = time.monotonic() + 900
                while (_metric(port, "restart_patrol_recorder_restarts_total") - counted
                       < events or _metric(port, "restart_patrol_recorder_pending") > 0):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("the recorder did not catch up with a round")
                    time.sleep(0.5)
            hour = {"hour_events": float(events), "hour_s": time.perf_counter() - began,
                    "hour_rss_mb": _vm(proc.pid, "VmRSS"),
                    "hour_hwm_mb": _vm(proc.pid, "VmHWM"),
                    "hour_requests": _metric(port, "restart_patrol_recorder_api_requests_total")}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        slack.stop()
    return {"ready_s": ready, "listed_s": listed_at[0], "rss_listed_mb": at_list,
            "rss_later_mb": later, **hour}


def _vm_hwm(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmHWM:")) / 1024


def bench(size: int, variant: str, *, profile: bool, serve: bool,
          hour_rounds: int = 0, serve_only: bool = False,
          serve_before: str | None = None) -> list[str]:
    parent, child = mp.Pipe()
    sim = mp.Process(target=serve_sim, args=(size, VARIANTS[variant], child), daemon=True)
    sim.start()
    rows: list[tuple[str, dict[str, float]]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = str(Path(tmp) / "kubeconfig")
            Path(config).write_text(parent.recv())
            database = f"sqlite:///{tmp}/cli.db"
            run_phase("floor", config)  # warm: renders every page once; not measured
            floor = min((run_phase("floor", config) for _ in range(3)),
                        key=lambda r: r["wall"])
            rows.append(("floor: raw fetch of every page", floor))
            if profile:
                run_phase("profile", config, f"sqlite:///{tmp}/profile.db")
            if not serve_only:
                rows.append(("patrol --json, first run", run_cli(config, database)))
                parent.send("bump")
                parent.recv()
                run_phase("floor", config)  # warm the changed pages
                rows.append(("patrol --json, with a baseline", run_cli(config,
                                                                                database)))
            before = (run_serve(config, f"sqlite:///{tmp}/before.db", parent, hour_rounds,
                                source=serve_before)
                      if serve and serve_before else None)
            served = (run_serve(config, f"sqlite:///{tmp}/serve.db", parent, hour_rounds)
                      if serve else None)
    finally:
        parent.send("stop")
        sim.join(timeout=60)
    base = floor["wall"]
    lines = [f"\n{size:,} pods, {variant} ({VARIANTS[variant]:.0%} restarting; "
             f"{floor['mb_received']:.0f} MB of list pages, "
             f"{floor['mb_received'] * 1e6 / size / 1000:.1f} kB per pod)",
             f"{'':34s} {'wall s':>7s} {'× floor':>8s} {'CPU s':>6s} {'peak RSS MB':>12s} "
             f"{'DB +MB':>7s}"]
    for name, r in rows:
        db = f"{r['db_mb']:7.2f}" if "db_mb" in r else f"{'':7s}"
        lines.append(f"{name:34s} {r['wall']:7.2f} {r['wall'] / base:8.1f} {r['cpu']:6.2f} "
                     f"{r['rss_mb']:12.0f} {db}")
    for name, r in rows[1:]:
        ok = r["wall"] / base <= GOAL_RATIO and r["rss_mb"] <= GOAL_RSS_MB
        lines.append(f"goal {name}: ≤ {GOAL_RATIO:g}× floor and ≤ {GOAL_RSS_MB:g} MB — "
                     f"{'met' if ok else 'NOT met'}")
    for label, run in (("before: ", before), ("", served)):
        if run is not None:
            lines += serve_lines(label, run, base, hour_rounds)
    print("\n".join(lines), flush=True)
    return lines


def serve_lines(label: str, served: dict[str, float], base: float,
                hour_rounds: int) -> list[str]:
    lines = [f"{label}serve (recorder on): /readyz after {served['ready_s']:.2f} s; initial "
             f"list done after {served['listed_s']:.2f} s "
             f"({served['listed_s'] / base:.1f}× floor), peak RSS then "
             f"{served['rss_listed_mb']:.0f} MB, 10 s later "
             f"{served['rss_later_mb']:.0f} MB (goal ≤ {GOAL_RSS_MB:g} MB — "
             f"{'met' if served['rss_later_mb'] <= GOAL_RSS_MB else 'NOT met'})"]
    if "hour_events" in served:
        lines.append(
            f"{label}serve, an hour of a crash loop ({served['hour_events']:,.0f} restarts "
            f"in {hour_rounds} rounds, every one counted, none pending; "
            f"{served['hour_s']:.0f} s of wall time): RSS {served['hour_rss_mb']:.0f} MB, "
            f"peak {served['hour_hwm_mb']:.0f} MB (goal ≤ {GOAL_RSS_MB:g} MB — "
            f"{'met' if served['hour_hwm_mb'] <= GOAL_RSS_MB else 'NOT met'}); "
            f"recorder API requests so far {served['hour_requests']:,.0f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--variants", default="realistic,quiet")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--hour", type=int, default=0, metavar="ROUNDS",
                        help="with --serve: ROUNDS crash-loop rounds after the list (12 = "
                             "an hour at the 5-minute back-off cap)")
    parser.add_argument("--serve-only", action="store_true",
                        help="with --serve: skip the CLI patrols (the floor is still measured)")
    parser.add_argument("--serve-before", metavar="DIR",
                        help="with --serve: first run serve from the source tree DIR (e.g. "
                             "`git archive main | tar -x -C DIR`) against the same simulator")
    parser.add_argument("--phase")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.phase == "floor":
        print(json.dumps(floor_phase(args.kubeconfig)))
        return
    if args.phase == "profile":
        profile_phase(args.kubeconfig, args.database)
        return
    report: list[str] = []
    for variant in args.variants.split(","):
        report += bench(args.pods, variant, profile=args.profile, serve=args.serve,
                        hour_rounds=args.hour, serve_only=args.serve_only,
                        serve_before=args.serve_before)
    print("\n".join(["", "==== summary ====", *report]))


if __name__ == "__main__":
    main()
