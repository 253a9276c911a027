"""diagnose(): one termination + its log tail + events → a Diagnosis.

The reason set by the runtime/kubelet outranks the number (OOMKilled, StartError,
ContainerStatusUnknown); a real crash signature in the log outranks circumstantial
evidence (an OOM kill, probe or eviction event, a DisruptionTarget condition); the exit
code, read for the inferred runtime, speaks when nothing else does. `kubectl describe pod`
output or an event list given instead of a log is read for the same facts (`kubetext`),
so pasted text and `Evidence.events` decide alike. The rules are the `_RULES` table; the
words are `bot.diagnosis.wording.WORDING`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.diagnosis.categories import REAL_CRASHES, Category
from bot.diagnosis.detectors.jvm import java_release
from bot.diagnosis.events import EventNote
from bot.diagnosis.exit_codes import ExitDecoding, decode_termination, signal_of
from bot.diagnosis.fingerprint import fingerprint
from bot.diagnosis.kubetext import KubeText, read_kube_text
from bot.diagnosis.logtext import LogLines, split_lines, strip_prefixes
from bot.diagnosis.runtimes import infer_runtime
from bot.diagnosis.signatures import MAX_LINES, Finding, extract_signature, last_words
from bot.diagnosis.wording import CONTAINER_KINDS, WORDING, Facts

__all__ = ["REAL_CRASHES", "Diagnosis", "EventNote", "Evidence", "diagnose"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything known about one termination."""

    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    log: str = ""
    events: tuple[EventNote, ...] = ()
    image: str | None = None
    memory_limit: str | None = None
    has_liveness_probe: bool | None = None
    has_startup_probe: bool | None = None
    disruption_reason: str | None = None
    # Which list of the pod status the container comes from: "container", "init", "sidecar"
    # or "ephemeral" (ContainerKind's values); None when the caller does not say.
    container_kind: str | None = None
    # Whether the pod's events could be read: False after a 403 or an API error, so "no
    # events" is not read as "they expired"; None when the caller does not say.
    events_readable: bool | None = None
    # Whether the container's spec sets a memory limit (memory_limit holds its value): False
    # when the spec was read and sets none; None when unknown.
    has_memory_limit: bool | None = None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The answer for one termination; `to_json()` is the public contract."""

    exit_code: int | None
    signal: int | None
    reason: str | None
    meaning: str
    category: Category
    runtime: str | None
    signature: tuple[str, ...]
    summary: str
    hints: tuple[str, ...] = field(default_factory=tuple)
    fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code, "signal": self.signal, "reason": self.reason,
            "meaning": self.meaning, "category": str(self.category), "runtime": self.runtime,
            "signature": list(self.signature), "summary": self.summary,
            "hints": list(self.hints), "fingerprint": self.fingerprint,
        }


# ---- what events say ---------------------------------------------------------------------
_PROBE_EVENT = re.compile(r"(Liveness|Startup) probe failed|failed (liveness|startup) probe",
                          re.I)
_EVICTION_EVENT = re.compile(r"\b(Evicted|Preempt\w*|TaintManagerEviction|DeletionByTaint\w*)\b")
_EVICTION_MESSAGE = re.compile(
    r"low on resource|ephemeral[- ]storage|node had condition: \[\w*Pressure\]|"
    r"(Memory|Disk|PID)Pressure|exceeds? (its|the) (local|ephemeral)|preempted by|"
    r"was preempted|evicted", re.I)
_PRESSURE = re.compile(r"\[\w*Pressure\]|ephemeral[- ]storage|ephemeral local storage|"
                       r"low on resource: \w[\w-]*", re.I)
_OOM_EVENT = re.compile(r"\bOOMKill\w*|out of memory: kill|Memory cgroup out of memory", re.I)
_STATUS_REASONS = ("OOMKilled", "ContainerStatusUnknown", "StartError", "ContainerCannotRun")
_DISRUPTION_REASONS = ("Evicted", "Preempting", "Preempted", "Shutdown", "NodeShutdown",
                       "Terminated", "DeletionByTaintManager")


def _probe_kind(events: tuple[EventNote, ...]) -> str | None:
    for ev in events:
        m = _PROBE_EVENT.search(ev.message)
        if m:
            return (m.group(1) or m.group(2)).lower()
    return None


def _disruption(ev: Evidence) -> str | None:
    """What stopped the pod from outside: a DisruptionTarget reason, an Evicted/Preempted
    pod or container reason, or an eviction/preemption/pressure event."""
    if ev.disruption_reason:  # the DisruptionTarget condition's own reason
        return ev.disruption_reason
    source = ev.reason if ev.reason in _DISRUPTION_REASONS else next(
        (n.reason for n in ev.events if _EVICTION_EVENT.search(n.reason) or (
            n.type == "Warning" and _EVICTION_MESSAGE.search(n.message))), None)
    if source is None:
        return None
    what = "preemption" if "preempt" in source.lower() else "eviction"
    texts = (ev.message or "", *(n.message for n in ev.events))
    detail = next((m.group(0) for t in texts if (m := _PRESSURE.search(t))), None)
    return f"{what} ({detail.strip('[]')})" if detail else what


def _oom_event(ev: Evidence) -> bool:
    return any(_OOM_EVENT.search(n.reason) or _OOM_EVENT.search(n.message) for n in ev.events)


# ---- the category rules ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Case:
    ev: Evidence
    finding: Finding | None
    decoded: ExitDecoding

    @property
    def crash(self) -> bool:
        return self.finding is not None and self.finding.category in REAL_CRASHES


Rule = tuple[Callable[[_Case], bool], Callable[[_Case], Category]]
_KILLED_LIKE = (None, 137, 143, 0, 1, 2)
_STOPPED_LIKE = (None, 0, 137, 143)


def _decoded(case: _Case) -> Category:
    return case.decoded.category


# 128 + SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV: the process died of a fault or an abort
_FAULT_EXITS = (132, 134, 135, 136, 139)


def _found(case: _Case) -> Category:
    """The finding's category; an app's own fatal line (no runtime's exception report: .NET
    aborts on an unhandled exception too) followed by a fault signal — it printed its reason,
    then abort()ed — is a native crash whose signature is that line."""
    assert case.finding is not None
    if (case.finding.category == Category.APP_FATAL and case.finding.runtime is None
            and case.ev.exit_code in _FAULT_EXITS):
        return Category.NATIVE_CRASH
    return case.finding.category


# Evaluated in order; the first rule whose condition holds names the category.
_RULES: tuple[Rule, ...] = (
    # the kubelet lost a container of a pod that was evicted: the eviction is the story
    (lambda c: c.ev.reason == "ContainerStatusUnknown" and _disruption(c.ev) is not None,
     lambda c: Category.EVICTED_OR_PREEMPTED),
    (lambda c: c.ev.reason in _STATUS_REASONS, _decoded),
    (lambda c: c.ev.reason == "Unknown" and c.ev.exit_code in (None, 255), _decoded),
    (lambda c: c.crash, _found),
    (lambda c: _oom_event(c.ev) and c.ev.exit_code in _KILLED_LIKE,
     lambda c: Category.OOM_KILLED),
    (lambda c: _probe_kind(c.ev.events) is not None and c.ev.exit_code in _KILLED_LIKE,
     lambda c: Category.PROBE_KILL),
    (lambda c: _disruption(c.ev) is not None and c.ev.exit_code in _STOPPED_LIKE,
     lambda c: Category.EVICTED_OR_PREEMPTED),
    (lambda c: c.finding is not None and c.finding.category != Category.UNKNOWN, _found),
    (lambda c: True, _decoded),
)


def _category(ev: Evidence, finding: Finding | None, decoded: ExitDecoding) -> Category:
    case = _Case(ev, finding, decoded)
    return next(pick(case) for holds, pick in _RULES if holds(case))


# ---- Kubernetes text given as the log ------------------------------------------------------
def _with_kube_text(ev: Evidence, kube: KubeText) -> Evidence:
    """The evidence completed with what describe/events text states (given values win)."""
    pod = (EventNote("Warning", kube.pod_reason, kube.pod_message or ""),) if (
        kube.pod_reason) else ()  # the pod's own failure (Evicted …) reads like its event
    events = ev.events + pod + kube.events
    return replace(ev, exit_code=ev.exit_code if ev.exit_code is not None else kube.exit_code,
                   reason=ev.reason or kube.reason, message=ev.message or kube.message,
                   events=events, memory_limit=ev.memory_limit or kube.memory_limit)


# Events whose message may name the crash's cause (a missing ConfigMap, an exec failure);
# probe and back-off events only describe the symptom.
_CAUSE_EVENTS = frozenset({"Failed", "FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox",
                           "FailedPostStartHook", "FailedPreStopHook"})


def _event_finding(events: tuple[EventNote, ...]) -> Finding | None:
    """With no log: the crash a failure event's message names (the runtime's exec error, a
    missing ConfigMap), read by the same detectors as a log, quoting the message."""
    stated = [e.message for e in events if e.reason in _CAUSE_EVENTS and e.message.strip()]
    if not stated:
        return None
    found = extract_signature(split_lines("\n".join(stated)))
    return found if found is not None and found.category in REAL_CRASHES else None


def _kube_finding(kube: KubeText) -> Finding | None:
    """The lines the text states; a crash category when the termination message or a failure
    event names one (read by the same detectors as a log)."""
    if not kube.quoted:
        return None
    lines = tuple(ln.shown.strip() for ln in kube.quoted)
    stated = [kube.message or "", *(e.message for e in kube.events if e.reason in _CAUSE_EVENTS)]
    inner = extract_signature(split_lines("\n".join(m for m in stated if m)))
    if inner is None or inner.category not in REAL_CRASHES:
        return Finding(Category.UNKNOWN, lines, None, kube.message or kube.reason or "")
    extra = tuple(ln for ln in inner.lines if not any(ln.strip() in q for q in lines))
    return replace(inner, lines=(lines + extra)[:MAX_LINES])


# ---- diagnose ------------------------------------------------------------------------------
def diagnose(ev: Evidence) -> Diagnosis:
    """Decode one termination using the log tail (or describe/events text) and events."""
    text = ev.log if not ev.message else f"{ev.log}\n{ev.message}"
    lines = split_lines(text)
    kube = read_kube_text(lines)
    finding: Finding | None
    if kube is not None:
        ev = _with_kube_text(ev, kube)
        finding = _kube_finding(kube)
    else:
        finding = _read_log(ev, lines)
        if finding is None and not ev.log.strip():
            finding = _event_finding(ev.events)
    runtime = (finding.runtime if finding and finding.runtime else None) or infer_runtime(
        lines, ev.image, ev.exit_code)
    decoded = decode_termination(ev.exit_code, ev.reason, ev.signal, runtime)
    category = _category(ev, finding, decoded)
    signature = finding.lines if finding else ()
    summary, hints = WORDING[category].render(_facts(ev, finding, decoded))
    if ev.container_kind in CONTAINER_KINDS:
        prefix, hint = CONTAINER_KINDS[ev.container_kind]
        summary, hints = prefix + summary, [hint, *hints]
    return Diagnosis(
        exit_code=ev.exit_code, signal=signal_of(ev.exit_code, ev.signal), reason=ev.reason,
        meaning=decoded.meaning, category=category, runtime=runtime, signature=signature,
        summary=summary, hints=tuple(hints), fingerprint=fingerprint(category, signature),
    )


def _read_log(ev: Evidence, lines: LogLines) -> Finding | None:
    finding = extract_signature(lines)
    if finding is None and ev.exit_code not in (0, 137, 143) and ev.reason not in (
            "OOMKilled", "ContainerStatusUnknown", "Unknown"):
        finding = last_words(lines)
    return finding


# ---- wording facts -------------------------------------------------------------------------
_ARCH = re.compile(r"(?<![a-z0-9])(arm64|aarch64|amd64|x86_64|arm32v[67]|armv7|armhf|ppc64le|"
                   r"s390x|riscv64)(?![a-z0-9])", re.I)
_ARCH_NAMES = {"aarch64": "arm64", "x86_64": "amd64", "arm32v7": "arm", "arm32v6": "arm",
               "armv7": "arm", "armhf": "arm"}


def _image_arch(image: str | None) -> str | None:
    """The CPU architecture an image name or tag admits to (`app:1.0-arm64`), if any."""
    m = _ARCH.search(image or "")
    return _ARCH_NAMES.get(m.group(1).lower(), m.group(1).lower()) if m else None


def _headline(finding: Finding | None) -> str:
    if finding is None:
        return ""
    text = strip_prefixes(finding.headline)
    text = re.sub(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\] ", "", text)
    text = re.sub(r"^(\[[^\]]*\]\s*)+", "", text)
    text = re.sub(r"^(?:ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC):?\s+(?=\S)", "", text)
    return text.strip()


_STARTUP_PROBE_EVENT = re.compile(r"Startup probe failed|failed startup probe", re.I)


def _facts(ev: Evidence, finding: Finding | None, decoded: ExitDecoding) -> Facts:
    head = _headline(finding)
    subject = "\n".join((head, *(finding.lines if finding else ()), ev.message or ""))
    java = java_release(subject)
    location = finding.location if finding else None
    limit = ev.memory_limit or ""
    origin = finding.lines[0].strip() if finding and len(finding.lines) > 1 else ""
    arch = _image_arch(ev.image) or ""
    return Facts(
        head=head,
        subject=subject,
        where=f" in {location}" if location else "",
        frame=f" in {location}" if location else " in the first frame",
        at=f" at {location}" if location else "",
        cause=f" (first cause: {origin})" if origin and origin != head else "",
        limit=limit, limit_now=f" (now {limit})" if limit else "",
        limit_paren=f" ({limit})" if limit else "", limit_of=f" of {limit}" if limit else "",
        exit_code=ev.exit_code,
        probe=_probe_kind(ev.events) or "liveness",
        disruption=_disruption(ev) or "a disruption",
        arch=arch, image=ev.image or "", image_paren=f" (image {ev.image})" if ev.image else "",
        what=head or ev.message or decoded.meaning,
        colon_head=f": {head}" if head else "",
        meaning=decoded.meaning[:1].upper() + decoded.meaning[1:],
        has_events=bool(ev.events), events_readable=ev.events_readable,
        has_liveness_probe=bool(ev.has_liveness_probe),
        has_startup_probe=bool(ev.has_startup_probe) or any(
            _STARTUP_PROBE_EVENT.search(e.message) for e in ev.events),
        no_memory_limit=ev.has_memory_limit is False,
        probe_failure="\n".join(e.message for e in ev.events if _PROBE_EVENT.search(e.message)),
        java_needed=str(java[0]) if java else "", java_running=str(java[1]) if java else "",
        log_empty=not ev.log.strip(),
    )
