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
_PREFIXES = (
    re.compile(r"^[\w.-]+\s+\|\s?"),  # docker compose: "web_1   | "
    re.compile(r"^\[[^\]\s]{1,64}\]\s?"),  # "[hostname]" without spaces inside
    re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|\s?[+-]\d\d:?\d\d)?\s+"),
    re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+"),  # Go log package
)
_JSON_MESSAGE_KEYS = ("msg", "message", "@message", "log", "event", "textPayload")
_JSON_ERROR_KEYS = ("error", "err", "exception", "error.message", "exc_info")
_JSON_STACK_KEYS = ("stacktrace", "stack_trace", "stack", "error.stack", "exc_info")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")
MAX_LINE = 4000


@dataclass(frozen=True, slots=True)
class Line:
    """One log line: `shown` for humans and search, `core` for matching."""

    index: int
    shown: str
    core: str
    level: str | None = None  # from JSON logs, lower-case


def strip_prefixes(text: str) -> str:
    """Remove compose, bracketed-host and timestamp prefixes (repeatedly)."""
    previous = None
    while previous != text:
        previous = text
        for pattern in _PREFIXES:
            text = pattern.sub("", text, count=1)
    return text


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


def split_lines(text: str) -> list[Line]:
    """Normalise a log tail into Lines (CRLF, ANSI, kubelet timestamps, JSON logs)."""
    out: list[Line] = []
    for original in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        raw = _KUBELET_TS.sub("", _ANSI.sub("", original))[:MAX_LINE]
        stripped = raw.strip()
        parsed = _from_json(stripped) if stripped.startswith("{") and stripped.endswith(
            "}") else None
        if parsed is None:
            out.append(Line(len(out), raw, strip_prefixes(raw)))
            continue
        for shown, level in parsed:
            out.append(Line(len(out), shown, strip_prefixes(shown), level))
    while out and not out[-1].shown.strip():
        out.pop()
    return out
