"""Rust: `thread '…' panicked at` (old and ≥1.73 formats), stack overflows, and an error
returned from main through anyhow/eyre (`Error: …` then its `Caused by:` chain)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, finding, last, next_nonblank
from bot.diagnosis.logtext import Line

_PANIC = re.compile(r"thread '([^']*)'(?: \(\d+\))? panicked at (.*)$")
_OVERFLOW = re.compile(r"thread '[^']*'(?: \(\d+\))? has overflowed its stack|"
                       r"fatal runtime error: stack overflow")


# A panic whose payload is another panic or its consequence: a task's JoinError, a lock
# poisoned by the panicking thread, a thread's Err(Any) unwrapped by whoever joined it.
_WRAPS = re.compile(r"JoinError::Panic|PoisonError|\bpanicked\b|Any \{ \.\. \}|"
                    r"Err` value: Any")
_CASCADE_GAP = 4  # non-blank lines between panics of one cascade


def _panic(lines: Sequence[Line], i: int) -> tuple[Line | None, str, str]:
    """(message line, message, location) of the panic at line `i`."""
    m = _PANIC.search(lines[i].core)
    assert m is not None
    rest = m.group(2).strip()
    if rest.endswith(":"):  # Rust ≥1.73: location then the message on the next line
        message_line = next_nonblank(lines, i)
        return message_line, message_line.core.strip() if message_line else "", rest.rstrip(":")
    old = re.match(r"'(.*)', (\S+)$", rest)  # older: panicked at 'message', src/main.rs:2:5
    return None, *((old.group(1), old.group(2)) if old else (rest, ""))


def _root_panic(lines: Sequence[Line], panics: list[int]) -> int:
    """Walk back from the last panic while it wraps the one before (its payload is a
    JoinError, a poisoned lock, another panic) or follows it closely: the first is the
    root."""
    k = len(panics) - 1
    while k > 0:
        _, message, _ = _panic(lines, panics[k])
        between = [ln for ln in lines[panics[k - 1] + 1:panics[k]] if ln.core.strip()]
        if not (_WRAPS.search(message) or len(between) <= _CASCADE_GAP):
            break
        k -= 1
    return panics[k]


def detect(lines: Sequence[Line]) -> Finding | None:
    """The root panic and its message (on the next line since Rust 1.73); when later panics
    wrap it, the last one is quoted too."""
    i = last(lines, _PANIC)
    if i is not None:
        panics = [ln.index for ln in lines if _PANIC.search(ln.core)]
        root = _root_panic(lines, panics)
        message_line, message, location = _panic(lines, root)
        return finding(Category.RUST_PANIC, [lines[root], message_line,
                                             lines[i] if i != root else None],
                       runtime="rust", headline=message, location=location or None)
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


# `Error: Os { code: 2, kind: NotFound, … }`: main returned an Err, printed with Debug
_DEBUG_ERROR = re.compile(r"^Error: [A-Z]\w*(?: \{.*|\(.*)$")
# an io::ErrorKind printed in a Debug dump above it: the cause when main's own kind is vague
_IO_KIND = re.compile(r"\bkind: (NotFound|PermissionDenied|ConnectionRefused|ConnectionReset|"
                      r"ConnectionAborted|NotConnected|AddrInUse|AddrNotAvailable|BrokenPipe|"
                      r"AlreadyExists|TimedOut|HostUnreachable|NetworkUnreachable|"
                      r"UnexpectedEof|OutOfMemory|InvalidInput|InvalidData)\b")
_KIND_REACH = 20


def _debug_error(lines: Sequence[Line]) -> Finding | None:
    """main's Err printed with Debug, and the io error kind a dump above it names."""
    i = last(lines, _DEBUG_ERROR, unindented=True)
    if i is None:
        return None
    kind = next((ln for ln in reversed(lines[max(0, i - _KIND_REACH):i + 1])
                 if _IO_KIND.search(ln.core)), None)
    head = lines[i].core.strip()
    if kind is not None and kind.index != i:
        head = f"{kind.core.strip().rstrip(',')} ({head})"
    return finding(Category.APP_FATAL, [kind, lines[i]], runtime="rust", headline=head)


def detect_main_error(lines: Sequence[Line]) -> Finding | None:
    """`Error: msg` returned from main with its cause chain: the last cause is the root; or
    main's Err printed with Debug (`Error: Custom { kind: … }`)."""
    i = last(lines, _MAIN_ERROR)
    if i is None:
        return None
    chain = next((k for k in range(i + 1, min(len(lines), i + _CHAIN_LOOKAHEAD))
                  if _CAUSED_BY.match(lines[k].core)), None)
    numbered = lines[i].core.rstrip() == "Error:"  # eyre: the messages follow, numbered
    if chain is None and not numbered:
        return _debug_error(lines)
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
