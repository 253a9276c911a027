"""Choosing the root among several error lines: the first line of the final burst.

Servers that refuse to start (haproxy, MySQL, PostgreSQL) print the real error first and
then follow-on lines ("Fatal errors found in configuration.", "Aborting"); the burst is
the run of matching lines at most GAP lines apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.finding import anywhere
from bot.diagnosis.logtext import Line

GAP = 3


def first_of_last_burst(lines: Sequence[Line], pattern: re.Pattern[str],
                        skip: re.Pattern[str] | None = None, *, shown: bool = False
                        ) -> int | None:
    """Index of the first line of the last burst of lines matching `pattern` in their core
    (or shown) text; lines matching `skip` are follow-ons and never chosen."""
    if not anywhere(lines, pattern, shown=shown):
        return None
    hits = [ln.index for ln in lines if pattern.search(ln.shown if shown else ln.core)
            and not (skip is not None and skip.search(ln.core))]
    if not hits:
        return None
    start = len(hits) - 1
    while start > 0 and hits[start] - hits[start - 1] <= GAP:
        start -= 1
    return hits[start]
