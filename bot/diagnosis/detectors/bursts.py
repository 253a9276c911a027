"""Choosing the root among several error lines: the first line of the final burst.

Servers that refuse to start (nginx, haproxy, MySQL, PostgreSQL) print the real error
first and then follow-on lines ("Fatal errors found in configuration.", "Aborting"); a
burst is a run of matching lines at most GAP lines apart.
"""

from __future__ import annotations

from collections.abc import Sequence

GAP = 3


def last_burst(hits: Sequence[int]) -> tuple[int, int] | None:
    """(first, last) line index of the final burst among the sorted `hits`."""
    if not hits:
        return None
    start = len(hits) - 1
    while start > 0 and hits[start] - hits[start - 1] <= GAP:
        start -= 1
    return hits[start], hits[-1]
