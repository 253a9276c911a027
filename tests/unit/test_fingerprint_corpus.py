"""Fingerprints a team can trust for "new" and "same crash ×N", checked both ways on a corpus
generated from the 173 real crash fixtures:

- the same crash: each fixture carried by another transport (CRI log file, `kubectl logs
  --timestamps`, docker compose, journald, docker's json-file, `kubectl logs --prefix`), and
  restarted elsewhere (another pod of the ReplicaSet, a later day: timestamps shifted,
  addresses, goroutine and thread ids, pids, ports, IPs, UUIDs, container ids changed),
  alone and under a CRI prefix, has the fixture's category and fingerprint;
- different crashes: distinct fixtures have distinct fingerprints, except the groups listed
  below, each the same message printed by a runtime in different projects.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.diagnosis.engine import Diagnosis, Evidence, diagnose
from tests.conftest import FIXTURES

FILES = ("crash_logs.jsonl", "crash_logs_2.jsonl", "crash_logs_3.jsonl")
CASES: list[dict[str, Any]] = [json.loads(line) for name in FILES
                               for line in (FIXTURES / name).read_text().splitlines()
                               if line.strip()]
SEED = 20261127
SHIFT = timedelta(days=3, hours=5, minutes=7, seconds=11)  # a restart on another day

# ---- transports ------------------------------------------------------------------------------
_START = datetime(2026, 11, 27, 9, 0, 0)


def _stamp(i: int, digits: int) -> str:
    """An RFC 3339 stamp 137 ms after the previous line's, with `digits` fraction digits."""
    at = _START + timedelta(milliseconds=137 * i)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond * 1000 + i:09d}"[:20 + digits] + "Z"


TRANSPORTS: dict[str, Callable[[int, str], str]] = {
    "cri": lambda i, line: f"{_stamp(i, 9)} stderr F {line}",
    "timestamps": lambda i, line: f"{_stamp(i, 6)} {line}",
    "compose": lambda i, line: f"billing-api-1  | {line}",
    "journald": lambda i, line: (f"{_START + timedelta(seconds=i):%b %d %H:%M:%S} node-7 "
                                 f"billing[4121]: {line}"),
    "json-file": lambda i, line: json.dumps({"log": line + "\n", "stream": "stderr",
                                             "time": _stamp(i, 9)}),
    "kubectl --prefix": lambda i, line: f"[pod/billing-7d9f8b6c5d-x2x9q/api] {line}",
}


def carried(log: str, transport: str) -> str:
    wrap = TRANSPORTS[transport]
    return "\n".join(wrap(i, line) for i, line in enumerate(log.split("\n")))


# ---- a restart elsewhere: new ids, shifted times ---------------------------------------------
_K8S_RAND = "bcdfghjklmnpqrstvwxz2456789"
_TIME_FORMATS = (  # (pattern, strptime/strftime format) of timestamps shifted by SHIFT
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"), "%Y-%m-%dT%H:%M:%S"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "%Y-%m-%d %H:%M:%S"),
    (re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"), "%Y/%m/%d %H:%M:%S"),
    (re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d"), "%d %b %Y %H:%M:%S"),
)


def _shifted(text: str, pattern: re.Pattern[str], fmt: str) -> str:
    def shift(m: re.Match[str]) -> str:
        try:
            return (datetime.strptime(m.group(0), fmt) + SHIFT).strftime(fmt)
        except ValueError:
            return m.group(0)
    return pattern.sub(shift, text)


def restarted(log: str, rnd: random.Random) -> str:
    """The same crash in another pod on another day: every id-shaped value replaced
    (consistently within the log), every timestamp shifted by SHIFT."""
    memo: dict[str, str] = {}

    def same(old: str, new: Callable[[], str]) -> str:
        return memo.setdefault(old, new())

    def hexes(n: int) -> str:
        return "".join(rnd.choice("0123456789abcdef") for _ in range(n))

    def rand(n: int) -> str:
        return "".join(rnd.choice(_K8S_RAND) for _ in range(n))

    for pattern, fmt in _TIME_FORMATS:
        log = _shifted(log, pattern, fmt)
    log = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                 lambda m: same(m.group(0), lambda: str(uuid.UUID(int=rnd.getrandbits(128)))),
                 log)
    log = re.sub(r"\b([a-z][a-z0-9-]*-)([0-9a-f]{8,10})-([a-z0-9]{5})\b",
                 lambda m: same(m.group(0), lambda: f"{m.group(1)}{rand(10)}-{rand(5)}"), log)
    log = re.sub(r"0x[0-9a-f]{3,}", lambda m: same(m.group(0), lambda: "0x" + hexes(
        len(m.group(0)) - 2 + rnd.choice((-1, 0, 1)))), log)
    log = re.sub(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,64}\b",
                 lambda m: same(m.group(0), lambda: hexes(len(m.group(0)))), log)
    log = re.sub(r"(goroutine |[Tt]hread-|\bpid[:=]\s?|\[pid |\btid[:=]\s?)(\d+)\b(?!x)",
                 lambda m: m.group(1) + same(m.group(0), lambda: str(rnd.randrange(2, 99999))),
                 log)
    log = re.sub(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", lambda m: same(m.group(0), lambda: ".".join(
        str(rnd.randrange(1, 255)) for _ in range(4))), log)
    return re.sub(r"(?<=[\w\]]):(\d{4,5})\b", lambda m: ":" + same(
        m.group(0), lambda: str(rnd.randrange(1024, 65535))), log)


# ---- the corpus --------------------------------------------------------------------------------
def _diagnose(case: dict[str, Any], log: str) -> Diagnosis:
    return diagnose(Evidence(exit_code=case["exit_code"], reason=case["reason"], log=log))


_STAMPED = re.compile(r"(\d{13}|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?)")


def _newest_first(log: str) -> bool:
    """An export listing the newest line first: a transport never wrote it in that order,
    so it is not wrapped in one (its restarted copy is still checked)."""
    stamps = [m.group(1) for ln in log.split("\n") if (m := _STAMPED.match(ln))]
    return len(stamps) > 2 and stamps[0] > stamps[-1]


def variants(case: dict[str, Any], rnd: random.Random) -> dict[str, str]:
    log = case["log"]
    again = restarted(log, rnd)
    out = {"restarted": again}
    if not _newest_first(log):
        out |= {name: carried(log, name) for name in TRANSPORTS}
        out["restarted, cri"] = carried(again, "cri")
    return out


CORPUS: list[tuple[str, str, dict[str, Any], str]] = []  # (case id, variant, case, log)
_rnd = random.Random(SEED)
for _case in CASES:
    for _name, _log in variants(_case, _rnd).items():
        CORPUS.append((_case["id"], _name, _case, _log))


def test_the_corpus_covers_every_fixture_and_transport() -> None:
    assert len(CASES) == 173
    assert {case_id for case_id, *_ in CORPUS} == {case["id"] for case in CASES}
    names = {name for _, name, *_ in CORPUS}
    assert names == {"restarted", "restarted, cri", *TRANSPORTS}
    assert len(CORPUS) >= 1300


def test_a_restarted_copy_really_changed() -> None:
    changed = sum(1 for _, name, case, log in CORPUS if name == "restarted" and log != case["log"])
    assert changed >= 120  # most fixtures carry a time, an address or an id


@pytest.mark.parametrize(("case", "name", "log"), [(c, n, lg) for _, n, c, lg in CORPUS],
                         ids=[f"{case_id}:{name}" for case_id, name, *_ in CORPUS])
def test_the_same_crash_keeps_its_category_and_fingerprint(case: dict[str, Any], name: str,
                                                           log: str) -> None:
    original = _diagnose(case, case["log"])
    variant = _diagnose(case, log)
    assert variant.category == original.category, (name, variant.signature)
    assert variant.signature == original.signature or name.startswith("restarted"), name
    assert variant.fingerprint == original.fingerprint, (original.signature, variant.signature)


# The same message printed by a runtime in different projects: the same crash for whoever
# sees it (fingerprints are grouped per workload and container, so they never meet).
SAME_CRASH = {
    frozenset({"shell-001", "shell-n002"}),  # exec user process caused "exec format error"
    frozenset({"jvm-n001", "jvm-005", "jvm-n002"}),  # Spring Boot: Port … was already in use
    frozenset({"jvm-n004", "jvm-n005"}),  # Elasticsearch: vm.max_map_count too low
    frozenset({"k8s-001", "k8s-events-n001", "k8s-events-n002"}),  # describe: OOMKilled
    # V8: "Ineffective mark-compacts near heap limit" after its GC trace (whose sizes and
    # remarks are not part of the crash's identity)
    frozenset({"node-003", "node-n001"}),
}


def test_different_crashes_do_not_collide() -> None:
    by_print: dict[str, set[str]] = {}
    for case in CASES:
        d = _diagnose(case, case["log"])
        if d.fingerprint is not None:
            by_print.setdefault(d.fingerprint, set()).add(case["id"])
    collisions = {frozenset(ids) for ids in by_print.values() if len(ids) > 1}
    assert collisions == SAME_CRASH
    assert len(by_print) == 173 - 2 - sum(len(group) - 1 for group in SAME_CRASH)
