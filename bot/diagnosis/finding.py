"""What a detector reports (`Finding`) and the line-picking helpers detectors share.

Helpers take `Sequence[Line]`; when given the `LogLines` of a whole log they first ask the
joined text whether a pattern or keyword occurs at all, so a detector that cannot match
costs one scan, not one regex per line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.diagnosis.categories import Category
from bot.diagnosis.logtext import Line, LogLines, joined

MAX_LINES = 8


@dataclass(frozen=True, slots=True)
class Finding:
    """What the log says: category, signature lines, and the crash's one-line name."""

    category: Category
    lines: tuple[str, ...]
    runtime: str | None = None
    headline: str = ""
    location: str | None = None  # culprit frame / source position, when known


def indented(line: Line) -> bool:
    return line.core[:1] in (" ", "\t")


def next_nonblank(lines: Sequence[Line], i: int) -> Line | None:
    for line in lines[i + 1:]:
        if line.core.strip():
            return line
    return None


def prev_nonblank(lines: Sequence[Line], i: int) -> Line | None:
    for line in reversed(lines[:i]):
        if line.core.strip():
            return line
    return None


def anywhere(lines: Sequence[Line], pattern: re.Pattern[str], *, shown: bool = False) -> bool:
    """False only when `pattern` surely matches no line (`core`, or `shown` texts): one scan
    of the joined text."""
    if not isinstance(lines, LogLines):
        return True
    return joined(pattern).search(lines.shown_blob if shown else lines.blob) is not None


def mentions(lines: Sequence[Line], keywords: tuple[str, ...], *, shown: bool = False) -> bool:
    """False only when no keyword occurs in the log: lower-cased keywords in the lower-cased
    core texts, or (`shown`) exact keywords in the shown texts. A cheap pre-check that spares
    slow patterns on logs they cannot match."""
    if not isinstance(lines, LogLines):
        return True
    text = lines.shown_blob if shown else lines.lower
    return any(k in text for k in keywords)


def last(lines: Sequence[Line], pattern: re.Pattern[str], *, unindented: bool = False,
         start: int = 0, shown: bool = False) -> int | None:
    """Index of the last line (from `start`) whose core (or shown text) matches."""
    if not anywhere(lines, pattern, shown=shown):
        return None
    for line in reversed(lines[start:]):
        if unindented and indented(line):
            continue
        if pattern.search(line.shown if shown else line.core):
            return line.index
    return None


def first(lines: Sequence[Line], pattern: re.Pattern[str], *, start: int = 0) -> int | None:
    """Index of the first line (from `start`) whose core matches."""
    if not anywhere(lines, pattern):
        return None
    for line in lines[start:]:
        if pattern.search(line.core):
            return line.index
    return None


def finding(category: Category, picked: Sequence[Line | None], *, runtime: str | None = None,
            headline: str = "", location: str | None = None) -> Finding:
    """A Finding quoting the picked lines once each, in log order, at most MAX_LINES."""
    seen: set[int] = set()
    ordered = sorted((ln for ln in picked if ln is not None), key=lambda ln: ln.index)
    shown: list[str] = []
    for line in ordered:
        if line.index in seen or not line.shown.strip():
            continue
        seen.add(line.index)
        shown.append(line.shown.rstrip())
    return Finding(category, tuple(shown[:MAX_LINES]), runtime, headline, location)


_QUIET_LEVEL = re.compile(r"\b(INFO|DEBUG|TRACE)\b|\[(info|debug|trace|notice|note)\]|"
                          r"level=(info|debug)|^[ID]\d{4} |^\s*(LOG|INFO|DEBUG\d?):\s", re.I)


def loud(line: Line) -> bool:
    """Not an info/debug line (JSON level, or the level word the line starts with)."""
    if line.level is not None:
        return line.level not in ("info", "debug", "trace")
    return not _QUIET_LEVEL.search(line.core)


# A line that only counts or announces the errors that the next line lists.
_SUMMARY = re.compile(r"(\[?\d+\]? \w+( \w+)? failed|\d+ validation errors? for \w+|"
                      r"errors? (found|occurred)\b.*|:)\s*$", re.I)


def detail_of(lines: Sequence[Line], line: Line) -> Line | None:
    """The next line when `line` only announces it ("2 checks failed", "…:")."""
    return next_nonblank(lines, line.index) if _SUMMARY.search(line.core) else None
