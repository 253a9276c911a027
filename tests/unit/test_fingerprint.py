"""The same crash has the same fingerprint across pods and days; different crashes differ."""

from __future__ import annotations

from bot.diagnosis.engine import Evidence, diagnose
from bot.diagnosis.fingerprint import fingerprint, normalise


def go_log(addr: str, goroutine: int, line: int, stamp: str) -> str:
    return (f"{stamp} INFO serving\npanic: runtime error: invalid memory address or nil "
            f"pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr={addr} "
            f"pc=0x8a1f2c]\n\ngoroutine {goroutine} [running]:\nmain.(*B).flush(0xc0003a2000)\n"
            f"\t/src/batcher.go:{line} +0x8c\n")


def test_same_crash_on_other_pods_and_days_has_one_fingerprint() -> None:
    a = diagnose(Evidence(exit_code=2, log=go_log("0x18", 1127, 142, "2026/11/01 09:00:00")))
    b = diagnose(Evidence(exit_code=2, log=go_log("0x20", 88, 142, "2026/11/02 17:12:44")))
    assert a.fingerprint is not None and a.fingerprint == b.fingerprint


def test_line_numbers_are_normalised_so_a_rebuild_keeps_the_fingerprint() -> None:
    a = diagnose(Evidence(exit_code=2, log=go_log("0x18", 1, 142, "")))
    b = diagnose(Evidence(exit_code=2, log=go_log("0x18", 1, 150, "")))
    assert a.fingerprint == b.fingerprint


def test_different_crashes_have_different_fingerprints() -> None:
    a = fingerprint("python-exception", ["KeyError: 'region'"])
    b = fingerprint("python-exception", ["ValueError: bad input"])
    c = fingerprint("go-panic", ["KeyError: 'region'"])
    assert len({a, b, c}) == 3


def test_no_signature_no_fingerprint() -> None:
    assert fingerprint("unknown", []) is None


def test_normalise_replaces_volatile_parts() -> None:
    assert normalise("2026-11-27T09:00:00Z pod api-7d7b75974d-4zlj6 at 10.0.0.5:8080 0xdeadbeef"
                     ) == "<ts> pod <pod> at <ip> <addr>"


def test_normalise_covers_the_ids_of_other_pods_and_days() -> None:
    assert normalise("pod web-7cbb9bd8kx-x2x9q and daemon fluent-bit-pvk74 on node-3") == (
        "pod <pod> and daemon <pod> on node-<n>")
    assert normalise("container ff2f17da9ebc exited") == "container <hex> exited"
    assert normalise("1:M 26 Feb 2023 13:42:15.741 # crashed") == "<n>:M <ts> # crashed"
    assert normalise("Started: Mon, 22 Jan 2024 16:57:07 +0000") == "Started: <ts> +<n>"
    assert normalise("Nov 05 06:09:05.838398 host kubelet") == "<ts> host kubelet"
    assert normalise("goroutine 16 [semacquire, 35 minutes]:") == "goroutine <n> [semacquire]:"


def test_normalise_keeps_words_that_only_look_like_ids() -> None:
    for text in ("multi-level cache", "deadbeef", "read-write", "x86-64 build", "utf-8"):
        assert "<" not in normalise(text).replace("<n>", ""), text


def test_a_deadlock_is_told_apart_by_where_it_waits() -> None:
    def deadlock(frame: str) -> str:
        return ("fatal error: all goroutines are asleep - deadlock!\n\n"
                "goroutine 1 [chan receive, 3 minutes]:\n"
                f"{frame}\n\t/src/{frame.split('.', maxsplit=1)[0]}.go:40 +0x1d\n")
    a = diagnose(Evidence(exit_code=2, log=deadlock("queue.Drain()")))
    b = diagnose(Evidence(exit_code=2, log=deadlock("cache.Warm()")))
    assert a.category == b.category == "go-fatal-error"
    assert "queue.Drain()" in a.signature and a.fingerprint != b.fingerprint
    assert a.summary == ("Go fatal error: all goroutines are asleep - deadlock! in queue.Drain "
                         "(queue.go:40)")
