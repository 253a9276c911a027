"""Which runtime produced a crash: inferred from the log, the image name and the code.

The exit code means different things per runtime (2 is a Go panic, a Python usage error,
or a shell builtin misuse), so this decides how the number is read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis.logtext import Line, LogLines, joined

_LOG_EVIDENCE: dict[str, tuple[re.Pattern[str], ...]] = {
    "go": (
        re.compile(r"^goroutine \d+ \["), re.compile(r"^(panic|fatal error): "),
        re.compile(r"\.go:\d+ \+0x[0-9a-f]+"), re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}"),
    ),
    "python": (
        re.compile(r"Traceback \(most recent call last\)"),
        re.compile(r'^\s*File "[^"]+\.py", line \d+'), re.compile(r"^python\d?(\.\d+)?: "),
    ),
    "jvm": (
        re.compile(r"^\s*at [\w$.<>/]+\([\w$]+\.(java|kt|scala):\d+\)"),
        re.compile(r'Exception in thread "'), re.compile(r"\bjava\.(lang|io|net|util)\.\w+"),
        re.compile(r"^Caused by: [\w$.]+"), re.compile(r"Java Runtime Environment"),
    ),
    "node": (
        re.compile(r"node:internal"), re.compile(r"^\s*at .*\.[cm]?js:\d+:\d+\)?$"),
        re.compile(r"^Node\.js v\d+"), re.compile(r"JavaScript heap out of memory"),
        re.compile(r"node::\w+"), re.compile(r"^npm ERR!"),
    ),
    "rust": (
        re.compile(r"thread '[^']*' panicked at"), re.compile(r"RUST_BACKTRACE"),
        re.compile(r"has overflowed its stack"),
    ),
}

_IMAGE_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("python", re.compile(r"python|django|flask|gunicorn|uvicorn|celery", re.I)),
    ("node", re.compile(r"(^|/)(node|nodejs)(:|@|$)|(^|/)node-?\d|(^|/)npm(:|@|$)", re.I)),
    ("jvm", re.compile(r"openjdk|temurin|jdk|jre|java|tomcat|spring|kafka|elasticsearch|"
                       r"opensearch|corretto|zulu|keycloak", re.I)),
    ("go", re.compile(r"golang|distroless/static", re.I)),
    ("rust", re.compile(r"rust", re.I)),
)


# the same patterns over the joined log (one scan per pattern, not one per line)
_JOINED: dict[str, tuple[re.Pattern[str], ...]] = {
    runtime: tuple(joined(p) for p in patterns) for runtime, patterns in _LOG_EVIDENCE.items()
}


def _score(lines: Sequence[Line]) -> dict[str, int]:
    """How many pieces of evidence each runtime has in the log."""
    if isinstance(lines, LogLines):
        counts = {rt: sum(1 for p in ps for _ in p.finditer(lines.blob))
                  for rt, ps in _JOINED.items()}
        return {rt: n for rt, n in counts.items() if n}
    scores: dict[str, int] = {}
    for line in lines:
        for runtime, patterns in _LOG_EVIDENCE.items():
            if any(p.search(line.core) for p in patterns):
                scores[runtime] = scores.get(runtime, 0) + 1
    return scores


def infer_runtime(lines: Sequence[Line], image: str | None = None,
                  exit_code: int | None = None) -> str | None:
    """go | python | jvm | node | rust, or None when nothing says."""
    scores = _score(lines)
    if scores:
        return max(scores.items(), key=lambda kv: kv[1])[0]
    if image:
        name = image.rsplit("@", 1)[0]
        for runtime, pattern in _IMAGE_HINTS:
            if pattern.search(name):
                return runtime
    if exit_code == 101:
        return "rust"
    return None
