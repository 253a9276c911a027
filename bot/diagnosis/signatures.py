"""Crash signatures: the few log lines that explain a crash, found in a noisy tail.

The detectors of `bot.diagnosis.detectors` run from the most to the least telling kind of
evidence; the winner's lines are quoted as printed (minus transport prefixes), in log
order, at most MAX_LINES. Its category is then refined to the most specific root cause its
lines show: an unsubstituted `${VAR}` placeholder is a configuration error even when it
surfaces as an unknown host, an address in use is port-in-use, a refused or unresolvable
dependency is dependency-unavailable whatever library's exception wraps it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bot.diagnosis.categories import REFINABLE, Category
from bot.diagnosis.detectors import DETECTORS
from bot.diagnosis.detectors.bursts import last_burst
from bot.diagnosis.detectors.logs import DEPENDENCY, PORT, detect_announced_exit
from bot.diagnosis.detectors.startup import BAD_ADDRESS, BAD_CREDENTIALS, CONFIG, PLACEHOLDER
from bot.diagnosis.finding import (
    MAX_LINES,
    Finding,
    anywhere,
    detail_of,
    finding,
    indented,
    loud,
    mentions,
    prev_nonblank,
)
from bot.diagnosis.logtext import Line

__all__ = ["MAX_LINES", "Finding", "extract_signature", "last_words", "refine"]

# `${DB_HOST}` / `$DB_HOST` reaching a host name or port: the template was not rendered.
_PLACEHOLDER = re.compile(PLACEHOLDER)
# A key lookup that failed on an environment variable's name: Python's os.environ
# (`KeyError: 'PORT'`), Ruby's ENV.fetch (`key not found: "DATABASE_URL" (KeyError)`): a
# required environment variable is missing.
_ENV_KEY = re.compile(r"^KeyError: '[A-Z][A-Z0-9_]+'$|"
                      r"\bkey not found: [\"'][A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+[\"']")

# (pattern searched in the signature, category it proves), most specific first
_ROOT_CAUSES: tuple[tuple[re.Pattern[str], Category], ...] = (
    (_PLACEHOLDER, Category.CONFIG_ERROR),
    (BAD_ADDRESS, Category.CONFIG_ERROR),
    (BAD_CREDENTIALS, Category.CONFIG_ERROR),
    (PORT, Category.PORT_IN_USE),
    (DEPENDENCY, Category.DEPENDENCY_UNAVAILABLE),
    *((pattern, Category.CONFIG_ERROR) for pattern in CONFIG),
    (_ENV_KEY, Category.CONFIG_ERROR),
)


# A programming error in the app's own code: whatever words its message holds ("Cannot read
# properties of undefined (reading 'config')"), it is not a configuration the process
# rejected, so it is never refined to config-error.
_PROGRAMMING_ERROR = re.compile(
    r"\b(?:TypeError|ReferenceError|RangeError|AttributeError|NameError|UnboundLocalError|"
    r"IndexError|ZeroDivisionError|RecursionError|AssertionError|NotImplementedError|"
    r"NullPointerException|ClassCastException|ArrayIndexOutOfBoundsException|"
    r"IndexOutOfBoundsException|ConcurrentModificationException|ArithmeticException|"
    r"StackOverflowError|NoMethodError|NilClass)\b|nil pointer dereference|index out of range")
_EXCEPTIONS = frozenset({Category.PYTHON_EXCEPTION, Category.JVM_EXCEPTION,
                         Category.NODE_EXCEPTION, Category.GO_PANIC, Category.RUST_PANIC})


def refine(found: Finding) -> Finding:
    """Most specific root cause: placeholder, address in use, unreachable dependency,
    rejected configuration (never for a programming error in the app's code)."""
    if found.category not in REFINABLE:
        return found
    lines = [line.strip() for line in found.lines]
    programming = found.category in _EXCEPTIONS and _PROGRAMMING_ERROR.search(
        found.headline or (lines[-1] if lines else "")) is not None
    for pattern, category in _ROOT_CAUSES:
        if programming and category == Category.CONFIG_ERROR:
            continue
        if any(pattern.search(line) for line in lines):
            return found if category == found.category else replace(found, category=category)
    return found


# A shell script's own failing line (`entrypoint.sh: line 3: cd: …: No such file or
# directory`, a CR-ended command): a script without `set -e` goes on and starts the app in a
# broken state, so these lines are quoted after the crash they lead to.
_SCRIPT_ERROR = re.compile(r"^\S+: (?:line )?\d+: (?:.*: )?(?:command not found|not found|"
                           r"No such file or directory|Permission denied)\s*$|"
                           r"^\S+: (?:line )?\d+: cd: can't cd to \S+\s*$")  # dash's words
_SCRIPT_QUOTED = 2
_NOT_AFTER_SCRIPTS = (Category.GRACEFUL_SHUTDOWN, Category.UNKNOWN)


def _with_script_errors(lines: Sequence[Line], found: Finding) -> Finding:
    """The finding with the distinct script errors of the log appended (at most two)."""
    if found.category in _NOT_AFTER_SCRIPTS or not mentions(
            lines, ("not found", "no such file", "permission denied", "can't cd")) or not anywhere(
            lines, _SCRIPT_ERROR):
        return found
    quoted = {q.strip() for q in found.lines}
    seen: set[str] = set()
    extra: list[str] = []
    for line in lines:
        text = line.shown.strip()
        if text in quoted and found.category == Category.EXEC_ERROR:
            break  # an exec error is itself a script's failure: only the failures before it
        if not _SCRIPT_ERROR.match(line.core) or text in quoted:
            continue
        what = re.sub(r"^\S+: (?:line )?\d+: ", "", line.core.strip())
        if what not in seen:
            seen.add(what)
            extra.append(line.shown.rstrip())
    room = MAX_LINES - len(found.lines)
    if not extra or room <= 0:
        return found
    return replace(found, lines=(*found.lines, *extra[:min(room, _SCRIPT_QUOTED)]))


def extract_signature(lines: Sequence[Line]) -> Finding | None:
    """The best explanation the log offers, or None when it says nothing useful."""
    for detector in DETECTORS:
        found = detector.find(lines)
        if found is not None and found.lines:
            if found.runtime is None and detector.runtime is not None:
                found = replace(found, runtime=detector.runtime)
            if detector.generic:
                found = with_cause(lines, found)
            return _with_script_errors(lines, refine(found))
    return None


# A line that only says the process gives up, naming nothing specific: "startup failed",
# "Could not create the server. Exiting.", "initialization failed, aborting", "Compilation
# failed: 1 error(s)", "fatal: cannot continue".
_GIVING_UP = re.compile(
    r"\b(?:abort(?:ing|ed)?|exiting|exit(?:ing)? now|giving up|gave up|(?:cannot|can't|unable "
    r"to) (?:continue|proceed)|shutting down|terminating|halting)\b|"
    r"\b(?:failed to|could not|cannot|can't|unable to) (?:start|create|initiali[sz]e|init|"
    r"boot|load|launch|run)\b|"
    r"\b(?:start(?:up|-up)?|initiali[sz]ation|init|boot|compilation|build|launch|bootstrap)\b"
    r".*\b(?:failed|aborted|error\(s\)|errors?)\b|\bfatal exception has occurred\b", re.I)
_LEVEL_WORD = re.compile(r"^(?:\[?(?:FATAL|ERROR|ERR|CRITICAL|CRIT|EMERG|PANIC)\]?:?\s+)", re.I)
# Detail that makes a line specific: a quoted name, a path, a setting, a cause after a colon.
_SPECIFIC = re.compile(r"""['"`/=]|:\s+(?!\d+ errors?\b|\d+ error\(s\)|exiting|aborting)\S""",
                       re.I)
_GIVING_UP_WORDS = 9
_CAUSE_REACH = 3


def giving_up(line: Line) -> bool:
    """`line` only says that the process gives up (a follow-on), not why."""
    text = _LEVEL_WORD.sub("", line.core.strip())
    return (_GIVING_UP.search(text) is not None and not _SPECIFIC.search(text)
            and len(text.split()) <= _GIVING_UP_WORDS)


def with_cause(lines: Sequence[Line], found: Finding) -> Finding:
    """A finding that quotes only a follow-on ("startup failed", "… Exiting.") gets the
    statement printed right above it, the cause it follows, quoted first."""
    if not found.lines or len(found.lines) > 1:
        return found
    head = next((ln for ln in reversed(lines) if ln.shown.rstrip() == found.lines[0]), None)
    if head is None or not giving_up(head):
        return found
    k = head.index
    while (above := prev_nonblank(lines, k)) is not None and above.index >= (
            head.index - _CAUSE_REACH):
        if giving_up(above):
            k = above.index
            continue
        if (indented(above) or not loud(above) or not _stated(above)
                or _chatter(lines, above)):
            return found
        return replace(found, lines=(above.shown.rstrip(), *found.lines),
                       headline=above.core.strip())
    return found


_LAST_WORDS = re.compile(r"\b(error|fail(ed|ure)?|fatal|cannot|can't|unable|invalid|denied|"
                         r"refused|not found|no such|panic|abort(ed|ing)?|exception|"
                         r"unreachable|not reachable|gave up|giving up|timed out|"
                         r"deadline exceeded|unknown|unsupported|not supported|not allowed|"
                         r"out of range|malformed)\b|"
                         # a TLS peer that could not be trusted or spoken to
                         r"\bx509: |\bcertificate (?:verify failed|signed by unknown authority|"
                         r"has expired|is not valid)|\btls: |\bhandshake fail", re.I)
# An error-level line: klog E, level=error, ERROR/ERR columns, `[error]`, `Error: …`.
_ERROR_LEVEL = re.compile(r"^E\d{4} |level=error\b|\b(?:ERROR|ERR)\b|\[(?:error|err)\]|"
                          r"^(?:Error|error): ")
_ERROR_LEVELS = ("error", "err", "fatal", "critical")
TAIL = 6  # non-blank lines that count as "the end of the log"
_ERROR_WINDOW = 60


def _closing_errors(lines: Sequence[Line]) -> Line | None:
    """The first line of the final burst of error-level lines, when that burst reaches the
    last TAIL lines: the real error comes first, its follow-ons after it."""
    window = lines[-_ERROR_WINDOW:]
    tail = [ln.index for ln in window if ln.core.strip()][-TAIL:]
    hits = [ln.index for ln in window if (ln.level in _ERROR_LEVELS) or (
        ln.level is None and _ERROR_LEVEL.search(ln.core))]
    burst = last_burst(hits)
    if burst is None or not tail or burst[1] < tail[0]:
        return None
    return lines[burst[0]]


def last_words(lines: Sequence[Line]) -> Finding | None:
    """For a process that ended (non-zero or unknown) with no recognisable crash: the first
    error of the error burst that closes the log, else the line before an `Exiting` /
    `exited with code 1` announcement, else its last line when that line states a failure
    (`log.Fatal`, `sys.exit("…")`, Rust's `Error: …` from main) or, in any wording, says
    something is wrong; the statement a trailing trace or list belongs to stands for it. A
    last statement that names no failure is quoted as evidence with no category. Only the
    end of the log counts, never a grep of the whole tail."""
    closing = _closing_errors(lines)
    if closing is not None:
        detail = detail_of(lines, closing)
        return refine(with_cause(lines, finding(Category.APP_FATAL, [closing, detail],
                                                headline=(detail or closing).core.strip())))
    announced = detect_announced_exit(lines)
    if announced is not None:
        return refine(announced)
    found = _last_statement(lines)
    return refine(with_cause(lines, found)) if found is not None else None


def _last_statement(lines: Sequence[Line]) -> Finding | None:
    """The log's last statement (see `last_words`), or None when it reports progress."""
    tail = [ln for ln in lines[-3:] if ln.core.strip()]
    if not tail:
        return None
    final, listed = _head_of_list(lines, tail[-1])
    if listed is None:
        final = _head_of_context(lines, final)
    if not loud(final):
        return None
    stated = _stated(final) and not _chatter(lines, final)
    if not (_LAST_WORDS.search(final.core) or stated):
        return None
    if not (_LAST_WORDS.search(final.core) or _COMPLAINT.search(final.core)):
        # the last thing it said, quoted as evidence; it names no failure, so it decides
        # nothing (the exit code and the events do)
        return finding(Category.UNKNOWN, [final], headline=final.core.strip())
    # a follow-on ("Failed listening on port 80, aborting.") right after the error that
    # caused it: that error is quoted with it, and heads the finding
    cause = prev_nonblank(lines, final.index)
    if cause is not None and (cause.index < final.index - 2 or not loud(cause) or indented(
            cause) or not _LAST_WORDS.search(cause.core)):
        cause = None
    return refine(finding(Category.APP_FATAL, [cause, final, listed],
                          headline=(cause or final).core.strip()))


# A line that reports progress or success rather than a failure: it starts with a verb in
# -ing ("loading settings", "waiting for db (3/3)"; not a noun such as "missing") or a
# progress word, ends with an ellipsis, echoes a command (`set -x`), or says something is
# ready, started, listening or done (not "not ready").
_PROGRESS = re.compile(
    r"^\W*(?:(?!(?:missing|nothing|something|anything|warning|string|during)\b)[A-Za-z]+ing|"
    r"Start\w*|Begin\w*|Init\w*|Try\w*|Retry\w*|Attempt\w*|Step|Phase|Stage)\b|"
    r"(?:\.\.\.|…)\s*$|^\+ |(?<!not )(?<!never )(?<![/.-])\b(?:ready|started|listening|connected|"
    r"loaded|done|ok|completed?|finished|succeeded|successful(?:ly)?|healthy|"
    r"up and running)\b", re.I)
_WORDS = re.compile(r"[A-Za-z]{2,}")
# Words by which a statement says that something is wrong, in any program's wording.
_COMPLAINT = re.compile(
    r"\b(?:not|no|never|nothing|none|missing|mismatch\w*|corrupt\w*|bad|wrong|expired?|"
    r"exceed\w*|too (?:many|few|large|small|long|short|big|old|new)|must|required?|illegal|"
    r"empty|reject\w*|forbidden|conflict\w*|violat\w*|overflow\w*|underflow|insufficient|"
    r"lost|broken|stale|incompatible|undefined|unexpected|unrecogni[sz]ed|disallowed|"
    r"nonexistent|\w+n't|without|lacks?|refus\w*|declined|crash\w*|died|dead|killed|"
    r"detected|exited|stopped|halted|exhausted|full|locked|busy|expected)\b", re.I)


# A line that only places the error above it: an indented trace (Tcl's "    while
# executing"), a quoted command or a parenthesised position (`(file "app.tcl" line 3)`).
_CONTEXT = re.compile(r"^\s+\S|^[\"'(]")
_CONTEXT_REACH = 12


def _stated(line: Line) -> bool:
    """A last line that states something rather than reporting progress: for a process that
    exited with a failure and printed no runtime's report, its last words say why, in any
    wording ("journal replay: checksum mismatch at offset 4096")."""
    text = line.core.strip()
    return len(_WORDS.findall(text)) >= 2 and not _PROGRESS.search(text)


def _chatter(lines: Sequence[Line], line: Line) -> bool:
    """`line` is one more of the lines before it (same first word: an access log, a
    counter), not a statement of its own."""
    word = line.core.split(maxsplit=1)[0].lower()
    above = [ln for ln in lines[max(0, line.index - 3):line.index] if ln.core.strip()][-2:]
    return any(ln.core.split(maxsplit=1)[0].lower() == word for ln in above)


def _head_of_context(lines: Sequence[Line], last: Line) -> Line:
    """The statement a trailing context block (an indented trace, the quoted command that
    failed, its position) belongs to: the unindented line the block follows; `last` itself
    when the log does not end with such a block."""
    k = last.index
    while (k > 0 and last.index - k < _CONTEXT_REACH and _CONTEXT.match(lines[k].core)
           and lines[k - 1].core.strip()):
        k -= 1
    head = lines[k]
    if head.index == last.index or _CONTEXT.match(head.core) or not any(
            indented(ln) for ln in lines[k + 1:last.index + 1]):
        return last
    return head


def _head_of_list(lines: Sequence[Line], last: Line) -> tuple[Line, Line | None]:
    """The log's last statement: when it ends with an indented list ("config invalid:" and
    its "  - port: …" items), the line that announces the list and the list's first item;
    else the last line itself."""
    if not indented(last):
        return last, None
    k = last.index
    while k > 0 and indented(lines[k]) and lines[k - 1].core.strip():
        k -= 1
    head = lines[k]
    if head.index == last.index or indented(head) or not head.core.rstrip().endswith(":"):
        return last, None
    return head, lines[k + 1]
