"""Go: `panic:` / `fatal error:` with the running goroutine's culprit frame."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, indented, last
from bot.diagnosis.logtext import Line

_START = re.compile(r"^(panic: |fatal error: |SIG[A-Z]{2,6}: [a-z][a-z -]+$|"
                    r"unexpected fault address)")
_NESTED = re.compile(r"^\s+panic: ")  # a panic raised while handling the one above
_SIGNAL = re.compile(r"^\[signal \w+")
_GOROUTINE = re.compile(r"^goroutine \d+ (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[running\]:")
_FRAME_FILE = re.compile(r"^\s*(\S+\.go:\d+)")
# a frame's file line, also when a copy lost its leading tab
_FILE_LINE = re.compile(r"^\s*\S+\.(?:go|s):\d+(?: \+0x[0-9a-f]+)?\s*$")


def _file_line(line: Line) -> bool:
    return indented(line) or _FILE_LINE.match(line.core) is not None
_MACHINERY = ("panic(", "runtime.", "created by ")
_ANY_GOROUTINE = re.compile(r"^goroutine \d+ (?:gp=\S+ m=\S+ (?:mp=\S+ )?)?\[[^\]]+\]:")
_BLOCKING = ("runtime.", "sync.", "internal/", "created by ")


def _culprit(lines: Sequence[Line], g: int, end: int,
             machinery_prefixes: tuple[str, ...] = _MACHINERY
             ) -> tuple[Line, Line | None] | None:
    """The first frame of the goroutine at `g` after the panic (or blocking) machinery."""
    frames: list[tuple[Line, Line | None]] = []
    k = g + 1
    while k < end and lines[k].core.strip() and not lines[k].core.startswith("goroutine "):
        func = lines[k]
        file_line = lines[k + 1] if k + 1 < end and _file_line(lines[k + 1]) else None
        if not _file_line(func):
            frames.append((func, file_line))
        k += 2 if file_line is not None else 1
    machinery = [n for n, (f, _) in enumerate(frames)
                 if f.core.startswith(machinery_prefixes)]
    after = machinery[-1] + 1 if machinery else 0
    candidates = [fr for fr in frames[after:]
                  if not fr[0].core.startswith(("runtime.", "created by "))] or [
        fr for fr in frames if not fr[0].core.startswith(machinery_prefixes)]
    return candidates[0] if candidates else None


def detect(lines: Sequence[Line]) -> Finding | None:
    """The last unindented panic/fatal error, a nested re-panic, `[signal …]`, culprit frame."""
    i = last(lines, _START, unindented=True)
    if i is None:
        return None
    head = lines[i]
    picked: list[Line | None] = [head]
    end = min(len(lines), i + 400)
    root = head
    for line in lines[i + 1:min(end, i + 6)]:
        if _NESTED.match(line.core):
            picked.append(line)
            root = line
        elif _SIGNAL.match(line.core):
            picked.append(line)
            break
    location = None
    g = next((k for k in range(i + 1, end) if _GOROUTINE.match(lines[k].core)), None)
    machinery: tuple[str, ...] = _MACHINERY
    if g is None:  # nothing was running (a deadlock): where the first goroutine waits
        g = next((k for k in range(i + 1, end) if _ANY_GOROUTINE.match(lines[k].core)), None)
        machinery = _BLOCKING
    if g is not None:
        picked.append(lines[g])
        culprit = _culprit(lines, g, end, machinery)
        if culprit is not None:
            func, file_line = culprit
            picked += [func, file_line]
            m = _FRAME_FILE.match(file_line.core) if file_line else None
            name = re.sub(r"\((?:[^()]|\([^()]*\))*\)$", "", func.core.strip())
            location = f"{name} ({m.group(1).rsplit('/', 1)[-1]})" if m else name
    message = re.sub(r"^(panic|fatal error): ", "", root.core.strip())
    message = message.removesuffix(" [recovered]").removesuffix(" [recovered, repanicked]")
    category = Category.GO_PANIC if head.core.startswith("panic: ") else Category.GO_FATAL_ERROR
    return finding(category, picked, runtime="go", headline=message.strip(),
                   location=location)
