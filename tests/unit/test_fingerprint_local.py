"""Fingerprints over the blind local corpus, both ways, with real variation:

- the same crash: `local_crashes_rerun.jsonl` is a second real run of the same 123 programs
  (`python -m tests.fixtures.local_crashes --out local_crashes_rerun.jsonl`): other pids,
  ports, timestamps, heap addresses, thread ids, temporary paths — what changes when a pod
  restarts. Each crash keeps its category and fingerprint across the runs, and also when
  carried by each transport of `test_fingerprint_corpus` and restarted there;
- different crashes: distinct programs have distinct fingerprints, also against the 173
  public fixtures, except the groups below (the same message from the same runtime).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from bot.diagnosis.engine import Diagnosis, Evidence, diagnose
from tests.conftest import FIXTURES
from tests.unit.test_fingerprint_corpus import CASES as PUBLIC
from tests.unit.test_fingerprint_corpus import variants


def _load(name: str) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in map(json.loads, (FIXTURES / name).read_text().splitlines())}


FIRST = _load("local_crashes.jsonl")
RERUN = _load("local_crashes_rerun.jsonl")
SEED = 20261203


def _diagnose(case: dict[str, Any], log: str | None = None) -> Diagnosis:
    return diagnose(Evidence(exit_code=case["exit_code"], reason=case["reason"],
                             log=case["log"] if log is None else log))


def test_the_rerun_is_a_real_second_run_of_every_program() -> None:
    assert set(RERUN) == set(FIRST) and len(FIRST) >= 120
    changed = sum(1 for i in FIRST if FIRST[i]["log"] != RERUN[i]["log"])
    assert changed >= 60  # pids, ports, times and addresses differ between runs


@pytest.mark.parametrize("case_id", sorted(FIRST))
def test_a_second_run_of_the_same_crash_has_the_same_fingerprint(case_id: str) -> None:
    first, again = _diagnose(FIRST[case_id]), _diagnose(RERUN[case_id])
    assert again.category == first.category, (first.signature, again.signature)
    assert again.fingerprint == first.fingerprint, (first.signature, again.signature)


_rnd = random.Random(SEED)
CARRIED = [(i, name, log) for i in sorted(FIRST)
           for name, log in variants(FIRST[i], _rnd).items()]


@pytest.mark.parametrize(("case_id", "name", "log"), CARRIED,
                         ids=[f"{i}:{name}" for i, name, _ in CARRIED])
def test_carried_and_restarted_copies_keep_the_fingerprint(case_id: str, name: str,
                                                           log: str) -> None:
    original, variant = _diagnose(FIRST[case_id]), _diagnose(FIRST[case_id], log)
    assert variant.category == original.category, (name, variant.signature)
    assert variant.fingerprint == original.fingerprint, (original.signature, variant.signature)


# The same message, printed by the same runtime or server, in a public fixture and in a
# program of this corpus: the same crash for whoever sees it (fingerprints are grouped per
# workload and container, so they never meet).
SAME_CRASH = {
    frozenset({"py-l36", "python-n004"}),  # uvicorn: Could not import module "main"
    frozenset({"node-l07", "node-009"}),  # Cannot find module 'express'
    frozenset({"shell-l04", "shell-n006"}),  # ./entrypoint.sh: 4: Bad substitution
    frozenset({"py-l05", "python-n006"}),  # OSError: [Errno 98] Address already in use
}
# pydantic's "1 validation error for Settings" pair (py-l26, python-n008) collided until the
# signature quoted the field and reason listed under that line: different fields, different
# crashes.


def test_different_crashes_do_not_collide() -> None:
    by_print: dict[str, set[str]] = {}
    for case in [*FIRST.values(), *PUBLIC]:
        d = _diagnose(case)
        if d.fingerprint is not None:
            by_print.setdefault(d.fingerprint, set()).add(case["id"])
    collisions = {frozenset(ids) for ids in by_print.values()
                  if len(ids) > 1 and any(i in FIRST for i in ids)}
    assert collisions == SAME_CRASH


# The fifth and sixth blind sets, run twice too (`--set 5 --out local_crashes_5_rerun.jsonl`,
# likewise 6): 100 more programs (Go, Ruby, PHP, nginx among them).
LATER = {**_load("local_crashes_5.jsonl"), **_load("local_crashes_6.jsonl")}
LATER_RERUN = {**_load("local_crashes_5_rerun.jsonl"), **_load("local_crashes_6_rerun.jsonl")}


@pytest.mark.parametrize("case_id", sorted(LATER))
def test_a_second_run_of_a_later_blind_crash_has_the_same_fingerprint(case_id: str) -> None:
    first, again = _diagnose(LATER[case_id]), _diagnose(LATER_RERUN[case_id])
    assert again.category == first.category, (first.signature, again.signature)
    assert again.fingerprint == first.fingerprint, (first.signature, again.signature)


# Programs of the later sets that print the same message as one of the first two sets: the
# same crash (and not new shapes: docs/diagnosis.md counts them out of the novel figure).
LATER_SAME_CRASH = {
    frozenset({"py-l23", "py5-03"}),  # UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9
    frozenset({"node-l04", "node6-01"}),  # Error: connect ECONNREFUSED
    frozenset({"node-l13", "node5-04"}),  # RangeError: Maximum call stack size exceeded
    frozenset({"node-l20", "node6-02"}),  # SyntaxError: Unexpected token ';'
    frozenset({"jvm-l03", "jvm5-03"}),  # java.net.BindException: Address already in use
    frozenset({"jvm-l05", "jvm5-01"}),  # OutOfMemoryError: Java heap space
    frozenset({"jvm-l09", "jvm5-06"}),  # StackOverflowError
    frozenset({"rust-l05", "rust6-03"}),  # index out of bounds
    frozenset({"native-l05", "native6-01"}),  # *** stack smashing detected ***
    frozenset({"native-l10", "native6-02"}),  # std::bad_alloc
    frozenset({"shell-l05", "shell5-01"}),  # DATABASE_URL: unbound variable
    frozenset({"jvm2-06", "jvm6-05"}),  # SocketTimeoutException: Read timed out
}


def test_later_blind_crashes_collide_only_with_the_same_message() -> None:
    others = [*FIRST.values(), *_load("local_crashes_2.jsonl").values(),
              *_load("local_crashes_3.jsonl").values(), *_load("local_crashes_4.jsonl").values(),
              *PUBLIC]
    by_print: dict[str, set[str]] = {}
    for case in [*LATER.values(), *others]:
        d = _diagnose(case)
        if d.fingerprint is not None:
            by_print.setdefault(d.fingerprint, set()).add(case["id"])
    collisions = {frozenset(ids) for ids in by_print.values()
                  if len(ids) > 1 and any(i in LATER for i in ids)}
    assert collisions == LATER_SAME_CRASH
