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
