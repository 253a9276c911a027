"""A stable fingerprint of a crash signature, so "the same crash" is recognised across
pods, replicas, restarts and days: timestamps (ISO, Go log, syslog, klog, `26 Feb 2023`),
UUIDs, addresses and hex ids, IPs and ports, pod names (the kubelet's random suffixes),
numbers of any kind (line numbers, goroutine/thread ids, pids, counts), a goroutine's
wait time and V8's GC trace line (its sizes and remarks vary between runs of one leak) are
normalised before hashing. Transport prefixes never reach a signature
(`bot.diagnosis.logtext` strips them), so a CRI, compose, journald or JSON-wrapped copy of a
log hashes like the log.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
# the kubelet's random name suffixes (k8s.io/apimachinery rand.String: no vowels, no 0/1/3)
_K8S_RAND = r"[bcdfghjklmnpqrstvwxz2456789]"
_NORMALISERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # V8's trace of its last collections before a heap OOM: sizes, timings and the
    # collector's remarks differ from run to run of the same leak, so the line is its kind
    (re.compile(r"^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: (?:Mark-Compact|Mark-sweep|Mark-compact|"
                r"Scavenge)\b.*$"), "<v8 gc trace>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<ts>"),
    (re.compile(r"\b\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?"), "<ts>"),
    (re.compile(rf"\b(?:{_DAY},? )?\d{{1,2}} {_MONTH} \d{{4}}(?: \d\d:\d\d:\d\d(?:\.\d+)?)?"),
     "<ts>"),
    (re.compile(rf"\b(?:{_DAY} )?{_MONTH} [ \d]\d(?: \d{{4}})? \d\d:\d\d:\d\d(?:\.\d+)?"), "<ts>"),
    (re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ "), "<klog> "),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\b[a-z0-9-]+-[0-9a-f]{8,10}-[a-z0-9]{5}\b"), "<pod>"),
    (re.compile(rf"\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-(?:{_K8S_RAND}{{6,10}}-)?{_K8S_RAND}{{5}}\b"),
     "<pod>"),
    (re.compile(r"0x[0-9a-f]+", re.I), "<addr>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,15}\b"), "<hex>"),  # short ids
    (re.compile(r"\b(\d{1,3}\.){3}\d{1,3}(:\d+)?\b"), "<ip>"),
    (re.compile(r"(\.\w+):\d+(?::\d+)?"), r"\1:<n>"),  # file.go:123, main.rs:3:7
    (re.compile(r"(goroutine \d+ \[[^\],]+), \d+ minutes\]"), r"\1]"),  # how long it waited
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise(line: str) -> str:
    """A signature line with its volatile parts replaced by placeholders."""
    text = line.strip()
    for pattern, repl in _NORMALISERS:
        text = pattern.sub(repl, text)
    return text


def fingerprint(category: str, signature: Sequence[str]) -> str | None:
    """12 hex chars identifying the crash; None when there is no signature."""
    if not signature:
        return None
    material = category + "\n" + "\n".join(normalise(line) for line in signature)
    return hashlib.sha256(material.encode()).hexdigest()[:12]
