"""Elixir/Erlang: `** (Module.Error) message` and the VM's `Kernel pid terminated`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last
from bot.diagnosis.logtext import Line

_PATTERNS = (re.compile(r"^\*\* \([\w.]+\) "),
             re.compile(r"^Kernel pid terminated|^\{\\?\"Kernel pid terminated"))


def detect(lines: Sequence[Line]) -> Finding | None:
    """The exception the VM died of."""
    for pattern in _PATTERNS:
        i = last(lines, pattern)
        if i is not None:
            return finding(Category.APP_FATAL, [lines[i]], runtime="erlang",
                           headline=lines[i].core.strip())
    return None
