"""Answers → Slack messages: the digest (and `/restarts <ns>`), the `/restarts` summary,
the drill-down thread and its file uploads."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

from slack_sdk import WebClient

from bot.answers.chart import CHART_DAYS, workload_chart
from bot.answers.patrol import PatrolRun
from bot.answers.restarts import NamespaceTotals
from bot.cluster.client import ClusterClient
from bot.cluster.fleet import Fleet
from bot.patrol.durations import format_window
from bot.patrol.story import ContainerStory, Investigation
from bot.render.blocks import fits_inline, render_message
from bot.render.environment import phrase, render
from bot.render.links import fill_links
from bot.render.rows import digest_rows, row_block_id
from bot.render.terminal import digest_text
from bot.settings import Settings
from bot.slack.alerts import Permalink, row_marks
from bot.store import Store

SPARK = "▁▂▃▄▅▆▇█"
DIGEST_ROWS = 15


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers and jobs need, built once by `serve`. `cluster` is the primary
    cluster; `fleet` holds every served cluster (KUBE_CONTEXTS) when there are several."""

    settings: Settings
    cluster: ClusterClient
    store: Store
    fleet: Fleet | None = None

    def __post_init__(self) -> None:
        if self.fleet is None:  # one cluster: a fleet of one, built once
            object.__setattr__(self, "fleet", Fleet([self.cluster]))

    @property
    def clusters(self) -> Fleet:
        """Every served cluster (just `cluster` unless KUBE_CONTEXTS names several)."""
        assert self.fleet is not None
        return self.fleet


def sparkline(values: Sequence[int]) -> str:
    """Unicode bars for a series (empty when there is no history yet)."""
    if len(values) < 2:
        return ""
    top = max(values) or 1
    return "".join(SPARK[min(len(SPARK) - 1, round(v / top * (len(SPARK) - 1)))] for v in values)


def _daily_deltas(history: Sequence[tuple[Any, int]]) -> list[int]:
    return [max(b - a, 0) for (_, a), (_, b) in pairwise(history)]


def _streak(fingerprints: Sequence[str | None], current: str | None) -> int:
    """How many digests in a row (this one included) saw the same crash."""
    if current is None:
        return 0
    count = 1
    for fp in fingerprints:
        if fp != current:
            break
        count += 1
    return count


def digest_message(run: PatrolRun, services: Services, *, scope: str | None = None,
                   top: int = DIGEST_ROWS, channel: str | None = None,
                   permalink: Permalink | None = None, controls: bool = False
                   ) -> dict[str, Any]:
    """The digest as Block Kit: header, window and its source, one section per workload
    with its stories and a Why? button (the same rows as the terminal table, plus the
    store's history: the sparkline, and the streak where the record tells nothing).
    With `controls` (the posted daily digest), each row with a crash to name gets
    Silence… and Acknowledge under it."""
    digest, store, settings = run.digest, services.store, services.settings
    week_ago = digest.window_to - timedelta(days=7)
    exclude = run.snapshot.id if run.snapshot else None
    rows = [replace(
        row,
        spark=sparkline(_daily_deltas(store.workload_history(
            digest.cluster, row.namespace, row.kind, row.name, week_ago,
            also=run.snapshot.id if run.snapshot else None))),
        streak=0 if row.stories else _streak(store.fingerprint_history(
            digest.cluster, row.namespace, row.kind, row.name, exclude=exclude),
            row.fingerprint),
        button=json.dumps({"cl": digest.cluster, "ns": row.namespace, "kind": row.kind,
                           "name": row.name}, separators=(",", ":")),
        controls=row_block_id(row.namespace, row.kind, row.name)
        if controls and (row.stories or row.fingerprint) else None,
    ) for row in digest_rows(digest, run.diagnoses, top)]
    # silences ("silenced by … until …", the crash still counted) and alert-thread links
    marks = row_marks(store, digest.cluster, rows, digest.window_to, channel, permalink)
    return render_message(
        "digest.blocks.j2", settings.templates_dir, cluster=digest.cluster, scope=scope,
        unreadable=list(run.unreadable),
        first_run=digest.first_run, rows=rows, more=max(len(digest.workloads) - top, 0),
        total_rows=len(digest.workloads), restarts_in_window=digest.restarts_in_window,
        window_from=digest.window_from, window_to=digest.window_to,
        span=format_window(digest.window_to - digest.window_from)
        if digest.window_from else "",
        pods_scanned=digest.pods_scanned, vanished=len(digest.vanished),
        recorded=digest.recorded, dropped=digest.dropped_captures,
        vanished_restarts=digest.vanished_restarts, source=digest.source,
        unreachable=digest.unreachable, notes=list(run.notes),
        marks=marks)


def summary_message(view: NamespaceTotals, settings: Settings) -> dict[str, Any]:
    """The `/restarts` summary of one cluster: restarts per namespace in the window."""
    return render_message("summary.blocks.j2", settings.templates_dir, view=view,
                          span=format_window(view.window_to - view.window_from)
                          if view.window_from else "")


def full_table(run: PatrolRun, settings: Settings) -> str:
    """Every workload with restarts, as the terminal table (uploaded for `--all`)."""
    return digest_text(run.digest, run.diagnoses, top=0, templates_dir=settings.templates_dir)


def notice(kind: str, settings: Settings, **context: object) -> dict[str, Any]:
    """A short message from templates/notice.blocks.j2."""
    defaults: dict[str, object] = {"namespace": "", "allowed": "", "message": "",
                                   "suggestions": "", "target": "", "error": ""}
    return render_message("notice.blocks.j2", settings.templates_dir, kind=kind,
                          **(defaults | context))


def post_drilldown(client: WebClient, channel: str, thread_ts: str,
                   investigation: Investigation, services: Services) -> None:
    """One thread reply per container: its latest crash (diagnosis, signature, recorded
    and live events, log tail — inline when it fits a message once escaped, else uploaded
    as a file into the thread) and its crashes of the window, one line per story. Each
    distinct log is shown or uploaded once per thread (an identical one is "the same as
    above"), the recorded logs of the stories too."""
    settings, store = services.settings, services.store
    week_ago = investigation.window_to - timedelta(days=7)
    sparks: dict[tuple[str, str, str], str] = {}  # one history query per workload
    uploaded: set[str] = set()  # recorded log texts already in this thread
    charts = workload_charts(investigation, services)
    for n, r in enumerate(investigation.answers):
        log = (r.log_tail or "").rstrip("\n")
        lines = log.split("\n")[-settings.limits.log_tail_lines:] if log else []
        text = "\n".join(lines)
        repeated = r.log_tail is not None and log in uploaded
        uploaded.add(log)
        shown = r.log_tail is not None and not repeated
        inline = text if shown and fits_inline(text) else None
        key = (r.namespace, r.workload_kind, r.workload_name)
        if key not in sparks:
            sparks[key] = sparkline(_daily_deltas(store.workload_history(
                investigation.cluster, *key, week_ago)))
        recorded = recorded_logs(services, r, uploaded)
        message = render_message(
            "why.blocks.j2", settings.templates_dir, r=r, events=r.fresh_events[:10],
            history=sparks[key], log_inline=inline, log_repeated=repeated,
            log_file=shown and inline is None, log_lines=len(lines),
            recorded_logs=bool(recorded), unreachable=investigation.unreachable,
            window_to=investigation.window_to, chart_days=CHART_DAYS,
            kubectl=kubectl_lines(r, investigation.cluster, services.clusters.several),
            links=fill_links(settings.slack.links, cluster=investigation.cluster,
                             namespace=r.namespace, workload=r.workload_name, pod=r.pod,
                             container=r.container, since=investigation.window_from,
                             until=investigation.window_to),
            chart=charts.get(n) is not None,
            span=format_window(investigation.window_to - investigation.window_from))
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message)
        if shown and inline is None:
            client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=text,
                filename=f"{r.pod}.{r.container}.previous.log",
                title=phrase("log_file_title", settings.templates_dir, namespace=r.namespace,
                             pod=r.pod, container=r.container))
        if recorded:
            client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=recorded,
                filename=f"{r.pod}.{r.container}.recorded.log",
                title=phrase("recorded_log_file_title", settings.templates_dir,
                             namespace=r.namespace, pod=r.pod, container=r.container))
        png = charts.get(n)
        if png is not None:
            client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, file=png,
                filename=f"{r.workload_name}.restarts-{CHART_DAYS}d.png",
                title=phrase("chart_file_title", settings.templates_dir,
                             namespace=r.namespace, workload=r.workload_name,
                             days=CHART_DAYS))


def kubectl_lines(answer: ContainerStory, cluster: str, several: bool) -> list[str]:
    """The commands to read this container's previous log and its pod's description
    yourself (`--context` naming the cluster when several are served: their names are
    their kubeconfig contexts). None for a pod that no longer exists: there is nothing
    left for kubectl to show."""
    if answer.live is None:
        return []
    context = ["--context", cluster] if several else []
    where = [*context, "-n", answer.namespace]
    return [shlex.join(["kubectl", "logs", "--previous", *where, answer.pod, "-c",
                        answer.container]),
            shlex.join(["kubectl", "describe", "pod", *where, answer.pod])]


def workload_charts(investigation: Investigation, services: Services) -> dict[int, bytes]:
    """The crash-history chart of each workload the drill-down answers about, by the
    index of its first answer (the reply it is uploaded after): one per workload, none
    for a workload with no recorded crash in the chart's days."""
    charts: dict[int, bytes] = {}
    seen: set[tuple[str, str, str]] = set()
    for n, r in enumerate(investigation.answers):
        key = (r.namespace, r.workload_kind, r.workload_name)
        if key in seen:
            continue
        seen.add(key)
        png = workload_chart(services.store, investigation.cluster, *key,
                             until=investigation.window_to,
                             templates_dir=services.settings.templates_dir)
        if png is not None:
            charts[n] = png
    return charts


def recorded_logs(services: Services, answer: ContainerStory, uploaded: set[str]) -> str:
    """The recorded log of each of the answer's stories (its newest crash with a log),
    newest story first, in one text — each distinct log once: texts in `uploaded` (shown
    or uploaded earlier in the thread) are left out, and added to it. Empty when none."""
    crashes = services.store.history
    parts = []
    for story in answer.stories:
        crash = story.logged
        if crash is None or crash.id is None:
            continue
        found = crashes.log_of(crash.cluster, crash.id)
        if found is None or found[1] is None:
            continue
        text = found[1].rstrip("\n")
        if text in uploaded:
            continue
        uploaded.add(text)
        parts.append(render("recorded_log.txt.j2", services.settings.templates_dir,
                            c=found[0], log=found[1], story=story))
    return "\n".join(parts)
