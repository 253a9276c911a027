"""Every real crash in tests/fixtures/crash_logs.jsonl: signature and category."""

from __future__ import annotations

import json

import pytest

from bot.diagnosis.engine import Evidence, diagnose
from tests.conftest import FIXTURES

CASES = [json.loads(line) for line in (FIXTURES / "crash_logs.jsonl").read_text(
    ).splitlines() if line.strip()]


def test_the_fixtures_are_present() -> None:
    assert len(CASES) >= 27


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_fixture_signature_and_category(case: dict) -> None:
    d = diagnose(Evidence(exit_code=case["exit_code"], reason=case["reason"], log=case["log"]))
    text = "\n".join(d.signature)
    for expected in case["expected_signature"]:
        assert expected in text, f"{expected!r} not in signature {d.signature}"
    assert d.category in case["accept_categories"]
    assert 0 < len(d.signature) <= 8
    assert d.summary and d.meaning
