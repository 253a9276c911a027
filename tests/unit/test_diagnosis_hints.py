"""Hints that are true: every "what next" line follows from the evidence, and when a piece of
evidence is missing (the memory limit, the events, the exit code) the hint says so instead of
guessing. Cases are written for this test; the sweep at the end runs over the real fixtures."""

from __future__ import annotations

import json
import re

import pytest

from bot.diagnosis.engine import EventNote, Evidence, diagnose
from tests.conftest import FIXTURES

CGROUP_OOM = EventNote("Warning", "OOMKilling", "Memory cgroup out of memory: Killed process "
                       "4121 (java) total-vm:4194304kB, anon-rss:1048576kB")


def text_of(ev: Evidence) -> str:
    d = diagnose(ev)
    return "\n".join((d.summary, *d.hints))


# ---- the memory limit -------------------------------------------------------------------------
def test_an_oom_kill_event_never_claims_there_is_no_limit() -> None:
    d = diagnose(Evidence(exit_code=137, events=(CGROUP_OOM,)))
    assert d.category == "oom-killed"
    said = "\n".join((d.summary, *d.hints))
    assert "no memory limit" not in said.lower()
    assert "limit is not known" in said


def test_a_known_limit_is_named() -> None:
    d = diagnose(Evidence(exit_code=137, events=(CGROUP_OOM,), memory_limit="768Mi"))
    assert d.summary == "OOM-killed: the container exceeded its memory limit of 768Mi"
    assert d.hints[0] == "Raise the memory limit or fix the leak: usage hit the limit of 768Mi."


def test_a_container_known_to_set_no_limit_is_told_where_the_oom_came_from() -> None:
    d = diagnose(Evidence(exit_code=137, reason="OOMKilled", has_memory_limit=False))
    assert d.summary == ("OOM-killed: the container sets no memory limit, so its pod's limit or "
                         "the node's memory ran out")
    assert "not known" not in "\n".join(d.hints)


# ---- the events -------------------------------------------------------------------------------
@pytest.mark.parametrize(("readable", "said", "not_said"), [
    (True, "were read but have expired", "could not be read"),
    (False, "could not be read", "expired"),
    (None, "no events were available", "expired"),
])
def test_missing_events_are_described_as_what_is_known(readable: bool | None, said: str,
                                                       not_said: str) -> None:
    text = text_of(Evidence(exit_code=143, has_liveness_probe=True, events_readable=readable))
    assert said in text and not_said not in text


def test_a_sigkill_with_unreadable_events_does_not_rule_out_a_probe_kill() -> None:
    text = text_of(Evidence(exit_code=137, events_readable=False))
    assert "cannot be ruled out" in text and "No OOMKilled reason and no probe" not in text


# ---- the container's kind ---------------------------------------------------------------------
def test_a_failing_init_container_says_so_and_that_the_pod_never_started() -> None:
    d = diagnose(Evidence(exit_code=1, container_kind="init"))
    assert d.summary.startswith("Init container: ")
    assert d.hints[0].startswith("This is an init container: the pod's app containers have not "
                                 "started")
    crash = diagnose(Evidence(exit_code=1, container_kind="init", log=(
        "Traceback (most recent call last):\n  File \"/m.py\", line 1, in <module>\n    run()\n"
        "RuntimeError: migration 0042 failed\n")))
    assert crash.summary == "Init container: Python exception: RuntimeError: migration 0042 failed"
    assert crash.category == "python-exception"


@pytest.mark.parametrize(("kind", "prefix"), [("sidecar", "Sidecar container: "),
                                              ("ephemeral", "Ephemeral container: ")])
def test_other_kinds_are_named(kind: str, prefix: str) -> None:
    assert diagnose(Evidence(exit_code=1, container_kind=kind)).summary.startswith(prefix)


def test_an_app_container_or_an_unknown_kind_adds_nothing() -> None:
    plain = diagnose(Evidence(exit_code=1))
    for kind in ("container", None):
        d = diagnose(Evidence(exit_code=1, container_kind=kind))
        assert (d.summary, d.hints) == (plain.summary, plain.hints)


# ---- what the probe failure says --------------------------------------------------------------
def probe(message: str) -> tuple[EventNote, ...]:
    return (EventNote("Warning", "Unhealthy", f"Liveness probe failed: {message}", 6),
            EventNote("Normal", "Killing", "Container api failed liveness probe, will be "
                      "restarted"))


@pytest.mark.parametrize(("message", "said"), [
    ('Get "http://10.0.0.7:8080/live": dial tcp 10.0.0.7:8080: connect: connection refused',
     "Nothing listened on the probe's port"),
    ('Get "http://10.0.0.7:8080/live": context deadline exceeded (Client.Timeout exceeded while '
     "awaiting headers)", "too slow to answer"),
    ("HTTP probe failed with statuscode: 500", "answered with an error status"),
    ("command \"pg_isready\" exited with 2", "failed failureThreshold times"),
])
def test_the_probe_hint_follows_what_the_probe_reported(message: str, said: str) -> None:
    d = diagnose(Evidence(exit_code=137, events=probe(message)))
    assert d.category == "probe-kill"
    assert said in d.hints[0]
    assert sum("too slow" in h for h in d.hints) == (said == "too slow to answer")


def test_no_startup_probe_advice_when_a_startup_probe_exists() -> None:
    events = (*probe("HTTP probe failed with statuscode: 503"),
              EventNote("Warning", "Unhealthy", "Startup probe failed: HTTP probe failed with "
                        "statuscode: 503", 30))
    assert not any("startupProbe" in h for h in diagnose(Evidence(exit_code=137,
                                                                  events=events)).hints)
    alone = diagnose(Evidence(exit_code=137, events=probe("HTTP probe failed with "
                                                          "statuscode: 503")))
    assert any("startupProbe" in h for h in alone.hints)


# ---- claims about the exit code and the message -----------------------------------------------
def test_no_hint_names_an_exit_code_that_was_not_recorded() -> None:
    go = ("panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:3 +0x1\n")
    py = ("Traceback (most recent call last):\n  File \"/a.py\", line 1, in <module>\n    f()\n"
          "ValueError: bad\n")
    for log in (go, py):
        d = diagnose(Evidence(log=log))
        assert not any(re.search(r"\bexit(?:s)? \d", h, re.I) for h in d.hints), d.hints
    assert any("exit 2" in h.lower() for h in diagnose(Evidence(exit_code=2, log=go)).hints)


def test_the_java_release_mismatch_is_spelled_out() -> None:
    log = ("Error: LinkageError occurred while loading main class app.Main\n"
           "\tjava.lang.UnsupportedClassVersionError: app/Main has been compiled by a more "
           "recent version of the Java Runtime (class file version 65.0), this version of the "
           "Java Runtime only recognizes class file versions up to 61.0\n")
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.hints[0] == ("The classes were compiled for Java 21 but the image runs Java 17: use "
                          "a Java 21 (or newer) base image, or compile with --release 17.")


@pytest.mark.parametrize(("log", "said", "not_said"), [
    ("thread 'main' panicked at src/main.rs:9:5:\nattempt to subtract with overflow\n",
     "what the code asserted", "unwrap"),
    ("thread 'main' panicked at src/main.rs:9:5:\ncalled `Option::unwrap()` on a `None` value\n",
     "unwrap", "what the code asserted"),
    ("Error: Could not find or load main class app.Main\nCaused by: "
     "java.lang.ClassNotFoundException: app.Main\n", "not on the classpath", "$VARIABLES"),
    ("Error: Could not find or load main class $JAVA_OPTS\n", "$VARIABLES", "classpath"),
    ("./run.sh: 3: Bad substitution\n", "bash syntax", "PATH"),
    ("2026/11/27 09:00:00 dial tcp: lookup ledger on 10.96.0.10:53: no such host\n",
     "does not resolve", "Nothing accepted"),
    ("2026/11/27 09:00:00 dial tcp 10.0.0.4:5432: connect: connection refused\n",
     "Nothing accepted", "does not resolve"),
    ("usage: sync [-h] --src SRC\nsync: error: the following arguments are required: --src\n",
     "command line is rejected", "ConfigMap"),
])
def test_hints_follow_what_the_log_says(log: str, said: str, not_said: str) -> None:
    text = "\n".join(diagnose(Evidence(exit_code=1, log=log)).hints)
    assert said in text and not_said not in text


# ---- a sweep over the real fixtures -----------------------------------------------------------
CASES = [json.loads(line) for name in ("crash_logs.jsonl", "crash_logs_2.jsonl",
                                       "crash_logs_3.jsonl", "local_crashes.jsonl",
                                       "local_crashes_2.jsonl", "local_crashes_3.jsonl",
                                       "local_crashes_4.jsonl", "local_crashes_5.jsonl",
                                       "local_crashes_6.jsonl", "local_crashes_7.jsonl",
                                       "local_crashes_8.jsonl", "local_crashes_9.jsonl")
         for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_no_fixture_gets_a_hint_its_evidence_contradicts(case: dict) -> None:
    d = diagnose(Evidence(exit_code=case["exit_code"], reason=case["reason"], log=case["log"]))
    hints = "\n".join(d.hints)
    # what a hint says about this process's exit code: "(exit N)", "Exit N …"
    claimed = re.findall(r"\(exit (\d+)\)|^Exit (\d+) ", hints, re.M)
    assert all(int(a or b) == case["exit_code"] for a, b in claimed), (claimed, hints)
    assert "no memory limit" not in hints.lower()
    assert "expired" not in hints  # nobody said the events were read
    if d.category in ("node-exception", "python-exception", "jvm-exception"):
        assert "ConfigMap" not in hints or "environment variable" in hints


@pytest.mark.parametrize(("log", "said"), [
    ("boot\nFATAL: REDIS_URL is not set\n", "environment variable is missing"),
    ("app.rb:3:in `fetch': key not found: \"DATABASE_URL\" (KeyError)\n\tfrom app.rb:3:in "
     "`<main>'\n", "environment variable is missing"),
    ("./entrypoint.sh: line 3: API_TOKEN: API_TOKEN must be set\n",
     "environment variable is missing"),
    ("./entrypoint.sh: line 3: DB_HOST: parameter null or not set\n",
     "environment variable is missing"),
    ("Usage: export [OPTIONS]\nTry 'export --help' for help.\n\nError: No such option "
     "'--tagret'.\n", "command line is rejected"),
    ("Could not listen on 198.51.100.4:8080: bind: Cannot assign requested address\nFailed to "
     "start listeners, aborting.\n", "listen address is not one of the pod's"),
])
def test_config_error_hints_name_what_was_rejected(log: str, said: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.category == "config-error"
    assert said in "\n".join(d.hints)


def test_a_capitalised_word_is_not_called_an_environment_variable() -> None:
    d = diagnose(Evidence(exit_code=1, log="fatal: config file /etc/x.yaml missing\nRetry is "
                                           "not set for job 4\n"))
    assert "environment variable" not in "\n".join(d.hints)
