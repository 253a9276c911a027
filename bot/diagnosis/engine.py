"""diagnose(): one termination + its log tail + events → a Diagnosis.

The reason set by the runtime/kubelet outranks the number (OOMKilled, StartError,
ContainerStatusUnknown); a real crash signature in the log outranks circumstantial
evidence (probe events, a DisruptionTarget condition); the exit code, read for the
inferred runtime, speaks when nothing else does.

`summary` and `hints` are part of the JSON contract (`diagnose --json`); they are the
domain's vocabulary like `meaning`, so they are built here rather than in templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.diagnosis.exit_codes import ExitDecoding, decode_termination, signal_of
from bot.diagnosis.fingerprint import fingerprint
from bot.diagnosis.logtext import split_lines, strip_prefixes
from bot.diagnosis.runtimes import infer_runtime
from bot.diagnosis.signatures import Finding, extract_signature, last_words

REAL_CRASHES = {
    "go-panic", "go-fatal-error", "python-exception", "jvm-exception", "jvm-oom",
    "node-exception", "node-heap-oom", "rust-panic", "native-crash", "exec-error",
    "port-in-use", "dependency-unavailable", "config-error", "app-fatal",
}


@dataclass(frozen=True, slots=True)
class EventNote:
    """A Kubernetes event about the pod (they expire after about an hour)."""

    type: str
    reason: str
    message: str
    count: int = 1


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


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The answer for one termination; `to_json()` is the public contract."""

    exit_code: int | None
    signal: int | None
    reason: str | None
    meaning: str
    category: str
    runtime: str | None
    signature: tuple[str, ...]
    summary: str
    hints: tuple[str, ...] = field(default_factory=tuple)
    fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code, "signal": self.signal, "reason": self.reason,
            "meaning": self.meaning, "category": self.category, "runtime": self.runtime,
            "signature": list(self.signature), "summary": self.summary,
            "hints": list(self.hints), "fingerprint": self.fingerprint,
        }


_PROBE_EVENT = re.compile(r"(Liveness|Startup) probe failed|failed (liveness|startup) probe",
                          re.I)


def _probe_kind(events: tuple[EventNote, ...]) -> str | None:
    for ev in events:
        m = _PROBE_EVENT.search(ev.message)
        if m:
            return (m.group(1) or m.group(2)).lower()
    return None


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
    return text.strip()


def _category(ev: Evidence, finding: Finding | None, decoded: ExitDecoding) -> str:
    if ev.reason in ("OOMKilled", "ContainerStatusUnknown", "StartError", "ContainerCannotRun"):
        return decoded.category
    if ev.reason == "Unknown" and ev.exit_code in (None, 255):
        return decoded.category
    crash = finding is not None and finding.category in REAL_CRASHES
    if crash:
        assert finding is not None
        return finding.category
    if _probe_kind(ev.events) and ev.exit_code in (None, 137, 143, 0, 1, 2):
        return "probe-kill"
    if ev.disruption_reason and ev.exit_code in (None, 0, 137, 143):
        return "evicted-or-preempted"
    if finding is not None:
        return finding.category
    return decoded.category


def diagnose(ev: Evidence) -> Diagnosis:
    """Decode one termination using the log tail and events."""
    text = ev.log if not ev.message else f"{ev.log}\n{ev.message}"
    lines = split_lines(text)
    finding = extract_signature(lines)
    if finding is None and ev.exit_code not in (None, 0, 137, 143) and ev.reason not in (
            "OOMKilled", "ContainerStatusUnknown", "Unknown"):
        finding = last_words(lines)
    runtime = (finding.runtime if finding and finding.runtime else None) or infer_runtime(
        lines, ev.image, ev.exit_code)
    decoded = decode_termination(ev.exit_code, ev.reason, ev.signal, runtime)
    category = _category(ev, finding, decoded)
    signature = finding.lines if finding else ()
    summary, hints = _explain(category, finding, decoded, ev)
    return Diagnosis(
        exit_code=ev.exit_code, signal=signal_of(ev.exit_code, ev.signal), reason=ev.reason,
        meaning=decoded.meaning, category=category, runtime=runtime, signature=signature,
        summary=summary, hints=tuple(hints), fingerprint=fingerprint(category, signature),
    )


def _explain(category: str, finding: Finding | None, decoded: ExitDecoding,
             ev: Evidence) -> tuple[str, list[str]]:
    head = _headline(finding)
    where = f" in {finding.location}" if finding and finding.location else ""
    limit = ev.memory_limit
    if category == "go-panic":
        hints = ["Exit 2 is Go's unrecovered panic, not 'misuse of shell builtin'."]
        if "nil pointer" in head:
            hints.append(f"A nil pointer is dereferenced{where or ' in the first frame'}: add "
                         "the missing nil check.")
        hints.append("Recover panics in long-running goroutines so one bad input cannot kill "
                     "the pod.")
        return f"Go panic: {head or 'unrecovered panic'}{where}", hints
    if category == "go-fatal-error":
        hints = ["Go fatal errors cannot be recovered; the process exits 2."]
        if "concurrent map" in head:
            hints.append("A data race: guard the map with a sync.Mutex (or use sync.Map) and "
                         "run the tests with -race.")
        elif "out of memory" in head:
            hints.append("The Go heap could not grow: raise the memory limit"
                         f"{f' (now {limit})' if limit else ''} or set GOMEMLIMIT below it.")
        elif "deadlock" in head:
            hints.append("Every goroutine is blocked: look for a channel nobody sends to.")
        return f"Go fatal error: {head or 'runtime fatal error'}{where}", hints
    if category == "python-exception":
        first = finding.lines[0] if finding and len(finding.lines) > 1 else ""
        cause = f" (first cause: {first.strip()})" if first and first.strip() != head else ""
        hints = []
        if re.search(r"ModuleNotFoundError|ImportError", head):
            hints.append("A module is missing from the image, or WORKDIR/PYTHONPATH is wrong.")
        elif head.startswith("KeyError"):
            hints.append("A required key is missing — often configuration or environment: "
                         "check recent ConfigMap/Secret changes.")
        hints.append("The last line of the traceback is what ended the process "
                     f"(exit {ev.exit_code if ev.exit_code is not None else 1}).")
        return f"Python exception: {head}{cause}", hints
    if category == "jvm-oom":
        return f"Java heap exhausted: {head or 'java.lang.OutOfMemoryError'}", [
            "Raise -Xmx or -XX:MaxRAMPercentage; the heap must fit inside the container "
            f"limit{f' ({limit})' if limit else ''}.",
            "Add -XX:+ExitOnOutOfMemoryError so the JVM exits instead of limping on, and "
            "-XX:+HeapDumpOnOutOfMemoryError to find the leak.",
        ]
    if category == "jvm-exception":
        return f"Java exception: {head}", [
            "The deepest 'Caused by:' is usually the root cause; exit 1 means it escaped main."]
    if category == "node-heap-oom":
        return f"Node.js ran out of heap: {head or 'JavaScript heap out of memory'}", [
            "Set --max-old-space-size to about 75% of the memory limit"
            f"{f' ({limit})' if limit else ''}; if memory grows steadily it is a leak "
            "(take a heap snapshot).",
            "Node aborts on heap OOM (SIGABRT, 134); as PID 1 it may show 139 or 0.",
        ]
    if category == "node-exception":
        hints = ["An uncaught exception or unhandled rejection ends Node with exit 1."]
        if "MODULE_NOT_FOUND" in "\n".join(finding.lines if finding else ()):
            hints.insert(0, "The module/entry file is not in the image: check COPY paths and "
                            "WORKDIR.")
        return f"Node.js uncaught exception: {head}", hints
    if category == "rust-panic":
        loc = f" at {finding.location}" if finding and finding.location else ""
        return f"Rust panic: {head}{loc}", [
            "Replace unwrap()/expect() there with error handling; 101 is Rust's panic code."]
    if category == "native-crash":
        hints = ["Native code crashed: get a core dump or run a debug build."]
        if finding and any("Java Runtime Environment" in ln for ln in finding.lines):
            hints = ["The JVM itself crashed (not your Java code): upgrade the JDK; the "
                     "hs_err_pid log has the details."]
        else:
            hints.append("Suspect native extensions and glibc/musl or CPU-architecture "
                         "mismatches.")
        return f"Native crash: {head or decoded.meaning}", hints
    if category == "exec-error":
        blob = (head + " " + (ev.message or "")).lower()
        if "exec format error" in blob:
            arch = _image_arch(ev.image)
            hint = (f"The binary is built for {arch} (image {ev.image}) and the node runs "
                    f"another architecture: build a multi-arch image or pin nodeSelector "
                    f"kubernetes.io/arch={arch}." if arch else
                    "The binary is built for another CPU architecture"
                    f"{f' (image {ev.image})' if ev.image else ''} or a script lacks its "
                    "shebang: build a multi-arch image or pin kubernetes.io/arch.")
        elif "permission denied" in blob:
            hint = "Make the entrypoint executable (chmod +x in the Dockerfile) or run it via sh."
        elif "main class" in blob:
            hint = ("Exec-form ENTRYPOINT does not expand $VARIABLES: use sh -c or "
                    "JAVA_TOOL_OPTIONS.")
        elif "can't open file" in blob:
            hint = "The script is not in the image: check COPY and WORKDIR."
        else:
            hint = ("Check command/args and PATH in the image; a CRLF shebang (#!/bin/sh\\r) "
                    "also reads as 'not found'.")
        what = head or (ev.message or decoded.meaning)
        return f"The container's command could not run: {what}", [hint]
    if category == "port-in-use":
        return f"Port already in use: {head}", [
            "Another process binds the same port: check duplicate containers, sidecars and "
            "hostNetwork; or the old process has not exited yet."]
    if category == "dependency-unavailable":
        return f"A dependency is unreachable: {head}", [
            "Check that Service, its endpoints and DNS; the app exits when it cannot connect.",
            "Retry with backoff instead of exiting, or gate start-up with an init container.",
        ]
    if category == "config-error":
        return f"Configuration rejected at start-up: {head}", [
            "Diff the ConfigMap/Secret/args against the last good rollout."]
    if category == "app-fatal":
        return f"The app logged a fatal error and exited: {head}", [
            "The app chose to exit; the line above is its reason."]
    if category == "oom-killed":
        hints = [f"Raise the memory limit or fix the leak: usage hit the limit of {limit}."
                 if limit else "There is no memory limit: set requests/limits so the "
                 "scheduler can place the pod sensibly."]
        if ev.exit_code not in (None, 137):
            hints.append("A child process was OOM-killed; the main process exited "
                         f"{ev.exit_code} afterwards.")
        return ("OOM-killed: the container exceeded its memory limit"
                f"{f' of {limit}' if limit else ''}"), hints
    if category == "probe-kill":
        kind = _probe_kind(ev.events) or "liveness"
        hints = ["The kubelet killed a container that was alive but too slow to answer."]
        if kind == "liveness" and not ev.has_startup_probe:
            hints.append("Add a startupProbe for slow starts; raise timeoutSeconds/"
                         "failureThreshold; keep dependency checks out of liveness.")
        return f"Killed by the kubelet after failing its {kind} probe", hints
    if category == "evicted-or-preempted":
        reason = ev.disruption_reason or "a disruption"
        hint = ("Give the workload a higher PriorityClass or add capacity."
                if "Preemption" in reason else
                "Check node pressure and drains; add a PodDisruptionBudget.")
        return f"Stopped by {reason}, not a crash", [hint]
    if category == "graceful-shutdown":
        hints = ["Something stopped the container on purpose: check events (Killing, probe "
                 "failures), rollouts and scale-downs."]
        if ev.exit_code == 137:
            hints.append("It outlived the grace period and was SIGKILLed: handle SIGTERM (a "
                         "PID 1 process has no default handler).")
        if ev.has_liveness_probe and not ev.events:
            hints.append("It has a liveness probe and its events have expired: a failing "
                         "probe is the likeliest sender of that SIGTERM.")
        return f"Stopped on request, not a crash{f': {head}' if head else ''}", hints
    if category == "clean-exit":
        return "The main process exited 0 and was restarted (restartPolicy Always)", [
            "It finished or daemonised: run it in the foreground, or use a Job for one-shot "
            "work."]
    hints = []
    if ev.exit_code == 137:
        hints.append("No OOMKilled reason and no probe events: look for a node-level OOM "
                     "(dmesg), a manual kill, or PID 1 ignoring SIGTERM.")
    if ev.exit_code == 2 and not ev.log.strip():
        hints.append("If this is a Go program, exit 2 is an unrecovered panic: read the "
                     "previous log (kubectl logs --previous).")
    return decoded.meaning[:1].upper() + decoded.meaning[1:], hints
