"""Perl: a `die` (or a fatal runtime error) reports `message at FILE line N.`; a missing
module is `Can't locate Foo/Bar.pm in @INC …`, followed by `BEGIN failed--compilation
aborted` — a follow-on, so the first line of the final burst is the root."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.bursts import last_burst
from bot.diagnosis.finding import Finding, anywhere, finding, indented, mentions
from bot.diagnosis.logtext import Line

# `… at script.pl line 4.` / `… at /srv/lib/App.pm line 12, <STDIN> line 3.`
_DIED = re.compile(r"\S.* at \S+ line \d+(?:, <[^>]*> (?:line|chunk) \d+)?\.$")
_FOLLOW_ON = re.compile(r"^(?:BEGIN failed--compilation aborted|Compilation failed in require|"
                        r"Execution of \S+ aborted due to compilation errors)")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The first `… at FILE line N.` of the final burst, follow-ons skipped."""
    if not mentions(lines, (" line ",)) or not anywhere(lines, _DIED):
        return None
    hits = [ln.index for ln in lines if not indented(ln) and _DIED.search(ln.core)]
    burst = last_burst([i for i in hits if not _FOLLOW_ON.match(lines[i].core)])
    if burst is None:
        return None
    head = lines[burst[0]]
    return finding(Category.APP_FATAL, [head], runtime="perl",
                   headline=re.sub(r" at \S+ line \d+.*$", "", head.core.strip()))
