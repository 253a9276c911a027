"""Decode a container termination from its exit code and reason alone.

Follows docs/exit-codes.md: the number says *how* a process ended and means different things
per runtime (Go exits 2 on an unrecovered panic, not "misuse of shell builtin"); the
reason set by the runtime or kubelet (OOMKilled, StartError, ContainerStatusUnknown, …)
outranks the number. The log signature, when there is one, refines this in `engine`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.diagnosis.categories import Category

SIGNAL_NAMES: dict[int, str] = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
    7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
    13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
    31: "SIGSYS",
}


@dataclass(frozen=True, slots=True)
class ExitDecoding:
    """What an exit code and reason mean, before any log is read."""

    meaning: str
    category: Category
    signal: int | None = None


def signal_of(exit_code: int | None, signal: int | None = None) -> int | None:
    """The signal that ended the process: the API's `signal` field, else exitCode − 128."""
    if signal:
        return signal
    if exit_code is not None and 128 < exit_code < 128 + 65:
        return exit_code - 128
    return None


def _signal_text(sig: int) -> str:
    return f"killed by signal {sig} ({SIGNAL_NAMES.get(sig, 'SIG' + str(sig))})"


def decode_termination(
    exit_code: int | None,
    reason: str | None = None,
    signal: int | None = None,
    runtime: str | None = None,
) -> ExitDecoding:
    """Decode (exit code, reason, signal) for a runtime (go, python, jvm, node, rust, …)."""
    sig = signal_of(exit_code, signal)
    return _decode_reason(reason, exit_code, sig) or _decode_code(exit_code, sig, runtime)


# Reasons that the kubelet or the container runtime set and that outrank the number
# (docs/exit-codes.md, "Reasons").
_REASONS: dict[str, tuple[str, Category]] = {
    "ContainerStatusUnknown": (
        "status lost: the kubelet could not find the container and recorded 137 as "
        "bookkeeping; nothing was killed — check node, kubelet and runtime health",
        Category.UNKNOWN),
    "StartError": ("the process never started (StartError): the runtime could not exec the "
                   "entrypoint", Category.EXEC_ERROR),
    "ContainerCannotRun": ("the process never started (ContainerCannotRun): the runtime could "
                           "not exec the entrypoint", Category.EXEC_ERROR),
}


def _decode_reason(reason: str | None, exit_code: int | None, sig: int | None
                   ) -> ExitDecoding | None:
    if reason == "OOMKilled":
        if exit_code in (None, 137):
            text = "OOM-killed: the container hit its memory limit and the kernel killed it"
        else:
            text = (f"OOMKilled with exit {exit_code}: a process in the container (not the main "
                    "one) was OOM-killed; the main process then exited on its own")
        return ExitDecoding(text, Category.OOM_KILLED, sig)
    if reason == "Unknown" and exit_code in (None, 255):
        return ExitDecoding("exit status lost (containerd reason Unknown, e.g. after a runtime "
                            "or node restart)", Category.UNKNOWN, None)
    if reason in _REASONS:
        text, category = _REASONS[reason]
        return ExitDecoding(text, category, None)
    return None


# What a number means whatever the runtime (docs/exit-codes.md, "Exit codes").
_BY_CODE: dict[int, tuple[str, Category]] = {
    0: ("exited normally (0); under restartPolicy Always any exit is restarted",
        Category.CLEAN_EXIT),
    1: ("generic failure (1): the log tail decides", Category.UNKNOWN),
    2: ("exit 2: a Go program's unrecovered panic or fatal error (the usual case in "
        "Kubernetes), or a command-line usage error — the log decides", Category.UNKNOWN),
    101: ("Rust panic on the main thread (101)", Category.RUST_PANIC),
    126: ("command found but not executable (126)", Category.EXEC_ERROR),
    127: ("command not found (127)", Category.EXEC_ERROR),
    128: ("the process could not be started (128, containerd StartError)", Category.EXEC_ERROR),
    134: ("aborted (SIGABRT, 134): abort(), a failed assertion, an uncaught C++ exception, "
          "or a Node.js heap OOM", Category.NATIVE_CRASH),
    137: ("killed by SIGKILL (137): not OOM unless the reason says OOMKilled — a probe "
          "kill, eviction, preemption or an expired grace period also end this way",
          Category.UNKNOWN),
    139: ("segmentation fault (SIGSEGV, 139) in native code", Category.NATIVE_CRASH),
    143: ("stopped by SIGTERM (143): a graceful stop, not a crash", Category.GRACEFUL_SHUTDOWN),
    255: ("exit 255: klog/glog Fatal in Go components, or exit(-1)", Category.APP_FATAL),
}
# What a number means for one runtime (docs/exit-codes.md, "Per runtime"); outranks _BY_CODE.
_BY_RUNTIME: dict[tuple[str, int], tuple[str, Category]] = {
    ("go", 2): ("Go unrecovered panic or runtime fatal error (2)", Category.GO_PANIC),
    ("go", 1): ("Go log.Fatal / os.Exit(1) (1)", Category.APP_FATAL),
    ("go", 255): ("klog Fatal (255): a Kubernetes-style Go component logged an F line",
                  Category.APP_FATAL),
    ("python", 1): ("Python uncaught exception (1)", Category.PYTHON_EXCEPTION),
    ("python", 2): ("Python command-line error (2): bad arguments or a missing script",
                    Category.EXEC_ERROR),
    ("python", 3): ("gunicorn worker failed to boot (3)", Category.APP_FATAL),
    ("python", 4): ("gunicorn app failed to load (4)", Category.APP_FATAL),
    ("node", 1): ("Node.js uncaught exception or unhandled rejection (1)",
                  Category.NODE_EXCEPTION),
    ("jvm", 1): ("JVM: an exception escaped main (1)", Category.JVM_EXCEPTION),
    ("jvm", 3): ("JVM exited on OutOfMemoryError (-XX:+ExitOnOutOfMemoryError, 3)",
                 Category.JVM_OOM),
    ("rust", 101): ("Rust panic on the main thread (101)", Category.RUST_PANIC),
}
_CRASH_SIGNALS = (4, 6, 7, 8, 11)  # SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV


def _decode_code(exit_code: int | None, sig: int | None, runtime: str | None) -> ExitDecoding:
    if exit_code is None:
        return ExitDecoding("no exit code recorded", Category.UNKNOWN, sig)
    entry = _BY_RUNTIME.get((runtime, exit_code)) if runtime else None
    entry = entry or _BY_CODE.get(exit_code)
    if entry is not None:
        return ExitDecoding(entry[0], entry[1], sig)
    if sig is not None:
        category = Category.NATIVE_CRASH if sig in _CRASH_SIGNALS else Category.UNKNOWN
        return ExitDecoding(_signal_text(sig) + f" ({exit_code})", category, sig)
    return ExitDecoding(f"application-defined exit code {exit_code}", Category.UNKNOWN, None)
