"""Proxies and web servers that refuse to start: nginx `[emerg]`, haproxy `[ALERT]`,
Apache `AH0…: Syntax error` — each with its own timestamp format. The first line of the
final burst is the cause (later lines are follow-ons); the burst's last line is quoted too."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.bursts import last_burst
from bot.diagnosis.finding import Finding, finding, last, mentions
from bot.diagnosis.logtext import Line

_ALERT = re.compile(r"\[(?:emerg|alert|ALERT|EMERG)\]")
_FOLLOW_ON = re.compile(r"Error\(s\) found in configuration file|Fatal errors found in "
                        r"configuration|Some protocols failed to start|exited with code", re.I)
_APACHE = re.compile(r"^AH\d{5}: (?:Syntax error|Configuration error)|Syntax error on line \d+ "
                     r"of")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The alert that stopped the proxy, or Apache's syntax error."""
    if mentions(lines, ("[emerg]", "[alert]", "[ALERT]", "[EMERG]"), shown=True):
        burst = last_burst([ln.index for ln in lines if _ALERT.search(ln.shown)
                            and not _FOLLOW_ON.search(ln.core)])
        if burst is not None:
            head = lines[burst[0]]
            return finding(Category.CONFIG_ERROR, [head, lines[burst[1]]],
                           headline=head.core.strip())
    i = last(lines, _APACHE)
    if i is None:
        return None
    return finding(Category.CONFIG_ERROR, [lines[i]], headline=lines[i].core.strip())
