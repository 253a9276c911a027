"""Start-up time of the CLI (target ≤ 0.3 s for `--help` and `diagnose`), against a floor:
`python -c pass` in the same interpreter, measured in the same run.

    .venv/bin/python -m tests.bench.bench_startup [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "floor: python -c pass": ["-c", "pass"],
    "restart-patrol --help": ["-m", "bot", "--help"],
    "restart-patrol diagnose --exit-code 2": ["-m", "bot", "diagnose", "--exit-code", "2",
                                              "--reason", "Error"],
    "restart-patrol diagnose --json": ["-m", "bot", "diagnose", "--exit-code", "137",
                                       "--json"],
    "import everything (patrol/serve path)": ["-c", "import bot.answers.patrol, bot.slack.app, "
                                              "bot.schedule.daily"],
}


def median_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    floor = median_seconds(COMMANDS["floor: python -c pass"], runs)
    print(f"{'command':40s} {'median s':>9s} {'× floor':>8s}   ({runs} runs each)")
    for name, args in COMMANDS.items():
        took = floor if name.startswith("floor") else median_seconds(args, runs)
        print(f"{name:40s} {took:9.3f} {took / floor:8.1f}")


if __name__ == "__main__":
    main()
