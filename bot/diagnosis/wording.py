"""The words of a diagnosis: one table row per category — a summary template and hint
groups — instead of a chain of branches.

`summary` and `hints` are part of the JSON contract (`diagnose --json`); they are the
domain's vocabulary like `meaning`, so they are built here rather than in templates.
Templates are `str.format` strings over the fields of `Facts`; in each hint group the first
hint whose condition holds is given (a group of one unconditional hint is always given).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors.startup import BAD_CREDENTIALS, PLACEHOLDER


@dataclass(frozen=True, slots=True)
class Facts:
    """What the wording may say, each field ready to drop into a sentence."""

    head: str  # the crash's one-line name, prefixes stripped
    subject: str  # head + signature + termination message, for hint conditions
    where: str = ""  # " in pkg.func (file.go:12)"
    frame: str = " in the first frame"
    at: str = ""  # " at src/main.rs:3:5"
    cause: str = ""  # " (first cause: …)"
    limit: str = ""
    limit_now: str = ""  # " (now 512Mi)"
    limit_paren: str = ""  # " (512Mi)"
    limit_of: str = ""  # " of 512Mi"
    exit_code: int | None = None
    probe: str = "liveness"
    disruption: str = "a disruption"
    arch: str = ""
    image: str = ""
    image_paren: str = ""  # " (image app:1.0)"
    what: str = ""  # head, else the termination message, else the exit code's meaning
    colon_head: str = ""  # ": head" when there is one
    meaning: str = ""  # the exit code's meaning, capitalised
    has_events: bool = False
    events_readable: bool | None = None  # None: not known whether events could be read
    has_liveness_probe: bool = False
    has_startup_probe: bool = False  # from the spec, or a startup probe event
    no_memory_limit: bool = False  # the caller knows the container sets no memory limit
    probe_failure: str = ""  # the messages of the liveness/startup probe failure events
    java_needed: str = ""  # from an UnsupportedClassVersionError: the release the classes need
    java_running: str = ""  # … and the release the image runs
    log_empty: bool = True


Condition = Callable[[Facts], bool]


def always(_: Facts) -> bool:
    return True


def says(pattern: str, flags: int = re.I) -> Condition:
    """True when the crash's head, signature or message matches `pattern` (any case unless
    `flags` say otherwise)."""
    compiled = re.compile(pattern, flags)
    return lambda facts: compiled.search(facts.subject) is not None


def probe_says(pattern: str) -> Condition:
    """True when a liveness/startup probe failure event's message matches `pattern`."""
    compiled = re.compile(pattern, re.I)
    return lambda facts: compiled.search(facts.probe_failure) is not None


@dataclass(frozen=True, slots=True)
class Hint:
    text: str
    when: Condition = always


@dataclass(frozen=True, slots=True)
class Wording:
    summary: str
    hints: tuple[tuple[Hint, ...], ...] = field(default_factory=tuple)
    default_head: str = ""  # used for {head} when the log named nothing
    summaries: tuple[Hint, ...] = ()  # conditional summaries, tried before `summary`

    def render(self, facts: Facts) -> tuple[str, list[str]]:
        if not facts.head and self.default_head:
            facts = replace(facts, head=self.default_head)
        values = {f.name: getattr(facts, f.name) for f in fields(facts)}
        hints = []
        for group in self.hints:
            chosen = next((h for h in group if h.when(facts)), None)
            if chosen is not None and chosen.text:  # an empty text: this group says nothing
                hints.append(chosen.text.format_map(values))
        summary = next((h.text for h in self.summaries if h.when(facts)), self.summary)
        return summary.format_map(values), hints


def one(text: str, when: Condition = always) -> tuple[Hint, ...]:
    return (Hint(text, when),)


_RESTART_CHECK = "Diff the ConfigMap/Secret/args against the last good rollout."

WORDING: dict[Category, Wording] = {
    Category.GO_PANIC: Wording(
        "Go panic: {head}{where}", default_head="unrecovered panic", hints=(
            one("Exit 2 is Go's unrecovered panic, not 'misuse of shell builtin'.",
                lambda f: f.exit_code == 2),
            one("A nil pointer is dereferenced{frame}: add the missing nil check.",
                says(r"nil pointer")),
            one("Recover panics in long-running goroutines so one bad input cannot kill "
                "the pod."),
        )),
    Category.GO_FATAL_ERROR: Wording(
        "Go fatal error: {head}{where}", default_head="runtime fatal error", hints=(
            (Hint("Go fatal errors cannot be recovered; the process exits 2.",
                  lambda f: f.exit_code == 2),
             Hint("Go fatal errors cannot be recovered, not even by recover().")),
            (Hint("A data race: guard the map with a sync.Mutex (or use sync.Map) and run "
                  "the tests with -race.", says(r"concurrent map")),
             Hint("The Go heap could not grow: raise the memory limit{limit_now} or set "
                  "GOMEMLIMIT below it.", says(r"out of memory")),
             Hint("Every goroutine is blocked: look for a channel nobody sends to.",
                  says(r"deadlock"))),
        )),
    Category.PYTHON_EXCEPTION: Wording(
        "Python exception: {head}{cause}", hints=(
            (Hint("A module is missing from the image, or WORKDIR/PYTHONPATH is wrong.",
                  says(r"ModuleNotFoundError|ImportError")),
             Hint("A required environment variable is missing: set it in the pod spec or the "
                  "ConfigMap/Secret it comes from.", says(r"^KeyError: '[A-Z][A-Z0-9_]+'$",
                                                          re.M))),
            (Hint("The last line of the traceback is what ended the process "
                  "(exit {exit_code}).", lambda f: f.exit_code is not None),
             Hint("The last line of the traceback is what ended the process.")),
        )),
    Category.JVM_OOM: Wording(
        "Java heap exhausted: {head}", default_head="java.lang.OutOfMemoryError", hints=(
            one("Raise -Xmx or -XX:MaxRAMPercentage; the heap must fit inside the container "
                "limit{limit_paren}."),
            (Hint("The JVM already exits on OutOfMemoryError (exit 3): add "
                  "-XX:+HeapDumpOnOutOfMemoryError to find what fills the heap.",
                  lambda f: f.exit_code == 3),
             Hint("Add -XX:+ExitOnOutOfMemoryError so the JVM exits instead of limping on, and "
                  "-XX:+HeapDumpOnOutOfMemoryError to find the leak.")),
        )),
    Category.JVM_EXCEPTION: Wording(
        "Java exception: {head}", hints=(
            (Hint("The classes were compiled for Java {java_needed} but the image runs Java "
                  "{java_running}: use a Java {java_needed} (or newer) base image, or compile "
                  "with --release {java_running}.", lambda f: bool(f.java_needed)),
             Hint("The deepest 'Caused by:' is usually the root cause.", says(r"Caused by:")),
             Hint("")),
            one("Exit 1 means the exception escaped main.", lambda f: f.exit_code == 1),
        )),
    Category.NODE_HEAP_OOM: Wording(
        "Node.js ran out of heap: {head}", default_head="JavaScript heap out of memory", hints=(
            one("Set --max-old-space-size to about 75% of the memory limit{limit_paren}; if "
                "memory grows steadily it is a leak (take a heap snapshot)."),
            one("Node aborts on heap OOM (SIGABRT, 134); as PID 1 it may show 139 or 0."),
        )),
    Category.NODE_EXCEPTION: Wording(
        "Node.js uncaught exception: {head}", hints=(
            one("The module/entry file is not in the image: check COPY paths and WORKDIR.",
                says(r"MODULE_NOT_FOUND|Cannot find module")),
            one("An uncaught exception or unhandled rejection ends Node with exit 1."),
        )),
    Category.RUST_PANIC: Wording(
        "Rust panic: {head}{at}", hints=(
            (Hint("Replace unwrap()/expect() there with error handling; 101 is Rust's panic "
                  "code.", says(r"unwrap\(\)|expect\(|called `(?:Result|Option)::")),
             Hint("The message above is what the code asserted{at}; a panic on the main thread "
                  "exits 101.")),
        )),
    Category.NATIVE_CRASH: Wording(
        "Native crash: {head}", hints=(
            (Hint("The JVM itself crashed (not your Java code): upgrade the JDK; the hs_err_pid "
                  "log has the details.", says(r"Java Runtime Environment")),
             Hint("Native code crashed: get a core dump or run a debug build.")),
            (Hint("", says(r"Java Runtime Environment")),
             Hint("A failed Check/assert names the broken invariant: the line above is the "
                  "bug report.", says(r"Check failed|assert")),
             Hint("qemu emulates another CPU architecture here: build the image for the "
                  "node's architecture.", says(r"qemu:")),
             Hint("")),
        )),
    Category.EXEC_ERROR: Wording(
        "The container's command could not run: {what}", hints=(
            (Hint("The binary is built for {arch} (image {image}) and the node runs another "
                  "architecture: build a multi-arch image or pin nodeSelector "
                  "kubernetes.io/arch={arch}.",
                  lambda f: bool(f.arch) and says(r"exec format error")(f)),
             Hint("The binary is built for another CPU architecture{image_paren} or a script "
                  "lacks its shebang: build a multi-arch image or pin kubernetes.io/arch.",
                  says(r"exec format error")),
             Hint("The script has Windows line endings (CRLF): convert it with dos2unix or "
                  "a .gitattributes eol=lf rule.", says(r"\$'\\r'|\\r: |\r|\^M")),
             Hint("sh is running a script written in another language: its shebang is missing "
                  "or points to an interpreter that is not there (a moved virtualenv, a CRLF "
                  "line end).", says(r"^\S+: \d+: (import|from|def|const|require|use)\b")),
             Hint("Make the entrypoint executable (chmod +x in the Dockerfile) or run it via "
                  "sh.", says(r"permission denied")),
             Hint("The script uses bash syntax (${{var//…}}, arrays, [[ … ]]) but runs under "
                  "sh: start it with bash (#!/bin/bash) or write POSIX sh.",
                  says(r"Bad substitution|Syntax error: .* unexpected")),
             Hint("Exec-form ENTRYPOINT does not expand $VARIABLES: use sh -c or "
                  "JAVA_TOOL_OPTIONS.", says(r"main class \$")),
             Hint("The main class is not on the classpath: check the jar and -cp/-jar in the "
                  "command, and the class name (launcher classes move between framework "
                  "versions).", says(r"main class")),
             Hint("The script is not in the image: check COPY and WORKDIR.",
                  says(r"can't open file")),
             Hint("Check command/args and PATH in the image; a CRLF shebang (#!/bin/sh\\r) "
                  "also reads as 'not found'.")),
        )),
    Category.PORT_IN_USE: Wording(
        "Port already in use: {head}", hints=(
            one("Another process binds the same port: check duplicate containers, sidecars "
                "and hostNetwork; or the old process has not exited yet."),
        )),
    Category.DEPENDENCY_UNAVAILABLE: Wording(
        "A dependency is unreachable: {head}", hints=(
            (Hint("The name does not resolve: check the Service's name and namespace (a short "
                  "name resolves only in the pod's own namespace) and that it exists.",
                  says(r"no such host|not known|could not translate host name|nodename nor "
                       r"servname|does not resolve|ENOTFOUND|EAI_AGAIN|getaddrinfo|"
                       r"UnknownHost|name resolution|nxdomain|could not resolve host")),
             Hint("Nothing accepted the connection: the dependency is down or not ready yet; "
                  "check its pods and that its Service has endpoints.",
                  says(r"refused|ConnectionRefused")),
             Hint("The connection timed out: check NetworkPolicies and the dependency's health.",
                  says(r"timed? ?out|ETIMEDOUT|deadline exceeded")),
             Hint("Check the dependency's Service, its endpoints and DNS; the app exits when it "
                  "cannot connect.")),
            one("Retry with backoff instead of exiting, or gate start-up with an init "
                "container."),
        )),
    Category.CONFIG_ERROR: Wording(
        "Configuration rejected at start-up: {head}", hints=(
            (Hint("A ${{VARIABLE}} placeholder reached the app unsubstituted: set the "
                  "variable, or render the template before start-up.",
                  says(PLACEHOLDER)),
             Hint("A URL reached a host or port setting: Kubernetes injects <SERVICE>_PORT="
                  "tcp://… variables for every Service, which shadow settings of the same name; "
                  "rename the setting or set enableServiceLinks: false.",
                  says(r"tcp://\d")),
             Hint("The credentials the app was given are rejected: check the Secret against "
                  "the dependency's users.", says(BAD_CREDENTIALS.pattern)),
             Hint("The data directory belongs to another initialisation or version: mount "
                  "an empty subdirectory (not the volume root) or migrate the data.",
                  says(r"data director|not empty|has files in it|incompatible with server")),
             Hint("The server was told to load an app its module path does not lead to: check "
                  "the module:attribute argument, WORKDIR and PYTHONPATH.",
                  says(r"[AW]SGI app|Failed to find (attribute|application object)|"
                       r"Flask application|must be callable")),
             Hint("The entrypoint uses bash syntax (${{var//…}}, arrays, [[ … ]]) but runs "
                  "under sh: start it with bash (#!/bin/bash) or write POSIX sh.",
                  says(r"Bad substitution")),
             Hint("The server refuses to run as root: set the pod's securityContext.runAsUser "
                  "to the image's service user.", says(r"as root|\"root\" execution")),
             Hint("The command line is rejected: check command/args in the pod spec against "
                  "the program's usage.",
                  says(r"arguments are required|unrecognized (arguments|option)|flag provided "
                       r"but not defined|unknown (shorthand )?flag|invalid option|"
                       r"required flag|error: argument |no such option|missing option '|"
                       r"invalid value for '-")),
             Hint("A required environment variable is missing: set it in the pod spec or the "
                  "ConfigMap/Secret it comes from.",
                  says(r"KeyError: '[A-Z][A-Z0-9_]+'|key not found: [\"'][A-Z][A-Z0-9]*_|"
                       r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]:? (?:is )?(?:not set|unset|missing|"
                       r"required|empty|not defined|unbound variable|must be set|"
                       r"parameter (?:null or )?not set)\b|"
                       r"(?i:missing|unset|undefined)(?: required)?"
                       r"(?: env(?:ironment)? var(?:iable)?| setting)?:? [A-Z][A-Z0-9]*_[A-Z0-9_]*"
                       r"[A-Z0-9]\b", 0)),
             Hint("The listen address is not one of the pod's: listen on 0.0.0.0 (or the "
                  "pod IP from the downward API) instead of a fixed address.",
                  says(r"cannot assign requested address")),
             Hint(_RESTART_CHECK)),
        )),
    Category.APP_FATAL: Wording(
        "The app logged a fatal error and exited: {head}", hints=(
            (Hint("A stale PID file survived the restart: delete it at start-up (Rails: "
                  "rm -f tmp/pids/server.pid in the entrypoint).",
                  says(r"already running.*pid")),
             Hint("The app chose to exit; the line above is its reason.")),
        )),
    Category.OOM_KILLED: Wording(
        "OOM-killed: the container exceeded its memory limit{limit_of}", summaries=(
            Hint("OOM-killed: the container sets no memory limit, so its pod's limit or the "
                 "node's memory ran out", lambda f: f.no_memory_limit and not f.limit),),
        hints=(
            (Hint("Raise the memory limit or fix the leak: usage hit the limit of {limit}.",
                  lambda f: bool(f.limit)),
             Hint("Set a memory request and limit that fit its usage, so the scheduler places "
                  "it where the memory is and the limit names the culprit.",
                  lambda f: f.no_memory_limit),
             Hint("The memory limit is not known here: compare the container's usage with the "
                  "limit in its spec (kubectl describe pod, Limits), then raise it or fix the "
                  "leak.")),
            one("A child process was OOM-killed; the main process exited {exit_code} "
                "afterwards.", lambda f: f.exit_code not in (None, 137)),
        )),
    Category.PROBE_KILL: Wording(
        "Killed by the kubelet after failing its {probe} probe", hints=(
            (Hint("Nothing listened on the probe's port when the kubelet checked: the app had "
                  "not started yet, or listens on another port or address (0.0.0.0, not "
                  "127.0.0.1).", probe_says(r"connection refused")),
             Hint("The probe timed out: the app was alive but too slow to answer (overloaded, "
                  "blocked, or in a long GC pause).",
                  probe_says(r"timeout|deadline exceeded|timed out")),
             Hint("The health endpoint answered with an error status: the app reported itself "
                  "unhealthy; see what its health check tests.",
                  probe_says(r"statuscode: [45]\d\d")),
             Hint("The kubelet killed the container after its {probe} probe failed "
                  "failureThreshold times in a row.")),
            one("Add a startupProbe for slow starts; raise timeoutSeconds/failureThreshold; "
                "keep dependency checks out of liveness.",
                lambda f: f.probe == "liveness" and not f.has_startup_probe),
        )),
    Category.EVICTED_OR_PREEMPTED: Wording(
        "Stopped by {disruption}, not a crash", hints=(
            (Hint("Give the workload a higher PriorityClass or add capacity.",
                  lambda f: "preempt" in f.disruption.lower()),
             Hint("Set ephemeral-storage requests/limits and keep logs and scratch data off "
                  "the node's disk (emptyDir sizeLimit).", says(r"ephemeral|DiskPressure")),
             Hint("Check node pressure and drains; add a PodDisruptionBudget.")),
        )),
    Category.GRACEFUL_SHUTDOWN: Wording(
        "Stopped on request, not a crash{colon_head}", hints=(
            one("Something stopped the container on purpose: check events (Killing, probe "
                "failures), rollouts and scale-downs."),
            one("It outlived the grace period and was SIGKILLed: handle SIGTERM (a PID 1 "
                "process has no default handler).", lambda f: f.exit_code == 137),
            (Hint("It has a liveness probe and its events were read but have expired (they "
                  "live about an hour): a failing probe is the likeliest sender of that SIGTERM.",
                  lambda f: f.has_liveness_probe and not f.has_events
                  and f.events_readable is True),
             Hint("It has a liveness probe and its events could not be read: a failing probe "
                  "would have sent that SIGTERM; check them (kubectl get events).",
                  lambda f: f.has_liveness_probe and f.events_readable is False),
             Hint("It has a liveness probe and no events were available: a failing probe is a "
                  "likely sender of that SIGTERM.",
                  lambda f: f.has_liveness_probe and not f.has_events)),
        )),
    Category.CLEAN_EXIT: Wording(
        "The main process exited 0 and was restarted (restartPolicy Always)", hints=(
            one("It finished or daemonised: run it in the foreground, or use a Job for "
                "one-shot work."),
        )),
    Category.UNKNOWN: Wording(
        "{meaning}", hints=(
            (Hint("Its events could not be read, so a probe kill or an eviction cannot be "
                  "ruled out; without them look for a node-level OOM (dmesg), a manual kill, or "
                  "PID 1 ignoring SIGTERM.",
                  lambda f: f.exit_code == 137 and f.events_readable is False),
             Hint("No OOMKilled reason and no probe or eviction events: look for a node-level "
                  "OOM (dmesg), a manual kill, or PID 1 ignoring SIGTERM.",
                  lambda f: f.exit_code == 137 and f.events_readable is True),
             Hint("No OOMKilled reason and no probe or eviction events were available: look for "
                  "a node-level OOM (dmesg), a probe kill in the events, a manual kill, or PID 1 "
                  "ignoring SIGTERM.", lambda f: f.exit_code == 137)),
            (Hint("If this is a Go program, exit 2 is an unrecovered panic: read the previous "
                  "log (kubectl logs --previous).", lambda f: f.exit_code == 2 and f.log_empty),
             Hint("No log tail was given, so nothing names the cause: read the previous "
                  "container's log (kubectl logs --previous -c <container>).",
                  lambda f: f.log_empty and f.exit_code not in (None, 0, 137, 143))),
        )),
}


# What the container's kind adds to any diagnosis: (summary prefix, hint), by the kind names
# of the pod status lists (`bot.patrol.model.ContainerKind`'s values).
CONTAINER_KINDS: dict[str, tuple[str, str]] = {
    "init": ("Init container: ", "This is an init container: the pod's app containers have "
             "not started and will not until it succeeds (the pod shows Init:Error or "
             "Init:CrashLoopBackOff)."),
    "sidecar": ("Sidecar container: ", "This is a native sidecar (an init container with "
                "restartPolicy: Always): it is restarted on its own; the app containers keep "
                "running."),
    "ephemeral": ("Ephemeral container: ", "This is an ephemeral (debug) container: it is "
                  "never restarted and the pod's own containers are not affected."),
}
