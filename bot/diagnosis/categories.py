"""The `category` vocabulary of a diagnosis (ARCHITECTURE.md, "Categories").

A `StrEnum`, so a category is still the plain string the JSON contract and the stored
history carry (`Category.GO_PANIC == "go-panic"`).
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Why a container ended, from the most to the least specific kind of evidence."""

    GO_PANIC = "go-panic"
    GO_FATAL_ERROR = "go-fatal-error"
    PYTHON_EXCEPTION = "python-exception"
    JVM_EXCEPTION = "jvm-exception"
    JVM_OOM = "jvm-oom"
    NODE_EXCEPTION = "node-exception"
    NODE_HEAP_OOM = "node-heap-oom"
    RUST_PANIC = "rust-panic"
    NATIVE_CRASH = "native-crash"
    EXEC_ERROR = "exec-error"
    PORT_IN_USE = "port-in-use"
    DEPENDENCY_UNAVAILABLE = "dependency-unavailable"
    CONFIG_ERROR = "config-error"
    APP_FATAL = "app-fatal"
    OOM_KILLED = "oom-killed"
    PROBE_KILL = "probe-kill"
    EVICTED_OR_PREEMPTED = "evicted-or-preempted"
    GRACEFUL_SHUTDOWN = "graceful-shutdown"
    CLEAN_EXIT = "clean-exit"
    UNKNOWN = "unknown"


# Categories that name a crash the log proves; they outrank circumstantial evidence
# (probe events, a disruption condition).
REAL_CRASHES = frozenset({
    Category.GO_PANIC, Category.GO_FATAL_ERROR, Category.PYTHON_EXCEPTION,
    Category.JVM_EXCEPTION, Category.JVM_OOM, Category.NODE_EXCEPTION, Category.NODE_HEAP_OOM,
    Category.RUST_PANIC, Category.NATIVE_CRASH, Category.EXEC_ERROR, Category.PORT_IN_USE,
    Category.DEPENDENCY_UNAVAILABLE, Category.CONFIG_ERROR, Category.APP_FATAL,
})

# Categories whose finding may be narrowed to the root cause its lines show (a traceback
# ending in a refused connection is dependency-unavailable).
REFINABLE = frozenset({
    Category.PYTHON_EXCEPTION, Category.JVM_EXCEPTION, Category.NODE_EXCEPTION,
    Category.GO_PANIC, Category.RUST_PANIC, Category.APP_FATAL, Category.CONFIG_ERROR,
})
