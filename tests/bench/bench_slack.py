"""Slack benchmark: 20 concurrent signed `/restarts <ns> <workload>` commands against the
served bot (HTTP mode, bot/sim, fake Slack). Prints ack latency p50/p99 (target p99 ≤
50 ms) and the time until each thread answer reached Slack, against a floor: the same
requests to /healthz on the same server (HTTP round trip, no Bolt)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import start_sim
from tests.e2e.test_slack_served import SECRET, Bot, free_port
from tests.fakes.slack_api import TOKEN, FakeSlack

N = 20
TARGETS = ["pod1-deployment", "pod2-deployment", "pod3-deployment", "pod4-deployment"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    sim = start_sim(tmp)
    slack = FakeSlack().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PATROL_"))}
    env.update({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.base_url, "PORT": str(port),
                "KUBECONFIG": str(sim.kubeconfig), "DATABASE_URL": f"sqlite:///{tmp}/b.db"})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bot = Bot(port, slack, proc)  # type: ignore[arg-type]
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{bot.url}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        bot.command("qld2-production pod1-deployment", channel="CWARM")  # warm-up
        slack.wait_for(lambda: len(slack.messages("CWARM")) >= 2, timeout=60)

        def health(_: int) -> float:
            start = time.monotonic()
            urllib.request.urlopen(f"{bot.url}/healthz", timeout=10).close()
            return time.monotonic() - start

        with ThreadPoolExecutor(N) as pool:
            floor = list(pool.map(health, range(N)))
        sent = time.monotonic()

        def command(i: int) -> float:
            status, _, took = bot.command(f"qld2-production {TARGETS[i % len(TARGETS)]}",
                                          channel=f"C{i:03d}")
            assert status == 200
            return took

        with ThreadPoolExecutor(N) as pool:
            acks = list(pool.map(command, range(N)))
        answered = []
        for i in range(N):
            channel = f"C{i:03d}"
            slack.wait_for(lambda c=channel: any(m.get("thread_ts")
                                                 for m in slack.messages(c)), timeout=120)
            reply = next(c for c in slack.calls if c.method == "chat.postMessage"
                         and c.args.get("channel") == channel and c.args.get("thread_ts"))
            answered.append(reply.at - sent)
        print(f"{N} concurrent signed slash commands")
        print(f"{'':24s} {'p50 ms':>8s} {'p99 ms':>8s}")
        print(f"{'floor (/healthz)':24s} {statistics.median(floor) * 1000:8.1f} "
              f"{percentile(floor, 99) * 1000:8.1f}")
        print(f"{'ack':24s} {statistics.median(acks) * 1000:8.1f} "
              f"{percentile(acks, 99) * 1000:8.1f}   "
              f"(p99 {percentile(acks, 99) / percentile(floor, 99):.1f}× floor)")
        print(f"{'thread answer':24s} {statistics.median(answered) * 1000:8.1f} "
              f"{percentile(answered, 99) * 1000:8.1f}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        slack.stop()
        sim.server.stop()


if __name__ == "__main__":
    main()
