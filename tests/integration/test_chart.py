"""The crash-history PNGs (bot/render/chart.py), read back: they decode, have the size
Slack previews, and carry the data they plot, which equal the timeline computed from the
recorded crashes (the pixels' beauty is not tested)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from bot.patrol.history import CAPTURED, CrashRecord
from bot.patrol.timeline import (
    SilenceSpan,
    fleet_timeline,
    workload_timeline,
)
from bot.render.chart import (
    DATA_KEY,
    fleet_data,
    render_fleet_png,
    render_timeline_png,
    timeline_data,
)
from bot.store import Store

UNTIL = datetime(2026, 12, 3, 9, tzinfo=UTC)
GO = ("panic: runtime error: invalid memory address or nil pointer dereference",
      "main.(*Server).handle(...)")
JVM = ("java.lang.IllegalStateException: cannot price Order$Line at $5 and $6",)


def crash(n: int, at: datetime, fingerprint: str | None = "9f3c2a1b", *,
          category: str = "go-panic", signature: tuple[str, ...] = GO, restarts: int = 1,
          replica_set: str = "orders-7d9f", image: str = "orders:1.14.2",
          workload: str = "orders") -> CrashRecord:
    return CrashRecord(cluster="prod", namespace="shop", pod_name=f"{replica_set}-x",
                       pod_uid=f"uid-{replica_set}", container="app",
                       container_kind="container", workload_kind="Deployment",
                       workload_name=workload, restart_count=n, restarts=restarts,
                       exit_code=2, finished_at=at, recorded_at=at, category=category,
                       fingerprint=fingerprint, signature=signature, capture=CAPTURED,
                       replica_set=replica_set, image=image)


def read_png(png: bytes) -> tuple[tuple[int, int], dict[str, Any]]:
    """The PNG decoded (all of it, not just the header), its size and its embedded data."""
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image.size, json.loads(image.text[DATA_KEY])


def test_the_chart_of_a_stored_history_plots_what_was_recorded(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/chart.db")
    try:
        at = UNTIL - timedelta(days=3, minutes=20)  # in the bucket 3 days + 1 h before the end
        recorded = [
            crash(1, UNTIL - timedelta(days=20), replica_set="orders-5c6b",
                  image="orders:1.14.1"),  # before the window: sets the old version
            crash(2, UNTIL - timedelta(days=9, minutes=30), "c0ffee00",
                  category="jvm-exception", signature=JVM, replica_set="orders-5c6b",
                  image="orders:1.14.1"),
            crash(3, at, restarts=3),  # the kubelet counted three restarts at once
            crash(4, at + timedelta(minutes=5)),
            crash(5, UNTIL),
        ]
        for record in recorded:
            assert store.crashes.record(record, "log") is not None
        history = store.history.history("prod", "shop", workload=("Deployment", "orders"),
                                        limit=1000)
    finally:
        store.close()
    assert len(history) == 5
    silence = SilenceSpan(UNTIL - timedelta(hours=6), UNTIL + timedelta(days=1), "@alice")
    timeline = workload_timeline(history, until=UNTIL, silences=[silence])
    size, data = read_png(render_timeline_png(timeline))
    assert size == (1200, 500)
    assert data == timeline_data(timeline)
    # ... and that data are the recorded crashes, bucket by bucket
    assert data["title"] == ("shop / orders: restarts per hour, 14 days to "
                             "2026-12-03 09:00 UTC")
    assert (data["from"], data["to"], data["step_seconds"]) == (
        "2026-11-19T09:00:00Z", "2026-12-03T09:00:00Z", 3600)
    go, jvm = data["series"]
    assert go["label"] == "go-panic · panic: runtime error: invalid memory…"
    assert jvm["label"] == "jvm-exception · java.lang.IllegalStateException:…"
    assert len(go["counts"]) == 336 and go["total"] == 5
    assert {i: n for i, n in enumerate(go["counts"]) if n} == {336 - 72 - 1: 4, 335: 1}
    assert {i: n for i, n in enumerate(jvm["counts"]) if n} == {336 - 9 * 24 - 1: 1}
    # the new ReplicaSet's first crash marks the rollout (no `changed_at` was kept)
    assert data["rollouts"] == [{"at": "2026-11-30T08:40:00Z", "replica_set": "orders-7d9f",
                                 "image": "orders:1.14.2", "label": "rollout"}]
    assert data["silences"] == [{"from": "2026-12-03T03:00:00Z",
                                 "until": "2026-12-04T09:00:00Z", "by": "@alice",
                                 "label": "silenced by @alice until 2026-12-04 09:00 UTC"}]


def test_the_same_timeline_gives_the_same_bytes() -> None:
    timeline = workload_timeline([crash(n, UNTIL - timedelta(hours=n)) for n in range(1, 40)],
                                 until=UNTIL)
    first = render_timeline_png(timeline)
    assert render_timeline_png(timeline) == first
    assert b"Software" not in first and b"Creation Time" not in first


def test_log_text_is_drawn_as_text_and_an_empty_history_still_renders() -> None:
    odd = workload_timeline([crash(1, UNTIL - timedelta(hours=2), category="jvm-exception",
                                   signature=("$x$ \\frac{1}{0} _hidden ünïcødé",))],
                            until=UNTIL)
    size, data = read_png(render_timeline_png(odd))
    assert size == (1200, 500)
    assert data["series"][0]["label"] == "jvm-exception · $x$ \\frac{1}{0} _hidden ünïcødé"
    empty = workload_timeline([], until=UNTIL)
    size, data = read_png(render_timeline_png(empty))
    assert size == (1200, 500)
    assert data["series"] == [] and data["name"] is None
    assert data["title"] == "restarts per hour, 14 days to 2026-12-03 09:00 UTC"


def test_the_fleet_chart_carries_its_workloads_per_day() -> None:
    records = [crash(n, UNTIL - timedelta(hours=5 * n), workload=f"w{n % 4}")
               for n in range(1, 30)]
    fleet = fleet_timeline(records, until=UNTIL, top=3)
    size, data = read_png(render_fleet_png(fleet))
    assert size == (1200, 500)
    assert data == fleet_data(fleet)
    assert data["step_seconds"] == 86400 and data["from"] == "2026-11-26T09:00:00Z"
    assert [s["label"] for s in data["series"]] == [
        "shop / w1 · go-panic", "shop / w0 · go-panic", "other (2 more workloads)"]  # ties: by name
    assert sum(s["total"] for s in data["series"]) == 29


PROBE = """
import sys
from datetime import UTC, datetime
import bot.render.chart
assert "matplotlib" not in sys.modules, "importing the chart module imported matplotlib"
from bot.patrol.timeline import workload_timeline
from bot.render.chart import render_timeline_png
png = render_timeline_png(workload_timeline([], until=datetime(2026, 12, 3, tzinfo=UTC)))
assert "matplotlib.pyplot" not in sys.modules
sys.stdout.buffer.write(png)
"""


def test_a_chart_renders_without_a_display_whatever_the_backend_setting() -> None:
    base = {k: v for k, v in os.environ.items()
            if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    for env in (base, {**base, "MPLBACKEND": "qtagg"}):  # a GUI backend this box lacks
        proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, env=env,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        size, data = read_png(proc.stdout)
        assert size == (1200, 500) and data["series"] == []
