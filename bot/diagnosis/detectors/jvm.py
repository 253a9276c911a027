"""The JVM: HotSpot crashes (hs_err), launcher errors, heap OOMs, Spring Boot's failure
report, and uncaught exceptions with their deepest `Caused by:`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.categories import Category
from bot.diagnosis.finding import Finding, anywhere, finding, last, next_nonblank, prev_nonblank
from bot.diagnosis.logtext import Line

_HS_ERR = re.compile(r"A fatal error has been detected by the Java Runtime Environment")
_HS_DETAIL = re.compile(r"^#\s+(SIG\w+ \(0x[0-9a-f]+\)|EXCEPTION_\w+|Internal Error|"
                        r"Out of Memory Error|There is insufficient memory)")


def detect_hs_err(lines: Sequence[Line]) -> Finding | None:
    """The HotSpot fatal error banner, the signal line and the problematic frame."""
    i = last(lines, _HS_ERR)
    if i is None:
        return None
    picked: list[Line | None] = [lines[i]]
    headline = "the JVM itself crashed"
    location = None
    for k in range(i + 1, min(len(lines), i + 30)):
        core = lines[k].core
        if _HS_DETAIL.search(core):
            picked.append(lines[k])
            headline = core.lstrip("# ").strip()
        if core.startswith("# Problematic frame:") and k + 1 < len(lines):
            picked.append(lines[k + 1])
            location = lines[k + 1].core.lstrip("# ").strip()
    oom = "insufficient memory" in headline or "Out of Memory" in headline
    return finding(Category.JVM_OOM if oom else Category.NATIVE_CRASH, picked, runtime="jvm",
                   headline=headline, location=location)


_MAIN_CLASS = re.compile(r"Error: Could not find or load main class|"
                         r"Error: Unable to access jarfile|Error: Invalid or corrupt jarfile|"
                         r"Error: (?:LinkageError|A JNI error has) occur\w* while loading main "
                         r"class|Error: A JNI error has occurred|^no main manifest attribute, in |"
                         r"^Error opening zip file or JAR manifest missing : ")
# What the launcher prints under its error: the cause, plain or indented.
_LAUNCHER_CAUSE = re.compile(r"^\s*(?:Caused by: )?(?:[a-z][\w$]*\.)+[A-Z][\w$]*"
                             r"(?:Exception|Error)\b")
_LAUNCHER_REACH = 3
# class file major version → Java release (45 is Java 1.1; 52 is Java 8)
_CLASS_VERSION = re.compile(r"class file version (\d+)\.\d+\), this version of the Java "
                            r"Runtime only recognizes class file versions up to (\d+)")
_CLASS_VERSION_BASE = 44


def java_release(text: str) -> tuple[int, int] | None:
    """(release the classes need, release running) from an UnsupportedClassVersionError."""
    m = _CLASS_VERSION.search(text)
    if m is None:
        return None
    return int(m.group(1)) - _CLASS_VERSION_BASE, int(m.group(2)) - _CLASS_VERSION_BASE
_OOM = re.compile(r"java\.lang\.OutOfMemoryError")
_THREAD = re.compile(r'Exception in thread "[^"]*" ([\w$.]+)')
_TOP = re.compile(r"^([a-z][\w$]*\.)+[A-Z][\w$]*(Exception|Error|Throwable)\b(: .*)?$")
_CAUSED = re.compile(r"^Caused by: [\w$.]+")
_FRAME = re.compile(r"^\s*at [\w$.<>/]+\(")
_JVM_FRAME = re.compile(r"^\s*at [\w$.<>/]+\((?:[\w$]+\.(?:java|kt|scala|groovy|clj)(?::\d+)?|"
                        r"Native Method|Unknown Source)\)")
_SPRING_FAILED = re.compile(r"APPLICATION FAILED TO START")


def _launcher(lines: Sequence[Line]) -> Finding | None:
    """The launcher's error and the cause it prints under it (`Caused by: …NotFound…`, an
    `UnsupportedClassVersionError`): a class that cannot load is a broken image (exec-error);
    one that loads but fails to link is an exception in the JVM (jvm-exception)."""
    i = last(lines, _MAIN_CLASS)
    if i is None:
        return None
    cause = next((ln for ln in lines[i + 1:i + 1 + _LAUNCHER_REACH]
                  if _LAUNCHER_CAUSE.match(ln.core)), None)
    linkage = "LinkageError" in lines[i].core or "JNI error" in lines[i].core
    head = cause.core.strip().removeprefix("Caused by: ") if cause and linkage else (
        lines[i].core.strip())
    return finding(Category.JVM_EXCEPTION if linkage else Category.EXEC_ERROR,
                   [lines[i], cause], runtime="jvm", headline=head)


def _heap(lines: Sequence[Line]) -> Finding | None:
    oom = [ln for ln in lines if _OOM.search(ln.core)] if anywhere(lines, _OOM) else []
    if not oom:
        return None
    threads = [ln for ln in oom if _THREAD.search(ln.core)]
    main = threads[-1] if threads else oom[0]
    picked: list[Line | None] = [main]
    if not threads and not re.match(r"^(java\.|Caused by|Exception)", main.core.strip()):
        picked.append(prev_nonblank(lines, main.index))  # message continued a line
    picked += [ln for ln in oom if ln.core.startswith("Terminating due to")][-1:]
    m = re.search(r"java\.lang\.OutOfMemoryError(: [^.\s][^\n]*?)?(?= at |$)", main.core)
    headline = m.group(0) if m else "java.lang.OutOfMemoryError"
    return finding(Category.JVM_OOM, picked, runtime="jvm", headline=headline)


def _spring_report(lines: Sequence[Line]) -> Finding | None:
    i = last(lines, _SPRING_FAILED)
    if i is None:
        return None
    desc = next((k for k in range(i, min(i + 10, len(lines)))
                 if lines[k].core.strip() == "Description:"), None)
    detail = next_nonblank(lines, desc) if desc is not None else None
    return finding(Category.CONFIG_ERROR, [lines[i], detail], runtime="jvm",
                   headline=(detail.core.strip() if detail else "APPLICATION FAILED TO START"))


def _top_exception(lines: Sequence[Line]) -> int | None:
    """The `Exception in thread` line, else the last unprefixed message followed by frames
    (`com.x.FooException: …` or a framework's own message line, as Kafka prints)."""
    top = last(lines, _THREAD)
    if top is not None:
        return top
    for line in reversed(lines):
        core = line.core.strip()
        if not core or _FRAME.match(line.core) or core.startswith(("Caused by:", "...")):
            continue
        nxt = next_nonblank(lines, line.index)
        if nxt is not None and ((_TOP.match(core) and _FRAME.match(nxt.core)) or (
                not line.core[:1].isspace() and _JVM_FRAME.match(nxt.core))):
            return line.index
    return None


def detect(lines: Sequence[Line]) -> Finding | None:
    """Launcher errors, heap OOMs, the Spring failure report, uncaught exceptions."""
    found = _launcher(lines) or _heap(lines) or _spring_report(lines)
    if found is not None:
        return found
    if not (anywhere(lines, _FRAME) or anywhere(lines, _THREAD)):
        return None
    top = _top_exception(lines)
    caused = last(lines, _CAUSED, start=top or 0)
    if top is None and caused is None:
        return None
    picked = [lines[top] if top is not None else None,
              lines[caused] if caused is not None else None]
    head = lines[caused] if caused is not None else lines[top]  # type: ignore[index]
    headline = head.core.strip().removeprefix("Caused by: ")
    return finding(Category.JVM_EXCEPTION, picked, runtime="jvm", headline=headline)
