"""Elixir/Erlang: `** (Module.Error) message` with the innermost `** (…)` it wraps, and the
VM's `Kernel pid terminated`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last
from bot.diagnosis.logtext import Line

_EXCEPTION = re.compile(r"^\*\* \([\w.]+\) ")
_NESTED = re.compile(r"^\s+\*\* \([\w.]+\) ")  # `** (EXIT) …` under the one above
_KERNEL = re.compile(r"^Kernel pid terminated|^\{\\?\"Kernel pid terminated")
_NESTED_REACH = 12


def detect(lines: Sequence[Line]) -> Finding | None:
    """The exception the VM died of, and the innermost exception printed under it."""
    i = last(lines, _EXCEPTION)
    if i is not None:
        inner = [ln for ln in lines[i + 1:i + 1 + _NESTED_REACH] if _NESTED.match(ln.core)]
        root = inner[-1] if inner else lines[i]
        return finding(Category.APP_FATAL, [lines[i], root], runtime="erlang",
                       headline=root.core.strip())
    i = last(lines, _KERNEL)
    if i is not None:
        return finding(Category.APP_FATAL, [lines[i]], runtime="erlang",
                       headline=lines[i].core.strip())
    return None
