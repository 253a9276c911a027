"""A digest slot with the flight recorder watching vs the full-list patrol, same run
(issue 18, "the digest costs what changed"): 100k pods (bot/sim/generator.py) served from
another process; the RecorderService (SQLite) follows them in this one, as in `serve`.

Rows, each timed in this process (wall and CPU):
  floor          — every page of the pod list over HTTP, bodies discarded (best of 3);
  listed slot    — the digest slot listing every pod (the recorder only tells stories);
  counted slot   — the digest slot counted from the recorder after N restarts in its
                   window (N = 0, 10, 100, 1000 by default), each slot the next one's
                   baseline, so the window holds just those N.
Run by hand (never a timed assertion); the target is ≤ 0.5 s per counted slot at 100k
pods, growing with the window's restarts, not with the pods.

    .venv/bin/python -m tests.bench.bench_digest_slot [--pods 100000] [--restarts 0,10,100,1000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench.bench_recorder import serve


def serve_realistic(size: int, conn: Any) -> None:
    """The realistic pods (`generate_realistic_world`: app + sidecar, probes, resources,
    managedFields, 20% restarting); on request, restarts pods through watch events."""
    serve(size, conn, realistic=True)


class ViewOnly:
    """The recorder offering no counts: the slot lists every pod."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    def watching(self) -> bool:
        return bool(self.recorder.watching())

    def watching_since(self) -> datetime | None:
        since: datetime | None = self.recorder.watching_since()
        return since

    def present(self, pods: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = self.recorder.present(pods)
        return found


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def floor(kubeconfig: str) -> float:
    """Every page of the pod list, bodies discarded: what any full list costs at least."""
    import urllib3
    import yaml

    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    http = urllib3.PoolManager(maxsize=2)
    best = float("inf")
    for _ in range(3):
        start, token = time.perf_counter(), ""
        while True:
            url = f"{server}/api/v1/pods?limit=500" + (f"&continue={token}" if token else "")
            head = http.request("GET", url).data[:400]
            i = head.find(b'"continue":"')
            token = head[i + 12:head.index(b'"', i + 12)].decode() if i >= 0 else ""
            if not token:
                break
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--restarts", default="0,10,100,1000")
    parser.add_argument("--realistic", action="store_true",
                        help="pods shaped like a real cluster's (8.9 kB each, 20%% restarting)")
    parser.add_argument("--profile", action="store_true",
                        help="profile one more counted slot at the last count first")
    args = parser.parse_args()
    counts = [int(x) for x in args.restarts.split(",")]

    from bot.answers.patrol import PatrolPlan, patrol
    from bot.cluster.client import connect
    from bot.recording.service import RecorderService
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.store import Store
    from tests.support.recording import settled
    from tests.support.settings import amend

    parent, child = mp.Pipe()
    sim = mp.Process(target=serve_realistic if args.realistic else serve,
                     args=(args.pods, child), daemon=True)
    sim.start()
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(parent.recv())
        settings = amend(load_settings({"KUBECONFIG": str(kubeconfig)}),
                         RECORDER_QUEUE=100_000)
        cluster = connect(settings)
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        runtime = Runtime("bench-digest-slot")
        recorder = runtime.service(RecorderService(cluster, store, settings, runtime))
        parent.send(("crash", 1, 1))  # a version to settle on: the first list is done
        settled(recorder, parent.recv(), timeout=900)
        base = floor(str(kubeconfig))
        rows.append(("floor: pod list pages, bodies discarded (best of 3)", base, 0.0, ""))

        def slot(*, listing: bool, pending: bool = False) -> Any:
            view = ViewOnly(recorder) if listing else recorder
            return patrol(cluster, store, settings,
                          PatrolPlan.digest(confirmed_by_post=pending), recorder=view)

        wall, cpu, run = timed(lambda: slot(listing=False))  # no baseline yet: it lists
        rows.append(("first slot (no baseline): lists every pod", wall, cpu,
                     f"kind {run.snapshot.kind}"))
        full_wall = 0.0
        for n in counts:
            if n:
                parent.send(("crash", n, 1))
                settled(recorder, parent.recv(), timeout=900)
            # the listing slot of the same moment, pending (not the next baseline)
            wall, cpu, listed = timed(lambda: slot(listing=True, pending=True))
            full_wall = wall
            rows.append((f"listed slot, {n:,} restarts in the window", wall, cpu,
                         f"{listed.digest.restarts_in_window} counted"))
            if args.profile and n == counts[-1]:
                import cProfile
                import pstats

                profile = cProfile.Profile()
                profile.runcall(lambda: slot(listing=False, pending=True))
                pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
            wall, cpu, run = timed(lambda: slot(listing=False))
            kind = run.snapshot.kind
            rows.append((f"counted slot, {n:,} restarts in the window", wall, cpu,
                         f"{run.digest.restarts_in_window} counted, kind {kind}, "
                         f"{full_wall / wall:.0f}x faster than listed"))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runtime.stop()
        store.close()
        cluster.close()
    parent.send(("stop", 0, 0))
    sim.join(timeout=30)
    shape = "realistic " if args.realistic else ""
    print(f"\n{args.pods:,} {shape}pods, the recorder watching in this process "
          f"(peak RSS {rss:.0f} MB)")
    print(f"{'':52s} {'wall s':>7s} {'× floor':>8s} {'CPU s':>6s}")
    for name, wall, cpu, note in rows:
        print(f"{name:52s} {wall:7.3f} {wall / base:8.2f} {cpu:6.2f}  {note}")


if __name__ == "__main__":
    main()
