"""Patrol benchmark: 10k and 100k pods served by bot/sim from pre-rendered pages.

The simulator runs in its own process with `cache_pages` on: every list page is rendered
once (as an API server's watch cache serves pre-serialised objects), so the floor is the
client's cost, not the simulator's. Measured, each phase in a fresh process (peak RSS is
that phase's own):
  floor   — the patrol's list GETs (ReplicaSets, Jobs, pods; limit=500 + continue), bodies
            read and discarded;
  patrol  — a patrol in-process (imports before the clock): list, roll-up, deltas,
            snapshot write; first run (no baseline), then with a baseline after restarts;
  cli     — `python -m bot patrol --print` from outside (imports, top-20 diagnoses,
            rendering included), first run and with a baseline;
  naive   — (10k only) the official client's list_pod_for_all_namespaces into V1Pod models.
Also the SQLite file growth per snapshot, lean (now) against the shape before migration 3
(a row per container, written into a version-2 database), and migration 3's time on it.
Goals at 100k pods: patrol ≤ 4 s, peak RSS ≤ 150 MB, ≤ 5 MB per snapshot.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def serve(size: int, conn: Connection) -> None:
    from bot.sim.api import SimApi
    from bot.sim.generator import bump_restarts, generate_world
    from bot.sim.server import SimServer

    world = generate_world(size)
    server = SimServer(world, api=SimApi(world, cache_pages=True))
    server.start()
    conn.send(server.kubeconfig())
    while True:
        command = conn.recv()
        if command == "bump":
            conn.send(bump_restarts(world))
        else:
            server.stop()
            return


def fetch_lists(server: str) -> int:
    """Every page of the lists a patrol reads; returns the bytes received."""
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


def _cpu(usage: Any) -> float:
    """User + system CPU seconds: steadier than wall time on a shared machine."""
    return float(usage.ru_utime + usage.ru_stime)


def database_size(database: str) -> int:
    path = Path(database.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def write_old_shape(kubeconfig: str, database: str) -> None:
    """One snapshot as stored before migration 3 (a row per container), in a v2 database."""
    from sqlalchemy import create_engine

    from bot.answers.patrol import observe
    from bot.cluster.client import connect
    from bot.patrol.deltas import records_of
    from bot.settings import load_settings
    from bot.store.migrations import migrate
    from bot.store.schema import container_rows, snapshots

    cluster = connect(load_settings({"KUBECONFIG": kubeconfig}))
    pods = observe(cluster, [])
    cluster.close()
    engine = create_engine(database)
    migrate(engine, up_to=2)
    with engine.begin() as conn:
        key = conn.execute(snapshots.insert().values(
            cluster="old", taken_at=pods[0].created_at, purpose="adhoc", namespaces="",
            pods=len(pods), containers=len(pods))).inserted_primary_key
        assert key is not None
        rows = [{"snapshot_id": key[0], "namespace": r.namespace, "pod_uid": r.pod_uid,
                 "container": r.container, "pod_name": r.pod_name,
                 "container_kind": r.container_kind, "workload_kind": r.workload_kind,
                 "workload_name": r.workload_name, "restarts": r.restarts,
                 "last_exit_code": r.last_exit_code, "last_reason": r.last_reason,
                 "finished_at": r.finished_at} for r in records_of(pods)]
        for i in range(0, len(rows), 5000):
            conn.execute(container_rows.insert(), rows[i:i + 5000])
    engine.dispose()


def measure(phase: str, kubeconfig: str, database: str) -> dict[str, float]:
    """Run one phase; imports happen before the clock starts (they are not the work)."""
    import yaml
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from bot.answers.patrol import PatrolPlan, patrol
    from bot.cluster.client import connect
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.store import Store

    if phase == "naive":
        # kubernetes 37 builds its pydantic API classes lazily on first access (~1 s and
        # 28 MB, once per process): import cost, paid before the clock starts. The patrol
        # itself never loads them (it reads raw pages through ApiClient).
        _ = k8s.CoreV1Api
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    size_before = database_size(database)
    cpu_before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    start = time.perf_counter()
    result: dict[str, float] = {}
    if phase in ("floor", "warm"):
        result["mb_received"] = fetch_lists(server) / 1e6
    elif phase == "patrol":
        settings = load_settings({"KUBECONFIG": kubeconfig})
        with Runtime("bench") as runtime:  # as the CLI: pages prefetched in its thread
            cluster = connect(settings, runtime=runtime)
            store = Store.open(database)
            run = patrol(cluster, store, settings, PatrolPlan.adhoc(diagnose_top=0))
            store.close()
            cluster.close()
        assert run.digest.pods_scanned > 0
    elif phase == "old-shape":
        write_old_shape(kubeconfig, database)
    elif phase == "migrate":
        from sqlalchemy import create_engine

        from bot.store.migrations import migrate
        engine = create_engine(database)
        migrate(engine)
        engine.dispose()
    elif phase == "naive":
        api = k8s.CoreV1Api(k8s_config.new_client_from_config(kubeconfig))
        token, count = None, 0
        while True:
            page = api.list_pod_for_all_namespaces(limit=500, _continue=token)
            count += len(page.items)
            token = page.metadata._continue
            if not token:
                break
    result["wall"] = time.perf_counter() - start
    result["cpu"] = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu_before
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["db_mb"] = (database_size(database) - size_before) / 1e6
    return result


def run_phase(phase: str, kubeconfig: str, database: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_patrol", "--phase", phase,
                          "--kubeconfig", kubeconfig, "--database", database],
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_cli(kubeconfig: str, database: str) -> dict[str, float]:
    """`python -m bot patrol --print` as an operator runs it: wall and peak RSS from outside."""
    env = {**os.environ, "KUBECONFIG": kubeconfig, "DATABASE_URL": database}
    size_before = database_size(database)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "patrol", "--print"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    errors = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"patrol --print exited {proc.returncode}: {errors}")
    return {"wall": wall, "cpu": _cpu(usage), "rss_mb": usage.ru_maxrss / 1024,
            "db_mb": (database_size(database) - size_before) / 1e6}


def bench(size: int) -> None:
    parent, child = mp.Pipe()
    proc = mp.Process(target=serve, args=(size, child), daemon=True)
    proc.start()
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(parent.recv())
        config = str(kubeconfig)
        database = f"sqlite:///{tmp}/bench.db"
        cli_db = f"sqlite:///{tmp}/cli.db"
        old_db = f"sqlite:///{tmp}/old.db"

        def warm() -> None:  # renders every page once; not measured
            run_phase("warm", config, database)

        warm()
        floor = run_phase("floor", config, database)
        rows.append(("floor (pre-rendered pages, GETs)", floor))
        rows.append(("patrol, first (no baseline)", run_phase("patrol", config, database)))
        rows.append(("cli patrol --print, first", run_cli(config, cli_db)))
        old = run_phase("old-shape", config, old_db)
        migrated = run_phase("migrate", config, old_db)
        parent.send("bump")
        parent.recv()
        warm()
        rows.append(("patrol, with baseline", run_phase("patrol", config, database)))
        rows.append(("cli patrol --print, with baseline", run_cli(config, cli_db)))
        if size <= 10_000:
            rows.append(("naive official client (V1Pod)", run_phase("naive", config,
                                                                    database)))
    parent.send("stop")
    proc.join(timeout=30)
    print(f"\n{size:,} pods ({floor['mb_received']:.0f} MB of list pages)")
    print(f"{'phase':36s} {'wall s':>7s} {'× floor':>8s} {'CPU s':>6s} {'peak RSS MB':>12s} "
          f"{'DB +MB':>7s}")
    for name, r in rows:
        print(f"{name:36s} {r['wall']:7.2f} {r['wall'] / floor['wall']:8.1f} {r['cpu']:6.2f} "
              f"{r['rss_mb']:12.0f} {r['db_mb']:7.2f}")
    print(f"one snapshot before migration 3 (a row per container): {old['db_mb']:.2f} MB; "
          f"migration 3 converted it in {migrated['wall']:.2f} s")


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
