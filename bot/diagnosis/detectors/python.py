"""Python: the final exception of the last traceback (with its first cause when chained),
tracebacks whose header was cut off, and gunicorn's master giving up."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import (
    MAX_LINES,
    Finding,
    anywhere,
    detail_of,
    finding,
    indented,
    last,
    mentions,
    next_nonblank,
    prev_nonblank,
)
from bot.diagnosis.logtext import Line

_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
_FRAME = re.compile(r'^\s*File "[^"]+", line \d+')
_CHAINED = re.compile(r"^(During handling of the above exception, another exception occurred:|"
                      r"The above exception was the direct cause of the following exception:)")
_EXC = re.compile(r"^([A-Za-z_][\w.]*)(:\s.*)?$")
_EXC_NAME = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Failure|"
                       r"Timeout|Refused|Denied|NotFound|Invalid\w*)(:\s.*)?$")


def _traceback_end(lines: Sequence[Line], start: int) -> int | None:
    """Index of the exception line closing the traceback that starts at `start`."""
    k = start + 1
    after_frame = False
    while k < len(lines):
        core = lines[k].core
        if not core.strip():
            k += 1
            continue
        frame, source = _FRAME.match(core) is not None, after_frame
        after_frame = frame
        # a frame's source line, also when a copy lost the indentation of both
        if frame or indented(lines[k]) or core.startswith("^") or (
                source and not _EXC_NAME.match(core.strip())):
            k += 1
            continue
        if _EXC.match(core.strip()) and not _CHAINED.match(core):
            return k
        return None
    return None


def _headless(lines: Sequence[Line]) -> Finding | None:
    """A traceback whose header scrolled out of the tail: frames, then the exception."""
    if not mentions(lines, ('file "',)) or not anywhere(lines, _FRAME):
        return None
    for line in reversed(lines):
        if indented(line) or not _EXC_NAME.match(line.core.strip()):
            continue
        before = [ln for ln in lines[max(0, line.index - 4):line.index] if ln.core.strip()]
        if any(_FRAME.match(ln.core) for ln in before):
            return finding(Category.PYTHON_EXCEPTION, [line, *_listed_under(lines, line)],
                           runtime="python",
                           headline=line.core.strip())
    return None


# Python 3.11+ exception groups: `+ Exception Group Traceback …`, the group's line
# (`| ExceptionGroup: … (2 sub-exceptions)`) and each sub-exception's traceback drawn with
# `|` margins.
_GROUP_TRACEBACK = re.compile(r"^\s*\+ Exception Group Traceback \(most recent call last\):")
_GROUP = re.compile(r"^[\s|]*([A-Za-z_][\w.]*Group): .*\(\d+ sub-exceptions?\)\s*$")
_MARGIN = re.compile(r"^[\s|+]*\| ")
_LEAF = re.compile(r"^[A-Za-z_][\w.]*(?:Error|error|Exception|Exit|Interrupt|Timeout|timeout|"
                   r"Failure)"
                   r"(?::\s.*)?$")


def _exception_group(lines: Sequence[Line]) -> Finding | None:
    """The last exception group and the first sub-exception printed under it."""
    start = last(lines, _GROUP_TRACEBACK)
    if start is None:
        return None
    group = next((ln for ln in lines[start + 1:] if _GROUP.match(ln.core)), None)
    if group is None:
        return None
    leaf = next((ln for ln in lines[group.index + 1:]
                 if _MARGIN.match(ln.core) and _LEAF.match(_MARGIN.sub("", ln.core).strip())
                 and not _GROUP.match(ln.core)), None)
    return finding(Category.PYTHON_EXCEPTION, [group, leaf], runtime="python",
                   headline=_MARGIN.sub("", (leaf or group).core).strip())


def detect(lines: Sequence[Line]) -> Finding | None:
    """The final exception of the last traceback, plus the first cause when chained."""
    if mentions(lines, ("exception group traceback",)):
        grouped = _exception_group(lines)
        if grouped is not None:
            return grouped
    if not anywhere(lines, _TRACEBACK):
        return _headless(lines)
    starts = [ln.index for ln in lines if _TRACEBACK.search(ln.core)]
    if not starts:
        return _headless(lines)
    chain: list[int] = []
    for s in reversed(starts):  # walk back from the last traceback through its chain
        if chain:
            prev_end = _traceback_end(lines, s)
            between = [ln for ln in lines[(prev_end or s) + 1:chain[-1]] if ln.core.strip()]
            if not (between and all(_CHAINED.match(b.core) for b in between)):
                break
        chain.append(s)
    chain.reverse()
    ends = [e for e in (_traceback_end(lines, s) for s in chain) if e is not None]
    if not ends:
        return _headless(lines)
    final, origin = lines[ends[-1]], _cause_above(lines, chain[0]) or lines[ends[0]]
    return finding(Category.PYTHON_EXCEPTION, [origin, final, *_listed_under(lines, final)],
                   runtime="python", headline=final.core.strip())


def _listed_under(lines: Sequence[Line], final: Line) -> list[Line]:
    """When the exception's message only counts the errors listed below it (pydantic's
    "1 validation error for Settings"), the first of them: the field's line and the
    indented reason under it."""
    field = detail_of(lines, final)
    if field is None or indented(field) or _FRAME.match(field.core) or _TRACEBACK.search(
            field.core) or _CHAINED.match(field.core):
        return []
    reason = next_nonblank(lines, field.index)
    return [field, reason] if reason is not None and indented(reason) else [field]


def _cause_above(lines: Sequence[Line], start: int) -> Line | None:
    """The exception that ends right above the chain separator before the traceback at
    `start`, when that earlier traceback lost its header (the tail began inside it)."""
    separator = prev_nonblank(lines, start)
    if separator is None or not _CHAINED.match(separator.core):
        return None
    cause = prev_nonblank(lines, separator.index)
    if cause is None or indented(cause) or not _EXC.match(cause.core.strip()):
        return None
    return cause


_GUNICORN_REASON = re.compile(r"Reason: (Worker failed to boot|App failed to load)\.")
_GUNICORN_WORKER = re.compile(r"Worker \(pid:\d+\) exited with code \d+")


def detect_gunicorn(lines: Sequence[Line]) -> Finding | None:
    """gunicorn's master giving up (exit 3/4), with the worker's traceback if logged."""
    reason = last(lines, _GUNICORN_REASON)
    if reason is None:
        return None
    worker = last(lines, _GUNICORN_WORKER)
    picked = [lines[worker] if worker is not None else None, lines[reason]]
    tb = detect(lines[:reason])
    if tb is not None:
        return replace(tb, lines=(*tb.lines, lines[reason].shown.rstrip())[:MAX_LINES])
    exc = _exception_above(lines, reason)
    if exc is not None:  # the traceback's head scrolled away; its exception line is left
        return finding(Category.PYTHON_EXCEPTION, [exc, lines[reason]], runtime="python",
                       headline=exc.core.strip())
    said = _worker_said(lines, reason)
    if said is not None:  # no traceback: the worker printed why it could not load the app
        return finding(Category.APP_FATAL, [said, lines[reason]], runtime="python",
                       headline=said.core.strip())
    return finding(Category.APP_FATAL, picked, runtime="python",
                   headline=lines[reason].core.strip())


_BOOTING = re.compile(r"Booting worker with pid|Starting gunicorn")
_WORKER_REACH = 40


# gunicorn's own log line (default format): `[2026-01-02 03:04:05 +0000] [41] [INFO] …`
_GUNICORN_LOG = re.compile(r"^\[[^\]]+\] \[\d+\] \[[A-Z]+\] ")


def _worker_said(lines: Sequence[Line], reason: int) -> Line | None:
    """The last plain line a worker printed since it booted (not one of gunicorn's own)."""
    for line in reversed(lines[max(0, reason - _WORKER_REACH):reason]):
        if _BOOTING.search(line.core):
            return None
        if line.core.strip() and not indented(line) and not _GUNICORN_LOG.match(line.shown):
            return line
    return None


def _exception_above(lines: Sequence[Line], reason: int) -> Line | None:
    """The last unindented exception line of the worker's boot (since `Booting worker`)."""
    for line in reversed(lines[max(0, reason - _WORKER_REACH):reason]):
        if _BOOTING.search(line.core):
            return None
        if not indented(line) and _EXC_NAME.match(line.core.strip()):
            return line
    return None
