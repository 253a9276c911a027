"""Flight-recorder benchmark: 100k pods (bot/sim/generator.py) served from another process.

Phases, each in a fresh process (peak RSS is that process's own):
  floor    — list every pod page by page and then read the watch stream of the same
             restarts, bodies discarded (what any recorder must at least do);
  recorder — the RecorderService (SQLite store): first list, then `crashes` restarts published as
             watch events, each captured (previous log, events, owner, diagnosis, row);
  loop     — `loopers` pods crash-looping every 5 simulated minutes for a simulated hour:
             API requests per crash-looping pod per hour (the log rate limit at work).
Prints wall times, peak RSS (target ≤ 150 MB for the recording process at 100k pods),
capture latency and requests per looping pod per hour.

    .venv/bin/python -m tests.bench.bench_recorder [--pods 100000] [--crashes 1000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tests.support.settings import amend

PANIC = ["panic: runtime error: invalid memory address or nil pointer dereference",
         "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8a1f2c]", "",
         "goroutine 1 [running]:", "main.(*Server).handle(0xc000010000)",
         "\t/src/server.go:42 +0x1d"]


def serve(size: int, conn: Connection, *, realistic: bool = False) -> None:
    """The simulated cluster (`realistic`: generate_realistic_world's pods); on request,
    restarts pods through watch-visible updates (statuses copied, never shared)."""
    from bot.sim.generator import generate_realistic_world, generate_world
    from bot.sim.server import SimServer
    from bot.sim.world import format_time

    world = generate_realistic_world(size) if realistic else generate_world(size)
    server = SimServer(world).start()
    keys = [key for key, _, _ in world.items("pods")]
    conn.send(server.kubeconfig())
    while True:
        command, count, step = conn.recv()
        if command == "stop":
            server.stop()
            return
        world.advance(timedelta(minutes=step))
        stamp = format_time(world.now)
        for ns, name in keys[:: max(1, len(keys) // count)][:count]:
            pod = world.get("pods", ns, name)
            assert pod is not None
            statuses = [dict(x) for x in pod["status"]["containerStatuses"]]
            statuses[0]["restartCount"] += 1
            statuses[0]["lastState"] = {"terminated": {
                "exitCode": 2, "reason": "Error", "startedAt": stamp, "finishedAt": stamp}}
            world.set_log(ns, name, statuses[0]["name"],
                          [(world.now, line) for line in PANIC], previous=True)
            world.put("pods", {**pod, "status": {**pod["status"],
                                                 "containerStatuses": statuses}})
        conn.send(world.resource_version)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor(kubeconfig: str) -> None:
    """List all pods, then follow the watch until told the version to reach."""
    import urllib3
    import yaml

    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    http = urllib3.PoolManager(maxsize=8)
    start = time.perf_counter()
    token, version = "", ""
    while True:
        url = f"{server}/api/v1/pods?limit=500" + (f"&continue={token}" if token else "")
        body = http.request("GET", url).data
        head = body[:400]
        i = head.find(b'"resourceVersion":"')
        version = head[i + 19:head.index(b'"', i + 19)].decode()
        i = head.find(b'"continue":"')
        token = head[i + 12:head.index(b'"', i + 12)].decode() if i >= 0 else ""
        if not token:
            break
    listed = time.perf_counter() - start
    print(json.dumps({"listed": version, "list_s": listed}), flush=True)
    target = int(sys.stdin.readline())
    start = time.perf_counter()
    watch = http.request("GET", f"{server}/api/v1/pods?watch=true&resourceVersion={version}"
                                "&allowWatchBookmarks=true&timeoutSeconds=60",
                         preload_content=False)
    buffer = b""
    done = False
    seen: list[bytes] = []
    for chunk in watch.stream(None):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        seen.extend(line for line in lines if b'"MODIFIED"' in line)
        for line in lines:
            if b'"resourceVersion":"' in line and int(line.split(b'"resourceVersion":"')[1]
                                                     .split(b'"')[0]) >= target:
                done = True
        if done:
            break
    watch.release_conn()
    watched = time.perf_counter() - start
    # what a capture must ask the API server at least: previous log, events, the owner
    bumped = [json.loads(line)["object"]["metadata"] for line in seen]
    pool = ThreadPoolExecutor(4)

    def fetch(meta: dict[str, Any]) -> None:
        ns, name = meta["namespace"], meta["name"]
        base = f"{server}/api/v1/namespaces/{ns}"
        http.request("GET", f"{base}/pods/{name}/log?container=app&previous=true"
                            "&tailLines=200&limitBytes=262144")
        http.request("GET", f"{base}/events?fieldSelector=involvedObject.name%3D{name}")
        rs = meta["ownerReferences"][0]["name"]
        http.request("GET", f"{server}/apis/apps/v1/namespaces/{ns}/replicasets/{rs}")

    list(pool.map(fetch, bumped))
    print(json.dumps({"wall": time.perf_counter() - start, "watch_s": watched,
                      "rss_mb": rss_mb()}), flush=True)


def record(kubeconfig: str, database: str, rounds: int) -> None:
    """The Recorder: first list, then each round's restarts until idle."""

    from bot.cluster.client import connect
    from bot.recording.service import CAPTURE_SECONDS, RecorderService
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.store import Store
    from tests.support.recording import settled

    settings = amend(load_settings({"KUBECONFIG": kubeconfig}), RECORDER_QUEUE=100_000)
    cluster = connect(settings)
    store = Store.open(database)
    start = time.perf_counter()
    runtime = Runtime("bench-recorder")
    recorder = runtime.service(RecorderService(cluster, store, settings, runtime))
    head = cluster.api.call_api(*cluster.api.param_serialize(
        "GET", "/api/v1/pods", query_params=[("limit", "1")],
        header_params={"Accept": "application/json"}))
    version = int(json.loads(head.read())["metadata"]["resourceVersion"])
    settled(recorder, version, timeout=600)
    listed = time.perf_counter() - start
    install = recorder.stats()  # the first list: the install's seeds described
    print(json.dumps({"listed": version, "list_s": listed, "rss_listed_mb": rss_mb(),
                      "seeds": install.captures.get("baseline", 0),
                      "install_requests": sum(install.api_requests.values())}), flush=True)
    walls = []
    for _ in range(rounds):
        target = int(sys.stdin.readline())
        start = time.perf_counter()
        settled(recorder, target, timeout=600)
        walls.append(time.perf_counter() - start)
        print(json.dumps({"round": len(walls)}), flush=True)
    samples = {s.name: s.value for metric in CAPTURE_SECONDS.collect() for s in metric.samples}
    stats = recorder.stats()
    result: dict[str, Any] = {
        "wall": sum(walls), "rss_mb": rss_mb(), "restarts": stats.restarts,
        "captures": _minus(stats.captures, install.captures),
        "api_requests": _minus(stats.api_requests, install.api_requests),
        "capture_mean_s": samples["restart_patrol_recorder_capture_seconds_sum"]
        / max(samples["restart_patrol_recorder_capture_seconds_count"], 1),
        "pods": stats.pods,
    }
    runtime.stop()
    store.close()
    cluster.close()
    print(json.dumps(result), flush=True)


def phase(args: list[str], sim: Connection, rounds: list[tuple[int, int]]) -> dict[str, Any]:
    """Run a phase process; feed it the sim's resourceVersion after each round."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_recorder", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    head = json.loads(proc.stdout.readline())
    for count, step in rounds:
        sim.send(("crash", count, step))
        version = sim.recv()
        proc.stdin.write(f"{version}\n")
        proc.stdin.flush()
        if "--phase" in args and args[args.index("--phase") + 1] != "floor":
            proc.stdout.readline()
    result = json.loads(proc.stdout.readlines()[-1])
    proc.wait(timeout=60)
    return {**head, **result}


def _minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """What happened after the first list (the install's seeds not counted)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def served(kubeconfig: str, database: str, sim: Connection, crashes: int) -> dict[str, Any]:
    """`restart-patrol serve` as a process (HTTP mode, fake Slack): its peak RSS after the
    recorder's first list and a burst of captures (the issue's target: the whole serve)."""
    import os
    import socket
    import threading
    import urllib.request

    from tests.fakes.slack_api import TOKEN, FakeSlack

    slack = FakeSlack().start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PATROL_"))}
    env.update({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "bench",
                "SLACK_API_URL": slack.base_url, "PORT": str(port), "KUBECONFIG": kubeconfig,
                "DATABASE_URL": database})
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    listed = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "recorder listed" in line:
                listed.set()

    threading.Thread(target=drain, daemon=True).start()
    assert listed.wait(600), "serve's recorder never listed"
    list_s = time.perf_counter() - start
    sim.send(("crash", crashes, 1))
    sim.recv()
    start = time.perf_counter()

    def captured() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            return sum(float(line.rsplit(" ", 1)[1]) for line in resp.read().decode().splitlines()
                       if line.startswith("restart_patrol_recorder_captures_total{")
                       and 'result="baseline"' not in line)  # the install's seeds apart

    while captured() < crashes:
        time.sleep(0.2)
    wall = time.perf_counter() - start
    status = Path(f"/proc/{proc.pid}/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmHWM:")) / 1024
    proc.terminate()
    proc.wait(timeout=30)
    slack.stop()
    return {"list_s": list_s, "wall": wall, "rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--crashes", type=int, default=1000)
    parser.add_argument("--loopers", type=int, default=100)
    parser.add_argument("--phase")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--database")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.phase == "floor":
        floor(args.kubeconfig)
        return
    if args.phase == "record":
        record(args.kubeconfig, args.database, args.rounds)
        return
    parent, child = mp.Pipe()
    sim = mp.Process(target=serve, args=(args.pods, child), daemon=True)
    sim.start()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(parent.recv())
        common = ["--kubeconfig", str(kubeconfig)]
        base = phase(["--phase", "floor", *common], parent, [(args.crashes, 1)])
        rec = phase(["--phase", "record", "--database", f"sqlite:///{tmp}/a.db", *common],
                    parent, [(args.crashes, 1)])
        loop = phase(["--phase", "record", "--database", f"sqlite:///{tmp}/b.db",
                      "--rounds", "12", *common], parent, [(args.loopers, 5)] * 12)
        single = phase(["--phase", "record", "--database", f"sqlite:///{tmp}/c.db",
                        "--rounds", "20", *common], parent, [(1, 15)] * 20)
        whole = served(str(kubeconfig), f"sqlite:///{tmp}/d.db", parent, args.crashes)
    parent.send(("stop", 0, 0))
    sim.join(timeout=30)
    per_pod_hour = sum(loop["api_requests"].values()) / args.loopers
    single_ms = single["capture_mean_s"] * 1000
    print(f"\n{args.pods:,} pods, {args.crashes:,} restarts in one burst")
    print(f"{'phase':44s} {'wall s':>8s} {'× floor':>8s} {'peak RSS MB':>12s}")
    print(f"{'floor: list (GETs discarded)':44s} {base['list_s']:8.2f} {1:8.1f}")
    print(f"{'recorder: first list, install seeds described':44s} {rec['list_s']:8.2f} "
          f"{rec['list_s'] / base['list_s']:8.1f} {rec['rss_listed_mb']:12.0f}")
    print(f"{'floor: watch + its GETs (log, events, owner)':44s} {base['wall']:8.2f} {1:8.1f} "
          f"{base['rss_mb']:12.0f}")
    print(f"{'recorder: capture the burst (log, events, row)':44s} {rec['wall']:8.2f} "
          f"{rec['wall'] / base['wall']:8.1f} {rec['rss_mb']:12.0f}")
    print(f"{'serve: start-up (imports) + first list':44s} {whole['list_s']:8.2f} "
          f"{whole['list_s'] / base['list_s']:8.1f}")
    print(f"{'serve: capture the burst':44s} {whole['wall']:8.2f} "
          f"{whole['wall'] / base['wall']:8.1f} {whole['rss_mb']:12.0f}")
    print(f"one restart at a time: mean capture latency {single_ms:.0f} ms (seen → row stored)")
    print(f"install: {rec['seeds']:,} crashes already there described as seeds "
          f"({rec['install_requests']:,} API requests, once per database)")
    print(f"restarts recorded {rec['restarts']:,} · captures {rec['captures']} · "
          f"mean capture latency {rec['capture_mean_s'] * 1000:.0f} ms · pods followed "
          f"{rec['pods']:,}")
    print(f"crash loop ({args.loopers} pods, every 5 min for an hour): "
          f"{loop['restarts']:,} restarts, captures {loop['captures']}, requests "
          f"{loop['api_requests']} → {per_pod_hour:.1f} API requests per looping pod per "
          "hour")


if __name__ == "__main__":
    main()
