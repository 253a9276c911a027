"""Log text → lines fit for matching, robust to transport noise.

Each `Line` keeps `shown` (what we quote: the line as the app printed it, minus ANSI
colours, CR and the prefixes that transports add — kubelet/CRI timestamps, docker-compose
and foreman `svc_1  | `, journald/syslog, `kubectl logs --prefix`, stern, log-export
columns; for JSON-structured logs the message, error and stack fields) and `core` (the same
with the app's own timestamp/bracket prefixes removed too, for anchored patterns).

A transport prefix is stripped only when the log uses it: its shape must start a good share
of the sampled lines, so `a | b` in a plain log stays as printed. Exports that list the
newest line first are put back in log order.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_POD = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?-(?:[a-f0-9]{8,10}-)?[a-z0-9]{5}"
# Prefixes added by whatever carried the log, never by the app (see the module docstring).
_TRANSPORT: tuple[re.Pattern[str], ...] = (
    # kubelet --timestamps / CRI log files: RFC 3339 stamp, optionally stream and tag
    re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)[ \t]"
               r"(?:(?:stdout|stderr) [FP] )?"),
    # log exports: epoch milliseconds, then maybe an ISO stamp, tab-separated
    re.compile(r"\d{10,13}\t(?:[^\t]{1,40}\t)?"),
    # journald / syslog / logplex: "Nov 05 06:09:05.838 host unit[pid]: ", "… host app/web.1 "
    re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? [\w.-]+ "
               r"(?:[\w./@-]+(?:\[[\w.-]+\])?: |[\w-]+/[\w.-]+ )"),
    # docker compose / foreman: "web_1   | ", "17:18:10 web.1  | "
    re.compile(r"(?:\d\d:\d\d:\d\d )?[\w.-]+\s*\|(?: |$)"),
    # a timestamp column then a pipe or a tab: "2026-03-15 21:42:07.500 | ", export columns
    re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
               r"(?:\s*\|(?: |$)|\t)"),
    # kubectl logs --prefix: "[pod/api-7d…/app] "
    re.compile(r"\[pod/[^\]\s]+\] "),
    # stern "pod container ", k9s/kubectl-tail "pod:" / "pod container:"
    re.compile(_POD + r"(?::| [a-z0-9][a-z0-9-]{0,62}:? )"),
)
_APP_PREFIX = re.compile(
    r"[\w.-]+\s+\|\s?"  # docker compose: "web_1   | " (also when not consistent)
    r"|\[[^\]\s]{1,64}\]\s?"  # "[hostname]" without spaces inside
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|\s?[+-]\d\d:?\d\d)?\s+"
    r"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+"  # Go log package
    r"|\d+:[MSCX] \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d+ [.*#-] "  # Redis
)
_STAMP = re.compile(r"(\d{13}|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?)")
# Markers of a crash's first line, searched in the raw text of very long tails.
CRASH_MARKERS = ("\npanic: ", "\nfatal error: ", "Traceback (most recent call last)",
                 "Exception in thread", "FATAL ERROR", "' panicked at",
                 "A fatal error has been detected", "terminate called after", "Caused by: ",
                 "<--- Last few GCs --->", "Segmentation fault")
LARGE = 256 * 1024  # bytes (LOG_LIMIT_BYTES default); longer tails: focus windows
WINDOW = 128 * 1024
SAMPLE = 200  # lines looked at from each end to decide which transport prefixes are in use
_JSON_MESSAGE_KEYS = ("msg", "message", "@message", "log", "event", "textPayload")
_JSON_ERROR_KEYS = ("error", "err", "exception", "error.message", "exc_info")
_JSON_STACK_KEYS = ("stacktrace", "stack_trace", "stack", "error.stack", "exc_info")
_JSON_NESTED_KEYS = ("jsonPayload", "fields")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
MAX_LINE = 4000
_PREFIX_START = set("0123456789[_-.") | set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Line:
    """One log line: `shown` for humans and search, `core` for matching."""

    index: int
    shown: str
    core: str
    level: str | None = None  # from JSON logs, lower-case


class LogLines(list[Line]):
    """The lines of one log, plus their `core` texts joined (built once, on demand), so a
    detector can ask "does this pattern occur anywhere?" in one pass before going line by
    line. Each joined text starts with a newline, so every line follows one (`joined()`)."""

    _blob: str | None = None
    _lower: str | None = None
    _shown: str | None = None

    @property
    def shown_blob(self) -> str:
        if self._shown is None:
            self._shown = "".join("\n" + line.shown for line in self)
        return self._shown

    @property
    def blob(self) -> str:
        if self._blob is None:
            self._blob = "".join("\n" + line.core for line in self)
        return self._blob

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.blob.lower()
        return self._lower


_JOINED: dict[re.Pattern[str], re.Pattern[str]] = {}


def joined(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` for a search of a LogLines' joined text: multi-line, and a leading `^` made
    the newline every line follows, which the regex engine finds many times faster than it
    tries `^` at every position."""
    compiled = _JOINED.get(pattern)
    if compiled is None:
        text = pattern.pattern
        text = "\n" + text[1:] if text.startswith("^") else text
        compiled = _JOINED[pattern] = re.compile(text, pattern.flags | re.MULTILINE)
    return compiled


# A level word in brackets among the stripped prefixes (`2026-… [ERROR] …`): the line's level.
_BRACKETED_LEVEL = re.compile(r"\[(ERROR|ERR|FATAL|CRITICAL|CRIT|EMERG|EMERGENCY|ALERT|PANIC|"
                              r"WARN|WARNING|NOTICE|INFO|DEBUG|TRACE)\]", re.I)
_LEVEL_NAMES = {"err": "error", "crit": "critical", "emerg": "emergency", "warning": "warn"}


def _bracketed_level(prefix: str) -> str | None:
    m = _BRACKETED_LEVEL.search(prefix)
    if m is None:
        return None
    word = m.group(1).lower()
    return _LEVEL_NAMES.get(word, word)


def strip_prefixes(text: str) -> str:
    """Remove compose, bracketed-host and timestamp prefixes (repeatedly)."""
    while True:
        m = _APP_PREFIX.match(text)
        if m is None or not m.end():
            return text
        text = text[m.end():]


def focus(text: str) -> str:
    """For tails over LARGE bytes: the stretch around the last crash marker plus the end.

    A Go fatal error can be followed by megabytes of goroutine stacks and a crash can be
    followed by a restart's chatter, so both windows are kept, in log order.
    """
    if len(text) <= LARGE:
        return text
    padded = "\n" + text  # so a marker that needs a line start matches the first line
    found = [max(0, i - 1) for i in (padded.rfind(m) for m in CRASH_MARKERS) if i >= 0]
    tail_start = len(text) - WINDOW
    if not found:
        return text[text.find("\n", tail_start) + 1:]
    start = max(0, text.rfind("\n", 0, max(0, min(found) - 20_000)) + 1)
    end = min(len(text), start + WINDOW)
    if end >= tail_start:
        return text[start:]
    return text[start:text.rfind("\n", start, end)] + "\n" + text[text.find("\n", tail_start) + 1:]


def _text_of(value: Any) -> tuple[str, str]:
    """(message, stack) of a JSON error field: a string, or an object like pino's `err`."""
    if isinstance(value, dict):
        message = str(value.get("message") or value.get("msg") or "")
        kind = value.get("type") or value.get("name") or value.get("kind")
        if kind and message and not message.startswith(str(kind)):
            message = f"{kind}: {message}"
        stack = value.get("stack") or value.get("stacktrace") or value.get("stack_trace")
        return message, str(stack or "")
    return str(value), ""


def _level_of(data: dict[str, Any]) -> str | None:
    for key in _JSON_LEVEL_KEYS:
        if key in data:
            value = data[key]
            if isinstance(value, int) and not isinstance(value, bool):
                return _NUMERIC_LEVELS.get(value - value % 10, "fatal" if value > 60 else None)
            return str(value).lower()
    return None


def _from_json(raw: str) -> list[tuple[str, str | None]] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in _JSON_NESTED_KEYS:  # GCP jsonPayload, logrus-style "fields"
        if isinstance(data.get(key), dict):
            data = {**data, **data[key]}
    level = _level_of(data)
    message = next((str(data[k]) for k in _JSON_MESSAGE_KEYS if data.get(k)), "")
    error, stack = "", ""
    for key in _JSON_ERROR_KEYS:
        if data.get(key) and key not in _JSON_STACK_KEYS:
            error, stack = _text_of(data[key])
            break
    if message and error and (error in message or message in error):
        message, error = "", error if len(error) >= len(message) else message
    text = f"{message}: {error}" if message and error else (message or error)
    if not text:
        return None
    prefix = f"{level.upper()} " if level and level not in ("info", "debug", "trace") else ""
    lines: list[tuple[str, str | None]] = []
    for i, part in enumerate(text.rstrip("\n").split("\n")):
        lines.append((prefix + part, level) if i == 0 else (part, None))
    stack = stack or next((str(data[k]) for k in _JSON_STACK_KEYS if data.get(k)), "")
    stack_lines = [part for part in stack.rstrip("\n").split("\n") if part]
    if stack_lines and error and stack_lines[0].strip() in error:
        stack_lines = stack_lines[1:]  # the stack repeats the error line it belongs to
    lines.extend((part, None) for part in stack_lines)  # the level belongs to the message
    return lines


def _transports_in_use(raw: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """The transport prefix shapes that start at least a third of the sampled lines, layer
    by layer: a compose or journald prefix inside a CRI one is found once the outer layer
    is stripped from the sample."""
    sample = [ln for ln in (*raw[:SAMPLE], *raw[-SAMPLE:]) if ln.strip()]
    used: list[re.Pattern[str]] = []
    while sample:
        layer = [pattern for pattern in _TRANSPORT if pattern not in used
                 and (hits := sum(1 for ln in sample if pattern.match(ln)))
                 and hits * 3 >= len(sample)]
        if not layer:
            break
        used += layer
        sample = [_strip_transport(ln, tuple(layer)) for ln in sample]
    return tuple(used)


# A source column that a log viewer puts before every line (`api - `, `worker | `): one
# token and a dash or pipe. It must lead two thirds of the sampled lines, word for word, and
# must not be a level word.
_LEADER = re.compile(r"[\w.@/-]{1,48} [-|](?= |$)")
_LEVEL_WORD = re.compile(r"^(trace|debug|info|notice|warn|warning|error|err|fatal|critical|"
                         r"crit|panic|emerg|alert)\b", re.I)
_LEADER_MIN = 3


def _leader_in_use(sample: Sequence[str]) -> str | None:
    """The column every line repeats after the transport prefixes, if there is one."""
    lines = [ln for ln in sample if ln.strip()]
    counts = Counter(m.group(0) for ln in lines if (m := _LEADER.match(ln)))
    if not counts:
        return None
    leader, hits = counts.most_common(1)[0]
    if hits < _LEADER_MIN or hits * 3 < len(lines) * 2 or _LEVEL_WORD.match(leader):
        return None
    return leader


def _strip_leader(line: str, leader: str) -> str:
    if line.startswith(leader) and line[len(leader):len(leader) + 1] in ("", " "):
        return line[len(leader) + 1:]
    return line


def _strip_transport(line: str, used: tuple[re.Pattern[str], ...]) -> str:
    stripped = True
    while stripped:
        stripped = False
        for pattern in used:
            m = pattern.match(line)
            if m is not None and m.end():
                line = line[m.end():]
                stripped = True
    return line


def _newest_first(raw: Sequence[str]) -> bool:
    """True for an export listing the newest line first: line-leading stamps never rise
    and fall at least once (the stamps compare as text: same format, fixed width)."""
    stamps = [m.group(1) for ln in raw[:SAMPLE] if (m := _STAMP.match(ln))]
    if len(stamps) < 5 or len(stamps) * 2 < len([ln for ln in raw[:SAMPLE] if ln.strip()]):
        return False
    pairs = list(itertools.pairwise(stamps))
    return all(a >= b for a, b in pairs) and any(a > b for a, b in pairs)


def _parsed(text: str) -> list[tuple[str, str | None]] | None:
    """The lines of a JSON record (one level of nesting: docker's json-file driver wrapping
    an app's own JSON line), or None when `text` is not one."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    parsed = _from_json(stripped)
    if parsed is None or len(parsed) != 1:
        return parsed
    inner = parsed[0][0].strip()
    nested = _from_json(inner) if inner.startswith("{") and inner.endswith("}") else None
    return nested or parsed


def split_lines(text: str) -> LogLines:
    """Normalise a log tail into Lines (CRLF, ANSI, transport prefixes, JSON logs)."""
    out = LogLines()
    text = focus(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    raw_lines = text.split("\n")
    if _newest_first(raw_lines):
        raw_lines.reverse()
    used = _transports_in_use(raw_lines)
    sample = [_strip_transport(ln, used) for ln in (*raw_lines[:SAMPLE], *raw_lines[-SAMPLE:])]
    leader = _leader_in_use(sample)
    texts: list[tuple[str, str | None, bool]] = []  # (text, JSON level, from a JSON record)
    wrapped: list[int] = []
    for original in raw_lines:
        raw = _strip_transport(original, used) if used else original
        raw = (_strip_leader(raw, leader) if leader else raw)[:MAX_LINE]
        parsed = _parsed(raw) if raw.rstrip().endswith("}") else None
        if parsed is None:
            texts.append((raw, None, False))
            continue
        for shown, level in parsed:
            wrapped.append(len(texts))
            texts.append((shown, level, True))
    if wrapped:  # the records may carry prefixes of their own (compose inside json-file)
        inner = _transports_in_use([texts[i][0] for i in wrapped])
        inner_sample = [_strip_transport(texts[i][0], inner) for i in (
            *wrapped[:SAMPLE], *wrapped[-SAMPLE:])]
        inner_leader = None if leader else _leader_in_use(inner_sample)
        for i in wrapped if inner or inner_leader else ():
            shown, level, _ = texts[i]
            shown = _strip_transport(shown, inner)
            texts[i] = (_strip_leader(shown, inner_leader) if inner_leader else shown, level,
                        True)
    for shown, json_level, from_json in texts:
        core = strip_prefixes(shown) if from_json or shown[:1] in _PREFIX_START else shown
        level = json_level
        if level is None and len(core) < len(shown) and "[" in shown:
            level = _bracketed_level(shown[:len(shown) - len(core)])
        out.append(Line(len(out), shown, core, level))
    while out and not out[-1].shown.strip():
        out.pop()
    return out
