"""Choosing the lines that explain a crash when several could: the exception over the hint
under it, the headline with its deepest cause, the first of several panics, the assertion
under a wrapper's `Aborted (core dumped)`. Each case is written for this test in the shape a
runtime prints (not copied from the fixture files)."""

from __future__ import annotations

import pytest

from bot.diagnosis.engine import Evidence, diagnose


def signature_of(log: str, exit_code: int | None = None) -> tuple[str, tuple[str, ...]]:
    d = diagnose(Evidence(exit_code=exit_code, log=log))
    assert 0 < len(d.signature) <= 8
    return d.category, d.signature


# ---- a hint is not the error it explains (more in ROOTS below) -----------------------------
def test_a_traceback_that_lost_its_indentation_still_ends_in_its_exception() -> None:
    log = ("Traceback (most recent call last):\n"
           'File "/srv/ledger/boot.py", line 9, in <module>\n'
           "store = Store.open(url)\n"
           'File "/srv/ledger/store.py", line 41, in open\n'
           "return cls(pool.connect())\n"
           "ledger.errors.StoreUnavailable: connection refused by 10.2.0.7:7000\n"
           "Is the server running on host 10.2.0.7 and accepting connections?\n"
           "worker exited with code 1\n")
    category, signature = signature_of(log, exit_code=1)
    assert category == "dependency-unavailable"
    assert signature[0] == "ledger.errors.StoreUnavailable: connection refused by 10.2.0.7:7000"


# ---- a headline and its deepest cause -------------------------------------------------------
@pytest.mark.parametrize(("log", "category", "quoted"), [
    ("Error: Could not find or load main class com.acme.billing.Main\n"
     "Caused by: java.lang.ClassNotFoundException: com.acme.billing.Main\n",
     "exec-error", ("Error: Could not find or load main class com.acme.billing.Main",
                    "Caused by: java.lang.ClassNotFoundException: com.acme.billing.Main")),
    ("+ exec java -jar /srv/billing.jar\n"
     "Error: LinkageError occurred while loading main class com.acme.billing.Main\n"
     "\tjava.lang.UnsupportedClassVersionError: com/acme/billing/Main has been compiled by a "
     "more recent version of the Java Runtime (class file version 65.0), this version of the "
     "Java Runtime only recognizes class file versions up to 61.0\n",
     "jvm-exception", ("Error: LinkageError occurred while loading main class",
                       "UnsupportedClassVersionError: com/acme/billing/Main has been compiled")),
])
def test_the_launcher_error_and_the_cause_it_prints(log: str, category: str,
                                                    quoted: tuple[str, ...]) -> None:
    got, signature = signature_of(log, exit_code=1)
    assert got == category
    text = "\n".join(signature)
    assert all(q in text for q in quoted)


# ---- several panics: the first is the root --------------------------------------------------
def test_a_task_panic_wrapped_by_a_join_error_keeps_the_first_panic_as_root() -> None:
    log = ("thread 'tokio-runtime-worker' panicked at src/sync/pull.rs:88:14:\n"
           "called `Option::unwrap()` on a `None` value\n"
           "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
           "thread 'main' panicked at src/main.rs:31:42:\n"
           "called `Result::unwrap()` on an `Err` value: JoinError::Panic(Id(17), \"called "
           "`Option::unwrap()` on a `None` value\", ...)\n")
    d = diagnose(Evidence(exit_code=101, log=log))
    assert d.category == "rust-panic"
    assert d.signature[:2] == ("thread 'tokio-runtime-worker' panicked at src/sync/pull.rs:88:14:",
                               "called `Option::unwrap()` on a `None` value")
    assert d.signature[-1] == "thread 'main' panicked at src/main.rs:31:42:"
    assert d.summary == ("Rust panic: called `Option::unwrap()` on a `None` value at "
                         "src/sync/pull.rs:88:14")


def test_panics_far_apart_that_do_not_wrap_each_other_keep_the_last() -> None:
    first = ("thread 'main' panicked at src/a.rs:1:1:\nold failure\n"
             + "".join(f"INFO request {i} served\n" for i in range(10)))
    log = first + "thread 'main' panicked at src/b.rs:2:2:\nnew failure\n"
    d = diagnose(Evidence(exit_code=101, log=log))
    assert d.signature == ("thread 'main' panicked at src/b.rs:2:2:", "new failure")


# ---- the assertion under a wrapper's report -------------------------------------------------
def test_an_assertion_then_a_backtrace_then_the_wrapper_report() -> None:
    log = ("node[1]: ../src/util.cc:20:void node::Check(): Assertion `(r) == (0)' failed.\n"
           " 1: 0x8f0a50 node::Abort() [node]\n"
           " 2: 0x8f0b10  [node]\n"
           " 3: 0x9a1c22 node::worker::Worker::StartThread(v8::FunctionCallbackInfo<v8::Value> "
           "const&) [node]\n"
           " 4: 0x7f7bd10 __libc_start_main [/lib/libc.so.6]\n"
           "/app/run.sh: line 12:    42 Aborted                 (core dumped) node server.js\n")
    category, signature = signature_of(log)
    assert category == "native-crash"
    assert signature[0].endswith("Assertion `(r) == (0)' failed.")
    assert signature[-1].endswith("Aborted                 (core dumped) node server.js")
    assert any("node::worker::Worker::StartThread" in line for line in signature)
    assert not any("node::Abort" in line and "StartThread" not in line
                   for line in signature[2:-1])


# ---- gunicorn points up to the import error ---------------------------------------------------
def test_gunicorn_gave_up_after_an_import_error_whose_traceback_scrolled_away() -> None:
    log = ("ImportError: cannot import name 'Celery' from partially initialized module 'tasks'\n"
           "[2026-11-27 09:00:00 +0000] [9] [INFO] Worker exiting (pid: 9)\n"
           "[2026-11-27 09:00:00 +0000] [1] [INFO] Shutting down: Master\n"
           "[2026-11-27 09:00:00 +0000] [1] [INFO] Reason: Worker failed to boot.\n")
    d = diagnose(Evidence(exit_code=3, log=log))
    assert d.category == "python-exception"
    assert d.signature[0].startswith("ImportError: cannot import name 'Celery'")
    assert d.summary.startswith("Python exception: ImportError")


# ---- a log viewer's source column -------------------------------------------------------------
def test_a_source_column_before_every_line_is_not_part_of_the_crash() -> None:
    body = ["{\"level\":\"info\",\"msg\":\"compacting\"}", "panic: send on closed channel", "",
            "goroutine 4411 [running]:", "main.(*Hub).broadcast(0xc000120000)",
            "/go/src/hub/hub.go:88 +0x1b5", "created by main.(*Hub).Run"]
    log = "\n".join(f"2026-11-27 09:00:0{i % 10} | hub - {line}".rstrip()
                    for i, line in enumerate(body))
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.category == "go-panic"
    assert d.signature[0] == "panic: send on closed channel"
    assert "main.(*Hub).broadcast(0xc000120000)" in d.signature
    assert d.summary == "Go panic: send on closed channel in main.(*Hub).broadcast (hub.go:88)"


def test_a_column_that_only_some_lines_share_is_kept() -> None:
    log = "db - primary elected\nready\nserving\nfatal: db - replica lost quorum\n"
    _, signature = signature_of(log, exit_code=1)
    assert signature == ("fatal: db - replica lost quorum",)


# ---- an events table whose columns were squeezed by a copy ------------------------------------
def test_a_squeezed_events_table_is_still_read() -> None:
    log = ("Events:\nType Reason Age From Message\n"
           "Warning Unhealthy 3m (x3 over 4m) kubelet Liveness probe failed: Get "
           "\"http://10.0.0.4:8080/live\": context deadline exceeded\n"
           "Normal Killing 3m kubelet Container web failed liveness probe, will be restarted\n"
           "Warning Unhealthy 2m (x9 over 4m) kubelet Readiness probe failed: HTTP probe failed "
           "with statuscode: 503\n")
    d = diagnose(Evidence(exit_code=137, log=log))
    assert d.category == "probe-kill" and "liveness probe" in d.summary
    assert "Normal Killing 3m kubelet Container web failed liveness probe, will be restarted" in (
        d.signature)


# ---- Rust: main returned an Err printed with Debug --------------------------------------------
def test_a_debug_printed_error_from_main_and_the_io_kind_dumped_above_it() -> None:
    log = ("2026-11-27T09:00:00Z  INFO store: opening sled at /data\n"
           "[src/store.rs:40] err = Io(\n    Os {\n        code: 13,\n"
           "        kind: PermissionDenied,\n        message: \"Permission denied\",\n    },\n)\n"
           "Error: Custom { kind: Other, error: \"store init failed\" }\n")
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.runtime == "rust"
    assert d.signature == ("        kind: PermissionDenied,",
                           "Error: Custom { kind: Other, error: \"store init failed\" }")


def test_prose_after_error_is_not_taken_for_a_debug_print() -> None:
    log = "starting\nError: Unable to open the store (see above)\n"
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.runtime != "rust"


# ---- a server's own crash report; container-runtime and shell start-up failures ---------------
def test_a_server_crash_report_names_the_signal_not_its_empty_assertion_field() -> None:
    log = ("=== BUG REPORT START ===\n"
           "1:M 27 Nov 2026 09:00:00.000 # Keystore 7.2.4 crashed by signal: 11, si_code: 1\n"
           "1:M 27 Nov 2026 09:00:00.000 # Accessing address: 0x18\n"
           "1:M 27 Nov 2026 09:00:00.000 # Failed assertion: <no assertion failed> (<no file>:0)\n"
           "\n------ STACK TRACE ------\n")
    d = diagnose(Evidence(exit_code=139, log=log))
    assert d.category == "native-crash"
    assert d.signature[0].endswith("# Keystore 7.2.4 crashed by signal: 11, si_code: 1")
    assert d.summary == "Native crash: Keystore 7.2.4 crashed by signal: 11, si_code: 1"


@pytest.mark.parametrize(("log", "quoted"), [
    ('container_linux.go:380: starting container process caused: exec: "/srv/agent": '
     "permission denied\n", 'exec: "/srv/agent": permission denied'),
    ('OCI-less runtime: starting container process caused "exec: \\"/srv/agent\\": no such file '
     'or directory"\n', "no such file or directory"),
])
def test_start_up_failures_of_the_runtime_and_the_entrypoint_are_exec_errors(
        log: str, quoted: str) -> None:
    d = diagnose(Evidence(log=log))
    assert d.category == "exec-error", (d.category, d.signature)
    assert quoted in "\n".join(d.signature)


def test_bash_syntax_under_sh_is_a_start_up_config_error_that_says_so() -> None:
    """Issue 17: `Bad substitution` in an entrypoint is a start-up/config error, not exec."""
    d = diagnose(Evidence(exit_code=2, log="INFO  [db] migrations applied\n"
                                           "/srv/start.sh: 7: Bad substitution\n"))
    assert d.category == "config-error", (d.category, d.signature)
    assert d.signature == ("/srv/start.sh: 7: Bad substitution",)
    assert any("bash syntax" in h for h in d.hints), d.hints


@pytest.mark.parametrize("line", [
    'ERROR:    Error loading ASGI app. Could not import module "service.api".',
    "[2026-11-27 09:00:00 +0000] [8] [ERROR] Failed to find attribute 'application' in 'site'.",
    "Error: Could not locate a Flask application. Use the 'flask --app' option.",
])
def test_an_app_server_told_to_load_an_app_that_is_not_there_is_a_config_error(
        line: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=f"INFO:     Started server process [1]\n{line}\n"))
    assert d.category == "config-error"
    assert d.signature == (line,)


# ---- describe/event text ----------------------------------------------------------------------
def test_the_most_repeated_liveness_failure_is_quoted_and_readiness_is_not() -> None:
    log = ("  Type     Reason     Age                From     Message\n"
           "  ----     ------     ----               ----     -------\n"
           "  Warning  Unhealthy  9h (x2 over 9h)    kubelet  Liveness probe failed: Get "
           "\"http://10.0.0.9:9000/live\": dial tcp 10.0.0.9:9000: connect: connection refused\n"
           "  Warning  Unhealthy  2h (x140 over 9h)  kubelet  Readiness probe failed: HTTP probe "
           "failed with statuscode: 503\n"
           "  Warning  Unhealthy  2h (x57 over 9h)   kubelet  Liveness probe failed: HTTP probe "
           "failed with statuscode: 500\n"
           "  Normal   Killing    2h (x19 over 9h)   kubelet  Container api failed liveness probe, "
           "will be restarted\n")
    d = diagnose(Evidence(exit_code=137, log=log))
    assert d.category == "probe-kill"
    text = "\n".join(d.signature)
    assert "Liveness probe failed: HTTP probe failed with statuscode: 500" in text
    assert "connection refused" not in text and "Readiness" not in text
    assert "failed liveness probe, will be restarted" in text


def test_only_readiness_failures_do_not_make_a_probe_kill() -> None:
    log = ("  Type     Reason     Age              From     Message\n"
           "  Warning  Unhealthy  2m (x40 over 9m)  kubelet  Readiness probe failed: HTTP probe "
           "failed with statuscode: 503\n"
           "  Warning  BackOff    1m (x9 over 9m)   kubelet  Back-off restarting failed "
           "container\n")
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.category != "probe-kill"


def test_a_container_lost_when_its_pod_was_evicted_is_the_eviction() -> None:
    text = ("Name:         web-5d8f7c9b6-k2j4h\nNamespace:    shop\nStatus:       Failed\n"
            "Reason:       Evicted\nMessage:      The node was low on resource: memory. "
            "Threshold quantity: 100Mi, available: 80Mi.\nContainers:\n  web:\n"
            "    State:          Terminated\n      Reason:       ContainerStatusUnknown\n"
            "      Message:      The container could not be located when the pod was terminated\n"
            "      Exit Code:    137\n")
    d = diagnose(Evidence(log=text))
    assert d.category == "evicted-or-preempted"
    assert any("low on resource: memory" in line for line in d.signature)
    lost = diagnose(Evidence(log=text.replace("Reason:       Evicted\n", "").replace(
        "Message:      The node was low on resource: memory. Threshold quantity: 100Mi, "
        "available: 80Mi.\n", "")))
    assert lost.category == "unknown"


# ---- the root and what explains it: category and the exact lines quoted -----------------------
ROOTS = [
    pytest.param(
        "orders.db.ConnectError: could not reach the primary: connection refused\n"
        "Is the server running on host \"pg-0\" and accepting\nconnections on port 6543?\n",
        1, "dependency-unavailable",
        ("orders.db.ConnectError: could not reach the primary: connection refused",),
        id="an exception with a hint under it is quoted, not the hint"),
    pytest.param(
        "[2026-11-27 09:00:00.000 +0000] INFO: booting\n"
        "[2026-11-27 09:00:01.000 +0000] ERROR: listen EADDRINUSE: address already in use "
        "0.0.0.0:8443\n"
        "    err: {\n"
        '      "type": "Error",\n'
        '      "message": "listen EADDRINUSE: address already in use 0.0.0.0:8443",\n'
        '      "stack":\n'
        "          Error: listen EADDRINUSE: address already in use 0.0.0.0:8443\n"
        "              at Server.setupListenHandle [as _listen2] (node:net:1817:16)\n"
        '      "code": "EADDRINUSE"\n'
        "    }\n",
        None, "port-in-use",
        ("[2026-11-27 09:00:01.000 +0000] ERROR: listen EADDRINUSE: address already in use "
         "0.0.0.0:8443",),
        id="an error logged with its object dumped under it quotes the log line"),
    pytest.param(
        "svc: ring.c:77: push: Assertion (head) != (tail) failed.\nAborted (core dumped)\n",
        None, "native-crash",
        ("svc: ring.c:77: push: Assertion (head) != (tail) failed.", "Aborted (core dumped)"),
        id="an assertion without quotes is an assertion"),
    pytest.param(
        "Compiling module graph\n"
        "/ci/steps.sh: line 40:  311 Aborted                 (core dumped) ./bundle build\n"
        "The step \"./bundle build\" exited with 134.\n",
        134, "native-crash",
        ("/ci/steps.sh: line 40:  311 Aborted                 (core dumped) ./bundle build",
         'The step "./bundle build" exited with 134.'),
        id="a shell report of a signal and the runner's exit status"),
    pytest.param(
        "/srv/start.sh: line 2: $'\\r': command not found\n"
        "/srv/start.sh: line 3: cd: $'app\\r': No such file or directory\n"
        "/srv/start.sh: line 4: $'\\r': command not found\n"
        "Traceback (most recent call last):\n  File \"/srv/run.py\", line 1, in <module>\n"
        "    import app\nModuleNotFoundError: No module named 'app'\n",
        1, "python-exception",
        ("ModuleNotFoundError: No module named 'app'",
         "/srv/start.sh: line 2: $'\\r': command not found",
         "/srv/start.sh: line 3: cd: $'app\\r': No such file or directory"),
        id="an entrypoint that went on after failing lines is quoted after the crash"),
    pytest.param(
        '  File "/usr/lib/python3.12/socket.py", line 850, in create_connection\n'
        "    sock.connect(sa)\n"
        "ConnectionRefusedError: [Errno 111] Connection refused\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n  File \"/srv/jobs.py\", line 12, in <module>\n"
        "    queue.ping()\n"
        "jobs.queue.BrokerUnavailable: cannot reach the broker at mq:5672\n",
        1, "dependency-unavailable",
        ("ConnectionRefusedError: [Errno 111] Connection refused",
         "jobs.queue.BrokerUnavailable: cannot reach the broker at mq:5672"),
        id="the cause above a chain separator is kept without its traceback's header"),
]


@pytest.mark.parametrize(("log", "exit_code", "category", "signature"), ROOTS)
def test_the_root_and_what_explains_it(log: str, exit_code: int | None, category: str,
                                       signature: tuple[str, ...]) -> None:
    assert signature_of(log, exit_code) == (category, signature)
