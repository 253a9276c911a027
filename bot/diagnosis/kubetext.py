"""Kubernetes text pasted instead of a log: `kubectl describe pod` output and event lists
(`kubectl get events`, the Events: table of describe).

`read_kube_text()` recognises such text and returns what it states — the container's last
termination (reason, exit code, message), the pod's own failure reason (Evicted), and the
events — so the engine can decide from them exactly as it does from `Evidence.events`, and
the lines worth quoting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.diagnosis.events import EventNote
from bot.diagnosis.logtext import Line, LogLines, joined

_DESCRIBE_FIELD = re.compile(r"^(\s*)(Name|Namespace|Status|Reason|Message|Exit Code|Signal|"
                             r"State|Last State|Started|Finished|Node|Controlled By|"
                             r"Containers|Events):\s*(.*)$")
# "  Warning  Unhealthy  3m (x5 over 4m)  kubelet  Liveness probe failed: …" (describe) and
# "2m  Warning  Evicted  pod/web-1  The node had condition: [DiskPressure]." (get events)
_EVENT_ROW = re.compile(r"^\s*(?:\S+\s{2,})?(Normal|Warning)\s{2,}([A-Z]\w+)\s{2,}(.+)$")
# the same row once a copy squeezed the columns to single spaces (read only under a header):
# type, reason, age with its "(x3 over 12m)", source ("kubelet" or "kubelet, node-1"), message
_SQUEEZED_ROW = re.compile(r"^\s*(Normal|Warning) ([A-Z]\w+) (?:\S+)(?: \(x(\d+) over \S+\))? "
                           r"([a-z][\w.-]*(?:, \S+)?) (\S.*)$")
_DESCRIBE_ONLY = ("Last State", "State", "Exit Code", "Events", "Controlled By")
# the column headers of describe's Events table and of `kubectl get events`
_EVENTS_HEADER = re.compile(r"^\s*(Type\s+Reason\s+Age\s+From\s+Message|"
                            r"LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE)\s*$")
_HEADER_WINDOW = 400
_COUNT = re.compile(r"\(x(\d+) over ")
_TERMINATED_BLOCK = 12  # lines after "Last State: Terminated" that belong to it
_EVENTS_QUOTED = 4
# Normal events worth quoting: they say who stopped the container.
_STOP_REASONS = frozenset({"Killing", "Preempted", "Preempting", "Evicted", "OOMKilling",
                           "TaintManagerEviction", "NodeNotReady", "Shutdown"})
_MIN_SHAPE = 2  # describe fields or event rows needed before text counts as Kubernetes's


@dataclass(frozen=True, slots=True)
class KubeText:
    """What describe/events text states about the last termination."""

    reason: str | None
    exit_code: int | None
    message: str | None
    pod_reason: str | None  # the pod's own Status reason, e.g. Evicted
    pod_message: str | None
    memory_limit: str | None  # describe's Limits: memory
    events: tuple[EventNote, ...]
    quoted: tuple[Line, ...]  # the lines that state it, in log order


def _event(line: Line, squeezed: bool = False) -> EventNote | None:
    m = _EVENT_ROW.match(line.shown)
    if m is None:
        s = _SQUEEZED_ROW.match(line.shown) if squeezed else None
        if s is None:
            return None
        return EventNote(s.group(1), s.group(2), s.group(5).strip(), int(s.group(3) or 1))
    columns = re.split(r"\s{2,}", m.group(3).strip())
    count = _COUNT.search(m.group(3))
    return EventNote(m.group(1), m.group(2), columns[-1], int(count.group(1)) if count else 1)


def _terminated(lines: Sequence[Line], start: int) -> dict[str, Line]:
    """The Reason/Exit Code/Message/Signal fields of the Terminated block at `start`."""
    found: dict[str, Line] = {}
    for line in lines[start + 1:start + _TERMINATED_BLOCK]:
        m = _DESCRIBE_FIELD.match(line.shown)
        if m is None:
            continue
        if m.group(2) in ("State", "Last State", "Containers", "Events"):
            break
        found.setdefault(m.group(2), line)
    return found


def _value(line: Line | None) -> str | None:
    if line is None:
        return None
    m = _DESCRIBE_FIELD.match(line.shown)
    return m.group(3).strip() or None if m else None


_LIMITS = re.compile(r"^\s+Limits:\s*$")
_MEMORY = re.compile(r"^\s+memory:\s+(\S+)\s*$")
_LIMIT_LINES = 4


def _memory_limit(lines: Sequence[Line]) -> str | None:
    """The first container's memory limit from describe's `Limits:` block."""
    for line in lines:
        if _LIMITS.match(line.shown):
            for item in lines[line.index + 1:line.index + 1 + _LIMIT_LINES]:
                m = _MEMORY.match(item.shown)
                if m:
                    return m.group(1)
    return None


_PROBE = re.compile(r"\b(Liveness|Readiness|Startup) probe failed", re.I)


def _telling_rows(events: Sequence[tuple[Line, EventNote]]) -> list[Line]:
    """The rows worth quoting: per Warning or stopping reason its first row, except probe
    failures, quoted per probe (the most repeated row of each), liveness and startup before
    readiness: a failing readiness probe takes the pod out of its Service but never restarts
    the container."""
    reasons: dict[str, tuple[Line, EventNote]] = {}
    for ln, ev in events:
        if ev.type != "Warning" and ev.reason not in _STOP_REASONS:
            continue
        probe = _PROBE.search(ev.message)
        key = f"{ev.reason}/{probe.group(1).lower()}" if probe else ev.reason
        held = reasons.get(key)
        if held is None or (probe is not None and ev.count > held[1].count):
            reasons[key] = (ln, ev)
    if any(key.endswith(("/liveness", "/startup")) for key in reasons):
        reasons = {k: v for k, v in reasons.items() if not k.endswith("/readiness")}
    return [ln for ln, _ in reasons.values()][:_EVENTS_QUOTED]


# a describe field or an event row somewhere in the text: one scan before the line-by-line
_SHAPE = re.compile(r"^\s*(?:(?:\S+\s+)?(?:Normal|Warning)\s|(?:Last State|State|Exit Code|"
                    r"Events|Controlled By):)", re.M)


def read_kube_text(lines: Sequence[Line]) -> KubeText | None:
    """The facts of describe/events text, or None when the text is an ordinary log."""
    if isinstance(lines, LogLines) and joined(_SHAPE).search(lines.shown_blob) is None:
        return None
    fields = [(ln, m) for ln in lines if (m := _DESCRIBE_FIELD.match(ln.shown)) is not None]
    header = next((ln.index for ln in lines[:_HEADER_WINDOW] if _EVENTS_HEADER.match(ln.shown)),
                  None)
    table = header is not None
    events = [(ln, ev) for ln in lines
              if (ev := _event(ln, squeezed=header is not None and ln.index > header)) is not None]
    describe = any(m.group(2) in _DESCRIBE_ONLY for _, m in fields)
    if not ((describe and len(fields) >= _MIN_SHAPE) or len(events) >= _MIN_SHAPE
            or (table and events)):
        return None
    quoted: list[Line] = []
    block: dict[str, Line] = {}
    for ln, m in fields:  # the last state if terminated, else the current one
        if m.group(2) in ("Last State", "State") and m.group(3).startswith("Terminated") and (
                not block or m.group(2) == "Last State"):
            block = _terminated(lines, ln.index)
    pod_reason_line = next((ln for ln, m in fields if not m.group(1) and m.group(2) == "Reason"),
                           None)
    pod_message_line = next((ln for ln, m in fields if not m.group(1) and m.group(2) == "Message"),
                            None)
    quoted += [ln for key, ln in block.items() if key in ("Reason", "Exit Code", "Message")]
    quoted += [ln for ln in (pod_reason_line, pod_message_line) if ln is not None]
    quoted += _telling_rows(events)
    code = _value(block.get("Exit Code"))
    return KubeText(
        reason=_value(block.get("Reason")),
        exit_code=int(code) if code and code.lstrip("-").isdigit() else None,
        message=_value(block.get("Message")),
        pod_reason=_value(pod_reason_line),
        pod_message=_value(pod_message_line),
        memory_limit=_memory_limit(lines),
        events=tuple(ev for _, ev in events),
        quoted=tuple(sorted(set(quoted), key=lambda ln: ln.index)),
    )
