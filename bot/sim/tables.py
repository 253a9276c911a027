"""`Accept: …;as=Table` responses, so kubectl prints its usual columns.

Cells are computed the way the API server's printers compute them (pod READY, STATUS,
RESTARTS with "(5m ago)", AGE as "46d"), against the simulated clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.patrol.durations import human_duration
from bot.patrol.timestamps import parse_api_time
from bot.sim.world import Obj


def _age(obj: Obj, now: datetime) -> str:
    created = parse_api_time(obj["metadata"].get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration((now - created).total_seconds())


def _pod_cells(pod: Obj, now: datetime) -> list[Any]:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    total = len(pod.get("spec", {}).get("containers", []))
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = pod.get("status", {}).get("phase", "Unknown")
    last_finish: datetime | None = None
    for s in statuses:
        waiting = s.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        term = s.get("state", {}).get("terminated")
        if term and term.get("reason"):
            reason = term["reason"]
        last = parse_api_time((s.get("lastState", {}).get("terminated") or {}).get("finishedAt"))
        if last and (last_finish is None or last > last_finish):
            last_finish = last
    restart_cell = str(restarts)
    if restarts and last_finish:
        restart_cell += f" ({human_duration((now - last_finish).total_seconds())} ago)"
    return [pod["metadata"]["name"], f"{ready}/{total}", reason, restart_cell, _age(pod, now),
            pod.get("status", {}).get("podIP", "<none>"), pod.get("spec", {}).get(
                "nodeName", "<none>"), "<none>", "<none>"]


_POD_COLUMNS = [
    ("Name", "string", "name", 0), ("Ready", "string", "", 0), ("Status", "string", "", 0),
    ("Restarts", "string", "", 0), ("Age", "string", "", 0), ("IP", "string", "", 1),
    ("Node", "string", "", 1), ("Nominated Node", "string", "", 1),
    ("Readiness Gates", "string", "", 1),
]


def _event_cells(ev: Obj, now: datetime) -> list[Any]:
    last = parse_api_time(ev.get("lastTimestamp")) or now
    inv = ev.get("involvedObject", {})
    return [human_duration((now - last).total_seconds()), ev.get("type", ""),
            ev.get("reason", ""), f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
            ev.get("message", "")]


_EVENT_COLUMNS = [
    ("Last Seen", "string", "", 0), ("Type", "string", "", 0), ("Reason", "string", "", 0),
    ("Object", "string", "", 0), ("Message", "string", "", 0),
]


def to_table(resource: str, objs: list[Obj], now: datetime, list_meta: Obj) -> Obj:
    """A meta.k8s.io/v1 Table of `objs` with the columns kubectl shows for `resource`."""
    if resource == "pods":
        columns, cells = _POD_COLUMNS, [_pod_cells(p, now) for p in objs]
    elif resource == "events":
        columns, cells = _EVENT_COLUMNS, [_event_cells(e, now) for e in objs]
    else:
        columns = [("Name", "string", "name", 0), ("Age", "string", "", 0)]
        cells = [[obj["metadata"]["name"], _age(obj, now)] for obj in objs]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": name, "type": type_, "format": fmt, "description": name,
             "priority": priority} for name, type_, fmt, priority in columns
        ],
        "rows": [
            {"cells": row, "object": {"kind": "PartialObjectMetadata",
                                      "apiVersion": "meta.k8s.io/v1",
                                      "metadata": obj["metadata"]}}
            for row, obj in zip(cells, objs, strict=True)
        ],
    }
