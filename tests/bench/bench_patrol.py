"""Patrol benchmark: 10k and 100k pods served by bot/sim in a separate process.

Measured, each in a fresh process (so peak RSS is that phase's own):
  floor  — the same paginated GETs (limit=500 + continue), body read and discarded;
  patrol — the full patrol with a baseline present: list, roll-up, deltas, store write;
  naive  — (10k only) the official client's list_pod_for_all_namespaces into V1Pod models.
Prints wall time, peak RSS and the ratio to the floor. Targets at 100k: patrol ≤ 8× floor,
peak RSS ≤ 150 MB.
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
from multiprocessing.connection import Connection
from pathlib import Path


def serve(size: int, conn: Connection) -> None:
    from bot.sim.generator import bump_restarts, generate_world
    from bot.sim.server import SimServer

    world = generate_world(size)
    server = SimServer(world).start()
    conn.send(server.kubeconfig())
    while True:
        command = conn.recv()
        if command == "bump":
            conn.send(bump_restarts(world))
        else:
            server.stop()
            return


def measure(phase: str, kubeconfig: str, database: str) -> dict[str, float]:
    """Run one phase; imports happen before the clock starts (they are not the work)."""
    import urllib3
    import yaml
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from bot.cluster.client import connect
    from bot.runner import run_patrol
    from bot.settings import load_settings
    from bot.store import Store

    if phase == "naive":
        # kubernetes 37 builds its pydantic API classes lazily on first access (~1 s and
        # 28 MB, once per process): import cost, paid before the clock starts. The patrol
        # itself never loads them (it reads raw pages through ApiClient).
        _ = k8s.CoreV1Api
    start = time.perf_counter()
    if phase == "floor":
        server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
        http = urllib3.PoolManager()
        token, pages = "", 0
        while True:
            url = f"{server}/api/v1/pods?limit=500" + (f"&continue={token}" if token else "")
            body = http.request("GET", url, preload_content=True).data
            pages += 1
            head = body[:400]
            i = head.find(b'"continue":"')
            token = head[i + 12:head.index(b'"', i + 12)].decode() if i >= 0 else ""
            if not token:
                break
    elif phase == "patrol":
        settings = load_settings({"KUBECONFIG": kubeconfig})
        cluster = connect(settings)
        store = Store.open(database)
        run = run_patrol(cluster, store, settings, diagnose_top=0)
        store.close()
        cluster.close()
        assert run.digest.pods_scanned > 0
    elif phase == "naive":
        api = k8s.CoreV1Api(k8s_config.new_client_from_config(kubeconfig))
        token, count = None, 0
        while True:
            page = api.list_pod_for_all_namespaces(limit=500, _continue=token)
            count += len(page.items)
            token = page.metadata._continue
            if not token:
                break
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "rss_mb": rss}


def run_phase(phase: str, kubeconfig: str, database: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_patrol", "--phase", phase,
                          "--kubeconfig", kubeconfig, "--database", database],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(size: int) -> None:
    parent, child = mp.Pipe()
    proc = mp.Process(target=serve, args=(size, child), daemon=True)
    proc.start()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(parent.recv())
        database = f"sqlite:///{tmp}/bench.db"
        floor = run_phase("floor", str(kubeconfig), database)
        first = run_phase("patrol", str(kubeconfig), database)
        parent.send("bump")
        parent.recv()
        patrol = run_phase("patrol", str(kubeconfig), database)
        rows = [("floor (GETs, bodies discarded)", floor),
                ("patrol, first (no baseline)", first),
                ("patrol, with baseline", patrol)]
        if size <= 10_000:
            rows.append(("naive official client (V1Pod)", run_phase("naive", str(kubeconfig),
                                                                    database)))
    parent.send("stop")
    proc.join(timeout=30)
    print(f"\n{size:,} pods")
    print(f"{'phase':34s} {'wall s':>8s} {'× floor':>8s} {'peak RSS MB':>12s}")
    for name, r in rows:
        print(f"{name:34s} {r['wall']:8.2f} {r['wall'] / floor['wall']:8.1f} "
              f"{r['rss_mb']:12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--phase")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(measure(args.phase, args.kubeconfig, args.database)))
        return
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size)


if __name__ == "__main__":
    main()
