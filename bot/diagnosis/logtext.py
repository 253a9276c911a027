"""Log text → lines fit for matching, robust to transport noise.

Each `Line` keeps `shown` (what we show and search for: the line as the app printed it,
minus ANSI colours, CR and kubelet's `--timestamps` prefix; for JSON-structured logs the
message and error fields) and `core` (the same with compose/bracket/timestamp prefixes
removed, for anchored patterns).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_KUBELET_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")
_PREFIX = re.compile(
    r"[\w.-]+\s+\|\s?"  # docker compose: "web_1   | "
    r"|\[[^\]\s]{1,64}\]\s?"  # "[hostname]" without spaces inside
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|\s?[+-]\d\d:?\d\d)?\s+"
    r"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+"  # Go log package
)
# Markers of a crash's first line, searched in the raw text of very long tails.
CRASH_MARKERS = ("\npanic: ", "\nfatal error: ", "Traceback (most recent call last)",
                 "Exception in thread", "FATAL ERROR", "' panicked at",
                 "A fatal error has been detected", "terminate called after", "Caused by: ",
                 "<--- Last few GCs --->", "Segmentation fault")
LARGE = 1_000_000  # bytes; longer tails are analysed in focus windows
WINDOW = 400_000
_JSON_MESSAGE_KEYS = ("msg", "message", "@message", "log", "event", "textPayload")
_JSON_ERROR_KEYS = ("error", "err", "exception", "error.message", "exc_info")
_JSON_STACK_KEYS = ("stacktrace", "stack_trace", "stack", "error.stack", "exc_info")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")
MAX_LINE = 4000
_CENTURIES = {"19", "20"}
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
    line."""

    _blob: str | None = None
    _lower: str | None = None

    @property
    def blob(self) -> str:
        if self._blob is None:
            self._blob = "\n".join(line.core for line in self)
        return self._blob

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.blob.lower()
        return self._lower


def strip_prefixes(text: str) -> str:
    """Remove compose, bracketed-host and timestamp prefixes (repeatedly)."""
    while True:
        m = _PREFIX.match(text)
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


def _from_json(raw: str) -> list[tuple[str, str | None]] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    level = next((str(data[k]).lower() for k in _JSON_LEVEL_KEYS if k in data), None)
    message = next((str(data[k]) for k in _JSON_MESSAGE_KEYS if data.get(k)), "")
    error = next((str(data[k]) for k in _JSON_ERROR_KEYS
                  if data.get(k) and k not in _JSON_STACK_KEYS), "")
    text = f"{message}: {error}" if message and error else (message or error)
    if not text:
        return None
    prefix = f"{level.upper()} " if level and level not in ("info", "debug") else ""
    lines: list[tuple[str, str | None]] = []
    for i, part in enumerate(text.rstrip("\n").split("\n")):
        lines.append((prefix + part if i == 0 else part, level))
    stack = next((str(data[k]) for k in _JSON_STACK_KEYS if data.get(k)), "")
    lines.extend((part, level) for part in stack.rstrip("\n").split("\n") if part)
    return lines


def split_lines(text: str) -> LogLines:
    """Normalise a log tail into Lines (CRLF, ANSI, kubelet timestamps, JSON logs)."""
    out = LogLines()
    text = focus(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    for original in text.split("\n"):
        raw = (_KUBELET_TS.sub("", original, count=1) if original[:2] in _CENTURIES
               else original)[:MAX_LINE]
        stripped = raw.strip()
        parsed = _from_json(stripped) if stripped.startswith("{") and stripped.endswith(
            "}") else None
        if parsed is None:
            out.append(Line(len(out), raw, strip_prefixes(raw) if raw[:1] in _PREFIX_START
                            else raw))
            continue
        for shown, level in parsed:
            out.append(Line(len(out), shown, strip_prefixes(shown), level))
    while out and not out[-1].shown.strip():
        out.pop()
    return out
