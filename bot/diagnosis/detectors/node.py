"""Node.js: V8 heap exhaustion, and uncaught errors (with their `code:` property)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, anywhere, finding, indented, last
from bot.diagnosis.logtext import Line

_OOM = re.compile(r"FATAL ERROR: .*(heap out of memory|Allocation failed)")
_GCS = re.compile(r"<--- Last few GCs --->")
_GC_LINE = re.compile(r"\d+ ms: (Mark-sweep|Mark-Compact|Scavenge|Mark-compact)")
ABORT = re.compile(r"node::Abort\(\)")


def detect_heap(lines: Sequence[Line]) -> Finding | None:
    """V8 heap exhaustion: `FATAL ERROR: … JavaScript heap out of memory`, the GC trace."""
    fatal = last(lines, _OOM)
    gcs = last(lines, _GCS)
    if fatal is None and gcs is None:
        return None
    start = min(x for x in (fatal, gcs) if x is not None)
    last_gc = last(lines, _GC_LINE, start=start)
    abort = next((ln for ln in lines[start:] if ABORT.search(ln.core)), None)
    picked = [lines[gcs] if gcs is not None else None, lines[last_gc] if last_gc else None,
              lines[fatal] if fatal is not None else None, abort]
    headline = (lines[fatal].core.strip() if fatal is not None
                else "JavaScript heap out of memory (V8 could not free memory)")
    return finding(Category.NODE_HEAP_OOM, picked, runtime="node", headline=headline)


_ERROR = re.compile(r"^(?:Uncaught )?(?:[A-Z][\w]*(?:Error|Exception)|Error)"
                    r"(?: \[[\w]+\])?: .+|^\[?UnhandledPromiseRejection")
_FRAME = re.compile(r"^\s*at ")
_CODE = re.compile(r"^\s*(code|errno|syscall): ")
# `[cause]: Error: connect ECONNREFUSED …` in the inspected error object (Error.cause): the
# deepest one is the root of the chain, quoted with the headline.
_CAUSE = re.compile(r"^\s*\[cause\]: \S")


_MESSAGE_LINES = 8  # an error message may run over a few lines (`Require stack:` …)


def _frames_follow(lines: Sequence[Line], i: int) -> bool:
    """`at …` frames start within a few lines after line `i`, before any other error."""
    for line in lines[i + 1:i + 1 + _MESSAGE_LINES]:
        if _FRAME.match(line.core):
            return True
        if _ERROR.match(line.core):
            return False
    return False


def detect(lines: Sequence[Line]) -> Finding | None:
    """An uncaught Error (followed by `at …` frames) with its `code:` property."""
    if not anywhere(lines, _ERROR):
        return None
    found: int | None = None
    for line in reversed(lines):
        if indented(line) or not _ERROR.match(line.core):
            continue
        # `Uncaught X: …` is Node's own report (--abort-on-uncaught-exception prints its
        # frames without `at `)
        if _frames_follow(lines, line.index) or line.core.startswith(
                ("[UnhandledPromiseRejection", "UnhandledPromiseRejection", "Uncaught ")):
            found = line.index
            break
    if found is None:
        return None
    picked: list[Line | None] = [lines[found]]
    block: list[Line] = []
    for line in lines[found + 1:found + 40]:
        block.append(line)
        if line.core.rstrip() == "}":
            break
    causes = [ln for ln in block if _CAUSE.match(ln.core)]
    # the object's own properties, or those of its deepest cause
    start = causes[-1].index if causes else found
    picked += [causes[-1] if causes else None]
    picked += [ln for ln in block if ln.index > start and _CODE.match(ln.core)][:3]
    return finding(Category.NODE_EXCEPTION, picked, runtime="node",
                   headline=lines[found].core.strip())
