"""The crash-history charts as PNG bytes (docs/chart.md): a workload's restarts per hour
stacked by crash, with rollouts and silences, and the fleet's top workloads per day.

matplotlib is imported inside the render functions, never at import of this module: the
CLI's start-up must not pay for it (tests/e2e/test_startup.py). Only its object API and
the Agg canvas are used, never pyplot, so no display, GUI backend or MPLBACKEND matters
and no global figure state is shared. The PNG carries what it plots as JSON in a tEXt
chunk (`DATA_KEY`): tests and curious users read the data back instead of the pixels.
The output is deterministic: fixed size, matplotlib's bundled DejaVu fonts, no software
or time stamp in the metadata.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.patrol.timeline import FleetTimeline, Grid, Timeline
from bot.patrol.timestamps import json_time
from bot.render.environment import environment

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DATA_KEY = "restart-patrol"  # the PNG tEXt keyword holding the plotted data (JSON)
WIDTH, HEIGHT, DPI = 1200, 500, 100  # pixels: readable at Slack's preview size
COLOURS = ("#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22")
OTHER_COLOUR = "#9e9e9e"
ROLLOUT_COLOUR = "#222222"
SILENCE_COLOUR = "#7f7f7f"
_DRAWING = threading.Lock()  # matplotlib's rcParams and font caches are process-wide


def timeline_data(timeline: Timeline, templates_dir: str | None = None) -> dict[str, Any]:
    """What the workload chart plots, as JSON-ready data (embedded in its PNG)."""
    say = Wording(templates_dir)
    grid = timeline.grid
    return {
        "chart": "workload-restarts-per-hour",
        "cluster": timeline.cluster, "namespace": timeline.namespace,
        "kind": timeline.kind, "name": timeline.name,
        **_grid_data(grid),
        "title": say("workload_title", timeline.namespace, timeline.name, _days(grid),
                                    grid.until),
        "series": [{
            "identity": s.identity, "category": s.category, "signature": s.signature,
            "folded": s.folded, "total": s.total, "counts": list(s.counts),
            "label": (say("other_crashes", s.folded) if s.identity is None
                      else say("crash_label", s.category, s.signature)),
        } for s in timeline.series],
        "rollouts": [{"at": json_time(r.at), "replica_set": r.replica_set, "image": r.image,
                      "label": say("rollout")} for r in timeline.rollouts],
        "silences": [{"from": json_time(s.start), "until": json_time(s.end), "by": s.label,
                      "label": say("silenced", s.label, s.end)} for s in timeline.silences],
    }


def fleet_data(fleet: FleetTimeline, templates_dir: str | None = None) -> dict[str, Any]:
    """What the fleet chart plots, as JSON-ready data (embedded in its PNG)."""
    say = Wording(templates_dir)
    grid = fleet.grid
    return {
        "chart": "fleet-restarts-per-day",
        **_grid_data(grid),
        "title": say("fleet_title", _days(grid), grid.until),
        "series": [{
            "cluster": s.cluster, "namespace": s.namespace, "kind": s.kind, "name": s.name,
            "category": s.category, "folded": s.folded, "total": s.total,
            "counts": list(s.counts),
            "label": (say("other_workloads", s.folded) if s.name is None
                      else say("workload_label", s.namespace, s.name, s.category)),
        } for s in fleet.series],
    }


def render_timeline_png(timeline: Timeline, templates_dir: str | None = None) -> bytes:
    """The workload chart: restarts per hour stacked by crash (most restarts at the
    bottom and first in the legend), rollouts as dashed lines, silences as shaded spans.
    The x axis counts hours from the window's start; its ticks name the UTC days."""
    data = timeline_data(timeline, templates_dir)
    say = Wording(templates_dir)
    grid = timeline.grid
    with _figure() as (figure, axes):
        edges = list(range(grid.count + 1))
        below = [0] * grid.count
        for n, (series, shown) in enumerate(zip(timeline.series, data["series"],
                                                strict=True)):
            above = [b + c for b, c in zip(below, series.counts, strict=True)]
            axes.stairs(above, edges, baseline=below, fill=True, label=shown["label"],
                        color=_colour(n, series.identity is None), linewidth=0)
            below = above
        for n, rollout in enumerate(timeline.rollouts):
            at = _position(grid, rollout.at)
            axes.axvline(at, color=ROLLOUT_COLOUR, linestyle="--", linewidth=1,
                         label=say("rollout") if n == 0 else None)
            _mark(axes, at, say("rollout"))
        for n, (silence, shown) in enumerate(zip(timeline.silences, data["silences"],
                                                 strict=True)):
            start = _position(grid, max(silence.start, grid.start))
            end = _position(grid, min(silence.end, grid.until))
            axes.axvspan(start, end, color=SILENCE_COLOUR, alpha=0.18, linewidth=0,
                         label=say("silenced_key") if n == 0 else None)
            _mark(axes, start, shown["label"])
        axes.set_xlim(0, grid.count)
        days, names = _midnights(grid)
        axes.set_xticks(days, names)
        first = days[0] if days else 0.0
        axes.set_xticks([first + 6 * k for k in range(-4, grid.count // 6 + 1)
                         if k % 4 and 0 <= first + 6 * k <= grid.count], minor=True)
        axes.set_xlabel(say("hours_axis"))
        return _finish(figure, axes, data, timeline.total, say)


def render_fleet_png(fleet: FleetTimeline, templates_dir: str | None = None) -> bytes:
    """The fleet chart: restarts per day (24 h steps ending at the window's end) stacked
    by workload, the workload with the most restarts at the bottom."""
    data = fleet_data(fleet, templates_dir)
    say = Wording(templates_dir)
    grid = fleet.grid
    with _figure() as (figure, axes):
        days = list(range(grid.count))
        below = [0] * grid.count
        for n, (series, shown) in enumerate(zip(fleet.series, data["series"], strict=True)):
            axes.bar(days, series.counts, bottom=below, width=0.8, label=shown["label"],
                     color=_colour(n, series.name is None), linewidth=0)
            below = [b + c for b, c in zip(below, series.counts, strict=True)]
        axes.set_xticks(days, [e.astimezone(UTC).strftime("%a %d %b") for e in grid.edges[1:]])
        axes.set_xlim(-0.6, grid.count - 0.4)
        axes.set_xlabel(say("days_axis", grid.until))
        return _finish(figure, axes, data, fleet.total, say)


@contextmanager
def _figure() -> Iterator[tuple[Figure, Axes]]:
    """A fixed-size figure on the Agg canvas, drawn under the house style; one at a time
    (rcParams are process-wide)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _DRAWING, rc_context({
        "font.family": "DejaVu Sans",  # bundled with matplotlib: the same glyphs everywhere
        "font.size": 10,
        "text.parse_math": False,  # a `$` in a log signature is text, not TeX
        "axes.spines.top": False,
        "axes.spines.right": False,
    }):
        figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure, figure.add_subplot()


def _finish(figure: Figure, axes: Axes, data: dict[str, Any], total: int,
            say: Wording) -> bytes:
    """Title, y axis, legend; then the PNG with `data` in its tEXt chunk."""
    from matplotlib.ticker import MaxNLocator

    axes.set_title(data["title"], loc="left")
    axes.set_ylabel(say("restarts_axis"))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0)
    if total == 0:
        axes.set_ylim(0, 1)
        axes.text(0.5, 0.5, say("no_restarts"), transform=axes.transAxes, ha="center",
                  va="center", color=SILENCE_COLOUR)
    else:
        axes.grid(axis="y", color="#e0e0e0", linewidth=0.8)
        axes.set_axisbelow(True)
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False,
                      fontsize=9)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={
        "Software": None,  # no version stamp: the same data give the same bytes
        DATA_KEY: json.dumps(data, ensure_ascii=True, separators=(",", ":")),
    })
    return out.getvalue()


def _mark(axes: Axes, at: float, text: str) -> None:
    """A small vertical caption just right of `at`, at the top of the plot."""
    axes.text(at, 0.98, f" {text}", rotation=90, ha="left", va="top", fontsize=8,
              transform=axes.get_xaxis_transform(), color=ROLLOUT_COLOUR,
              bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1})


def _position(grid: Grid, moment: datetime) -> float:
    """Where `moment` lies on the x axis: hours (steps) since the window's start."""
    return (moment - grid.start) / grid.step


def _midnights(grid: Grid) -> tuple[list[float], list[str]]:
    """The UTC midnights within the window: x positions and their day names."""
    first = grid.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [first + timedelta(days=n) for n in range(1, (grid.until - first).days + 1)]
    return ([_position(grid, d) for d in days if grid.start <= d <= grid.until],
            [d.strftime("%d %b") for d in days if grid.start <= d <= grid.until])


def _colour(n: int, other: bool) -> str:
    return OTHER_COLOUR if other else COLOURS[n % len(COLOURS)]


def _grid_data(grid: Grid) -> dict[str, Any]:
    return {"from": json_time(grid.start), "to": json_time(grid.until),
            "step_seconds": int(grid.step.total_seconds())}


def _days(grid: Grid) -> int:
    return (grid.step * grid.count).days


class Wording:
    """The chart's wording: `say("rollout")` renders templates/chart.j2's macro."""

    def __init__(self, templates_dir: str | None) -> None:
        self._module = environment(templates_dir).get_template("chart.j2").module

    def __call__(self, name: str, *args: object) -> str:
        return str(getattr(self._module, name)(*args)).strip()
