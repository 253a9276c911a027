"""Every real crash in tests/fixtures/crash_logs*.jsonl (173 cases) and in the blind local
corpus local_crashes.jsonl (123 cases, produced on this machine by
tests/fixtures/local_crashes.py): the signature holds every expected substring and the
category is one the case accepts; and the second and third blind sets
(local_crashes_2.jsonl, 48 cases; local_crashes_3.jsonl, 30 cases; local_crashes_4.jsonl,
19 cases; local_crashes_5.jsonl, 60 cases; local_crashes_6.jsonl, 40 cases;
local_crashes_7.jsonl, 34 cases; local_crashes_8.jsonl, 23 cases; local_crashes_9.jsonl, 28
cases). The tenth, eleventh and twelfth sets (local_crashes_10.jsonl, local_crashes_11.jsonl,
local_crashes_12.jsonl) are measured by tests/bench/bench_diagnose_folds only (not tuned on)."""

from __future__ import annotations

import json

import pytest

from bot.diagnosis.engine import Evidence, diagnose
from tests.conftest import FIXTURES

FILES = {"crash_logs.jsonl": 27, "crash_logs_2.jsonl": 52, "crash_logs_3.jsonl": 94,
         "local_crashes.jsonl": 123, "local_crashes_2.jsonl": 48, "local_crashes_3.jsonl": 30,
         "local_crashes_4.jsonl": 19, "local_crashes_5.jsonl": 60, "local_crashes_6.jsonl": 40,
         "local_crashes_7.jsonl": 34, "local_crashes_8.jsonl": 23, "local_crashes_9.jsonl": 28}
UPSTREAM = ("crash_logs.jsonl", "crash_logs_2.jsonl", "crash_logs_3.jsonl")
CASES = [(name, json.loads(line)) for name in FILES
         for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(("name", "count"), FILES.items())
def test_the_fixtures_are_present(name: str, count: int) -> None:
    assert sum(1 for file, _ in CASES if file == name) >= count


@pytest.mark.parametrize("case", [c for _, c in CASES],
                         ids=[f"{name.split('.')[0]}:{c['id']}" for name, c in CASES])
def test_fixture_signature_and_category(case: dict) -> None:
    d = diagnose(Evidence(exit_code=case["exit_code"], reason=case["reason"], log=case["log"]))
    text = "\n".join(d.signature)
    for expected in case["expected_signature"]:
        assert expected in text, f"{expected!r} not in signature {d.signature}"
    assert d.category in case["accept_categories"], (d.category, d.signature)
    assert len(d.signature) <= 8
    if case["expected_signature"]:  # a case expecting no lines: nothing in its log explains it
        assert d.signature
    assert d.summary and d.meaning


def test_the_refresh_script_knows_every_fixture_file(tmp_path) -> None:
    from tests.fixtures import refresh

    assert set(UPSTREAM) <= set(refresh.NAMES)
    for name in UPSTREAM:
        (tmp_path / name).write_bytes((FIXTURES / name).read_bytes())
    assert refresh.stale_files(tmp_path) == []
    (tmp_path / "crash_logs_3.jsonl").write_text("{}\n")
    assert refresh.stale_files(tmp_path) == ["crash_logs_3.jsonl"]


def test_a_refresh_keeps_the_labels_revised_here(tmp_path) -> None:
    from tests.fixtures import refresh

    here = (FIXTURES / "crash_logs_3.jsonl").read_text().splitlines(keepends=True)
    upstream = []
    for line in here:  # the upstream record of a revised case carries its original label
        record = json.loads(line)
        if ("crash_logs_3.jsonl", record["id"]) in refresh.REVISIONS:
            record["accept_categories"] = ["exec-error", "app-fatal"]
            upstream.append(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            upstream.append(line)
    (tmp_path / "crash_logs_3.jsonl").write_text("".join(upstream))
    assert refresh.stale_files(tmp_path) == []
    assert refresh.revised("crash_logs_3.jsonl", "".join(upstream).encode()) == "".join(
        here).encode()
