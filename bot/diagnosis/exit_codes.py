"""Decode a container termination from its exit code and reason alone.

Follows `EXIT_CODES.md`: the number says *how* a process ended and means different things
per runtime (Go exits 2 on an unrecovered panic, not "misuse of shell builtin"); the
reason set by the runtime or kubelet (OOMKilled, StartError, ContainerStatusUnknown, …)
outranks the number. The log signature, when there is one, refines this in `engine`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    category: str
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
    code = "?" if exit_code is None else str(exit_code)
    if reason == "OOMKilled":
        if exit_code in (None, 137):
            text = "OOM-killed: the container hit its memory limit and the kernel killed it"
        else:
            text = (
                f"OOMKilled with exit {code}: a process in the container (not the main one) "
                "was OOM-killed; the main process then exited on its own"
            )
        return ExitDecoding(text, "oom-killed", sig)
    if reason == "ContainerStatusUnknown":
        return ExitDecoding(
            "status lost: the kubelet could not find the container and recorded 137 as "
            "bookkeeping; nothing was killed — check node, kubelet and runtime health",
            "unknown",
            None,
        )
    if reason in ("StartError", "ContainerCannotRun"):
        return ExitDecoding(
            f"the process never started ({reason}): the runtime could not exec the entrypoint",
            "exec-error",
            None,
        )
    if reason == "Unknown" and exit_code in (None, 255):
        return ExitDecoding(
            "exit status lost (containerd reason Unknown, e.g. after a runtime or node restart)",
            "unknown",
            None,
        )
    return _decode_code(exit_code, sig, runtime)


def _decode_code(exit_code: int | None, sig: int | None, runtime: str | None) -> ExitDecoding:
    if exit_code is None:
        return ExitDecoding("no exit code recorded", "unknown", sig)
    table: dict[int, tuple[str, str]] = {
        0: ("exited normally (0); under restartPolicy Always any exit is restarted", "clean-exit"),
        101: ("Rust panic on the main thread (101)", "rust-panic"),
        126: ("command found but not executable (126)", "exec-error"),
        127: ("command not found (127)", "exec-error"),
        128: ("the process could not be started (128, containerd StartError)", "exec-error"),
        134: ("aborted (SIGABRT, 134): abort(), a failed assertion, an uncaught C++ exception, "
              "or a Node.js heap OOM", "native-crash"),
        137: ("killed by SIGKILL (137): not OOM unless the reason says OOMKilled — a probe "
              "kill, eviction, preemption or an expired grace period also end this way",
              "unknown"),
        139: ("segmentation fault (SIGSEGV, 139) in native code", "native-crash"),
        143: ("stopped by SIGTERM (143): a graceful stop, not a crash", "graceful-shutdown"),
    }
    by_runtime: dict[tuple[str, int], tuple[str, str]] = {
        ("go", 2): ("Go unrecovered panic or runtime fatal error (2)", "go-panic"),
        ("go", 1): ("Go log.Fatal / os.Exit(1) (1)", "app-fatal"),
        ("go", 255): ("klog Fatal (255): a Kubernetes-style Go component logged an F line",
                      "app-fatal"),
        ("python", 1): ("Python uncaught exception (1)", "python-exception"),
        ("python", 2): ("Python command-line error (2): bad arguments or a missing script",
                        "exec-error"),
        ("python", 3): ("gunicorn worker failed to boot (3)", "app-fatal"),
        ("python", 4): ("gunicorn app failed to load (4)", "app-fatal"),
        ("node", 1): ("Node.js uncaught exception or unhandled rejection (1)", "node-exception"),
        ("jvm", 1): ("JVM: an exception escaped main (1)", "jvm-exception"),
        ("jvm", 3): ("JVM exited on OutOfMemoryError (-XX:+ExitOnOutOfMemoryError, 3)",
                     "jvm-oom"),
        ("rust", 101): ("Rust panic on the main thread (101)", "rust-panic"),
    }
    if runtime and (runtime, exit_code) in by_runtime:
        text, category = by_runtime[(runtime, exit_code)]
        return ExitDecoding(text, category, sig)
    if exit_code in table:
        text, category = table[exit_code]
        return ExitDecoding(text, category, sig)
    if exit_code == 2:
        return ExitDecoding(
            "exit 2: a Go program's unrecovered panic or fatal error (the usual case in "
            "Kubernetes), or a command-line usage error — the log decides",
            "unknown",
            None,
        )
    if exit_code == 1:
        return ExitDecoding("generic failure (1): the log tail decides", "unknown", None)
    if exit_code == 255:
        return ExitDecoding(
            "exit 255: klog/glog Fatal in Go components, or exit(-1)", "app-fatal", None
        )
    if sig is not None:
        return ExitDecoding(_signal_text(sig) + f" ({exit_code})", "native-crash"
                            if sig in (4, 6, 7, 8, 11) else "unknown", sig)
    return ExitDecoding(f"application-defined exit code {exit_code}", "unknown", None)
