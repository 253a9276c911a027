"""Rust: `thread '…' panicked at` (old and ≥1.73 formats), stack overflows, and an error
returned from main through anyhow/eyre (`Error: …` then its `Caused by:` chain)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last, next_nonblank
from bot.diagnosis.logtext import Line

_PANIC = re.compile(r"thread '([^']*)'(?: \(\d+\))? panicked at (.*)$")
_OVERFLOW = re.compile(r"thread '[^']*' has overflowed its stack|"
                       r"fatal runtime error: stack overflow")


def detect(lines: Sequence[Line]) -> Finding | None:
    """The panic line and its message (on the next line since Rust 1.73)."""
    i = last(lines, _PANIC)
    if i is not None:
        head = lines[i]
        m = _PANIC.search(head.core)
        assert m is not None
        rest = m.group(2).strip()
        message_line: Line | None = None
        if rest.endswith(":"):  # Rust ≥1.73: location then the message on the next line
            message_line = next_nonblank(lines, i)
            location = rest.rstrip(":")
            message = message_line.core.strip() if message_line else ""
        else:  # older: panicked at 'message', src/main.rs:2:5
            old = re.match(r"'(.*)', (\S+)$", rest)
            message, location = (old.group(1), old.group(2)) if old else (rest, "")
        return finding(Category.RUST_PANIC, [head, message_line], runtime="rust",
                       headline=message, location=location or None)
    i = last(lines, _OVERFLOW)
    if i is not None:
        picked = [ln for ln in lines if _OVERFLOW.search(ln.core)][-2:]
        return finding(Category.NATIVE_CRASH, picked, runtime="rust",
                       headline="stack overflow (the thread overflowed its stack)")
    return None


_MAIN_ERROR = re.compile(r"^Error: ?(.*)$")
_CAUSED_BY = re.compile(r"^(Caused by:|Location:)\s*$")
_CAUSE = re.compile(r"^\s+(?:\d+: )?(\S.*)$")
_CHAIN_LOOKAHEAD = 4


def detect_main_error(lines: Sequence[Line]) -> Finding | None:
    """`Error: msg` returned from main with its cause chain: the last cause is the root."""
    i = last(lines, _MAIN_ERROR)
    if i is None:
        return None
    chain = next((k for k in range(i + 1, min(len(lines), i + _CHAIN_LOOKAHEAD))
                  if _CAUSED_BY.match(lines[k].core)), None)
    numbered = lines[i].core.rstrip() == "Error:"  # eyre: the messages follow, numbered
    if chain is None and not numbered:
        return None
    causes: list[Line] = []
    for line in lines[(chain if chain is not None else i) + 1:]:
        if _CAUSED_BY.match(line.core) or not line.core.strip():
            if causes:
                break
            continue
        if _CAUSE.match(line.core) is None:
            break
        causes.append(line)
    if not causes:
        return None
    root = causes[-1]
    return finding(Category.APP_FATAL, [lines[i], causes[0] if numbered else None, root],
                   runtime="rust", headline=root.core.strip().split(": ", 1)[-1])
