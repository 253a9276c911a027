"""Proxies and web servers that refuse their configuration: nginx `[emerg]`, haproxy
`[ALERT]`, Apache `AH0…: Syntax error` — each with its own timestamp format."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.bursts import first_of_last_burst
from bot.diagnosis.finding import Finding, finding, last
from bot.diagnosis.logtext import Line

_NGINX = re.compile(r"\[emerg\]")
_HAPROXY = re.compile(r"\[(?:ALERT|EMERG)\]")
_HAPROXY_FOLLOW_ON = re.compile(r"Error\(s\) found in configuration file|Fatal errors found in "
                                r"configuration|Failed to initialize|[Ss]tarting proxy .*: "
                                r"cannot start|exited with code", re.I)
_APACHE = re.compile(r"^AH\d{5}: (?:Syntax error|Configuration error)|Syntax error on line \d+ "
                     r"of")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The emergency/alert line that stopped the proxy (the first of haproxy's burst)."""
    i = last(lines, _NGINX, shown=True)
    if i is None:
        i = first_of_last_burst(lines, _HAPROXY, skip=_HAPROXY_FOLLOW_ON, shown=True)
    if i is None:
        i = last(lines, _APACHE)
    if i is None:
        return None
    return finding(Category.CONFIG_ERROR, [lines[i]], headline=lines[i].core.strip())
