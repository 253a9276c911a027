"""The detector table: what each kind of crash looks like in a log tail.

`DETECTORS` runs in order, from the most to the least telling kind of evidence (a Go panic
beats a "shutting down" line; a traceback beats an ERROR log line); the first finding wins
and is then refined to its most specific root cause (`bot.diagnosis.signatures.refine`).
Each entry declares what it matches (its module's patterns), the category a match implies
and the runtime it proves; adding a runtime is adding a module and a row here. No rule keys
on a project's name, path or text: only on shapes that a runtime or tool prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.diagnosis.categories import Category
from bot.diagnosis.detectors import (
    databases,
    dotnet,
    erlang,
    go,
    jvm,
    logs,
    native,
    node,
    perl,
    php,
    proxies,
    python,
    ruby,
    rust,
    startup,
)
from bot.diagnosis.finding import Finding
from bot.diagnosis.logtext import Line


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of crash: its name, the category a match implies (a detector may name a
    more precise one per match, e.g. a JVM heap OOM), the runtime it proves, its finder."""

    name: str
    category: Category
    runtime: str | None
    find: Callable[[Sequence[Line]], Finding | None]
    # Reads an app's own lines, not a runtime's report: a follow-on it quotes alone ("startup
    # failed") gets the statement above it (`signatures.with_cause`).
    generic: bool = False


DETECTORS: tuple[Detector, ...] = (
    Detector("go panic / fatal error", Category.GO_PANIC, "go", go.detect),
    Detector("rust panic", Category.RUST_PANIC, "rust", rust.detect),
    Detector("HotSpot crash (hs_err)", Category.NATIVE_CRASH, "jvm", jvm.detect_hs_err),
    Detector("V8 heap out of memory", Category.NODE_HEAP_OOM, "node", node.detect_heap),
    Detector("gunicorn gave up", Category.APP_FATAL, "python", python.detect_gunicorn),
    Detector("python traceback", Category.PYTHON_EXCEPTION, "python", python.detect),
    Detector("native crash", Category.NATIVE_CRASH, None, native.detect),
    Detector(".NET unhandled exception / host failure", Category.APP_FATAL, "dotnet",
             dotnet.detect),
    Detector("JVM exception", Category.JVM_EXCEPTION, "jvm", jvm.detect),
    Detector("node uncaught error", Category.NODE_EXCEPTION, "node", node.detect),
    Detector("error returned from main (anyhow/eyre, Debug)", Category.APP_FATAL, "rust",
             rust.detect_main_error),
    Detector("ruby exception / rails aborted", Category.APP_FATAL, "ruby", ruby.detect),
    Detector("php fatal error", Category.APP_FATAL, "php", php.detect),
    Detector("elixir/erlang exception", Category.APP_FATAL, "erlang", erlang.detect),
    Detector("perl die", Category.APP_FATAL, "perl", perl.detect),
    Detector("entrypoint could not run", Category.EXEC_ERROR, None, startup.detect_exec),
    Detector("proxy configuration", Category.CONFIG_ERROR, None, proxies.detect),
    Detector("database server start-up", Category.APP_FATAL, None, databases.detect),
    Detector("configuration rejected", Category.CONFIG_ERROR, None, startup.detect_config),
    Detector("fatal log line", Category.APP_FATAL, None, logs.detect_fatal, generic=True),
    Detector("dependency or port", Category.DEPENDENCY_UNAVAILABLE, None,
             logs.detect_dependency),
    Detector("graceful shutdown", Category.GRACEFUL_SHUTDOWN, None, logs.detect_shutdown),
)
