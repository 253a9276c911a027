"""One test per exit-code rule of docs/exit-codes.md, through the public diagnose()."""

from __future__ import annotations

import pytest

from bot.diagnosis.engine import EventNote, Evidence, diagnose
from bot.diagnosis.exit_codes import decode_termination, signal_of

GO_PANIC = """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 1 [running]:
main.handler(0x0)
\t/src/main.go:12 +0x1c
main.main()
\t/src/main.go:30 +0x25
"""
LIVENESS = (EventNote("Warning", "Unhealthy", 'Liveness probe failed: Get "http://10.0.0.7:8080/'
                      'healthz": context deadline exceeded', 3),
            EventNote("Normal", "Killing", "Container app failed liveness probe, will be "
                      "restarted"))


def test_go_exit_2_is_a_panic_not_a_shell_builtin() -> None:
    d = diagnose(Evidence(exit_code=2, reason="Error", log=GO_PANIC))
    assert d.category == "go-panic" and d.runtime == "go"
    assert "Go panic: runtime error: invalid memory address or nil pointer dereference" in d.summary
    assert "main.handler" in d.summary
    assert "shell builtin" not in d.meaning


def test_go_nil_dereference_exits_2_even_though_the_log_says_sigsegv() -> None:
    d = diagnose(Evidence(exit_code=2, log=GO_PANIC))
    assert d.signal is None and d.category == "go-panic"


def test_go_fatal_error_is_its_own_category() -> None:
    log = ("fatal error: all goroutines are asleep - deadlock!\n\n"
           "goroutine 1 [running]:\nmain.main()\n")
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.category == "go-fatal-error"
    assert any("deadlock" in h or "blocked" in h for h in d.hints)


def test_exit_2_from_python_is_a_command_line_error() -> None:
    log = "python: can't open file '/app/main.py': [Errno 2] No such file or directory"
    assert diagnose(Evidence(exit_code=2, log=log)).category == "exec-error"
    assert decode_termination(2, "Error", runtime="python").category == "exec-error"


def test_exit_2_without_any_evidence_says_the_log_decides() -> None:
    d = diagnose(Evidence(exit_code=2, reason="Error"))
    assert d.category == "unknown" and "Go" in d.meaning
    assert any("kubectl logs --previous" in h for h in d.hints)


@pytest.mark.parametrize(("runtime", "category"), [
    ("python", "python-exception"), ("node", "node-exception"), ("jvm", "jvm-exception"),
    ("go", "app-fatal"), (None, "unknown")])
def test_exit_1_is_read_per_runtime(runtime: str | None, category: str) -> None:
    assert decode_termination(1, "Error", runtime=runtime).category == category


def test_exit_101_is_a_rust_panic() -> None:
    d = diagnose(Evidence(exit_code=101))
    assert d.category == "rust-panic" and d.runtime == "rust"


@pytest.mark.parametrize("code", [126, 127])
def test_126_and_127_are_exec_failures(code: int) -> None:
    assert diagnose(Evidence(exit_code=code)).category == "exec-error"


def test_start_error_128_is_an_exec_error_with_the_runtime_message() -> None:
    msg = ('failed to create containerd task: OCI runtime create failed: runc create failed: '
           'unable to start container process: exec: "/app/server": exec format error: unknown')
    d = diagnose(Evidence(exit_code=128, reason="StartError", message=msg,
                          image="registry.local/app:1.2.0-arm64"))
    assert d.category == "exec-error"
    assert 'exec: "/app/server": exec format error' in d.summary
    assert d.hints[0].startswith("The binary is built for arm64 (image "
                                 "registry.local/app:1.2.0-arm64)")
    plain = diagnose(Evidence(exit_code=128, reason="StartError", message=msg, image="app:1"))
    assert "another CPU architecture" in plain.hints[0]


def test_134_abort_is_native_and_node_heap_oom_is_told_apart() -> None:
    assert diagnose(Evidence(exit_code=134)).category == "native-crash"
    log = ("<--- Last few GCs --->\n[1:0x1]  1537 ms: Mark-sweep 1380.5 (1425.7) -> 1379.7 MB\n"
           "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
           " 1: 0x8c02c0 node::Abort() [node]")
    d = diagnose(Evidence(exit_code=134, log=log, memory_limit="1Gi"))
    assert d.category == "node-heap-oom" and "1Gi" in " ".join(d.hints)


def test_uncaught_cpp_exception_is_native() -> None:
    log = ("terminate called after throwing an instance of 'std::runtime_error'\n"
           "  what():  bad config\nAborted (core dumped)")
    d = diagnose(Evidence(exit_code=134, log=log))
    assert d.category == "native-crash"
    assert d.signature[:2] == ("terminate called after throwing an instance of "
                               "'std::runtime_error'", "  what():  bad config")


def test_137_with_oomkilled_reason_is_oom() -> None:
    d = diagnose(Evidence(exit_code=137, reason="OOMKilled", memory_limit="512Mi"))
    assert d.category == "oom-killed"
    assert d.hints[0] == "Raise the memory limit or fix the leak: usage hit the limit of 512Mi."


def test_137_with_liveness_probe_events_is_a_probe_kill() -> None:
    d = diagnose(Evidence(exit_code=137, reason="Error", events=LIVENESS))
    assert d.category == "probe-kill"
    assert "liveness" in d.summary
    assert any("startupProbe" in h for h in d.hints)


def test_137_with_a_disruption_target_is_eviction_or_preemption() -> None:
    d = diagnose(Evidence(exit_code=137, reason="Error",
                          disruption_reason="PreemptionByScheduler"))
    assert d.category == "evicted-or-preempted"
    assert "PriorityClass" in d.hints[0]


def test_137_container_status_unknown_is_bookkeeping() -> None:
    d = diagnose(Evidence(exit_code=137, reason="ContainerStatusUnknown"))
    assert d.category == "unknown" and "bookkeeping" in d.meaning


def test_bare_137_is_never_called_oom() -> None:
    d = diagnose(Evidence(exit_code=137, reason="Error"))
    assert d.category == "unknown"
    assert "not OOM" in d.meaning
    assert d.signal == 9


def test_139_is_a_segfault() -> None:
    d = diagnose(Evidence(exit_code=139, log="Segmentation fault (core dumped)"))
    assert d.category == "native-crash" and d.signal == 11


def test_143_is_a_graceful_stop_even_for_the_jvm() -> None:
    log = ("2026-01-01 INFO  o.s.b.w.e.tomcat.GracefulShutdown : Commencing graceful shutdown\n"
           "2026-01-01 INFO  o.s.b.w.e.tomcat.GracefulShutdown : Graceful shutdown complete")
    d = diagnose(Evidence(exit_code=143, log=log, image="eclipse-temurin:21"))
    assert d.category == "graceful-shutdown"
    assert d.runtime == "jvm"
    assert diagnose(Evidence(exit_code=143)).category == "graceful-shutdown"


def test_255_klog_fatal_and_containerd_unknown() -> None:
    klog = "F0613 12:00:00.000000       1 main.go:42] failed to list *v1.Node: Unauthorized"
    d = diagnose(Evidence(exit_code=255, reason="Error", log=klog))
    assert d.category == "app-fatal" and d.runtime == "go"
    assert "failed to list *v1.Node: Unauthorized" in d.summary
    assert diagnose(Evidence(exit_code=255, reason="Unknown")).category == "unknown"


def test_exit_0_under_restart_policy_always_is_a_clean_exit() -> None:
    d = diagnose(Evidence(exit_code=0, reason="Completed"))
    assert d.category == "clean-exit"
    assert "Job" in d.hints[0]


@pytest.mark.parametrize("code", [0, 1, 143])
def test_oomkilled_with_a_non_137_code_means_a_child_was_killed(code: int) -> None:
    d = diagnose(Evidence(exit_code=code, reason="OOMKilled"))
    assert d.category == "oom-killed"
    assert "not the main one" in d.meaning
    assert any("child process" in h for h in d.hints)


def test_a_real_crash_beats_probe_events() -> None:
    d = diagnose(Evidence(exit_code=2, reason="Error", log=GO_PANIC, events=LIVENESS))
    assert d.category == "go-panic"


def test_runtime_from_the_image_when_the_log_is_silent() -> None:
    assert diagnose(Evidence(exit_code=1, image="python:3.12-slim")).category == \
        "python-exception"


def test_signal_comes_from_the_code_when_the_api_leaves_it_empty() -> None:
    assert signal_of(137) == 9 and signal_of(143) == 15 and signal_of(2) is None
    assert signal_of(1, signal=6) == 6


@pytest.mark.parametrize(("image", "runtime"), [
    ("node:20-alpine", "node"), ("docker.io/library/node:18", "node"), ("cimg/node:20.1", "node"),
    ("registry.local/edge/node-agent:0.9.0", None), ("python:3.12-slim", "python"),
    ("eclipse-temurin:21-jre", "jvm"), ("golang:1.22", "go"), ("nginx:1.27", None),
])
def test_runtime_from_image_names_only_what_they_say(image: str, runtime: str | None) -> None:
    from bot.diagnosis.runtimes import infer_runtime

    assert infer_runtime([], image) == runtime
