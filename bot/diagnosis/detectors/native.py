"""Native code: failure-signal handlers (abseil, glog, fluent-bit, envoy), `Check failed:`,
assertion failures, uncaught C++ exceptions, heap corruption, emulator signals, and the
shell's own report of a signal — with the first named frames of the backtrace."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.node import ABORT
from bot.diagnosis.finding import Finding, finding, last, mentions, next_nonblank
from bot.diagnosis.logtext import Line

# From the most to the least telling; the first pattern that occurs wins. A failed check,
# assertion or uncaught exception outranks the SIGABRT it raises.
_CRASH_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bCheck failed: "),
    re.compile(r"terminate called (after throwing an instance of|without an active "
               r"exception|recursively)"),
    re.compile(r"(?<!no )(?:Assertion [`'\"].*[`'\"]? failed|\bassert(?:ion)? fail(?:ed|ure)\b|"
               r"\bassertion `[^`]*' failed|\bAssertion\b.{1,400}\bfailed\.?\s*$)", re.I),
    re.compile(r"Fatal Python error: "),
    # a sanitizer's report (ASan/LSan/TSan/UBSan/MSan): the line that names the fault
    re.compile(r"\b(?:ERROR|WARNING): (?:Address|Leak|Thread|UndefinedBehavior|Memory)"
               r"Sanitizer: |runtime error: .*(?:overflow|misaligned|null pointer)"),
    re.compile(r"\*\*\* ?SIG[A-Z]+ (?:\(@0x[0-9a-f]+\) )?received|"
               r"\*\*\* Aborted at \d+|[Cc]aught signal \(?SIG[A-Z]+\)?|"
               r"[Cc]aught (?:Segmentation fault|Aborted|Bus error|Illegal instruction)|"
               r"received signal SIG[A-Z]+|qemu: uncaught target signal \d+|"
               r"\bcrashed by signal:? \d+"),  # a server's own crash report (Redis)
    re.compile(r"\*\*\* (stack smashing|buffer overflow) detected \*\*\*"),
    re.compile(r"double free or corruption|double free detected|free\(\): invalid|"
               r"malloc\(\): |corrupted size vs|"
               r"memory allocation of \d+ bytes failed"),
    re.compile(r"Segmentation fault|Bus error|Illegal instruction|Floating point exception|"
               r"Aborted \(core dumped\)|\(core dumped\)"),
    re.compile(r"\bSIGSEGV\b|\bsignal 11\b|\bSIGBUS\b|\bSIGILL\b"),
)
# lower-cased words one of which occurs wherever a crash pattern matches
_WORDS = ("check failed", "terminate called", "assert", "fatal python", "***", "free(",
          "crashed by signal", "sanitizer", "runtime error",
          "double free", "malloc", "corrupted", "segmentation", "bus error", "illegal instr",
          "floating point", "core dumped", "sig", "signal 11", "qemu", "memory allocation")
_WHAT = re.compile(r"^\s*what\(\):\s+")
# A backtrace frame that names a function: gdb/fluent-bit "#1 0x… in f() at x.c:1",
# glog/abseil "@ 0x… f", backward-cpp "#1 … in f(…) at …".
_FRAME = re.compile(r"^\s*(?:#\d+\s+(?:0x[0-9a-f]+\s+)?(?:in\s+)?|(?:PC: )?@\s+0x[0-9a-f]+\s+"
                    r"(?:\d+\s+)?|\d+: 0x[0-9a-f]+\s+)"  # gdb, glog/abseil, node/V8 "1: 0x…"
                    r"(?!\?\?\?)(?!\(unknown\))([A-Za-z_~][\w:~<>,. *&-]*\(?)")
# any backtrace line, named or not: skipped when looking past a backtrace
_ANY_FRAME = re.compile(r"^\s*(?:#\d+\s|(?:PC: )?@\s+0x|\d+: 0x[0-9a-f]+)")
_HANDLER_FRAMES = re.compile(r"^(?:__restore_rt|raise|abort|gsignal|__GI_\w+|_?_?sigaction|"
                             r"\w*[Ss]ignal\w*|\w*[Bb]acktrace\w*|\w*[Ss]tack[Tt]race\w*|"
                             r"__libc_\w+|_start|\(unknown\)|(?:google|absl)::(?:LogMessage|log_internal)\w*|"
                             r"node::Abort|node::Assert|node::DumpBacktrace)\b")
# The fatal signal a root cause ends in (an abort after a failed check or an uncaught C++
# exception), quoted with it: it says how the process died, e.g. under an emulator.
_CONSEQUENCE = re.compile(r"qemu: uncaught target signal|\*\*\* ?SIG[A-Z]+ .*received|"
                          r"Aborted\s+\(core dumped\)|Segmentation fault|[Cc]aught signal|"
                          r"Fatal signal \d+")
# a wrapper (CI runner, supervisor, script) reporting the status the crash ended with
_EXIT_REPORT = re.compile(r"\bexit(?:ed)? (?:with )?(?:code |status )?(?:1[3-5]\d|2\d\d)\b|"
                          r"\bexit (?:code|status):? (?:1[3-5]\d|2\d\d)\b", re.I)
_CONSEQUENCE_WINDOW = 8  # lines after the crash (backtrace frames and blanks not counted)
_FRAMES_KEPT = 2
_FRAME_WINDOW = 40


def _named_frames(lines: Sequence[Line], i: int) -> list[Line]:
    """The first frames after line `i` that name a function outside the signal machinery."""
    kept: list[Line] = []
    for line in lines[i + 1:i + _FRAME_WINDOW]:
        m = _FRAME.match(line.core)
        if m is None or _HANDLER_FRAMES.match(m.group(1)):
            continue
        kept.append(line)
        if len(kept) == _FRAMES_KEPT:
            break
    return kept


def _after_backtrace(lines: Sequence[Line], i: int) -> list[Line]:
    """The next few lines after line `i` that are neither blank nor backtrace frames: where
    the signal the crash ended in and a wrapper's exit report are printed."""
    after: list[Line] = []
    for line in lines[i + 1:]:
        if line.core.strip() and not _ANY_FRAME.match(line.core):
            after.append(line)
            if len(after) == _CONSEQUENCE_WINDOW:
                break
    return after


def detect(lines: Sequence[Line]) -> Finding | None:
    """The crash line, the C++ exception's what() or Node's abort, the signal it ended in
    and a wrapper's report of the exit status, and the culprit frames."""
    if not mentions(lines, _WORDS):
        return None
    for pattern in _CRASH_PATTERNS:
        i = last(lines, pattern)
        if i is None:
            continue
        picked: list[Line | None] = [lines[i]]
        follow = next_nonblank(lines, i)
        if follow is not None and (_WHAT.match(follow.core) or ABORT.search(follow.core)):
            picked.append(follow)
        after = _after_backtrace(lines, i)
        consequence = next((ln for ln in after if _CONSEQUENCE.search(ln.core)), None)
        picked.append(consequence)
        picked.append(next((ln for ln in after if _EXIT_REPORT.search(ln.core)
                            and (consequence is None or ln.index >= consequence.index)), None))
        picked += _named_frames(lines, i)
        runtime = "node" if any(ABORT.search(ln.core) for ln in lines[i:i + 5]) else (
            "python" if "Fatal Python error" in lines[i].core else None)
        return finding(Category.NATIVE_CRASH, picked, runtime=runtime,
                       headline=lines[i].core.strip())
    return None
