"""Fast start: `--help` and `diagnose` load no heavy library (docs/design.md, "Start-up").

Checked structurally (which modules a fresh interpreter loaded), not by the clock; the
timings live in tests/bench/bench_startup.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("kubernetes", "sqlalchemy", "slack_sdk", "slack_bolt", "apscheduler", "matplotlib")

PROBE = """
import contextlib, io, json, sys
import bot.cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for argv in {argvs!r}:
        try:
            bot.cli.main(argv)
        except SystemExit:
            pass
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))))
"""


def loaded_after(*argvs: list[str]) -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": "/nonexistent/kubeconfig",
           "DATABASE_URL": "sqlite:////nonexistent/db"}
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argvs=list(argvs), heavy=HEAVY)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_help_and_diagnose_load_no_heavy_library() -> None:
    assert loaded_after(["--help"], ["diagnose", "--help"],
                        ["diagnose", "--exit-code", "2", "--reason", "Error"],
                        ["diagnose", "--exit-code", "137", "--json"]) == []


def test_the_probe_sees_heavy_libraries_when_a_command_needs_them() -> None:
    # patrol fails (no cluster), but only after importing what it needs: the probe works
    assert {"kubernetes", "sqlalchemy"} <= set(loaded_after(["patrol", "--json"]))
