"""Elixir/Erlang: `** (Module.Error) message` with the innermost `** (…)` it wraps, and the
VM's `Kernel pid terminated`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, first, last
from bot.diagnosis.logtext import Line

_EXCEPTION = re.compile(r"^\*\* \([\w.]+\) ")
_NESTED = re.compile(r"^\s+\*\* \([\w.]+\) ")  # `** (EXIT) …` under the one above
_KERNEL = re.compile(r"^Kernel pid terminated|^\{\\?\"Kernel pid terminated")
# the boot script's start function crashed: `{"init terminating in do_boot",{Reason,Stack}}`
# and its short form `init terminating in do_boot ({Reason,…})`
_DO_BOOT = re.compile(r'^(?:\{"init terminating in do_boot",|init terminating in do_boot \()')
_REASON = re.compile(r'\{"init terminating in do_boot",\{?(\{[^\[]*?\}|\w+),?')
_NESTED_REACH = 12


def detect(lines: Sequence[Line]) -> Finding | None:
    """The exception the VM died of, and the innermost exception printed under it."""
    i = last(lines, _EXCEPTION)
    if i is not None:
        inner = [ln for ln in lines[i + 1:i + 1 + _NESTED_REACH] if _NESTED.match(ln.core)]
        root = inner[-1] if inner else lines[i]
        return finding(Category.APP_FATAL, [lines[i], root], runtime="erlang",
                       headline=root.core.strip())
    i = first(lines, _DO_BOOT)
    if i is not None:
        m = _REASON.search(lines[i].core)
        return finding(Category.APP_FATAL, [lines[i]], runtime="erlang",
                       headline=m.group(1) if m else lines[i].core.strip())
    i = last(lines, _KERNEL)
    if i is not None:
        return finding(Category.APP_FATAL, [lines[i]], runtime="erlang",
                       headline=lines[i].core.strip())
    return None
