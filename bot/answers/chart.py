"""The crash-history chart of a workload from the record (docs/chart.md): its recorded
crashes and silences from the store, drawn by bot.render.chart. One call serves the
Slack drill-down (uploaded into the thread) and `why --chart FILE`.

matplotlib is only imported when a chart is drawn (bot.render.chart), never on import.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.patrol.alerting import AlertedWorkload
from bot.patrol.timeline import SilenceSpan, workload_timeline
from bot.render.chart import render_timeline_png
from bot.store import Store

CHART_DAYS = 14
# The newest crashes of the workload read for its chart: 14 days of a crash loop (one
# restart per 5 min, the kubelet's longest back-off) of seven pods, plus the crashes just
# before the window that tell which version ran before it (a rollout is a version no
# earlier crash ran).
MAX_CRASHES = 20_000
CLOCK_SKEW = timedelta(minutes=1)  # between the bot's clock and the API server's


def silence_label(created_by: str) -> str:
    """Who set a silence, as the chart names them: `@U123` for a Slack user, the
    terminal's `cli:<login>` as it is."""
    return created_by if ":" in created_by else f"@{created_by}"


def workload_chart(store: Store, cluster: str, namespace: str, kind: str, name: str, *,
                   until: datetime, templates_dir: str | None = None,
                   days: int = CHART_DAYS) -> bytes | None:
    """The workload's restarts per hour over the `days` to `until` (aware: the API
    server's clock) as a PNG, with its rollouts and the silences that were in force;
    None when the record has no crash of it in that window (no empty picture)."""
    records = store.history.history(cluster, namespace, workload=(kind, name),
                                    limit=MAX_CRASHES)
    start = until - timedelta(days=days)
    # Silences carry the bot's clock, `until` is the API server's (whole seconds): one set
    # a moment "after" the server's now is in force now and is drawn from `until`.
    spans = [SilenceSpan(min(s.created_at, until), s.lifted_at or s.until,
                         silence_label(s.created_by))
             for s in store.silences.overlapping(
                 AlertedWorkload(cluster, namespace, kind, name), start, until + CLOCK_SKEW)]
    timeline = workload_timeline(records, until=until, days=days, silences=spans)
    if timeline.total == 0:
        return None
    return render_timeline_png(timeline, templates_dir)
