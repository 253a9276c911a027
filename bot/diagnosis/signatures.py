"""Crash signatures: the few log lines that explain a crash, found in a noisy tail.

Detectors run from the most to the least telling kind of evidence (a Go panic beats a
"shutting down" line; a traceback beats an ERROR log line). The winner's lines are
returned verbatim, in log order, at most MAX_LINES. Its category is then refined to the
most specific root cause its lines show (a refused connection → dependency-unavailable,
an address in use → port-in-use). No rule keys on a project's name, path or text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.diagnosis.logtext import Line, LogLines

MAX_LINES = 8


@dataclass(frozen=True, slots=True)
class Finding:
    """What the log says: category, signature lines, and the crash's one-line name."""

    category: str
    lines: tuple[str, ...]
    runtime: str | None = None
    headline: str = ""
    location: str | None = None  # culprit frame / source position, when known


Detector = Callable[[Sequence[Line]], Finding | None]


def _indented(line: Line) -> bool:
    return line.core[:1] in (" ", "\t")


def _next_nonblank(lines: Sequence[Line], i: int) -> Line | None:
    for line in lines[i + 1:]:
        if line.core.strip():
            return line
    return None


def _prev_nonblank(lines: Sequence[Line], i: int) -> Line | None:
    for line in reversed(lines[:i]):
        if line.core.strip():
            return line
    return None


_MULTILINE: dict[re.Pattern[str], re.Pattern[str]] = {}


def _anywhere(lines: Sequence[Line], pattern: re.Pattern[str]) -> bool:
    """False only when `pattern` surely matches no line: one scan of the joined text."""
    if not isinstance(lines, LogLines):
        return True
    ml = _MULTILINE.get(pattern)
    if ml is None:
        ml = _MULTILINE[pattern] = re.compile(pattern.pattern, pattern.flags | re.MULTILINE)
    return ml.search(lines.blob) is not None


def _mentions(lines: Sequence[Line], keywords: tuple[str, ...]) -> bool:
    """False only when no lower-cased keyword occurs in the log (a cheap pre-check that
    spares the slow case-insensitive patterns on logs they cannot match)."""
    if not isinstance(lines, LogLines):
        return True
    text = lines.lower
    return any(k in text for k in keywords)


def _last(lines: Sequence[Line], pattern: re.Pattern[str], *, unindented: bool = False,
          start: int = 0) -> int | None:
    if not _anywhere(lines, pattern):
        return None
    for line in reversed(lines[start:]):
        if unindented and _indented(line):
            continue
        if pattern.search(line.core):
            return line.index
    return None


def _finding(category: str, picked: Sequence[Line | None], *, runtime: str | None = None,
             headline: str = "", location: str | None = None) -> Finding:
    seen: set[int] = set()
    ordered = sorted((ln for ln in picked if ln is not None), key=lambda ln: ln.index)
    shown: list[str] = []
    for line in ordered:
        if line.index in seen or not line.shown.strip():
            continue
        seen.add(line.index)
        shown.append(line.shown.rstrip())
    return Finding(category, tuple(shown[:MAX_LINES]), runtime, headline, location)


# ---- Go ---------------------------------------------------------------------------------
_GO_START = re.compile(r"^(panic: |fatal error: |SIGQUIT: quit|SIGABRT: abort|"
                       r"SIGSEGV: segmentation violation|unexpected fault address)")
_GO_SIGNAL = re.compile(r"^\[signal \w+")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ \[running\]:")
_GO_FRAME_FILE = re.compile(r"^\s+(\S+\.go:\d+)")


def detect_go(lines: Sequence[Line]) -> Finding | None:
    """`panic:` / `fatal error:` + `[signal …]` + the running goroutine's culprit frame."""
    i = _last(lines, _GO_START, unindented=True)
    if i is None:
        return None
    head = lines[i]
    picked: list[Line | None] = [head]
    end = min(len(lines), i + 400)
    for line in lines[i + 1:min(end, i + 4)]:
        if _GO_SIGNAL.match(line.core):
            picked.append(line)
            break
    location = None
    g = next((k for k in range(i + 1, end) if _GO_GOROUTINE.match(lines[k].core)), None)
    if g is not None:
        picked.append(lines[g])
        frames: list[tuple[Line, Line | None]] = []
        k = g + 1
        while k < end and lines[k].core.strip() and not lines[k].core.startswith("goroutine "):
            func = lines[k]
            file_line = lines[k + 1] if k + 1 < end and _indented(lines[k + 1]) else None
            if not _indented(func):
                frames.append((func, file_line))
            k += 2 if file_line is not None else 1
        machinery = [n for n, (f, _) in enumerate(frames)
                     if f.core.startswith(("panic(", "runtime.", "created by "))]
        after = machinery[-1] + 1 if machinery else 0
        candidates = [fr for fr in frames[after:]
                      if not fr[0].core.startswith(("runtime.", "created by "))] or [
            fr for fr in frames if not fr[0].core.startswith(("runtime.", "created by ",
                                                               "panic("))]
        if candidates:
            func, file_line = candidates[0]
            picked += [func, file_line]
            m = _GO_FRAME_FILE.match(file_line.core) if file_line else None
            name = re.sub(r"\((?:[^()]|\([^()]*\))*\)$", "", func.core.strip())
            location = f"{name} ({m.group(1).rsplit('/', 1)[-1]})" if m else name
    message = re.sub(r"^(panic|fatal error): ", "", head.core).removesuffix(" [recovered]")
    category = "go-panic" if head.core.startswith("panic: ") else "go-fatal-error"
    return _finding(category, picked, runtime="go", headline=message.strip(),
                    location=location)


# ---- Rust -------------------------------------------------------------------------------
_RUST_PANIC = re.compile(r"thread '([^']*)' panicked at (.*)$")
_RUST_OVERFLOW = re.compile(r"thread '[^']*' has overflowed its stack|"
                            r"fatal runtime error: stack overflow")


def detect_rust(lines: Sequence[Line]) -> Finding | None:
    """`thread '…' panicked at file:line:col:` + the message (new and old formats)."""
    i = _last(lines, _RUST_PANIC)
    if i is not None:
        head = lines[i]
        m = _RUST_PANIC.search(head.core)
        assert m is not None
        rest = m.group(2).strip()
        message_line: Line | None = None
        if rest.endswith(":"):  # Rust ≥1.73: location then the message on the next line
            message_line = _next_nonblank(lines, i)
            location = rest.rstrip(":")
            message = message_line.core.strip() if message_line else ""
        else:  # older: panicked at 'message', src/main.rs:2:5
            old = re.match(r"'(.*)', (\S+)$", rest)
            message, location = (old.group(1), old.group(2)) if old else (rest, "")
        return _finding("rust-panic", [head, message_line], runtime="rust",
                        headline=message, location=location or None)
    i = _last(lines, _RUST_OVERFLOW)
    if i is not None:
        picked = [ln for ln in lines if _RUST_OVERFLOW.search(ln.core)][-2:]
        return _finding("native-crash", picked, runtime="rust",
                        headline="stack overflow (the thread overflowed its stack)")
    return None


# ---- JVM crash (hs_err) -----------------------------------------------------------------
_HS_ERR = re.compile(r"A fatal error has been detected by the Java Runtime Environment")
_HS_DETAIL = re.compile(r"^#\s+(SIG\w+ \(0x[0-9a-f]+\)|EXCEPTION_\w+|Internal Error|"
                        r"Out of Memory Error|There is insufficient memory)")


def detect_hs_err(lines: Sequence[Line]) -> Finding | None:
    """The HotSpot fatal error banner, the signal line and the problematic frame."""
    i = _last(lines, _HS_ERR)
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
    return _finding("jvm-oom" if oom else "native-crash", picked, runtime="jvm",
                    headline=headline, location=location)


# ---- Node heap OOM ----------------------------------------------------------------------
_NODE_OOM = re.compile(r"FATAL ERROR: .*(heap out of memory|Allocation failed)")
_NODE_GCS = re.compile(r"<--- Last few GCs --->")
_NODE_GC_LINE = re.compile(r"\d+ ms: (Mark-sweep|Mark-Compact|Scavenge|Mark-compact)")
_NODE_ABORT = re.compile(r"node::Abort\(\)")


def detect_node_heap(lines: Sequence[Line]) -> Finding | None:
    """V8 heap exhaustion: `FATAL ERROR: … JavaScript heap out of memory`, the GC trace."""
    fatal = _last(lines, _NODE_OOM)
    gcs = _last(lines, _NODE_GCS)
    if fatal is None and gcs is None:
        return None
    start = min(x for x in (fatal, gcs) if x is not None)
    last_gc = _last(lines, _NODE_GC_LINE, start=start)
    abort = next((ln for ln in lines[start:] if _NODE_ABORT.search(ln.core)), None)
    picked = [lines[gcs] if gcs is not None else None, lines[last_gc] if last_gc else None,
              lines[fatal] if fatal is not None else None, abort]
    headline = (lines[fatal].core.strip() if fatal is not None
                else "JavaScript heap out of memory (V8 could not free memory)")
    return _finding("node-heap-oom", picked, runtime="node", headline=headline)


# ---- native -----------------------------------------------------------------------------
_NATIVE: tuple[re.Pattern[str], ...] = (
    re.compile(r"terminate called (after throwing an instance of|without an active "
               r"exception|recursively)"),
    re.compile(r"Assertion [`'\"].*[`'\"]? failed"),
    re.compile(r"Fatal Python error: "),
    re.compile(r"\*\*\* (stack smashing|buffer overflow) detected \*\*\*"),
    re.compile(r"double free or corruption|free\(\): invalid|malloc\(\): |corrupted size vs"),
    re.compile(r"Segmentation fault|Bus error|Illegal instruction|Floating point exception|"
               r"Aborted \(core dumped\)|\(core dumped\)"),
    re.compile(r"\bSIGSEGV\b|\bsignal 11\b|\bSIGBUS\b|\bSIGILL\b"),
)
_WHAT = re.compile(r"^\s*what\(\):\s+")


def detect_native(lines: Sequence[Line]) -> Finding | None:
    """Segfaults, aborts, failed assertions, uncaught C++ exceptions, heap corruption."""
    for pattern in _NATIVE:
        i = _last(lines, pattern)
        if i is None:
            continue
        picked: list[Line | None] = [lines[i]]
        follow = _next_nonblank(lines, i)
        if follow is not None and (_WHAT.match(follow.core) or _NODE_ABORT.search(follow.core)):
            picked.append(follow)
        runtime = "node" if any(_NODE_ABORT.search(ln.core) for ln in lines[i:i + 5]) else (
            "python" if "Fatal Python error" in lines[i].core else None)
        return _finding("native-crash", picked, runtime=runtime,
                        headline=lines[i].core.strip())
    return None


# ---- Python -----------------------------------------------------------------------------
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
_CHAINED = re.compile(r"^(During handling of the above exception, another exception occurred:|"
                      r"The above exception was the direct cause of the following exception:)")
_PY_EXC = re.compile(r"^([A-Za-z_][\w.]*)(:\s.*)?$")


def _traceback_end(lines: Sequence[Line], start: int) -> int | None:
    """Index of the exception line closing the traceback that starts at `start`."""
    k = start + 1
    while k < len(lines):
        core = lines[k].core
        if not core.strip():
            k += 1
            continue
        if _indented(lines[k]) or core.startswith("^"):
            k += 1
            continue
        if _PY_EXC.match(core.strip()) and not _CHAINED.match(core):
            return k
        return None
    return None


def detect_python(lines: Sequence[Line]) -> Finding | None:
    """The final exception of the last traceback, plus the first cause when chained."""
    if not _anywhere(lines, _TRACEBACK):
        return None
    starts = [ln.index for ln in lines if _TRACEBACK.search(ln.core)]
    if not starts:
        return None
    # Walk back from the last traceback through its chain.
    chain: list[int] = []
    for s in reversed(starts):
        if chain:
            prev_end = _traceback_end(lines, s)
            between = [ln for ln in lines[(prev_end or s) + 1:chain[-1]] if ln.core.strip()]
            if not (between and all(_CHAINED.match(b.core) for b in between)):
                break
        chain.append(s)
    chain.reverse()
    ends = [e for e in (_traceback_end(lines, s) for s in chain) if e is not None]
    if not ends:
        return None
    last, first = lines[ends[-1]], lines[ends[0]]
    return _finding("python-exception", [first, last], runtime="python",
                    headline=last.core.strip())


def detect_gunicorn(lines: Sequence[Line]) -> Finding | None:
    """gunicorn's master giving up (exit 3/4), with the worker's traceback if logged."""
    reason = _last(lines, re.compile(r"Reason: (Worker failed to boot|App failed to load)\."))
    if reason is None:
        return None
    worker = _last(lines, re.compile(r"Worker \(pid:\d+\) exited with code \d+"))
    picked = [lines[worker] if worker is not None else None, lines[reason]]
    tb = detect_python(lines[:reason])
    if tb is not None:
        return replace(tb, lines=(*tb.lines, lines[reason].shown.rstrip())[:MAX_LINES])
    return _finding("app-fatal", picked, runtime="python",
                    headline=lines[reason].core.strip())


# ---- JVM exceptions ---------------------------------------------------------------------
_JVM_MAIN_CLASS = re.compile(r"Error: Could not find or load main class|"
                             r"Error: Unable to access jarfile|Error: Invalid or corrupt jarfile")
_JVM_OOM = re.compile(r"java\.lang\.OutOfMemoryError")
_JVM_THREAD = re.compile(r'Exception in thread "[^"]*" ([\w$.]+)')
_JVM_TOP = re.compile(r"^([a-z][\w$]*\.)+[A-Z][\w$]*(Exception|Error|Throwable)\b(: .*)?$")
_JVM_CAUSED = re.compile(r"^Caused by: [\w$.]+")
_JVM_FRAME = re.compile(r"^\s*at [\w$.<>/]+\(")
_SPRING_FAILED = re.compile(r"APPLICATION FAILED TO START")


def detect_jvm(lines: Sequence[Line]) -> Finding | None:
    """Launcher errors, heap OOMs, `Exception in thread` / top exception + deepest cause."""
    i = _last(lines, _JVM_MAIN_CLASS)
    if i is not None:
        return _finding("exec-error", [lines[i]], runtime="jvm", headline=lines[i].core.strip())
    oom = [ln for ln in lines if _JVM_OOM.search(ln.core)] if _anywhere(lines, _JVM_OOM) else []
    if oom:
        threads = [ln for ln in oom if _JVM_THREAD.search(ln.core)]
        main = threads[-1] if threads else oom[0]
        picked: list[Line | None] = [main]
        if not threads and not re.match(r"^(java\.|Caused by|Exception)", main.core.strip()):
            picked.append(_prev_nonblank(lines, main.index))  # message continued a line
        picked += [ln for ln in oom if ln.core.startswith("Terminating due to")][-1:]
        m = re.search(r"java\.lang\.OutOfMemoryError(: [^.\s][^\n]*?)?(?= at |$)", main.core)
        headline = m.group(0) if m else "java.lang.OutOfMemoryError"
        return _finding("jvm-oom", picked, runtime="jvm", headline=headline)
    i = _last(lines, _SPRING_FAILED)
    if i is not None:
        desc = next((k for k in range(i, min(i + 10, len(lines)))
                     if lines[k].core.strip() == "Description:"), None)
        detail = _next_nonblank(lines, desc) if desc is not None else None
        return _finding("config-error", [lines[i], detail], runtime="jvm",
                        headline=(detail.core.strip() if detail else "APPLICATION FAILED TO START"))
    top = _last(lines, _JVM_THREAD)
    if top is None:
        candidates = [ln.index for ln in lines if _JVM_TOP.match(ln.core.strip())
                      and (nxt := _next_nonblank(lines, ln.index)) is not None
                      and _JVM_FRAME.match(nxt.core)]
        top = candidates[-1] if candidates else None
    caused = _last(lines, _JVM_CAUSED, start=top or 0)
    if top is None and caused is None:
        return None
    picked = [lines[top] if top is not None else None,
              lines[caused] if caused is not None else None]
    head = lines[caused] if caused is not None else lines[top]  # type: ignore[index]
    headline = head.core.strip().removeprefix("Caused by: ")
    return _finding("jvm-exception", picked, runtime="jvm", headline=headline)


# ---- Node exceptions --------------------------------------------------------------------
_NODE_ERROR = re.compile(r"^(?:Uncaught )?(?:[A-Z][\w]*(?:Error|Exception)|Error)"
                         r"(?: \[[\w]+\])?: .+|^\[?UnhandledPromiseRejection")
_NODE_FRAME = re.compile(r"^\s*at ")
_NODE_CODE = re.compile(r"^\s*(code|errno|syscall): ")


def detect_node(lines: Sequence[Line]) -> Finding | None:
    """An uncaught Error (followed by `at …` frames) with its `code:` property."""
    found: int | None = None
    if not _anywhere(lines, _NODE_ERROR):
        return None
    for line in reversed(lines):
        if _indented(line) or not _NODE_ERROR.match(line.core):
            continue
        nxt = _next_nonblank(lines, line.index)
        if (nxt is not None and _NODE_FRAME.match(nxt.core)) or line.core.startswith(
                ("[UnhandledPromiseRejection", "UnhandledPromiseRejection")):
            found = line.index
            break
    if found is None:
        return None
    picked: list[Line | None] = [lines[found]]
    for line in lines[found + 1:found + 40]:
        if _NODE_CODE.match(line.core):
            picked.append(line)
        if line.core.strip() == "}":
            break
    return _finding("node-exception", picked, runtime="node",
                    headline=lines[found].core.strip())


# ---- other runtimes: .NET, Ruby, Elixir/Erlang ------------------------------------------
_OTHER_RUNTIMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Unhandled [eE]xception\.? +[\w.`]+(Exception|Error)\b"), "dotnet"),
    (re.compile(r"^\S+\.rb:\d+:in .*\(([A-Z]\w*(Error|Exception|Interrupt))\)$"), "ruby"),
    (re.compile(r"^\*\* \([\w.]+\) "), "erlang"),
    (re.compile(r"^Kernel pid terminated|^\{\\?\"Kernel pid terminated"), "erlang"),
)


def detect_other_runtimes(lines: Sequence[Line]) -> Finding | None:
    """An uncaught exception of a runtime without its own category (.NET, Ruby, Elixir):
    the app died of it, so it is app-fatal (refined to a dependency or port when it says)."""
    for pattern, runtime in _OTHER_RUNTIMES:
        i = _last(lines, pattern)
        if i is not None:
            return _finding("app-fatal", [lines[i]], runtime=runtime,
                            headline=lines[i].core.strip())
    return None


# ---- start-up, config, fatal logs, dependencies, shutdown -------------------------------
_EXEC: tuple[re.Pattern[str], ...] = (
    re.compile(r"exec format error"),
    re.compile(r"exec user process caused"),
    re.compile(r"executable file not found in \$PATH"),
    re.compile(r"OCI runtime (create|exec|start) failed"),
    re.compile(r"^(?:/\S*/)?(?:ba|da|z|a)?sh: (?:\d+: |line \d+: )?.*: "
               r"(?:not found|command not found|Permission denied|No such file or directory)"),
    re.compile(r": line \d+: .*: (?:not found|command not found|Permission denied|"
               r"No such file or directory)$"),
    re.compile(r"can't open file .*\[Errno \d+\]"),
    re.compile(r"^env: .*: No such file or directory"),
    re.compile(r"^exec \S+: (no such file or directory|permission denied)"),
    re.compile(r"npm ERR! missing script: "),
)


def detect_exec(lines: Sequence[Line]) -> Finding | None:
    """The process could not be started: bad binary, missing file, not executable."""
    for pattern in _EXEC:
        i = _last(lines, pattern)
        if i is not None:
            core = lines[i].core.strip()
            focus = _EXEC_FOCUS.search(core)
            return _finding("exec-error", [lines[i]], headline=focus.group(0) if focus else core)
    return None


_EXEC_FOCUS = re.compile(r'exec: "[^"]+": [^:]+|exec \S+: (no such file or directory|'
                         r'exec format error|permission denied)')


_QUIET_LEVEL = re.compile(r"\b(INFO|DEBUG|TRACE)\b|\[(info|debug|trace)\]|level=(info|debug)|"
                          r"^[ID]\d{4} ", re.I)


def _loud(line: Line) -> bool:
    if line.level is not None:
        return line.level not in ("info", "debug", "trace")
    return not _QUIET_LEVEL.search(line.core)


_CONFIG: tuple[re.Pattern[str], ...] = (
    re.compile(r"\[emerg\]"),
    re.compile(r"(error|failed|unable|cannot|can't|could not) (to )?(initializ|load|pars|read|"
               r"decod|unmarshal|validat|open)\w* (the )?(config|configuration|settings)", re.I),
    re.compile(r"(invalid|bad|malformed) (config|configuration)\b", re.I),
    re.compile(r"configuration (error|is invalid|invalid)", re.I),
    re.compile(r"flag provided but not defined|unknown (shorthand )?flag|"
               r"unrecognized arguments?:|^usage: .*\n?.*error: |unknown command \"[^\"]+\" "
               r"for \"", re.I),
    re.compile(r"missing required (configuration|config|env|environment variable|setting)|"
               r"environment variable \S+ (is )?(not set|required|missing)", re.I),
    re.compile(r"yaml: (line \d+|unmarshal errors)|mapping values are not allowed", re.I),
    re.compile(r"Syntax error on line \d+ of|invalid argument \"[^\"]*\" for \"[^\"]*\" "
               r"flag", re.I),
)


_CONFIG_WORDS = ("[emerg]", "config", "settings", "flag", "unrecognized", "usage:",
                 "unknown command",
                 "missing required", "environment variable", "yaml", "mapping values",
                 "syntax error on line")


def detect_config(lines: Sequence[Line]) -> Finding | None:
    """A configuration the program rejected at start-up (skipping INFO/DEBUG noise)."""
    if not _mentions(lines, _CONFIG_WORDS):
        return None
    for pattern in _CONFIG:
        if not _anywhere(lines, pattern):
            continue
        for line in reversed(lines):
            if pattern.search(line.core) and _loud(line):
                return _finding("config-error", [line], headline=line.core.strip())
    return None


_FATAL = re.compile(r"^F\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] |level=(fatal|panic)\b|"
                    r"^(FATAL|CRITICAL|CRIT|PANIC|EMERG)\b|\[(fatal|critical|crit|emerg)\]|"
                    r"\b(FATAL|CRITICAL)\b", re.I)


_KLOG_FATAL = re.compile(r"^F\d{4} ")


def detect_fatal_log(lines: Sequence[Line]) -> Finding | None:
    """The app's own last fatal log line (klog `F`, level=fatal, FATAL/CRITICAL)."""
    if not (_mentions(lines, ("fatal", "critical", "crit", "panic", "emerg"))
            or _anywhere(lines, _KLOG_FATAL)) and not any(line.level for line in lines):
        return None
    for line in reversed(lines):
        fatal = line.level in ("fatal", "panic", "critical", "emergency", "alert") or (
            line.level is None and _FATAL.search(line.core))
        if fatal:
            runtime = "go" if re.match(r"^F\d{4} ", line.core) else None
            return _finding("app-fatal", [line], runtime=runtime, headline=line.core.strip())
    return None


_DEPENDENCY = re.compile(
    r"connection refused|(?-i:\bECONNREFUSED\b)|connection (to \S+ )?refused|could not "
    r"translate host name|Name or service not known|nodename nor servname|no such host|"
    r"Name does not resolve|could not resolve host|bad address '|getaddrinfo failed|"
    r"Temporary failure in name resolution|getaddrinfo (ENOTFOUND|EAI_AGAIN)|"
    r"(?-i:UnknownHostException|\bENOTFOUND\b|\bEHOSTUNREACH\b|\bEAI_AGAIN\b)|"
    r"No route to host|Communications link failure|(?-i:ServerSelectionError)|"
    r"connect(ion)? timed out|i/o timeout|(could not|failed to|unable to) connect to|"
    r"Connection reset by peer|server closed the connection unexpectedly", re.I)
_PORT = re.compile(r"(?-i:\bEADDRINUSE\b|BindException)|address already in use|port is "
                   r"already allocated|(port|address) \S* ?(was|is) already in use", re.I)


_DEPENDENCY_WORDS = (
    "refused", "host name", "not known", "servname", "no such host", "name resolution",
    "does not resolve", "resolve host", "bad address", "getaddrinfo",
    "enotfound", "eai_again", "unknownhost", "ehostunreach", "no route", "link failure",
    "serverselection", "timed out", "timeout", "connect to", "reset by peer",
    "closed the connection")
_PORT_WORDS = ("eaddrinuse", "already in use", "bindexception", "already allocated")


def detect_dependency(lines: Sequence[Line]) -> Finding | None:
    """A dependency failure among the last lines or at error level."""
    tail_start = max(0, len(lines) - 5)
    if not _mentions(lines, _DEPENDENCY_WORDS + _PORT_WORDS):
        return None
    for line in reversed(lines):
        if _PORT.search(line.core) and (line.index >= tail_start or _loud(line)):
            return _finding("port-in-use", [line], headline=line.core.strip())
        if _DEPENDENCY.search(line.core) and (line.index >= tail_start or _loud(line)):
            return _finding("dependency-unavailable", [line], headline=line.core.strip())
    return None


_SHUTDOWN = re.compile(
    r"shutting down|graceful(ly)? shut|shutdown (complete|initiated|requested|signal)|"
    r"received (signal|sigterm|sigint|terminated|interrupt)|signal received|"
    r"stopping (server|service|http|grpc)|caught (sigterm|signal)|exiting on signal|"
    r"terminating gracefully|signal: terminated", re.I)


def detect_shutdown(lines: Sequence[Line]) -> Finding | None:
    """A deliberate stop: the first shutdown line of the final shutdown sequence."""
    if not _mentions(lines, ("shut", "signal", "sigterm", "sigint", "terminat", "interrupt",
                             "stopping", "exiting")):
        return None
    last = _last(lines, _SHUTDOWN)
    if last is None:
        return None
    first = last
    for k in range(last - 1, max(-1, last - 40), -1):
        if _SHUTDOWN.search(lines[k].core):
            first = k
        elif lines[k].core.strip() and k < first - 5:
            break
    picked = [ln for ln in lines[first:last + 1] if _SHUTDOWN.search(ln.core)][:3]
    return _finding("graceful-shutdown", picked, headline=lines[first].core.strip())


DETECTORS: tuple[Detector, ...] = (
    detect_go, detect_rust, detect_hs_err, detect_node_heap, detect_gunicorn,
    detect_python, detect_native, detect_jvm, detect_node, detect_other_runtimes,
    detect_exec, detect_config, detect_fatal_log, detect_dependency, detect_shutdown,
)

_LAST_WORDS = re.compile(r"\b(error|fail(ed|ure)?|fatal|cannot|can't|unable|invalid|denied|"
                         r"refused|not found|no such|panic|abort(ed|ing)?|exception)\b", re.I)


def last_words(lines: Sequence[Line]) -> Finding | None:
    """For a process that exited non-zero with no recognisable crash: its last line, when
    that line states a failure (`log.Fatal`, `sys.exit("…")`, Rust's `Error: …` from
    main). Only the very end of the log counts, never a grep of the whole tail."""
    tail = [ln for ln in lines[-3:] if ln.core.strip()]
    if not tail:
        return None
    last = tail[-1]
    if not _LAST_WORDS.search(last.core) or not _loud(last):
        return None
    return refine(_finding("app-fatal", [last], headline=last.core.strip()))
_REFINABLE = {"python-exception", "jvm-exception", "node-exception", "go-panic", "rust-panic",
              "app-fatal", "config-error"}


def refine(finding: Finding) -> Finding:
    """Most specific root cause: an address in use or an unreachable dependency."""
    if finding.category not in _REFINABLE:
        return finding
    text = "\n".join(finding.lines)
    if _PORT.search(text):
        return replace(finding, category="port-in-use")
    if _DEPENDENCY.search(text):
        return replace(finding, category="dependency-unavailable")
    return finding


def extract_signature(lines: Sequence[Line]) -> Finding | None:
    """The best explanation the log offers, or None when it says nothing useful."""
    for detect in DETECTORS:
        finding = detect(lines)
        if finding is not None and finding.lines:
            return refine(finding)
    return None
