"""Signatures survive noise: 500 lines of each runtime's chatter before and after,
ANSI colours, CRLF, kubelet timestamps and JSON-structured logs."""

from __future__ import annotations

import json

import pytest

from bot.diagnosis.engine import Evidence, diagnose
from bot.diagnosis.logtext import split_lines
from bot.diagnosis.signatures import extract_signature

NOISE = {
    "go": [f"I1127 09:{i % 60:02d}:00.000000       1 controller.go:{i}] synced item {i}"
           for i in range(500)],
    "python": [f"2026-11-27 09:00:{i % 60:02d},000 INFO worker: processed batch {i}"
               for i in range(500)],
    "jvm": [f"2026-11-27 09:00:00.{i % 1000:03d}  INFO 1 --- [main] c.e.App : tick {i}"
            for i in range(500)],
    "node": [f"[{i}] GET /api/items 200 {i % 50}ms" for i in range(500)],
}

CRASHES = {
    "go": ("panic: assignment to entry in nil map\n\ngoroutine 7 [running]:\n"
           "main.(*Cache).Put(...)\n\t/src/cache.go:31 +0x1d\n", 2,
           "panic: assignment to entry in nil map", "go-panic"),
    "python": ("Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in <module>\n"
               "    run()\nZeroDivisionError: division by zero\n", 1,
               "ZeroDivisionError: division by zero", "python-exception"),
    "jvm": ('Exception in thread "main" java.lang.IllegalStateException: boom\n'
            "\tat com.example.App.main(App.java:10)\n", 1,
            'Exception in thread "main" java.lang.IllegalStateException: boom', "jvm-exception"),
    "node": ("/app/index.js:4\n  throw new TypeError('x is not a function');\n  ^\n\n"
             "TypeError: x is not a function\n    at Object.<anonymous> (/app/index.js:4:9)\n",
             1, "TypeError: x is not a function", "node-exception"),
}


@pytest.mark.parametrize("runtime", sorted(CRASHES))
@pytest.mark.parametrize("noise", sorted(NOISE))
def test_crash_wins_over_500_noise_lines_before_and_after(runtime: str, noise: str) -> None:
    crash, code, expected, category = CRASHES[runtime]
    log = "\n".join(NOISE[noise]) + "\n" + crash + "\n".join(NOISE[noise][:500])
    d = diagnose(Evidence(exit_code=code, log=log))
    assert expected in d.signature
    assert d.category == category


def test_ansi_colours_crlf_and_kubelet_timestamps_are_stripped() -> None:
    raw = CRASHES["go"][0].replace("panic:", "\x1b[31mpanic:\x1b[0m").replace("\n", "\r\n")
    stamped = "\n".join(f"2026-11-27T09:00:00.123456789Z {line}" for line in raw.split("\n"))
    d = diagnose(Evidence(exit_code=2, log=stamped))
    assert d.signature[0] == "panic: assignment to entry in nil map"


def test_json_structured_logs_use_the_message_field() -> None:
    lines = [json.dumps({"level": "info", "msg": f"tick {i}"}) for i in range(20)]
    lines.append(json.dumps({"level": "fatal", "msg": "cannot start",
                             "error": "dial tcp 10.0.0.9:5432: connect: connection refused"}))
    d = diagnose(Evidence(exit_code=1, log="\n".join(lines)))
    assert d.category == "dependency-unavailable"
    assert "cannot start: dial tcp 10.0.0.9:5432: connect: connection refused" in d.signature[0]


def test_other_goroutines_stacks_do_not_win() -> None:
    log = ("panic: boom\n\ngoroutine 9 [running]:\nmain.work()\n\t/src/w.go:5 +0x1\n\n"
           "goroutine 1 [chan receive]:\nmain.main()\n\t/src/main.go:9 +0x2\n"
           + "\n".join(f"goroutine {i} [select]:\nnet/http.(*conn).serve()\n\t/x.go:1 +0x1"
                       for i in range(10, 60)))
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.signature == ("panic: boom", "goroutine 9 [running]:", "main.work()",
                           "\t/src/w.go:5 +0x1")


def test_python_chain_keeps_the_first_cause_and_the_last_exception() -> None:
    log = ("Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n"
           "ConnectionRefusedError: [Errno 111] Connection refused\n\n"
           "During handling of the above exception, another exception occurred:\n\n"
           "Traceback (most recent call last):\n  File \"b.py\", line 2, in g\n"
           "RuntimeError: database unavailable\n")
    finding = extract_signature(split_lines(log))
    assert finding is not None
    assert finding.lines == ("ConnectionRefusedError: [Errno 111] Connection refused",
                             "RuntimeError: database unavailable")
    assert finding.category == "dependency-unavailable"


def test_jvm_bind_exception_is_port_in_use() -> None:
    log = ("Exception in thread \"main\" java.net.BindException: Address already in use\n"
           "\tat java.base/sun.nio.ch.Net.bind0(Native Method)\n")
    assert diagnose(Evidence(exit_code=1, log=log)).category == "port-in-use"


def test_jvm_deepest_caused_by_is_kept() -> None:
    log = ('Exception in thread "main" java.lang.RuntimeException: start failed\n'
           "\tat com.x.App.main(App.java:3)\n"
           "Caused by: java.lang.IllegalArgumentException: bad\n\tat com.x.A.b(A.java:1)\n"
           "Caused by: java.io.FileNotFoundException: /etc/app.yml (No such file or directory)\n"
           "\tat com.x.C.d(C.java:2)\n")
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.signature == ('Exception in thread "main" java.lang.RuntimeException: start failed',
                           "Caused by: java.io.FileNotFoundException: /etc/app.yml (No such "
                           "file or directory)")


def test_nginx_emerg_is_a_config_error() -> None:
    log = ('2026/11/27 09:00:00 [emerg] 1#1: unknown directive "servr" in '
           "/etc/nginx/conf.d/default.conf:3\nnginx: [emerg] unknown directive \"servr\"")
    assert diagnose(Evidence(exit_code=1, log=log)).category == "config-error"


def test_info_lines_mentioning_errors_are_not_a_signature() -> None:
    log = "\n".join(["INFO retrying: error loading config cache (will retry)"] * 3 +
                    ["INFO all good"])
    d = diagnose(Evidence(exit_code=0, log=log))
    assert d.category == "clean-exit"
    assert d.signature == ()


def test_a_crash_before_megabytes_of_goroutine_stacks_is_found() -> None:
    crash = ("fatal error: concurrent map writes\n\ngoroutine 9 [running]:\nmain.put()\n"
             "\t/a.go:3 +0x1\n")
    dump = "\n".join(f"goroutine {i} [select]:\nnet/http.(*conn).serve(0xc0)\n\t/s.go:1 +0x1"
                     for i in range(40_000))
    log = "\n".join(NOISE["go"]) + "\n" + crash + dump
    assert len(log) > 2_000_000
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.signature[0] == "fatal error: concurrent map writes"


def test_a_crash_megabytes_before_the_end_is_found() -> None:
    chatter = "\n".join(NOISE["python"] * 40)
    crash = CRASHES["python"][0]
    log = chatter + "\n" + crash + chatter
    assert len(log) > 2_000_000
    signature = diagnose(Evidence(exit_code=1, log=log)).signature
    assert "ZeroDivisionError: division by zero" in signature


@pytest.mark.parametrize(("log", "code", "expected", "category"), [
    ("Unhandled exception. System.InvalidOperationException: Sequence contains no elements\n"
     "   at System.Linq.ThrowHelper.ThrowNoElementsException()\n   at App.Main() in "
     "/src/Program.cs:line 12", 134,
     "Unhandled exception. System.InvalidOperationException: Sequence contains no elements",
     "app-fatal"),
    ("/app/lib/worker.rb:14:in `run': undefined method `each' for nil:NilClass (NoMethodError)"
     "\n\tfrom /app/bin/worker:5:in `<main>'", 1,
     "/app/lib/worker.rb:14:in `run': undefined method `each' for nil:NilClass (NoMethodError)",
     "app-fatal"),
    ("** (DBConnection.ConnectionError) tcp connect (db:5432): connection refused - :econnrefused"
     "\n    (db_connection 2.4.0) lib/db_connection.ex:100: DBConnection.run/3", 1,
     "** (DBConnection.ConnectionError) tcp connect (db:5432): connection refused - :econnrefused",
     "dependency-unavailable"),
    ("AH00526: Syntax error on line 52 of /usr/local/apache2/conf/httpd.conf:\n"
     "Invalid command 'Listn', perhaps misspelled", 1,
     "AH00526: Syntax error on line 52 of /usr/local/apache2/conf/httpd.conf:", "config-error"),
    ("2026/11/27 09:00:00 starting\n2026/11/27 09:00:01 failed to load certificate: open "
     "/certs/tls.crt: permission denied", 1,
     "2026/11/27 09:00:01 failed to load certificate: open /certs/tls.crt: permission denied",
     "app-fatal"),
    ('Error: Os { code: 2, kind: NotFound, message: "No such file or directory" }', 1,
     'Error: Os { code: 2, kind: NotFound, message: "No such file or directory" }',
     "app-fatal"),
])
def test_other_runtimes_and_last_words(log: str, code: int, expected: str, category: str
                                       ) -> None:
    d = diagnose(Evidence(exit_code=code, log=log))
    assert expected in d.signature
    assert d.category == category


def test_last_words_never_apply_to_clean_or_killed_exits() -> None:
    log = "processed 10 items\nerror count: 0"
    assert diagnose(Evidence(exit_code=0, log=log)).category == "clean-exit"
    assert diagnose(Evidence(exit_code=143, log="request failed, retrying")).category == \
        "graceful-shutdown"
    assert diagnose(Evidence(exit_code=1, log="INFO all good\nINFO done")).signature == ()


@pytest.mark.parametrize("line", [
    "nc: bad address 'thumbnail-cache'",
    "wget: bad address 'config-server:8888'",
    "curl: (6) Could not resolve host: api.internal",
    "psql: error: could not translate host name \"db\" to address: Name does not resolve",
    "dial tcp: lookup redis on 10.96.0.10:53: no such host",
])
def test_dns_failures_from_common_base_images_are_dependency_failures(line: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=f"starting\n{line}"))
    assert d.category == "dependency-unavailable"
    assert d.signature == (line,)


@pytest.mark.parametrize(("log", "code", "category"), [
    ("terminate called without an active exception\nAborted (core dumped)", 134,
     "native-crash"),
    ("npm ERR! missing script: start\n\nnpm ERR! A complete log of this run can be found in:"
     "\nnpm ERR!     /root/.npm/_logs/2026-11-27-debug-0.log", 1, "exec-error"),
    ('Error: unknown command "serve" for "app"\nRun \'app --help\' for usage.', 1,
     "config-error"),
    ("[27-Nov-2026 09:00:00] ERROR: failed to open configuration file "
     "'/usr/local/etc/php-fpm.conf': No such file or directory (2)", 78, "config-error"),
])
def test_more_startup_failures(log: str, code: int, category: str) -> None:
    d = diagnose(Evidence(exit_code=code, log=log))
    assert d.category == category
    assert d.signature
